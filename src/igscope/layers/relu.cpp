#include "igscope/layers/relu.h"

namespace igscope {

Tensor ReLU::forward(const Tensor& in, Backend& backend, Mode /*mode*/) {
  Tensor out = Tensor::uninitialized(in.shape());
  backend.relu_forward(in.size(), in.data(), out.data());
  output_ = out;
  return out;
}

Tensor ReLU::backward_input(const Tensor& dout, Backend& backend) {
  check_shape(dout, output_.shape(), "relu backward");
  Tensor din = Tensor::uninitialized(dout.shape());
  backend.relu_backward(dout.size(), output_.data(), dout.data(), din.data());
  return din;
}

Tensor ReLU::forward_tangent(const Tensor& din, Backend& backend) { return backward_input(din, backend); }

}  // namespace igscope
