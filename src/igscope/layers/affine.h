#pragma once
// A fixed per-channel affine map, y[..., c] = scale[c] * x[..., c] + shift[c]
// over the last axis (channels of [N, H, W, C], features of [N, F]), with
// constants written in the architecture:
//   {"type": "affine", "scale": [s0, s1, ...], "shift": [b0, b1, ...]}
// Each list has one entry (the same for every channel) or one per channel.
// It has no trainable parameters. It puts a model's preprocessing inside the
// model (pixels in [0, 1] to what the network was trained on: a 0..255 range,
// a mean and a standard deviation), so attributions are in the pixel space
// the user sees, and it carries an imported graph's multiplications and
// additions by constants. Its Jacobian is diagonal: the tangent and the input
// gradient are both scale * v; PyTorch's equivalent is x * scale + shift with
// the constants broadcast along the last axis.
#include <vector>

#include "igscope/layers/layer.h"

namespace igscope {

class Affine final : public Layer {
 public:
  // Throws Error unless both lists are non-empty, finite, and of length 1 or
  // of one common length.
  Affine(std::vector<double> scale, std::vector<double> shift);

  std::string type() const override { return "affine"; }
  nlohmann::json to_json() const override;
  // Throws Error when a list of several entries does not match the last axis.
  Shape output_shape(const Shape& in) const override;
  int64_t multiply_adds(const Shape& in) const override;

  Tensor forward(Tensor in, Backend& backend, Mode mode) override;
  Tensor backward_input(Tensor dout, Backend& backend) override;
  Tensor forward_tangent(const Tensor& din, Backend& backend) override;

  const std::vector<double>& scale() const { return scale_; }
  const std::vector<double>& shift() const { return shift_; }

 private:
  // y = scale * x (+ shift when with_shift), in double per element.
  Tensor apply(const Tensor& x, bool with_shift) const;
  std::vector<double> scale_, shift_;
  Shape input_shape_;
};

// The layer for {"type": "affine", ...}; throws Error on a missing or bad list
// or an unknown key.
std::unique_ptr<Layer> make_affine(const nlohmann::json& spec);

}  // namespace igscope
