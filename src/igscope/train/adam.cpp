#include "igscope/train/adam.h"

#include <cmath>
#include <string>

#include "igscope/error.h"

namespace igscope {

Adam::Adam(Model& model, double lr, double beta1, double beta2, double eps, double weight_decay)
    : lr_(lr), beta1_(beta1), beta2_(beta2), eps_(eps), weight_decay_(weight_decay) {
  if (!(weight_decay >= 0.0) || !std::isfinite(weight_decay))
    throw Error("weight decay must be a non-negative number, got " + std::to_string(weight_decay));
  for (auto& np : model.named_parameters()) {
    if (!np.param->trainable) continue;  // buffers (batchnorm's running statistics) are the layer's own
    params_.push_back(np.param);
    // Matrices and kernels only: biases and batchnorm's affine terms are one-dimensional.
    const bool decay = weight_decay > 0.0 && np.param->value.shape().size() >= 2 && np.param->decay;
    decay_.push_back(decay);
    if (decay) decayed_names_.push_back(np.name);
    m_.emplace_back(static_cast<size_t>(np.param->value.size()), 0.0f);
    v_.emplace_back(static_cast<size_t>(np.param->value.size()), 0.0f);
  }
}

void Adam::step() {
  ++t_;
  const double c1 = 1.0 - std::pow(beta1_, static_cast<double>(t_));
  const double c2 = 1.0 - std::pow(beta2_, static_cast<double>(t_));
  const float b1 = static_cast<float>(beta1_), b2 = static_cast<float>(beta2_);
  const float step = static_cast<float>(lr_ / c1);
  const float inv_sqrt_c2 = static_cast<float>(1.0 / std::sqrt(c2));
  const float eps = static_cast<float>(eps_);
  const float shrink = static_cast<float>(1.0 - lr_ * weight_decay_);
  for (size_t p = 0; p < params_.size(); ++p) {
    float* w = params_[p]->value.data();
    const float* g = params_[p]->grad.data();
    float* m = m_[p].data();
    float* v = v_[p].data();
    const int64_t n = params_[p]->value.size();
    if (decay_[p])
      for (int64_t i = 0; i < n; ++i) w[i] *= shrink;
    for (int64_t i = 0; i < n; ++i) {
      m[i] = b1 * m[i] + (1.0f - b1) * g[i];
      v[i] = b2 * v[i] + (1.0f - b2) * g[i] * g[i];
      w[i] -= step * m[i] / (std::sqrt(v[i]) * inv_sqrt_c2 + eps);
    }
  }
}

}  // namespace igscope
