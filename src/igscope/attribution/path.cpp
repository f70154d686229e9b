#include "igscope/attribution/path.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "igscope/attribution/blur.h"
#include "igscope/error.h"

namespace igscope {

StraightPath::StraightPath(const Tensor& baseline, const Tensor& input) : baseline_(baseline), input_(input) {
  if (baseline.shape() != input.shape())
    throw Error("the baseline has shape " + shape_to_string(baseline.shape()) + " but the input has shape " +
                shape_to_string(input.shape()));
  delta_.resize(static_cast<size_t>(input.size()));
  for (int64_t i = 0; i < input.size(); ++i)
    delta_[static_cast<size_t>(i)] = static_cast<double>(input[i]) - static_cast<double>(baseline[i]);
}

void StraightPath::point(double alpha, float* out) const {
  // The ends are the input and the baseline exactly.
  if (alpha == 1.0) {
    std::copy(input_.data(), input_.data() + input_.size(), out);
    return;
  }
  for (int64_t i = 0; i < input_.size(); ++i)
    out[i] = static_cast<float>(static_cast<double>(baseline_[i]) + alpha * delta_[static_cast<size_t>(i)]);
}

void StraightPath::velocity(double /*alpha*/, double* out) const { std::copy(delta_.begin(), delta_.end(), out); }

BlurPath::BlurPath(const Tensor& input, double max_sigma) : input_(input), max_sigma_(max_sigma), radius_(0) {
  if (!(max_sigma > 0.0) || !std::isfinite(max_sigma))
    throw Error("Blur IG needs a finite maximum sigma > 0, got " + std::to_string(max_sigma));
  radius_ = default_blur_radius(max_sigma);
  gaussian_blur(input, 0.0);  // checks that the input is an image
}

void BlurPath::point(double alpha, float* out) const {
  const Tensor b = alpha >= 1.0 ? input_ : gaussian_blur(input_, max_sigma_ * (1.0 - alpha), radius_);
  std::copy(b.data(), b.data() + b.size(), out);
}

void BlurPath::velocity(double alpha, double* out) const {
  // gamma(alpha) = blur(sigma = s (1 - alpha)): dgamma/dalpha = -s dblur/dsigma.
  const Tensor d = gaussian_blur_dsigma(input_, max_sigma_ * (1.0 - alpha), radius_);
  for (int64_t i = 0; i < d.size(); ++i) out[i] = -max_sigma_ * static_cast<double>(d[i]);
}

namespace {

struct Contribution {
  double slope = 0.0;
  double grad_norm = 0.0;
};

// Adds weight * grad * velocity into accum (when not null), and returns the
// slope grad . velocity and |grad|. integrand (when not null) receives
// grad * velocity.
Contribution contribute(const float* grad, const std::vector<double>& velocity, double weight, double* accum,
                        float* integrand) {
  Contribution c;
  double norm2 = 0.0;
  for (size_t i = 0; i < velocity.size(); ++i) {
    const double g = grad[i], gv = g * velocity[i];
    c.slope += gv;
    norm2 += g * g;
    if (accum) accum[i] += weight * gv;
    if (integrand) integrand[i] = static_cast<float>(gv);
  }
  c.grad_norm = std::sqrt(norm2);
  return c;
}

void check_path_shape(TargetFunction& f, const Path& path) {
  const Shape want = sample_batch_shape(f.input_shape());
  if (path.shape() != want)
    throw Error("the path's points have shape " + shape_to_string(path.shape()) + " but the function takes " +
                shape_to_string(want));
}

}  // namespace

std::vector<PathIntegral> integrate_paths(TargetFunction& f, const std::vector<const Path*>& paths,
                                          const QuadratureRule& rule, int64_t batch_size, bool shared_end,
                                          std::vector<double>& accum) {
  if (paths.empty()) throw Error("no path to integrate");
  if (rule.size() == 0) throw Error("the quadrature rule has no nodes");
  for (const Path* p : paths) check_path_shape(f, *p);
  const int64_t numel = shape_numel(paths.front()->shape());
  if (static_cast<int64_t>(accum.size()) != numel) accum.assign(static_cast<size_t>(numel), 0.0);
  const int64_t m = static_cast<int64_t>(rule.size()), count = static_cast<int64_t>(paths.size()) * m;

  std::vector<PathIntegral> out(paths.size());
  for (auto& r : out) r.samples.resize(rule.size());
  std::vector<double> velocity(static_cast<size_t>(numel));
  evaluate_in_chunks(
      f, count, batch_size,
      [&](int64_t i, float* dst) { paths[static_cast<size_t>(i / m)]->point(rule.nodes[static_cast<size_t>(i % m)], dst); },
      [&](int64_t i, double value, const float* grad) {
        const size_t p = static_cast<size_t>(i / m), k = static_cast<size_t>(i % m);
        paths[p]->velocity(rule.nodes[k], velocity.data());
        const Contribution c = contribute(grad, velocity, rule.weights[k], accum.data(), nullptr);
        out[p].samples[k] = {rule.nodes[k], rule.weights[k], value, c.grad_norm, c.slope};
        out[p].evaluations += 1;
      });

  // F at the ends: from the nodes when the rule has them, else one forward pass each.
  const bool has_start = rule.nodes.front() == 0.0, has_end = rule.nodes.back() == 1.0;
  std::vector<std::pair<size_t, double>> extra;  // (path, alpha) still needed
  for (size_t p = 0; p < paths.size(); ++p) {
    if (has_start) out[p].f_start = out[p].samples.front().value;
    else extra.emplace_back(p, 0.0);
    if (has_end) out[p].f_end = out[p].samples.back().value;
    else if (!shared_end || p == 0) extra.emplace_back(p, 1.0);
  }
  evaluate_in_chunks(
      f, static_cast<int64_t>(extra.size()), batch_size,
      [&](int64_t i, float* dst) { paths[extra[static_cast<size_t>(i)].first]->point(extra[static_cast<size_t>(i)].second, dst); },
      [&](int64_t i, double value, const float*) {
        const auto [p, alpha] = extra[static_cast<size_t>(i)];
        (alpha == 0.0 ? out[p].f_start : out[p].f_end) = value;
        out[p].evaluations += 1;
      },
      /*grads=*/false);
  if (shared_end && !has_end)
    for (auto& r : out) r.f_end = out.front().f_end;

  for (auto& r : out) {
    r.sum = 0.0;
    for (const auto& s : r.samples) r.sum += s.weight * s.slope;
    r.gap = r.sum - (r.f_end - r.f_start);
  }
  return out;
}

void check_adaptive_options(const AdaptiveOptions& o) {
  if (!(o.tolerance > 0.0) || !std::isfinite(o.tolerance))
    throw Error("the adaptive tolerance must be a finite number > 0, got " + std::to_string(o.tolerance));
  if (o.points_per_interval < 2 || o.points_per_interval > 64)
    throw Error("the adaptive rule needs 2 to 64 Gauss-Lobatto points per interval, got " +
                std::to_string(o.points_per_interval));
  if (o.initial_intervals < 1 || o.initial_intervals > 4096)
    throw Error("the adaptive mode needs 1 to 4096 initial intervals, got " + std::to_string(o.initial_intervals));
  const int64_t first = o.initial_intervals * (o.points_per_interval - 1) + 1;
  if (o.max_evaluations < first || o.max_evaluations > kMaxQuadratureSteps)
    throw Error("the adaptive step cap must be between " + std::to_string(first) + " (the first pass: " +
                std::to_string(o.initial_intervals) + " intervals of " + std::to_string(o.points_per_interval) +
                " points) and " + std::to_string(kMaxQuadratureSteps) + ", got " + std::to_string(o.max_evaluations));
  if (o.batch_size < 1) throw Error("the batch size must be at least 1, got " + std::to_string(o.batch_size));
  if (o.points_per_round < 1)
    throw Error("the adaptive mode needs at least 1 new point per round, got " + std::to_string(o.points_per_round));
}

PathIntegral integrate_path_adaptive(TargetFunction& f, const Path& path, const AdaptiveOptions& o,
                                     std::vector<double>& accum) {
  check_adaptive_options(o);
  check_path_shape(f, path);
  const int64_t numel = shape_numel(path.shape());
  if (static_cast<int64_t>(accum.size()) != numel) accum.assign(static_cast<size_t>(numel), 0.0);
  const QuadratureRule lob = gauss_lobatto_rule(o.points_per_interval);

  struct Node {
    double value = 0.0, slope = 0.0, grad_norm = 0.0;
    std::vector<float> integrand;  // dF/dx * dgamma/dalpha
  };
  struct Interval {
    double a, b;
    double gap = 0.0;
  };
  std::map<double, Node> nodes;
  std::vector<double> velocity(static_cast<size_t>(numel));

  // Node t of the Lobatto rule on [a, b]; the ends and the midpoint are
  // computed the same way wherever they appear, so shared points match exactly.
  auto node_alpha = [](double a, double b, double t) {
    if (t == 0.0) return a;
    if (t == 1.0) return b;
    if (t == 0.5) return 0.5 * (a + b);
    return a + (b - a) * t;
  };
  auto missing = [&](const Interval& iv, std::vector<double>& list) {
    for (double t : lob.nodes) {
      const double alpha = node_alpha(iv.a, iv.b, t);
      if (!nodes.count(alpha) && std::find(list.begin(), list.end(), alpha) == list.end()) list.push_back(alpha);
    }
  };
  auto evaluate = [&](const std::vector<double>& alphas) {
    evaluate_in_chunks(
        f, static_cast<int64_t>(alphas.size()), o.batch_size,
        [&](int64_t i, float* dst) { path.point(alphas[static_cast<size_t>(i)], dst); },
        [&](int64_t i, double value, const float* grad) {
          const double alpha = alphas[static_cast<size_t>(i)];
          Node n;
          n.value = value;
          n.integrand.resize(static_cast<size_t>(numel));
          path.velocity(alpha, velocity.data());
          const Contribution c = contribute(grad, velocity, 0.0, nullptr, n.integrand.data());
          n.slope = c.slope;
          n.grad_norm = c.grad_norm;
          nodes.emplace(alpha, std::move(n));
        });
  };
  auto local_gap = [&](Interval& iv) {
    double q = 0.0;
    for (size_t k = 0; k < lob.size(); ++k) q += lob.weights[k] * nodes.at(node_alpha(iv.a, iv.b, lob.nodes[k])).slope;
    iv.gap = (iv.b - iv.a) * q - (nodes.at(iv.b).value - nodes.at(iv.a).value);
  };

  std::vector<Interval> intervals;
  for (int64_t k = 0; k < o.initial_intervals; ++k) {
    const double n = static_cast<double>(o.initial_intervals);
    intervals.push_back({static_cast<double>(k) / n, k + 1 == o.initial_intervals ? 1.0 : static_cast<double>(k + 1) / n});
  }
  {
    std::vector<double> first;
    for (const auto& iv : intervals) missing(iv, first);
    evaluate(first);
  }

  PathIntegral r;
  r.f_start = nodes.at(0.0).value;
  r.f_end = nodes.at(1.0).value;
  const double tol = o.relative ? o.tolerance * std::abs(r.f_end - r.f_start) : o.tolerance;
  r.tolerance = tol;
  for (;;) {
    double total = 0.0, total_abs = 0.0;
    for (auto& iv : intervals) {
      local_gap(iv);
      total += iv.gap;
      total_abs += std::abs(iv.gap);
    }
    r.converged = std::abs(total) <= tol;
    if (r.converged) break;
    std::vector<size_t> order(intervals.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(),
              [&](size_t x, size_t y) { return std::abs(intervals[x].gap) > std::abs(intervals[y].gap); });
    std::vector<double> fresh;
    std::vector<size_t> split;
    double remaining = total_abs;
    for (size_t idx : order) {
      const Interval& iv = intervals[idx];
      if (iv.gap == 0.0 || iv.b - iv.a < 1e-9) continue;  // exact already, or as fine as alpha can resolve
      const double mid = node_alpha(iv.a, iv.b, 0.5);
      std::vector<double> trial = fresh;
      missing({iv.a, mid}, trial);
      missing({mid, iv.b}, trial);
      if (static_cast<int64_t>(nodes.size()) + static_cast<int64_t>(trial.size()) > o.max_evaluations) continue;
      if (!split.empty() && static_cast<int64_t>(trial.size()) > o.points_per_round) break;
      fresh = std::move(trial);
      split.push_back(idx);
      remaining -= std::abs(iv.gap);
      if (remaining <= tol) break;  // the intervals left alone cannot hold the whole gap
    }
    if (split.empty()) break;  // the step cap (or alpha's resolution) is reached
    std::sort(split.begin(), split.end());
    std::vector<Interval> next;
    size_t s = 0;
    for (size_t i = 0; i < intervals.size(); ++i) {
      if (s < split.size() && split[s] == i) {
        const double mid = node_alpha(intervals[i].a, intervals[i].b, 0.5);
        next.push_back({intervals[i].a, mid});
        next.push_back({mid, intervals[i].b});
        ++s;
      } else {
        next.push_back(intervals[i]);
      }
    }
    intervals = std::move(next);
    evaluate(fresh);
  }

  // Each point's weight is the sum of the weights it carries in the intervals that use it.
  std::map<double, double> weight;
  for (const auto& iv : intervals)
    for (size_t k = 0; k < lob.size(); ++k) weight[node_alpha(iv.a, iv.b, lob.nodes[k])] += (iv.b - iv.a) * lob.weights[k];
  r.evaluations = static_cast<int64_t>(nodes.size());
  r.sum = 0.0;
  for (const auto& [alpha, n] : nodes) {
    const auto it = weight.find(alpha);
    const double w = it == weight.end() ? 0.0 : it->second;  // points dropped by a split carry no weight
    r.samples.push_back({alpha, w, n.value, n.grad_norm, n.slope});
    r.sum += w * n.slope;
    if (w != 0.0)
      for (int64_t i = 0; i < numel; ++i) accum[static_cast<size_t>(i)] += w * static_cast<double>(n.integrand[static_cast<size_t>(i)]);
  }
  r.gap = r.sum - (r.f_end - r.f_start);
  return r;
}

}  // namespace igscope
