// bench_wasm_ig: the IG workload of `igscope bench` in the WebAssembly build
// (simd kernels on simd128, threads on Emscripten pthreads), run under node:
//   node --no-experimental-fetch build-wasm/bench/wasm/bench_wasm_ig.js [--steps 32,64] [--threads 1,2]
//        [--min-seconds S] [--profile 1] [--arch fashion_cnn_v1|fashion_cnn_smelu]
// --profile 1 adds, per run, the ms per IG of each kind of backend op and of
// the rest (layers' own loops and copies, allocation, IG bookkeeping).
// The model is fashion_cnn_v1 (or --arch) with He-initialised weights (seed 1, as
// `igscope init --seed 1`) and the image a fixed pseudo-random one: timing
// does not depend on the values, and the wasm build has no data-set reader.
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "igscope/architectures.h"
#include "igscope/backend/simd.h"
#include "igscope/benchmark.h"
#include "igscope/error.h"
#include "igscope/model.h"
#include "igscope/random.h"

using namespace igscope;

namespace {
std::vector<int64_t> parse_list(const char* s) {
  std::vector<int64_t> out;
  std::string item;
  for (const char* p = s;; ++p) {
    if (*p == ',' || *p == '\0') {
      if (!item.empty()) out.push_back(std::stoll(item));
      item.clear();
      if (*p == '\0') break;
    } else {
      item += *p;
    }
  }
  return out;
}
}  // namespace

int main(int argc, char** argv) {
  std::vector<int64_t> steps = {32, 64}, threads = {1, 2};
  double min_seconds = 2.0;
  bool profile = false;
  std::string arch = "fashion_cnn_v1";
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--steps")) steps = parse_list(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--threads")) threads = parse_list(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--min-seconds")) min_seconds = std::stod(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--profile")) profile = std::strcmp(argv[i + 1], "0") != 0;
    else if (!std::strcmp(argv[i], "--arch")) arch = argv[i + 1];
    else {
      std::fprintf(stderr, "bench_wasm_ig: unknown option %s\n", argv[i]);
      return 1;
    }
  }
  try {
    Model model(named_architecture(arch));
    model.init_he(1);
    Tensor image(model.batch_input_shape(1));
    Rng rng(7);
    for (int64_t i = 0; i < image.size(); ++i) image[i] = rng.uniform() < 0.5 ? 0.0f : static_cast<float>(rng.uniform());
    std::printf("%s, simd kernels compiled for %s\n", arch.c_str(), SimdBackend::isa());
    std::printf("%7s %5s | %14s %9s | %10s %9s\n", "threads", "steps", "forward 32 ms", "GFLOP/s", "IG ms", "GFLOP/s");
    for (int64_t t : threads)
      for (int64_t s : steps) {
        IgBenchmarkOptions o;
        o.backend = "simd";
        o.threads = static_cast<int>(t);
        o.steps = s;
        o.min_seconds = min_seconds;
        o.profile = profile;
        const IgBenchmark r = benchmark_ig(model, image, o);
        std::printf("%7d %5lld | %14.2f %9.1f | %10.2f %9.1f\n", r.threads, static_cast<long long>(s),
                    r.ms_forward_batch, r.gflops_forward(), r.ms_per_ig, r.gflops_ig());
        if (profile) {
          double in_ops = 0.0;
          for (const auto& [name, ms] : r.ops) {
            std::printf("        %-24s %7.2f ms per IG\n", name.c_str(), ms);
            in_ops += ms;
          }
          std::printf("        %-24s %7.2f ms per IG (of %.2f, timed)\n", "outside the ops",
                      r.ms_per_profiled_ig - in_ops, r.ms_per_profiled_ig);
        }
      }
  } catch (const Error& e) {
    std::fprintf(stderr, "bench_wasm_ig: %s\n", e.what());
    return 1;
  }
  return 0;
}
