#include "igscope/layers/pad2d.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>

#include "igscope/error.h"

namespace igscope {

Pad2d::Pad2d(std::array<int64_t, 4> padding, double value) : padding_(padding), value_(value) {
  for (int64_t p : padding_)
    if (p < 0 || p > 4096) throw Error("pad2d: each padding must be in 0..4096, got " + std::to_string(p));
  if (!std::isfinite(value_)) throw Error("pad2d: 'value' must be finite");
}

nlohmann::json Pad2d::to_json() const {
  return {{"type", type()}, {"padding", {padding_[0], padding_[1], padding_[2], padding_[3]}}, {"value", value_}};
}

Shape Pad2d::output_shape(const Shape& in) const {
  if (in.size() != 4) throw Error("pad2d: expected input [N, H, W, C], got " + shape_to_string(in));
  return {in[0], in[1] + padding_[0] + padding_[2], in[2] + padding_[1] + padding_[3], in[3]};
}

Tensor Pad2d::pad(const Tensor& x, float fill) const {
  const Shape out_shape = output_shape(x.shape());
  Tensor y = Tensor::uninitialized(out_shape);
  std::fill(y.data(), y.data() + y.size(), fill);
  const int64_t n = x.dim(0), h = x.dim(1), w = x.dim(2), c = x.dim(3), ow = out_shape[2], oh = out_shape[1];
  for (int64_t b = 0; b < n; ++b)
    for (int64_t i = 0; i < h; ++i)
      std::memcpy(y.data() + ((b * oh + i + padding_[0]) * ow + padding_[1]) * c, x.data() + (b * h + i) * w * c,
                  static_cast<size_t>(w * c) * sizeof(float));
  return y;
}

Tensor Pad2d::forward(Tensor in, Backend& /*backend*/, Mode /*mode*/) {
  input_shape_ = in.shape();
  return pad(in, static_cast<float>(value_));
}

Tensor Pad2d::backward_input(Tensor dout, Backend& /*backend*/) {
  check_shape(dout, output_shape(input_shape_), "pad2d backward");
  Tensor din = Tensor::uninitialized(input_shape_);
  const int64_t n = input_shape_[0], h = input_shape_[1], w = input_shape_[2], c = input_shape_[3];
  const int64_t oh = dout.dim(1), ow = dout.dim(2);
  for (int64_t b = 0; b < n; ++b)
    for (int64_t i = 0; i < h; ++i)
      std::memcpy(din.data() + (b * h + i) * w * c, dout.data() + ((b * oh + i + padding_[0]) * ow + padding_[1]) * c,
                  static_cast<size_t>(w * c) * sizeof(float));
  return din;
}

Tensor Pad2d::forward_tangent(const Tensor& din, Backend& /*backend*/) {
  check_shape(din, input_shape_, "pad2d tangent");
  return pad(din, 0.0f);
}

std::unique_ptr<Layer> make_pad2d(const nlohmann::json& spec) {
  for (const auto& [key, value] : spec.items())
    if (key != "type" && key != "padding" && key != "value")
      throw Error("pad2d takes only 'padding' and 'value', got '" + key + "'");
  if (!spec.contains("padding") || !spec["padding"].is_array() || spec["padding"].size() != 4)
    throw Error("pad2d: 'padding' must be [top, left, bottom, right]");
  std::array<int64_t, 4> p{};
  for (size_t i = 0; i < 4; ++i) {
    if (!spec["padding"][i].is_number_integer()) throw Error("pad2d: 'padding' must hold integers");
    p[i] = spec["padding"][i].get<int64_t>();
  }
  const nlohmann::json v = spec.value("value", nlohmann::json(0.0));
  if (!v.is_number()) throw Error("pad2d: 'value' must be a number");
  return std::make_unique<Pad2d>(p, v.get<double>());
}

}  // namespace igscope
