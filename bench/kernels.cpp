// bench_kernels: the IG workload of fashion_cnn_v1 on every backend, side by
// side in one run: one forward pass of a batch of 32 path points, and whole
// Gauss-Legendre IGs of 32 and 64 steps, each with 1 and 2 threads. Prints
// milliseconds, achieved GFLOP/s (from the model's counted multiply-adds, see
// igscope/benchmark.h), the ratio to the fastest configuration of each
// column, and the machine's FMA peak measured by a register-only loop at 256
// and (where compiled for it) 512 bits, before and after. On a shared
// machine, --rounds R measures every configuration R times, interleaved, and
// reports the median of the rounds' medians; the 2-thread / 1-thread FMA
// ratio (2.0 on two idle cores) says whether the second core was free.
//
//   bench_kernels --model F [--backends xnnpack,simd,eigen] [--threads 1,2] [--steps 32,64]
//                 [--min-seconds 2] [--rounds 1] [--image 0] [--json] [--peak-only]
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "igscope/backend/backend.h"
#include "igscope/backend/simd.h"
#include "igscope/benchmark.h"
#include "igscope/data/fashion_mnist.h"
#include "igscope/error.h"
#include "igscope/model.h"

using namespace igscope;

namespace {

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');) {
    item.erase(0, item.find_first_not_of(' '));
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

// FMA throughput of one thread on Lanes-wide vectors: kChains independent
// multiply-add chains (more than latency x ports), kept in registers.
typedef float Vec256 __attribute__((vector_size(32)));
typedef float Vec512 __attribute__((vector_size(64)));

template <class V>
double fma_gflops_one_thread(double seconds) {
  constexpr int Lanes = sizeof(V) / sizeof(float);
  constexpr int kChains = 12;
  V acc[kChains];
  for (int c = 0; c < kChains; ++c) acc[c] = V{} + static_cast<float>(c) * 1e-3f;
  const V a = V{} + 0.999999f, b = V{} + 1e-7f;
  int64_t iterations = 0;
  const auto start = std::chrono::steady_clock::now();
  double elapsed = 0.0;
  do {
    for (int i = 0; i < 4096; ++i)
      for (int c = 0; c < kChains; ++c) acc[c] = acc[c] * a + b;
    iterations += 4096;
    elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  } while (elapsed < seconds);
  float sink = 0.0f;
  for (int c = 0; c < kChains; ++c) sink += acc[c][0];
  if (sink == 12345.0f) std::printf(" ");  // keeps the loop alive
  return 2.0 * Lanes * kChains * static_cast<double>(iterations) / elapsed / 1e9;
}

template <class V>
double fma_gflops(int threads, double seconds) {
  std::vector<double> per(static_cast<size_t>(threads));
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&per, t, seconds] { per[static_cast<size_t>(t)] = fma_gflops_one_thread<V>(seconds); });
  for (auto& th : pool) th.join();
  double sum = 0.0;
  for (double g : per) sum += g;
  return sum;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n == 0 ? 0.0 : n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

std::string cpu_mhz() {
  std::ifstream f("/proc/cpuinfo");
  for (std::string line; std::getline(f, line);)
    if (line.rfind("cpu MHz", 0) == 0) return line.substr(line.find(':') + 2);
  return "unknown";
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bench_kernels: the IG workload on every backend, side by side"};
  std::string model_path, backends = "xnnpack,simd,eigen", threads_list = "1,2", steps_list = "32,64";
  double min_seconds = 2.0;
  int64_t image_index = 0;
  bool json = false, no_peak = false, peak_only = false;
  int rounds = 1;
  app.add_option("--model", model_path, "Model file (.safetensors); required unless --peak-only");
  app.add_option("--backends", backends, "Comma-separated backends")->capture_default_str();
  app.add_option("--threads", threads_list, "Comma-separated thread counts")->capture_default_str();
  app.add_option("--steps", steps_list, "Comma-separated IG step counts")->capture_default_str();
  app.add_option("--min-seconds", min_seconds, "Time each measurement at least this long")->capture_default_str();
  app.add_option("--image", image_index, "Fashion-MNIST test image")->capture_default_str();
  app.add_flag("--json", json, "Print JSON");
  app.add_flag("--no-peak", no_peak, "Skip the FMA peak measurement");
  app.add_flag("--peak-only", peak_only, "Only measure the FMA peak");
  app.add_option("--rounds", rounds, "Measure every configuration this many times, interleaved")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  CLI11_PARSE(app, argc, argv);

  try {
    nlohmann::json out = {{"cores", std::thread::hardware_concurrency()},
                          {"cpu_mhz", cpu_mhz()},
                          {"simd_isa", SimdBackend::isa()},
                          {"results", nlohmann::json::array()}};
    auto measure_peak = [&](const std::string& when) {
      nlohmann::json& p = out["fma_peak_gflops"][when];
      p["256bit_1thread"] = fma_gflops<Vec256>(1, 0.5);
      p["256bit_2threads"] = fma_gflops<Vec256>(2, 0.5);
#if defined(__AVX512F__)
      p["512bit_1thread"] = fma_gflops<Vec512>(1, 0.5);
      p["512bit_2threads"] = fma_gflops<Vec512>(2, 0.5);
#endif
    };
    auto print_peak = [&](const std::string& when) {
      const nlohmann::json& p = out["fma_peak_gflops"][when];
      std::printf("FMA peak %s (register-only loop): 256-bit %.1f GFLOP/s (1 thread), %.1f (2 threads)", when.c_str(),
                  p["256bit_1thread"].get<double>(), p["256bit_2threads"].get<double>());
#if defined(__AVX512F__)
      std::printf("; 512-bit %.1f (1 thread), %.1f (2 threads)", p["512bit_1thread"].get<double>(),
                  p["512bit_2threads"].get<double>());
#endif
      std::printf("\n");
    };
    if (!no_peak || peak_only) measure_peak("before");
    if (peak_only) {
      if (json) std::cout << out.dump(2) << "\n";
      else print_peak("before");
      return 0;
    }

    if (model_path.empty()) throw Error("--model is required");
    Model model = load_model(model_path);
    const Dataset test = load_fashion_mnist("test");
    if (image_index < 0 || image_index >= test.size()) throw Error("--image: no such test image");
    const int64_t per = test.images.size() / test.size();
    out["model"] = model.name();
    out["multiply_adds_per_sample"] = model.multiply_adds();
    Tensor image(model.batch_input_shape(1));
    std::copy(test.images.data() + image_index * per, test.images.data() + (image_index + 1) * per, image.data());

    const auto steps = split(steps_list);
    struct Row {
      std::string backend;
      int threads;
      std::vector<double> fwd_ms;               // per round
      std::vector<std::vector<double>> ig_ms;   // [steps][round]
      double fwd_gflops = 0.0;                  // of the median
      std::vector<double> ig_gflops;
      double fwd() const { return median(fwd_ms); }
      double ig(size_t s) const { return median(ig_ms[s]); }
    };
    std::vector<Row> rows;
    for (const std::string& b : split(backends))
      for (const std::string& t : split(threads_list))
        rows.push_back({b, std::stoi(t), {}, std::vector<std::vector<double>>(steps.size()), 0.0, {}});
    std::vector<double> flops_ig(steps.size());
    double flops_fwd = 0.0;
    for (int round = 0; round < rounds; ++round)
      for (Row& row : rows)
        for (size_t s = 0; s < steps.size(); ++s) {
          IgBenchmarkOptions o;
          o.backend = row.backend;
          o.threads = row.threads;
          o.steps = std::stoll(steps[s]);
          o.min_seconds = min_seconds;
          const IgBenchmark r = benchmark_ig(model, image, o);
          if (s == 0) row.fwd_ms.push_back(r.ms_forward_batch);
          row.ig_ms[s].push_back(r.ms_per_ig);
          flops_fwd = r.flops_forward_batch;
          flops_ig[s] = r.flops_per_ig;
          if (!json)
            std::fprintf(stderr, "  round %d: %s, %d thread(s), %s steps: forward %.2f ms, IG %.2f ms\n", round + 1,
                         row.backend.c_str(), row.threads, steps[s].c_str(), r.ms_forward_batch, r.ms_per_ig);
        }
    for (Row& row : rows) {
      row.fwd_gflops = flops_fwd / (row.fwd() * 1e6);
      for (size_t s = 0; s < steps.size(); ++s) {
        row.ig_gflops.push_back(flops_ig[s] / (row.ig(s) * 1e6));
        out["results"].push_back({{"backend", row.backend},
                                  {"threads", row.threads},
                                  {"steps", std::stoll(steps[s])},
                                  {"ms_forward_batch", row.fwd()},
                                  {"gflops_forward_batch", row.fwd_gflops},
                                  {"ms_per_ig", row.ig(s)},
                                  {"gflops_ig", row.ig_gflops[s]},
                                  {"ms_forward_batch_rounds", row.fwd_ms},
                                  {"ms_per_ig_rounds", row.ig_ms[s]}});
      }
    }
    out["rounds"] = rounds;
    if (!no_peak) measure_peak("after");

    if (json) {
      std::cout << out.dump(2) << "\n";
      return 0;
    }
    std::printf("\n%s: %lld multiply-adds per sample; simd kernels compiled for %s; %u cores at %s MHz (cpuinfo)\n",
                model.name().c_str(), static_cast<long long>(model.multiply_adds()), SimdBackend::isa(),
                std::thread::hardware_concurrency(), cpu_mhz().c_str());
    if (!no_peak) {
      print_peak("before");
      print_peak("after");
    }
    std::printf("medians of %d round%s\n", rounds, rounds == 1 ? "" : "s");
    double best_fwd = 1e300;
    std::vector<double> best_ig(steps.size(), 1e300);
    for (const Row& r : rows) {
      best_fwd = std::min(best_fwd, r.fwd());
      for (size_t s = 0; s < steps.size(); ++s) best_ig[s] = std::min(best_ig[s], r.ig(s));
    }
    std::printf("\n%-9s %7s | %-30s", "backend", "threads", "forward, batch 32");
    for (const auto& s : steps) std::printf(" | %-30s", ("IG, Gauss-Legendre " + s + " steps").c_str());
    std::printf("\n%-9s %7s | %9s %9s %10s", "", "", "ms", "GFLOP/s", "x fastest");
    for (size_t s = 0; s < steps.size(); ++s) std::printf(" | %9s %9s %10s", "ms", "GFLOP/s", "x fastest");
    std::printf("\n");
    for (const Row& r : rows) {
      std::printf("%-9s %7d | %9.2f %9.1f %10.2f", r.backend.c_str(), r.threads, r.fwd(), r.fwd_gflops,
                  r.fwd() / best_fwd);
      for (size_t s = 0; s < steps.size(); ++s)
        std::printf(" | %9.2f %9.1f %10.2f", r.ig(s), r.ig_gflops[s], r.ig(s) / best_ig[s]);
      std::printf("\n");
    }
  } catch (const Error& e) {
    std::fprintf(stderr, "bench_kernels: %s\n", e.what());
    return 1;
  }
  return 0;
}
