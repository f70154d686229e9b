#include "igscope/layers/layernorm.h"

#include <cmath>

#include "igscope/error.h"

namespace igscope {

LayerNorm::LayerNorm(int64_t features, double eps) : d_(features), eps_(eps) {
  if (d_ < 1) throw Error("layernorm: the number of features must be >= 1");
  if (!(eps_ > 0.0) || !std::isfinite(eps_)) throw Error("layernorm: 'eps' must be a positive number");
  params_.push_back({"weight", Tensor({d_}, 1.0f), Tensor({d_})});
  params_.push_back({"bias", Tensor({d_}), Tensor({d_})});
}

nlohmann::json LayerNorm::to_json() const { return {{"type", type()}, {"eps", eps_}}; }

Shape LayerNorm::output_shape(const Shape& in) const {
  if ((in.size() != 2 && in.size() != 3) || in.back() != d_)
    throw Error("layernorm: expected input [N, " + std::to_string(d_) + "] or tokens [N, T, " + std::to_string(d_) +
                "], got " + shape_to_string(in));
  return in;
}

int64_t LayerNorm::multiply_adds(const Shape& in) const {
  output_shape(in);
  return 3 * (shape_numel(in) / in[0]);  // the statistics and the affine map
}

bool LayerNorm::initialise(Rng& /*rng*/) {
  params_[0].value.fill(1.0f);
  params_[1].value.fill(0.0f);
  return true;
}

void LayerNorm::check_pass(const Tensor& t, const char* what) const {
  if (shape_.empty()) throw Error(std::string("layernorm: ") + what + " needs a forward pass first");
  check_shape(t, shape_, std::string("layernorm ") + what);
}

Tensor LayerNorm::forward(Tensor in, Backend& /*backend*/, Mode /*mode*/) {
  output_shape(in.shape());
  shape_ = in.shape();
  const int64_t rows = in.size() / d_;
  const float* x = in.data();
  const float* w = params_[0].value.data();
  const float* b = params_[1].value.data();
  xhat_ = Tensor::uninitialized(shape_);
  inv_std_.resize(static_cast<size_t>(rows));
  Tensor out = Tensor::uninitialized(shape_);
  float* xh = xhat_.data();
  float* y = out.data();
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * d_;
    double mean = 0.0, var = 0.0;
    for (int64_t k = 0; k < d_; ++k) mean += xr[k];
    mean /= static_cast<double>(d_);
    for (int64_t k = 0; k < d_; ++k) var += (xr[k] - mean) * (xr[k] - mean);
    var /= static_cast<double>(d_);
    const double inv = 1.0 / std::sqrt(var + eps_);
    inv_std_[static_cast<size_t>(r)] = static_cast<float>(inv);
    for (int64_t k = 0; k < d_; ++k) {
      const double h = (xr[k] - mean) * inv;
      xh[r * d_ + k] = static_cast<float>(h);
      y[r * d_ + k] = static_cast<float>(w[k] * h + b[k]);
    }
  }
  return out;
}

Tensor LayerNorm::project(const Tensor& v, const float* scale) const {
  const int64_t rows = v.size() / d_;
  Tensor out = Tensor::uninitialized(shape_);
  const float* xh = xhat_.data();
  float* o = out.data();
  for (int64_t r = 0; r < rows; ++r) {
    const float* vr = v.data() + r * d_;
    const float* hr = xh + r * d_;
    double mean = 0.0, mean_h = 0.0;
    for (int64_t k = 0; k < d_; ++k) {
      mean += vr[k];
      mean_h += static_cast<double>(vr[k]) * hr[k];
    }
    mean /= static_cast<double>(d_);
    mean_h /= static_cast<double>(d_);
    const double inv = inv_std_[static_cast<size_t>(r)];
    for (int64_t k = 0; k < d_; ++k)
      o[r * d_ + k] = static_cast<float>((scale ? scale[k] : 1.0f) * (vr[k] - mean - hr[k] * mean_h) * inv);
  }
  return out;
}

Tensor LayerNorm::backward_input(Tensor dout, Backend& /*backend*/) {
  check_pass(dout, "backward");
  const float* w = params_[0].value.data();
  float* g = dout.data();
  for (int64_t i = 0; i < dout.size(); ++i) g[i] *= w[i % d_];
  return project(dout, nullptr);
}

Tensor LayerNorm::forward_tangent(const Tensor& din, Backend& /*backend*/) {
  check_pass(din, "tangent");
  return project(din, params_[0].value.data());
}

void LayerNorm::backward_params(const Tensor& dout, Backend& /*backend*/) {
  check_pass(dout, "backward");
  float* dw = params_[0].grad.data();
  float* db = params_[1].grad.data();
  const float* xh = xhat_.data();
  const float* g = dout.data();
  const int64_t rows = dout.size() / d_;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t k = 0; k < d_; ++k) {
      dw[k] += g[r * d_ + k] * xh[r * d_ + k];
      db[k] += g[r * d_ + k];
    }
}

}  // namespace igscope
