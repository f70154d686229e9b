#pragma once
// Central finite differences for a layer's hand-written backward pass.
// The scalar checked is L = sum(out * R) for a fixed random R, so dL/dout = R
// and backward_input(R) / backward_params(R) must equal the numerical
// derivatives of L.
#include <algorithm>
#include <cmath>
#include <functional>

#include "igscope/backend/backend.h"
#include "igscope/layers/layer.h"
#include "igscope/random.h"

namespace igscope::testing {

inline Tensor random_tensor(const Shape& shape, Rng& rng, double lo = -1.0, double hi = 1.0) {
  Tensor t(shape);
  for (int64_t i = 0; i < t.size(); ++i) t[i] = static_cast<float>(rng.uniform(lo, hi));
  return t;
}

struct GradientComparison {
  double max_abs_error = 0.0;  // max |analytic - numerical|
  double max_abs_grad = 0.0;   // max |numerical|
  int64_t checked = 0;
  // The error relative to the largest gradient magnitude.
  double relative_error() const { return max_abs_error / std::max(max_abs_grad, 1e-12); }
};

inline void compare(GradientComparison& c, double analytic, double numerical) {
  c.max_abs_error = std::max(c.max_abs_error, std::abs(analytic - numerical));
  c.max_abs_grad = std::max(c.max_abs_grad, std::abs(numerical));
  ++c.checked;
}

// Called before every forward pass (for example to reseed dropout, so that
// every pass draws the same mask).
using BeforeForward = std::function<void()>;

inline double weighted_sum(const Tensor& out, const Tensor& r) {
  double s = 0.0;
  for (int64_t i = 0; i < out.size(); ++i) s += static_cast<double>(out[i]) * r[i];
  return s;
}

inline GradientComparison check_input_gradient(Layer& layer, const Tensor& x, Backend& backend, Mode mode,
                                               double eps, uint64_t seed = 1,
                                               const BeforeForward& before = [] {}) {
  Rng rng(seed);
  before();
  const Tensor out = layer.forward(x, backend, mode);
  const Tensor r = random_tensor(out.shape(), rng);
  const Tensor analytic = layer.backward_input(r, backend);
  GradientComparison c;
  Tensor xp = x;
  for (int64_t i = 0; i < x.size(); ++i) {
    const float hi = static_cast<float>(x[i] + eps), lo = static_cast<float>(x[i] - eps);
    xp[i] = hi;
    before();
    const double up = weighted_sum(layer.forward(xp, backend, mode), r);
    xp[i] = lo;
    before();
    const double down = weighted_sum(layer.forward(xp, backend, mode), r);
    xp[i] = x[i];
    compare(c, analytic[i], (up - down) / (static_cast<double>(hi) - lo));
  }
  return c;
}

inline GradientComparison check_param_gradient(Layer& layer, const Tensor& x, Backend& backend, Mode mode,
                                               double eps, uint64_t seed = 1,
                                               const BeforeForward& before = [] {}) {
  Rng rng(seed);
  for (auto& p : layer.parameters()) p.grad.fill(0.0f);
  before();
  const Tensor out = layer.forward(x, backend, mode);
  const Tensor r = random_tensor(out.shape(), rng);
  layer.backward_params(r, backend);
  GradientComparison c;
  for (auto& p : layer.parameters()) {
    for (int64_t i = 0; i < p.value.size(); ++i) {
      const float original = p.value[i];
      const float hi = static_cast<float>(original + eps), lo = static_cast<float>(original - eps);
      p.value[i] = hi;
      before();
      const double up = weighted_sum(layer.forward(x, backend, mode), r);
      p.value[i] = lo;
      before();
      const double down = weighted_sum(layer.forward(x, backend, mode), r);
      p.value[i] = original;
      compare(c, p.grad[i], (up - down) / (static_cast<double>(hi) - lo));
    }
  }
  return c;
}

}  // namespace igscope::testing
