#include "igscope/attribution/guided_ig.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "igscope/attribution/ig.h"
#include "igscope/attribution/quadrature.h"
#include "igscope/error.h"

namespace igscope {

void check_guided_ig_options(const GuidedIGOptions& o) {
  if (o.steps < 1 || o.steps > kMaxQuadratureSteps)
    throw Error("Guided IG needs between 1 and " + std::to_string(kMaxQuadratureSteps) + " steps, got " +
                std::to_string(o.steps));
  if (!(o.fraction > 0.0 && o.fraction <= 1.0))
    throw Error("Guided IG's fraction must be in (0, 1], got " + std::to_string(o.fraction));
  if (!(o.max_dist >= 0.0 && o.max_dist <= 1.0))
    throw Error("Guided IG's max_dist must be in [0, 1], got " + std::to_string(o.max_dist));
}

namespace {

// One guided path from b to x; adds its attributions to accum.
PathIntegral guided_path(TargetFunction& f, const Tensor& x, const Tensor& b, const GuidedIGOptions& o,
                         std::vector<double>& accum) {
  const size_t n = static_cast<size_t>(x.size());
  std::vector<double> cur(n), target(n), base(n), grad(n), key(n), before(n);
  double l1_total = 0.0;
  for (size_t i = 0; i < n; ++i) {
    target[i] = x[static_cast<int64_t>(i)];
    base[i] = cur[i] = b[static_cast<int64_t>(i)];
    l1_total += std::abs(target[i] - base[i]);
  }
  const double eps = 1e-9 * std::max(l1_total, 1e-30);
  const double inf = std::numeric_limits<double>::infinity();
  Tensor point(x.shape());
  std::vector<double> values;
  Tensor g;
  PathIntegral r;
  const double steps = static_cast<double>(o.steps);
  for (int64_t step = 0; step < o.steps; ++step) {
    for (size_t i = 0; i < n; ++i) point[static_cast<int64_t>(i)] = static_cast<float>(cur[i]);
    f.evaluate(point, values, g);
    r.evaluations += 1;
    double norm2 = 0.0;
    for (size_t i = 0; i < n; ++i) {
      grad[i] = g[static_cast<int64_t>(i)];
      norm2 += grad[i] * grad[i];
    }
    if (step == 0) r.f_start = values[0];
    before = cur;
    const double alpha = static_cast<double>(step + 1) / steps;
    const double lo = std::max(alpha - o.max_dist, 0.0), hi = std::min(alpha + o.max_dist, 1.0);
    const double l1_target = l1_total * (1.0 - alpha);
    auto along = [&](size_t i, double a) { return base[i] + a * (target[i] - base[i]); };
    // Each inner iteration either finishes the step or moves every selected
    // feature to its furthest allowed value, so there are at most n + 1.
    for (size_t iter = 0; iter <= n + 1; ++iter) {
      double l1 = 0.0;
      for (size_t i = 0; i < n; ++i) {
        const double span = target[i] - base[i];
        if (span != 0.0 && (cur[i] - base[i]) / span < lo) cur[i] = along(i, lo);  // no feature lags behind
        l1 += std::abs(cur[i] - target[i]);
      }
      if (std::abs(l1 - l1_target) <= eps || l1 <= l1_target) break;
      // The features that can still move, the least sensitive first.
      size_t movable = 0;
      for (size_t i = 0; i < n; ++i) {
        const bool can = cur[i] != along(i, hi);
        key[i] = can ? std::abs(grad[i]) : inf;
        movable += can;
      }
      if (movable == 0) break;
      // The quantile `fraction` of |gradient| over all features, unmovable
      // ones counting as infinite ('lower' interpolation); when it lands on
      // an unmovable one, every movable feature is selected.
      std::vector<double> sorted(key);
      const size_t k = static_cast<size_t>(std::floor(o.fraction * static_cast<double>(n - 1)));
      std::nth_element(sorted.begin(), sorted.begin() + static_cast<std::ptrdiff_t>(k), sorted.end());
      double threshold = sorted[k];
      if (threshold == inf) {
        threshold = 0.0;
        for (size_t i = 0; i < n; ++i)
          if (key[i] != inf) threshold = std::max(threshold, key[i]);
      }
      double l1_selected = 0.0;
      for (size_t i = 0; i < n; ++i)
        if (key[i] <= threshold) l1_selected += std::abs(cur[i] - along(i, hi));
      const double gamma = l1_selected > 0.0 ? (l1 - l1_target) / l1_selected : inf;
      for (size_t i = 0; i < n; ++i) {
        if (key[i] > threshold) continue;
        const double dest = along(i, hi);
        cur[i] = gamma >= 1.0 ? dest : cur[i] + gamma * (dest - cur[i]);
      }
      if (gamma < 1.0) break;
    }
    if (step + 1 == o.steps) cur = target;  // the path ends at the input exactly
    double slope = 0.0;
    for (size_t i = 0; i < n; ++i) {
      const double move = grad[i] * (cur[i] - before[i]);
      accum[i] += move;
      slope += move;
    }
    // Path data: alpha is the share of the L1 distance covered at this point.
    double l1_before = 0.0;
    for (size_t i = 0; i < n; ++i) l1_before += std::abs(before[i] - target[i]);
    r.samples.push_back({l1_total > 0 ? 1.0 - l1_before / l1_total : 1.0, 1.0 / steps, values[0], std::sqrt(norm2),
                         slope * steps});
    r.sum += slope;
  }
  for (size_t i = 0; i < n; ++i) point[static_cast<int64_t>(i)] = static_cast<float>(target[i]);
  f.evaluate_values(point, values);
  r.evaluations += 1;
  r.f_end = values[0];
  r.gap = r.sum - (r.f_end - r.f_start);
  return r;
}

}  // namespace

Attribution guided_integrated_gradients(TargetFunction& f, const Tensor& input, const std::vector<Tensor>& baselines,
                                        const GuidedIGOptions& o) {
  check_guided_ig_options(o);
  if (baselines.empty()) throw Error("Guided IG needs at least one baseline");
  const Tensor x = as_sample(f, input, "the input");
  std::vector<double> accum(static_cast<size_t>(x.size()), 0.0);
  Attribution a;
  a.method = "guidedig";
  double fb = 0.0;
  for (size_t k = 0; k < baselines.size(); ++k) {
    const Tensor b = as_sample(f, baselines[k], baselines.size() == 1 ? "the baseline" : "baseline " + std::to_string(k));
    a.paths.push_back(guided_path(f, x, b, o, accum));
    fb += a.paths.back().f_start;
    a.evaluations += a.paths.back().evaluations;
  }
  const double scale = 1.0 / static_cast<double>(baselines.size());
  a.values = Tensor(x.shape());
  for (int64_t i = 0; i < x.size(); ++i) {
    a.values[i] = static_cast<float>(accum[static_cast<size_t>(i)] * scale);
    a.sum += accum[static_cast<size_t>(i)] * scale;
  }
  a.f_input = a.paths.front().f_end;
  a.f_baseline = fb * scale;
  a.gap = a.sum - (a.f_input - a.f_baseline);
  return a;
}

}  // namespace igscope
