// bench_depthwise: depthwise 3x3 convolutions (MobileNet's), forward and
// input gradient, on every backend with the given thread counts. Prints
// milliseconds per call (the fastest of --repeats calls after one warm-up:
// on a shared machine, the least disturbed) and GFLOP/s (2 flops per
// multiply-add).
//
//   bench_depthwise [--backends reference,simd,eigen,xnnpack] [--threads 1,2] [--batch 8]
//                   [--size 56] [--channels 128] [--stride 1] [--repeats 9]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "igscope/backend/backend.h"
#include "igscope/error.h"
#include "igscope/random.h"

using namespace igscope;

namespace {

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');)
    if (!item.empty()) out.push_back(item);
  return out;
}

template <class Fn>
double fastest_ms(int repeats, Fn fn) {
  fn();  // warm-up: packs the weights, grows the buffers
  std::vector<double> ms;
  for (int r = 0; r < repeats; ++r) {
    const auto start = std::chrono::steady_clock::now();
    fn();
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
  }
  return *std::min_element(ms.begin(), ms.end());
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Depthwise 3x3 convolutions, forward and input gradient, on every backend"};
  std::string backends = "reference,simd,eigen,xnnpack", threads_list = "1,2";
  int64_t batch = 8, size = 56, channels = 128, stride = 1;
  int repeats = 9;
  app.add_option("--backends", backends, "Comma-separated backends")->capture_default_str();
  app.add_option("--threads", threads_list, "Comma-separated thread counts")->capture_default_str();
  app.add_option("--batch", batch, "Batch")->capture_default_str();
  app.add_option("--size", size, "Input height and width")->capture_default_str();
  app.add_option("--channels", channels, "Channels")->capture_default_str();
  app.add_option("--stride", stride, "Stride")->capture_default_str();
  app.add_option("--repeats", repeats, "Timed calls per measurement")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  try {
    Conv2dGeometry g{batch, size, size, channels, channels, 3, 3, stride, stride, 1, 1, channels, 1, 1};
    check_conv2d_geometry(g, "bench_depthwise");
    Rng rng(1);
    auto random = [&](int64_t n) {
      std::vector<float> v(static_cast<size_t>(n));
      for (auto& x : v) x = static_cast<float>(rng.uniform(-1, 1));
      return v;
    };
    const int64_t in_n = g.batch * g.in_h * g.in_w * g.in_c, out_n = g.batch * g.out_h() * g.out_w() * g.out_c;
    const auto in = random(in_n), w = random(g.out_c * 9), b = random(g.out_c), dout = random(out_n);
    std::vector<float> out(static_cast<size_t>(out_n)), din(static_cast<size_t>(in_n));
    const double gflop = 2.0 * static_cast<double>(out_n) * 9 / 1e9;
    std::printf("depthwise 3x3, batch %lld, %lldx%lld, %lld channels, stride %lld: %.3f GFLOP per pass\n",
                static_cast<long long>(batch), static_cast<long long>(size), static_cast<long long>(size),
                static_cast<long long>(channels), static_cast<long long>(stride), gflop);
    std::printf("%-10s %7s %12s %10s %14s %10s\n", "backend", "threads", "forward ms", "GFLOP/s", "backward ms",
                "GFLOP/s");
    const ParamsKey key{1, 2};
    for (const std::string& name : split(backends))
      for (const std::string& t : split(threads_list)) {
        auto be = make_backend(name, std::stoi(t));
        const double f =
            fastest_ms(repeats, [&] { be->conv2d_forward(g, in.data(), w.data(), b.data(), out.data(), key); });
        const double bw =
            fastest_ms(repeats, [&] { be->conv2d_backward_input(g, dout.data(), w.data(), din.data(), {1, 0}); });
        std::printf("%-10s %7s %12.3f %10.2f %14.3f %10.2f\n", name.c_str(), t.c_str(), f, gflop / (f / 1e3), bw,
                    gflop / (bw / 1e3));
      }
  } catch (const Error& e) {
    std::fprintf(stderr, "bench_depthwise: %s\n", e.what());
    return 1;
  }
  return 0;
}
