#include "igscope/attribution/metrics.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "igscope/error.h"
#include "igscope/random.h"

namespace igscope {

namespace {

void check_same_size(const Tensor& a, const Tensor& b, const char* what) {
  if (a.size() != b.size())
    throw Error(std::string(what) + ": " + shape_to_string(b.shape()) + " does not match the input " +
                shape_to_string(a.shape()));
}

double trapezoid(const std::vector<double>& x, const std::vector<double>& y) {
  double area = 0.0;
  for (size_t i = 1; i < x.size(); ++i) area += 0.5 * (x[i] - x[i - 1]) * (y[i] + y[i - 1]);
  return area;
}

// Point k of the curve starts from `from` and takes the first count(k)
// features of `order` from `to`.
PerturbationCurve move_features(TargetFunction& f, const Tensor& from, const Tensor& to, const Tensor& attributions,
                                int64_t steps, int64_t batch_size) {
  if (steps < 1) throw Error("perturbation curves need steps >= 1, got " + std::to_string(steps));
  check_sample(from, f.input_shape(), "input");
  check_same_size(from, to, "reference");
  check_same_size(from, attributions, "attributions");
  const std::vector<int64_t> order = attribution_order(attributions);
  const int64_t n = from.size();
  auto count = [&](int64_t k) { return (k * n + steps / 2) / steps; };
  PerturbationCurve c;
  c.values.resize(static_cast<size_t>(steps + 1));
  evaluate_in_chunks(
      f, steps + 1, batch_size,
      [&](int64_t k, float* dst) {
        std::copy(from.data(), from.data() + n, dst);
        for (int64_t i = 0; i < count(k); ++i) dst[order[static_cast<size_t>(i)]] = to[order[static_cast<size_t>(i)]];
      },
      [&](int64_t k, double value, const float*) { c.values[static_cast<size_t>(k)] = value; },
      /*grads=*/false);
  for (int64_t k = 0; k <= steps; ++k) c.fractions.push_back(static_cast<double>(count(k)) / static_cast<double>(n));
  c.auc = trapezoid(c.fractions, c.values);
  return c;
}

}  // namespace

std::vector<int64_t> attribution_order(const Tensor& attributions) {
  std::vector<int64_t> order(static_cast<size_t>(attributions.size()));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t a, int64_t b) { return attributions[a] > attributions[b]; });
  return order;
}

PerturbationCurve deletion_curve(TargetFunction& f, const Tensor& input, const Tensor& reference,
                                 const Tensor& attributions, int64_t steps, int64_t batch_size) {
  return move_features(f, input, reference, attributions, steps, batch_size);
}

PerturbationCurve insertion_curve(TargetFunction& f, const Tensor& input, const Tensor& reference,
                                  const Tensor& attributions, int64_t steps, int64_t batch_size) {
  return move_features(f, reference, input, attributions, steps, batch_size);
}

double infidelity(TargetFunction& f, const Tensor& input, const Tensor& attributions, const InfidelityOptions& o) {
  if (o.samples < 1) throw Error("infidelity needs samples >= 1");
  if (!(o.sigma > 0.0) || !std::isfinite(o.sigma)) throw Error("infidelity needs a noise sigma > 0");
  check_sample(input, f.input_shape(), "input");
  check_same_size(input, attributions, "attributions");
  const int64_t n = input.size();
  // Point 0 is the input itself; point s >= 1 is x - I_s.
  std::vector<std::vector<float>> noise(static_cast<size_t>(o.samples));
  Rng rng(o.seed);
  for (auto& v : noise) {
    v.resize(static_cast<size_t>(n));
    for (auto& e : v) e = static_cast<float>(o.sigma * rng.normal());
  }
  std::vector<double> values(static_cast<size_t>(o.samples + 1));
  evaluate_in_chunks(
      f, o.samples + 1, o.batch_size,
      [&](int64_t s, float* dst) {
        for (int64_t i = 0; i < n; ++i)
          dst[i] = s == 0 ? input[i] : input[i] - noise[static_cast<size_t>(s - 1)][static_cast<size_t>(i)];
      },
      [&](int64_t s, double value, const float*) { values[static_cast<size_t>(s)] = value; }, /*grads=*/false);
  double total = 0.0;
  for (int64_t s = 0; s < o.samples; ++s) {
    double dot = 0.0;
    for (int64_t i = 0; i < n; ++i) dot += static_cast<double>(noise[static_cast<size_t>(s)][static_cast<size_t>(i)]) * attributions[i];
    const double diff = dot - (values[0] - values[static_cast<size_t>(s + 1)]);
    total += diff * diff;
  }
  return total / static_cast<double>(o.samples);
}

double max_sensitivity(const Explainer& explain, const Tensor& input, const Tensor& attributions,
                       const SensitivityOptions& o) {
  if (o.samples < 1) throw Error("max-sensitivity needs samples >= 1");
  if (!(o.radius > 0.0) || !std::isfinite(o.radius)) throw Error("max-sensitivity needs a radius > 0");
  check_same_size(input, attributions, "attributions");
  double norm = 0.0;
  for (int64_t i = 0; i < attributions.size(); ++i) norm += static_cast<double>(attributions[i]) * attributions[i];
  norm = std::sqrt(norm);
  Rng rng(o.seed);
  double worst = 0.0;
  for (int64_t s = 0; s < o.samples; ++s) {
    Tensor x = input;
    for (int64_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(x[i] + rng.uniform(-o.radius, o.radius));
    const Tensor a = explain(x);
    check_same_size(input, a, "perturbed attributions");
    double diff = 0.0;
    for (int64_t i = 0; i < a.size(); ++i) {
      const double d = static_cast<double>(a[i]) - attributions[i];
      diff += d * d;
    }
    worst = std::max(worst, norm > 0.0 ? std::sqrt(diff) / norm : (diff > 0.0 ? HUGE_VAL : 0.0));
  }
  return worst;
}

}  // namespace igscope
