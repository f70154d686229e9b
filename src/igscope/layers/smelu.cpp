#include "igscope/layers/smelu.h"

#include <cmath>
#include <utility>

#include "igscope/error.h"

namespace igscope {

SmeLU::SmeLU(double beta) : beta_(beta) {
  if (!(std::isfinite(beta) && beta > 0.0)) throw Error("smelu: beta must be a positive number, got " + std::to_string(beta));
}

Tensor SmeLU::forward(Tensor in, Backend& backend, Mode /*mode*/) {
  Tensor out = Tensor::uninitialized(in.shape());
  backend.smelu_forward(in.size(), beta_, in.data(), out.data());
  input_ = std::move(in);
  return out;
}

Tensor SmeLU::backward_input(Tensor dout, Backend& backend) {
  check_shape(dout, input_.shape(), "smelu backward");
  Tensor din = Tensor::uninitialized(dout.shape());
  backend.smelu_backward(dout.size(), beta_, input_.data(), dout.data(), din.data());
  return din;
}

Tensor SmeLU::forward_tangent(const Tensor& din, Backend& backend) { return backward_input(din, backend); }

}  // namespace igscope
