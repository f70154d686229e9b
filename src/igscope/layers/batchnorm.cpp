#include "igscope/layers/batchnorm.h"

#include <cmath>

#include "igscope/error.h"

namespace igscope {

BatchNorm::BatchNorm(int64_t num_features, double eps, double momentum)
    : c_(num_features), eps_(eps), momentum_(momentum) {
  if (c_ < 1) throw Error("batchnorm: the number of features must be >= 1");
  if (!(eps_ > 0.0) || !std::isfinite(eps_)) throw Error("batchnorm: 'eps' must be a positive number");
  if (!(momentum_ >= 0.0 && momentum_ <= 1.0)) throw Error("batchnorm: 'momentum' must be in [0, 1]");
  params_.push_back({"weight", Tensor({c_}), Tensor({c_})});
  params_.push_back({"bias", Tensor({c_}), Tensor({c_})});
  params_.push_back({"running_mean", Tensor({c_}), Tensor({c_})});
  params_.push_back({"running_var", Tensor({c_}), Tensor({c_})});
  params_.push_back({"num_batches_tracked", Tensor(Shape{}), Tensor(Shape{})});
  for (size_t i = 2; i < params_.size(); ++i) params_[i].trainable = false;
  params_[4].int64 = true;
  reset_parameters();
}

void BatchNorm::reset_parameters() {
  params_[0].value.fill(1.0f);
  params_[1].value.fill(0.0f);
  params_[2].value.fill(0.0f);
  params_[3].value.fill(1.0f);
  params_[4].value.fill(0.0f);
}

nlohmann::json BatchNorm::to_json() const {
  return {{"type", type()}, {"eps", eps_}, {"momentum", momentum_}};
}

Shape BatchNorm::output_shape(const Shape& in) const {
  if ((in.size() != 4 && in.size() != 2) || in.back() != c_)
    throw Error("batchnorm: expected input [N, H, W, " + std::to_string(c_) + "] or [N, " + std::to_string(c_) +
                "], got " + shape_to_string(in));
  return in;
}

int64_t BatchNorm::multiply_adds(const Shape& in) const {
  output_shape(in);
  return shape_numel(in) / in[0];  // one multiply-add per value (the affine map)
}

void BatchNorm::check_input(const Tensor& t, const char* what) const {
  if (shape_.empty()) throw Error(std::string("batchnorm: ") + what + " needs a forward pass first");
  check_shape(t, shape_, std::string("batchnorm ") + what);
}

Tensor BatchNorm::forward(Tensor in, Backend& backend, Mode mode) {
  output_shape(in.shape());
  shape_ = in.shape();
  mode_ = mode;
  const int64_t m = in.size() / c_;  // values per channel
  const size_t c = static_cast<size_t>(c_);
  const float* x = in.data();
  const float* w = params_[0].value.data();
  const float* b = params_[1].value.data();
  Tensor out = Tensor::uninitialized(shape_);
  float* y = out.data();
  inv_std_.assign(c, 0.0);
  if (mode == Mode::Train) {
    if (m < 2)
      throw Error("batchnorm: training needs more than one value per channel (got input " +
                  shape_to_string(shape_) + ")");
    std::vector<double> mean(c, 0.0), var(c, 0.0);
    for (int64_t i = 0; i < m; ++i)
      for (size_t k = 0; k < c; ++k) mean[k] += x[i * c_ + static_cast<int64_t>(k)];
    for (size_t k = 0; k < c; ++k) mean[k] /= static_cast<double>(m);
    for (int64_t i = 0; i < m; ++i)
      for (size_t k = 0; k < c; ++k) {
        const double d = x[i * c_ + static_cast<int64_t>(k)] - mean[k];
        var[k] += d * d;
      }
    for (size_t k = 0; k < c; ++k) {
      var[k] /= static_cast<double>(m);  // biased: the normalisation's variance
      inv_std_[k] = 1.0 / std::sqrt(var[k] + eps_);
    }
    xhat_ = Tensor::uninitialized(shape_);
    float* xh = xhat_.data();
    for (int64_t i = 0; i < m; ++i)
      for (size_t k = 0; k < c; ++k) {
        const int64_t j = i * c_ + static_cast<int64_t>(k);
        const double xn = (x[j] - mean[k]) * inv_std_[k];
        xh[j] = static_cast<float>(xn);
        y[j] = static_cast<float>(w[k] * xn + b[k]);
      }
    float* rm = params_[2].value.data();
    float* rv = params_[3].value.data();
    const double unbiased = static_cast<double>(m) / static_cast<double>(m - 1);
    for (size_t k = 0; k < c; ++k) {
      rm[k] = static_cast<float>((1.0 - momentum_) * rm[k] + momentum_ * mean[k]);
      rv[k] = static_cast<float>((1.0 - momentum_) * rv[k] + momentum_ * var[k] * unbiased);
    }
    params_[4].value[0] += 1.0f;
  } else {
    xhat_ = Tensor();
    const float* rm = params_[2].value.data();
    const float* rv = params_[3].value.data();
    std::vector<float> scale(c), shift(c);
    for (size_t k = 0; k < c; ++k) {
      inv_std_[k] = 1.0 / std::sqrt(static_cast<double>(rv[k]) + eps_);
      scale[k] = static_cast<float>(w[k] * inv_std_[k]);
      shift[k] = static_cast<float>(b[k] - w[k] * inv_std_[k] * rm[k]);
    }
    backend.channel_affine(in.size(), c_, x, scale.data(), shift.data(), y);
  }
  return out;
}

namespace {
// sum over the M values of each channel of a (and of a * b, when b is given).
void channel_sums(const float* a, const float* b, int64_t m, int64_t c, std::vector<double>& sa,
                  std::vector<double>& sab) {
  sa.assign(static_cast<size_t>(c), 0.0);
  sab.assign(static_cast<size_t>(c), 0.0);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t k = 0; k < c; ++k) {
      const double v = a[i * c + k];
      sa[static_cast<size_t>(k)] += v;
      if (b) sab[static_cast<size_t>(k)] += v * b[i * c + k];
    }
}
}  // namespace

// Train: the Jacobian of y = w * xhat + b through xhat = (x - mean) * inv_std
// is symmetric, so backward_input and forward_tangent are one formula:
//   out = w inv_std (v - mean(v) - xhat mean(v xhat)).
// Eval: out = v * w * inv_std.
Tensor BatchNorm::backward_input(Tensor dout, Backend& backend) { return forward_tangent(dout, backend); }

Tensor BatchNorm::forward_tangent(const Tensor& v, Backend& backend) {
  check_input(v, "backward/tangent");
  const int64_t m = v.size() / c_;
  const float* g = v.data();
  const float* w = params_[0].value.data();
  Tensor out = Tensor::uninitialized(shape_);
  float* o = out.data();
  if (mode_ == Mode::Train) {
    const float* xh = xhat_.data();
    std::vector<double> sg, sgx;
    channel_sums(g, xh, m, c_, sg, sgx);
    const double inv_m = 1.0 / static_cast<double>(m);
    for (int64_t i = 0; i < m; ++i)
      for (int64_t k = 0; k < c_; ++k) {
        const size_t ks = static_cast<size_t>(k);
        const int64_t j = i * c_ + k;
        o[j] = static_cast<float>(w[k] * inv_std_[ks] * (g[j] - sg[ks] * inv_m - xh[j] * sgx[ks] * inv_m));
      }
  } else {
    std::vector<float> scale(static_cast<size_t>(c_));
    for (int64_t k = 0; k < c_; ++k)
      scale[static_cast<size_t>(k)] = static_cast<float>(w[k] * inv_std_[static_cast<size_t>(k)]);
    backend.channel_affine(v.size(), c_, g, scale.data(), nullptr, o);
  }
  return out;
}

void BatchNorm::backward_params(const Tensor& dout, Backend& /*backend*/) {
  if (mode_ != Mode::Train || xhat_.shape() != shape_)
    throw Error("batchnorm: backward_params needs a forward pass in training mode first");
  check_input(dout, "backward");
  std::vector<double> sg, sgx;
  channel_sums(dout.data(), xhat_.data(), dout.size() / c_, c_, sg, sgx);
  float* dw = params_[0].grad.data();
  float* db = params_[1].grad.data();
  for (int64_t k = 0; k < c_; ++k) {
    dw[k] += static_cast<float>(sgx[static_cast<size_t>(k)]);
    db[k] += static_cast<float>(sg[static_cast<size_t>(k)]);
  }
}

}  // namespace igscope
