#include "igscope/layers/affine.h"

#include <cmath>
#include <memory>
#include <utility>

#include "igscope/error.h"

namespace igscope {

namespace {

void check_list(const std::vector<double>& v, const char* name) {
  if (v.empty()) throw Error(std::string("affine: '") + name + "' needs at least one number");
  for (double x : v)
    if (!std::isfinite(x)) throw Error(std::string("affine: '") + name + "' must hold finite numbers");
}

std::vector<double> read_list(const nlohmann::json& spec, const char* key) {
  if (!spec.contains(key)) throw Error(std::string("affine: missing '") + key + "'");
  const nlohmann::json& v = spec[key];
  std::vector<double> out;
  if (v.is_number()) {
    out.push_back(v.get<double>());
    return out;
  }
  if (!v.is_array()) throw Error(std::string("affine: '") + key + "' must be a number or a list of numbers");
  for (const auto& x : v) {
    if (!x.is_number()) throw Error(std::string("affine: '") + key + "' must be a list of numbers, got " + x.dump());
    out.push_back(x.get<double>());
  }
  return out;
}

}  // namespace

Affine::Affine(std::vector<double> scale, std::vector<double> shift) : scale_(std::move(scale)), shift_(std::move(shift)) {
  check_list(scale_, "scale");
  check_list(shift_, "shift");
  if (scale_.size() > 1 && shift_.size() > 1 && scale_.size() != shift_.size())
    throw Error("affine: 'scale' has " + std::to_string(scale_.size()) + " entries and 'shift' " +
                std::to_string(shift_.size()) + "; each needs 1 or one per channel");
}

nlohmann::json Affine::to_json() const { return {{"type", type()}, {"scale", scale_}, {"shift", shift_}}; }

Shape Affine::output_shape(const Shape& in) const {
  if (in.size() < 2) throw Error("affine: expected input [N, ..., C], got " + shape_to_string(in));
  const int64_t c = in.back();
  for (const auto* v : {&scale_, &shift_})
    if (v->size() > 1 && static_cast<int64_t>(v->size()) != c)
      throw Error("affine: " + std::to_string(v->size()) + " constants for " + std::to_string(c) + " channels");
  return in;
}

int64_t Affine::multiply_adds(const Shape& in) const {
  int64_t n = 1;
  for (size_t i = 1; i < in.size(); ++i) n *= in[i];
  return n;
}

Tensor Affine::apply(const Tensor& x, bool with_shift) const {
  output_shape(x.shape());
  const int64_t c = x.shape().back(), rows = x.size() / c;
  Tensor y = Tensor::uninitialized(x.shape());
  const float* in = x.data();
  float* out = y.data();
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t k = 0; k < c; ++k) {
      const double s = scale_[scale_.size() > 1 ? static_cast<size_t>(k) : 0];
      const double b = with_shift ? shift_[shift_.size() > 1 ? static_cast<size_t>(k) : 0] : 0.0;
      out[r * c + k] = static_cast<float>(s * in[r * c + k] + b);
    }
  return y;
}

Tensor Affine::forward(Tensor in, Backend& /*backend*/, Mode /*mode*/) {
  input_shape_ = in.shape();
  return apply(in, true);
}

Tensor Affine::backward_input(Tensor dout, Backend& /*backend*/) {
  check_shape(dout, input_shape_, "affine backward");
  return apply(dout, false);
}

Tensor Affine::forward_tangent(const Tensor& din, Backend& /*backend*/) {
  check_shape(din, input_shape_, "affine tangent");
  return apply(din, false);
}

std::unique_ptr<Layer> make_affine(const nlohmann::json& spec) {
  for (const auto& [key, value] : spec.items())
    if (key != "type" && key != "scale" && key != "shift")
      throw Error("affine takes only 'scale' and 'shift', got '" + key + "'");
  return std::make_unique<Affine>(read_list(spec, "scale"), read_list(spec, "shift"));
}

}  // namespace igscope
