#pragma once
#include "igscope/layers/layer.h"

namespace igscope {

// max(x, 0), elementwise; the gradient at exactly 0 is 0 (as in PyTorch).
class ReLU final : public Layer {
 public:
  std::string type() const override { return "relu"; }
  nlohmann::json to_json() const override { return {{"type", type()}}; }
  Shape output_shape(const Shape& in) const override { return in; }

  Tensor forward(Tensor in, Backend& backend, Mode mode) override;
  Tensor backward_input(Tensor dout, Backend& backend) override;
  Tensor forward_tangent(const Tensor& din, Backend& backend) override;

 private:
  Tensor input_;  // kept by forward (moved, not copied): the mask is input > 0
};

}  // namespace igscope
