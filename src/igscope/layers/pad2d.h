#pragma once
// Constant padding of an image, [N, H, W, C] -> [N, top + H + bottom,
// left + W + right, C], the new pixels set to `value`:
//   {"type": "pad2d", "padding": [top, left, bottom, right], "value": 0}
// (PyTorch: F.pad(x_nchw, (left, right, top, bottom), value=value); ONNX Pad
// in constant mode, and the asymmetric padding of an imported Conv). The
// input gradient is the output gradient cropped; the tangent is the input
// direction padded with zeros (the constant does not move).
#include <array>

#include "igscope/layers/layer.h"

namespace igscope {

class Pad2d final : public Layer {
 public:
  // Throws Error for a negative amount or a non-finite value.
  Pad2d(std::array<int64_t, 4> padding, double value);

  std::string type() const override { return "pad2d"; }
  nlohmann::json to_json() const override;
  Shape output_shape(const Shape& in) const override;

  Tensor forward(Tensor in, Backend& backend, Mode mode) override;
  Tensor backward_input(Tensor dout, Backend& backend) override;
  Tensor forward_tangent(const Tensor& din, Backend& backend) override;

 private:
  Tensor pad(const Tensor& x, float fill) const;
  std::array<int64_t, 4> padding_;  // top, left, bottom, right
  double value_;
  Shape input_shape_;
};

// The layer for {"type": "pad2d", ...}; throws Error on a bad field.
std::unique_ptr<Layer> make_pad2d(const nlohmann::json& spec);

}  // namespace igscope
