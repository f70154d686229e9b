#include "igscope/layers/smelu.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "igscope/error.h"

namespace igscope {

SmeLU::SmeLU(double beta) : beta_(beta) {
  if (!(std::isfinite(beta) && beta > 0.0)) throw Error("smelu: beta must be a positive number, got " + std::to_string(beta));
}

Tensor SmeLU::forward(Tensor in, Backend& /*backend*/, Mode /*mode*/) {
  Tensor out = Tensor::uninitialized(in.shape());
  const float b = static_cast<float>(beta_);
  const float inv4b = static_cast<float>(0.25 / beta_);
  const float* x = in.data();
  float* y = out.data();
  const int64_t n = in.size();
  for (int64_t i = 0; i < n; ++i) {
    const float v = x[i];
    const float s = v + b;
    const float quad = s * s * inv4b;
    y[i] = v >= b ? v : (v <= -b ? 0.0f : quad);
  }
  input_ = std::move(in);
  return out;
}

Tensor SmeLU::backward_input(Tensor dout, Backend& /*backend*/) {
  check_shape(dout, input_.shape(), "smelu backward");
  Tensor din = Tensor::uninitialized(dout.shape());
  const float b = static_cast<float>(beta_);
  const float inv2b = static_cast<float>(0.5 / beta_);
  const float* x = input_.data();
  const float* g = dout.data();
  float* d = din.data();
  const int64_t n = dout.size();
  for (int64_t i = 0; i < n; ++i) {
    const float slope = std::clamp((x[i] + b) * inv2b, 0.0f, 1.0f);
    d[i] = g[i] * slope;
  }
  return din;
}

Tensor SmeLU::forward_tangent(const Tensor& din, Backend& backend) { return backward_input(din, backend); }

}  // namespace igscope
