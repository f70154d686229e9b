#include "igscope/attribution/ig.h"

#include <memory>

#include "igscope/error.h"

namespace igscope {

namespace {

// Fills the summary fields from the paths and the accumulated attributions.
Attribution finish(const std::string& method, const Shape& shape, std::vector<PathIntegral> paths,
                   const std::vector<double>& accum, double scale) {
  Attribution a;
  a.method = method;
  a.values = Tensor(shape);
  for (int64_t i = 0; i < a.values.size(); ++i) {
    a.values[i] = static_cast<float>(accum[static_cast<size_t>(i)] * scale);
    a.sum += accum[static_cast<size_t>(i)] * scale;
  }
  double f_base = 0.0;
  for (const auto& p : paths) {
    f_base += p.f_start;
    a.evaluations += p.evaluations;
  }
  a.f_input = paths.front().f_end;
  a.f_baseline = f_base / static_cast<double>(paths.size());
  a.gap = a.sum - (a.f_input - a.f_baseline);
  a.paths = std::move(paths);
  return a;
}

}  // namespace

void check_ig_options(const IGOptions& o) {
  if (o.steps < 1 || o.steps > kMaxQuadratureSteps)
    throw Error("the number of steps must be between 1 and " + std::to_string(kMaxQuadratureSteps) + ", got " +
                std::to_string(o.steps));
  if (o.batch_size < 1) throw Error("the batch size must be at least 1, got " + std::to_string(o.batch_size));
}

Tensor as_sample(TargetFunction& f, const Tensor& t, const std::string& what) {
  const Shape shape = f.input_shape();
  check_sample(t, shape, what);
  Tensor s = t;
  s.reshape(sample_batch_shape(shape));
  return s;
}

Attribution integrated_gradients(TargetFunction& f, const Tensor& input, const std::vector<Tensor>& baselines,
                                 const IGOptions& options) {
  check_ig_options(options);
  if (baselines.empty()) throw Error("integrated gradients needs at least one baseline");
  const Tensor x = as_sample(f, input, "the input");
  std::vector<std::unique_ptr<StraightPath>> paths;
  std::vector<const Path*> ptrs;
  for (size_t k = 0; k < baselines.size(); ++k) {
    const std::string what = baselines.size() == 1 ? "the baseline" : "baseline " + std::to_string(k);
    paths.push_back(std::make_unique<StraightPath>(as_sample(f, baselines[k], what), x));
    ptrs.push_back(paths.back().get());
  }
  std::vector<double> accum;
  auto integrals = integrate_paths(f, ptrs, quadrature_rule(options.quadrature, options.steps), options.batch_size,
                                   /*shared_end=*/true, accum);
  return finish("ig", x.shape(), std::move(integrals), accum, 1.0 / static_cast<double>(baselines.size()));
}

Attribution integrated_gradients(TargetFunction& f, const Tensor& input, const Tensor& baseline,
                                 const IGOptions& options) {
  return integrated_gradients(f, input, std::vector<Tensor>{baseline}, options);
}

Attribution adaptive_integrated_gradients(TargetFunction& f, const Tensor& input, const std::vector<Tensor>& baselines,
                                          const AdaptiveOptions& options) {
  check_adaptive_options(options);
  if (baselines.empty()) throw Error("integrated gradients needs at least one baseline");
  const Tensor x = as_sample(f, input, "the input");
  std::vector<double> accum;
  std::vector<PathIntegral> integrals;
  for (size_t k = 0; k < baselines.size(); ++k) {
    const std::string what = baselines.size() == 1 ? "the baseline" : "baseline " + std::to_string(k);
    const StraightPath path(as_sample(f, baselines[k], what), x);
    integrals.push_back(integrate_path_adaptive(f, path, options, accum));
  }
  return finish("ig", x.shape(), std::move(integrals), accum, 1.0 / static_cast<double>(baselines.size()));
}

Attribution blur_integrated_gradients(TargetFunction& f, const Tensor& input, const BlurIGOptions& options) {
  check_ig_options(options.integration);
  const Tensor x = as_sample(f, input, "the input");
  const BlurPath path(x, options.max_sigma);
  std::vector<double> accum;
  auto integrals = integrate_paths(f, {&path}, quadrature_rule(options.integration.quadrature, options.integration.steps),
                                   options.integration.batch_size, true, accum);
  return finish("blurig", x.shape(), std::move(integrals), accum, 1.0);
}

Attribution adaptive_blur_integrated_gradients(TargetFunction& f, const Tensor& input, double max_sigma,
                                               const AdaptiveOptions& options) {
  check_adaptive_options(options);
  const Tensor x = as_sample(f, input, "the input");
  const BlurPath path(x, max_sigma);
  std::vector<double> accum;
  std::vector<PathIntegral> integrals{integrate_path_adaptive(f, path, options, accum)};
  return finish("blurig", x.shape(), std::move(integrals), accum, 1.0);
}

}  // namespace igscope
