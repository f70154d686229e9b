#include "igscope/benchmark.h"

#include <algorithm>
#include <chrono>
#include <vector>

#include "igscope/attribution/ig.h"
#include "igscope/attribution/target.h"
#include "igscope/backend/backend.h"
#include "igscope/backend/thread_pool.h"
#include "igscope/backend/timed.h"
#include "igscope/error.h"

namespace igscope {

namespace {

using Clock = std::chrono::steady_clock;

template <class Work>
std::vector<double> time_repeats(Work work, double min_seconds, int min_repeats) {
  std::vector<double> ms;
  const auto start = Clock::now();
  while (static_cast<int>(ms.size()) < min_repeats ||
         std::chrono::duration<double>(Clock::now() - start).count() < min_seconds) {
    const auto t0 = Clock::now();
    work();
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }
  return ms;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

}  // namespace

IgBenchmark benchmark_ig(Model& model, const Tensor& image, const IgBenchmarkOptions& options) {
  if (options.steps < 1) throw Error("bench: steps must be >= 1, got " + std::to_string(options.steps));
  if (options.batch_size < 1) throw Error("bench: batch size must be >= 1, got " + std::to_string(options.batch_size));
  if (options.min_repeats < 1) throw Error("bench: repeats must be >= 1");
  if (!(options.min_seconds >= 0.0)) throw Error("bench: the minimum time must be >= 0 seconds");
  auto backend = make_backend(options.backend, options.threads);

  Tensor x = image;
  if (x.size() != shape_numel(model.input_shape()))
    throw Error("bench: the image has shape " + shape_to_string(image.shape()) + " but the model takes " +
                shape_to_string(model.input_shape()));
  x.reshape(model.batch_input_shape(1));
  const Tensor baseline(model.batch_input_shape(1));

  IgBenchmark r;
  r.backend = options.backend;
  r.threads = options.backend == "reference" ? 1
              : options.threads > 0           ? options.threads
                                              : ThreadPool::hardware_threads();
  r.steps = options.steps;
  r.batch_size = options.batch_size;
  r.target_class = options.target_class >= 0 ? options.target_class : predicted_class(model, *backend, x);
  r.multiply_adds = model.multiply_adds();

  // A batch of points along the path, as IG feeds them.
  Tensor batch(model.batch_input_shape(options.batch_size));
  const int64_t per = x.size();
  for (int64_t b = 0; b < options.batch_size; ++b) {
    const float alpha = static_cast<float>(b + 1) / static_cast<float>(options.batch_size);
    for (int64_t i = 0; i < per; ++i) batch[b * per + i] = alpha * x[i];
  }
  const Tensor& const_batch = batch;
  model.forward(const_batch, *backend, Mode::Eval);  // warm-up: packs the weights
  const auto forward_ms =
      time_repeats([&] { model.forward(const_batch, *backend, Mode::Eval); }, options.min_seconds, options.min_repeats);
  r.ms_forward_batch = median(forward_ms);
  r.forward_repeats = static_cast<int>(forward_ms.size());
  r.flops_forward_batch = 2.0 * static_cast<double>(r.multiply_adds) * static_cast<double>(options.batch_size);

  ModelTarget target(model, *backend, r.target_class);
  IGOptions ig;
  ig.quadrature = Quadrature::GaussLegendre;
  ig.steps = options.steps;
  ig.batch_size = options.batch_size;
  Attribution last = integrated_gradients(target, x, baseline, ig);  // warm-up
  const auto ig_ms = time_repeats([&] { last = integrated_gradients(target, x, baseline, ig); }, options.min_seconds,
                                  options.min_repeats);
  r.ms_per_ig = median(ig_ms);
  r.ms_per_ig_best = *std::min_element(ig_ms.begin(), ig_ms.end());
  r.ig_repeats = static_cast<int>(ig_ms.size());
  r.flops_per_ig = 2.0 * static_cast<double>(r.multiply_adds) * static_cast<double>(2 * options.steps + 2);
  r.gap = last.gap;

  if (options.profile) {
    TimedBackend timed(*backend);
    ModelTarget timed_target(model, timed, r.target_class);
    const auto profiled_ms = time_repeats([&] { integrated_gradients(timed_target, x, baseline, ig); },
                                          options.min_seconds, options.min_repeats);
    const double runs = static_cast<double>(profiled_ms.size());
    double total = 0.0;
    for (double ms : profiled_ms) total += ms;
    r.ms_per_profiled_ig = total / runs;
    for (int op = 0; op < TimedBackend::kOps; ++op) {
      const auto o = static_cast<TimedBackend::Op>(op);
      if (timed.calls(o) > 0) r.ops.emplace_back(TimedBackend::op_name(o), timed.ms(o) / runs);
    }
  }
  return r;
}

}  // namespace igscope
