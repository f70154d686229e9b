#pragma once
#include "igscope/layers/layer.h"

namespace igscope {

// [N, H, W, C] -> [N, C*H*W] in C, H, W order: the order in which PyTorch
// flattens NCHW, so a following dense layer's weights match PyTorch's.
// Flat input [N, F] passes through unchanged.
class Flatten final : public Layer {
 public:
  std::string type() const override { return "flatten"; }
  nlohmann::json to_json() const override { return {{"type", type()}}; }
  Shape output_shape(const Shape& in) const override;

  Tensor forward(Tensor in, Backend& backend, Mode mode) override;
  Tensor backward_input(Tensor dout, Backend& backend) override;
  Tensor forward_tangent(const Tensor& din, Backend& backend) override;

 private:
  Shape input_shape_;
};

}  // namespace igscope
