#include "igscope/attribution/gradients.h"

#include <cmath>

#include "igscope/error.h"

namespace igscope {

namespace {

Attribution single_gradient(TargetFunction& f, const Tensor& input, bool times_input) {
  const Tensor x = as_sample(f, input, "the input");
  Attribution a;
  a.method = times_input ? "gradxinput" : "gradient";
  a.values = Tensor(x.shape());
  evaluate_in_chunks(
      f, 1, 1, [&](int64_t, float* dst) { std::copy(x.data(), x.data() + x.size(), dst); },
      [&](int64_t, double value, const float* grad) {
        a.f_input = value;
        for (int64_t i = 0; i < x.size(); ++i) a.values[i] = times_input ? grad[i] * x[i] : grad[i];
      });
  for (int64_t i = 0; i < a.values.size(); ++i) a.sum += a.values[i];
  a.evaluations = 1;
  return a;
}

// Running mean and variance (Welford), per element, in double.
struct Moments {
  std::vector<double> mean, m2, sq;
  int64_t n = 0;
  explicit Moments(int64_t size)
      : mean(static_cast<size_t>(size), 0.0), m2(static_cast<size_t>(size), 0.0), sq(static_cast<size_t>(size), 0.0) {}
  template <typename T>
  void add(const T* v) {
    ++n;
    for (size_t i = 0; i < mean.size(); ++i) {
      const double x = static_cast<double>(v[i]), d = x - mean[i];
      mean[i] += d / static_cast<double>(n);
      m2[i] += d * (x - mean[i]);
      sq[i] += (x * x - sq[i]) / static_cast<double>(n);
    }
  }
  double statistic(size_t i, SmoothGradStatistic s) const {
    switch (s) {
      case SmoothGradStatistic::Mean: return mean[i];
      case SmoothGradStatistic::SquaredMean: return sq[i];
      case SmoothGradStatistic::Variance: return m2[i] / static_cast<double>(n);
    }
    return 0.0;
  }
};

Tensor noisy_copy(const Tensor& x, double std, Rng& rng) {
  Tensor out(x.shape());
  for (int64_t i = 0; i < x.size(); ++i) out[i] = static_cast<float>(x[i] + std * rng.normal());
  return out;
}

}  // namespace

Attribution gradient_saliency(TargetFunction& f, const Tensor& input) { return single_gradient(f, input, false); }
Attribution gradient_times_input(TargetFunction& f, const Tensor& input) { return single_gradient(f, input, true); }

std::string smoothgrad_statistic_name(SmoothGradStatistic s) {
  switch (s) {
    case SmoothGradStatistic::Mean: return "mean";
    case SmoothGradStatistic::SquaredMean: return "squared";
    case SmoothGradStatistic::Variance: return "variance";
  }
  return "?";
}

SmoothGradStatistic parse_smoothgrad_statistic(const std::string& name) {
  if (name == "mean") return SmoothGradStatistic::Mean;
  if (name == "squared") return SmoothGradStatistic::SquaredMean;
  if (name == "variance") return SmoothGradStatistic::Variance;
  throw Error("unknown SmoothGrad statistic '" + name + "' (known: mean, squared, variance)");
}

void check_smoothgrad_options(const SmoothGradOptions& o) {
  if (o.samples < 1 || o.samples > 1000000)
    throw Error("SmoothGrad needs between 1 and 1000000 samples, got " + std::to_string(o.samples));
  if (!(o.sigma >= 0.0) || !std::isfinite(o.sigma))
    throw Error("the SmoothGrad noise sigma must be a finite number >= 0, got " + std::to_string(o.sigma));
  check_range(o.range);
  if (o.batch_size < 1) throw Error("the batch size must be at least 1, got " + std::to_string(o.batch_size));
}

Attribution smoothgrad(TargetFunction& f, const Tensor& input, const SmoothGradOptions& o) {
  check_smoothgrad_options(o);
  const Tensor x = as_sample(f, input, "the input");
  const double std = o.sigma * (o.range.hi - o.range.lo);
  Rng rng(o.seed);
  Moments mom(x.size());
  Tensor noisy;
  evaluate_in_chunks(
      f, o.samples, o.batch_size,
      [&](int64_t, float* dst) {
        noisy = noisy_copy(x, std, rng);
        std::copy(noisy.data(), noisy.data() + noisy.size(), dst);
      },
      [&](int64_t, double, const float* grad) { mom.add(grad); });
  Attribution a;
  a.method = "smoothgrad";
  a.values = Tensor(x.shape());
  for (int64_t i = 0; i < x.size(); ++i) {
    const double v = mom.statistic(static_cast<size_t>(i), o.statistic);
    a.values[i] = static_cast<float>(v);
    a.sum += v;
  }
  a.evaluations = o.samples;
  std::vector<double> fx;
  f.evaluate_values(x, fx);
  a.f_input = fx.at(0);
  a.evaluations += 1;
  return a;
}

Attribution smoothgrad_ig(TargetFunction& f, const Tensor& input, const std::vector<Tensor>& baselines,
                          const SmoothGradOptions& o, const IGOptions& ig) {
  check_smoothgrad_options(o);
  check_ig_options(ig);
  const Tensor x = as_sample(f, input, "the input");
  const double std = o.sigma * (o.range.hi - o.range.lo);
  Rng rng(o.seed);
  Moments mom(x.size());
  Attribution a;
  a.method = "smoothgrad_ig";
  double gap_sum = 0.0;
  for (int64_t s = 0; s < o.samples; ++s) {
    const Attribution one = integrated_gradients(f, noisy_copy(x, std, rng), baselines, ig);
    mom.add(one.values.data());
    gap_sum += one.gap;
    a.evaluations += one.evaluations;
    if (s == 0) a.f_baseline = one.f_baseline;  // the baselines are the same for every sample
  }
  a.values = Tensor(x.shape());
  for (int64_t i = 0; i < x.size(); ++i) {
    const double v = mom.statistic(static_cast<size_t>(i), o.statistic);
    a.values[i] = static_cast<float>(v);
    a.sum += v;
  }
  std::vector<double> fx;
  f.evaluate_values(x, fx);
  a.f_input = fx.at(0);
  a.evaluations += 1;
  a.gap = o.statistic == SmoothGradStatistic::Mean ? gap_sum / static_cast<double>(o.samples)
                                                   : std::numeric_limits<double>::quiet_NaN();
  return a;
}

}  // namespace igscope
