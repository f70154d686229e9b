// igscope bench --model FILE [--steps N] [--backend NAME] [--threads T] [--json]:
// times one forward pass of a batch of path points and a whole
// Gauss-Legendre IG of one Fashion-MNIST test image (see igscope/benchmark.h).
#include <cstdio>
#include <iostream>
#include <string>

#include "commands.h"
#include "igscope/backend/backend.h"
#include "igscope/benchmark.h"
#include "igscope/data/fashion_mnist.h"
#include "igscope/error.h"
#include "igscope/model.h"

namespace igscope::tools {

namespace {

struct BenchArgs {
  std::string model;
  IgBenchmarkOptions options;
  int64_t image = 0;
  bool json = false;
};

void run_bench(const BenchArgs& a) {
  Model model = load_model(a.model);
  const Dataset test = load_fashion_mnist("test");
  if (a.image < 0 || a.image >= test.size())
    throw Error("--image " + std::to_string(a.image) + ": the test set has images 0.." +
                std::to_string(test.size() - 1));
  const int64_t per = test.images.size() / test.size();
  if (per != shape_numel(model.input_shape()))
    throw Error("the model's input " + shape_to_string(model.input_shape()) + " is not a Fashion-MNIST image");
  Tensor image(model.batch_input_shape(1));
  std::copy(test.images.data() + a.image * per, test.images.data() + (a.image + 1) * per, image.data());

  const IgBenchmark r = benchmark_ig(model, image, a.options);
  if (a.json) {
    nlohmann::json j = {{"model", model.name()},
                              {"backend", r.backend},
                              {"threads", r.threads},
                              {"steps", r.steps},
                              {"quadrature", "gausslegendre"},
                              {"batch_size", r.batch_size},
                              {"image", a.image},
                              {"target_class", r.target_class},
                              {"multiply_adds_per_sample", r.multiply_adds},
                              {"ms_forward_batch", r.ms_forward_batch},
                              {"gflops_forward_batch", r.gflops_forward()},
                              {"ms_per_ig", r.ms_per_ig},
                              {"ms_per_ig_best", r.ms_per_ig_best},
                              {"gflops_ig", r.gflops_ig()},
                              {"flops_per_ig", r.flops_per_ig},
                              {"forward_repeats", r.forward_repeats},
                              {"ig_repeats", r.ig_repeats},
                              {"gap", r.gap}};
    if (a.options.profile) {
      nlohmann::json ops = nlohmann::json::object();
      for (const auto& [name, ms] : r.ops) ops[name] = ms;
      j["ms_per_op"] = ops;
      j["ms_per_profiled_ig"] = r.ms_per_profiled_ig;
    }
    std::cout << j.dump(2) << "\n";
    return;
  }
  std::printf("model %s, test image %lld (class %lld), backend %s, %d thread%s\n", model.name().c_str(),
              static_cast<long long>(a.image), static_cast<long long>(r.target_class), r.backend.c_str(), r.threads,
              r.threads == 1 ? "" : "s");
  std::printf("forward pass, batch of %lld path points   %9.3f ms  %7.1f GFLOP/s  (median of %d)\n",
              static_cast<long long>(r.batch_size), r.ms_forward_batch, r.gflops_forward(), r.forward_repeats);
  std::printf("IG, Gauss-Legendre, %lld steps             %9.3f ms  %7.1f GFLOP/s  (median of %d; best %.3f ms)\n",
              static_cast<long long>(r.steps), r.ms_per_ig, r.gflops_ig(), r.ig_repeats, r.ms_per_ig_best);
  std::printf("completeness gap %.3g\n", r.gap);
  if (a.options.profile) {
    double ops_ms = 0.0;
    std::printf("profiled IG (mean %.3f ms), ms per IG by backend op:\n", r.ms_per_profiled_ig);
    for (const auto& [name, ms] : r.ops) {
      std::printf("  %-28s %8.3f\n", name.c_str(), ms);
      ops_ms += ms;
    }
    std::printf("  %-28s %8.3f\n", "outside the backend ops", r.ms_per_profiled_ig - ops_ms);
  }
}

}  // namespace

void add_bench_command(CLI::App& app) {
  auto args = std::make_shared<BenchArgs>();
  auto* cmd = app.add_subcommand("bench", "Time a batched forward pass and a whole IG on one backend");
  cmd->add_option("--model", args->model, "Model file (.safetensors)")->required();
  cmd->add_option("--steps", args->options.steps, "Gauss-Legendre steps of the IG")->capture_default_str();
  cmd->add_option("--backend", args->options.backend,
                  "Backend (" + available_backends() + "; default " + default_backend_reason() + ")");
  cmd->add_option("--threads", args->options.threads, "Threads (0: one per core)")->capture_default_str();
  cmd->add_option("--batch", args->options.batch_size, "Path points per forward/backward pass")
      ->capture_default_str();
  cmd->add_option("--image", args->image, "Fashion-MNIST test image index")->capture_default_str();
  cmd->add_option("--min-seconds", args->options.min_seconds, "Repeat each measurement at least this long")
      ->capture_default_str();
  cmd->add_option("--repeats", args->options.min_repeats, "and at least this many times")->capture_default_str();
  cmd->add_flag("--profile", args->options.profile,
                "Also time each kind of backend op over further IG runs (their sum is slower than an untimed IG)");
  cmd->add_flag("--json", args->json, "Print JSON (ms_per_ig, ms_forward_batch, GFLOP/s, ...)");
  cmd->callback([args] { run_bench(*args); });
}

}  // namespace igscope::tools
