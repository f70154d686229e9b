#include "igscope/layers/relu.h"

#include <utility>

namespace igscope {

Tensor ReLU::forward(Tensor in, Backend& backend, Mode /*mode*/) {
  Tensor out = Tensor::uninitialized(in.shape());
  backend.relu_forward(in.size(), in.data(), out.data());
  input_ = std::move(in);
  return out;
}

Tensor ReLU::backward_input(Tensor dout, Backend& backend) {
  check_shape(dout, input_.shape(), "relu backward");
  Tensor din = Tensor::uninitialized(dout.shape());
  // relu_backward passes dout where its output is positive: the input is
  // positive exactly there (NaN in neither), so the input serves as well.
  backend.relu_backward(dout.size(), input_.data(), dout.data(), din.data());
  return din;
}

Tensor ReLU::forward_tangent(const Tensor& din, Backend& backend) { return backward_input(din, backend); }

}  // namespace igscope
