// Every backend's ops against the reference backend, on random shapes (batch
// 1 and > 1, odd sizes, stride 1 and 2, padding 0 and 1, non-square kernels,
// channel counts that are and are not multiples of the SIMD width and of the
// kernels' register tiles; convolutions grouped, depthwise and dilated too),
// each with 1 and 2 threads and with weights passed with and without a
// ParamsKey (packed once, or on every call). Outputs are pre-filled with NaN
// so an element a kernel forgets fails.
// Tolerance: max |backend - reference| <= 1e-5 * max(1, max |reference|)
// (float32 with different summation orders against double accumulation).
// Whole models (fashion_cnn_v1, fashion_cnn_smelu, a small odd-shaped CNN
// and a depthwise-separable one) agree across backends within 1e-4 of the
// largest magnitude where no ReLU or max-pool decision is within rounding of
// flipping, and within a bound those decisions allow elsewhere
// (decision_margins.h), so the verdict does not depend on the CPU's
// summation order. The cuda backend is among them when the build has it and
// a CUDA device is present.
#include <catch2/catch.hpp>

#include <atomic>
#include <cmath>
#include <limits>
#include <sstream>

#include "gradient_check.h"
#include "igscope/architectures.h"
#include "igscope/attribution/ig.h"
#include "igscope/attribution/path.h"
#include "igscope/attribution/quadrature.h"
#include "igscope/attribution/target.h"
#include "igscope/backend/backend.h"
#include "igscope/backend/reference.h"
#include "igscope/backend/simd.h"
#include "igscope/backend/thread_pool.h"
#include "igscope/backend/timed.h"
#ifdef IGSCOPE_HAVE_XNNPACK
#include "igscope/backend/xnnpack.h"
#endif
#ifdef IGSCOPE_HAVE_CUDA
#include "igscope/backend/cuda.h"
#endif
#include "igscope/error.h"
#include "igscope/model.h"
#include "backend_compare.h"
#include "decision_margins.h"

using namespace igscope;
using namespace igscope::testing;

namespace {

const float kNaN = std::numeric_limits<float>::quiet_NaN();

std::vector<std::string> backends_under_test() {
  std::vector<std::string> names;
  std::stringstream ss(available_backends());
  for (std::string name; std::getline(ss, name, ',');) {
    name.erase(0, name.find_first_not_of(' '));
#ifdef IGSCOPE_HAVE_CUDA
    // Built in but only testable on a GPU (test_cuda_backend.cpp reports the skip).
    if (name == "cuda" && !cuda_device_available()) continue;
#endif
    if (name != "reference") names.push_back(name);
  }
  return names;
}

// One backend configuration under test: a name, a thread count, and whether
// the weights come with a ParamsKey (the layers' way: packed once and
// cached) or without (packed on every call).
struct Variant {
  std::string name;
  int threads;
  bool keyed;
  std::string describe() const {
    return name + " threads=" + std::to_string(threads) + (keyed ? " keyed" : " unkeyed");
  }
};

std::vector<Variant> variants_under_test() {
  std::vector<Variant> v;
  for (const std::string& name : backends_under_test())
    for (int threads : {1, 2})
      for (bool keyed : {false, true}) v.push_back({name, threads, keyed});
  return v;
}

std::string describe(const Conv2dGeometry& g) {
  std::ostringstream os;
  os << "conv " << g.batch << "x" << g.in_h << "x" << g.in_w << "x" << g.in_c << " -> " << g.out_c << " k"
     << g.kernel_h << "x" << g.kernel_w << " s" << g.stride_h << "," << g.stride_w << " p" << g.pad_h << ","
     << g.pad_w;
  if (g.groups != 1) os << " groups " << g.groups;
  if (g.dilated()) os << " dilation " << g.dilation_h << "," << g.dilation_w;
  return os.str();
}

}  // namespace

TEST_CASE("every backend's conv2d matches the reference", "[backend][conv2d]") {
  ReferenceBackend ref;
  Rng rng(31);
  // {batch, in_h, in_w, in_c, out_c, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w}
  const std::vector<Conv2dGeometry> cases = {
      {1, 28, 28, 1, 32, 3, 3, 1, 1, 1, 1},    // fashion conv1, batch 1 (input gradient: one channel)
      {3, 7, 9, 5, 6, 3, 3, 2, 2, 1, 1},       // odd sizes, stride 2, pad 1
      {2, 6, 5, 3, 4, 2, 3, 1, 2, 0, 1},       // non-square kernel, mixed stride/pad
      {4, 5, 5, 8, 3, 1, 1, 1, 1, 0, 0},       // 1x1
      {2, 14, 14, 32, 64, 3, 3, 1, 1, 1, 1},   // fashion conv2, batch 2
      {3, 7, 7, 64, 128, 3, 3, 1, 1, 1, 1},    // fashion conv3, batch 3
      {1, 9, 11, 20, 3, 3, 3, 1, 1, 0, 0},     // input gradient by dot products, 20 channels (SIMD tail)
      {5, 8, 7, 3, 37, 3, 2, 2, 1, 1, 0},      // 37 outputs: a partial register panel
      {2, 10, 10, 17, 70, 3, 3, 2, 2, 0, 0},   // stride 2, pad 0, several panels with a tail
      {1, 1, 1, 4, 5, 3, 3, 1, 1, 1, 1},       // a 1x1 image under a padded 3x3 kernel
      // Strided input gradients, one GEMM per phase of the stride in the simd backend:
      {2, 9, 9, 16, 32, 1, 1, 2, 2, 0, 0},     // 1x1 stride 2 (a ResNet shortcut): three phases of four get no tap
      {2, 10, 11, 6, 8, 2, 2, 3, 3, 1, 0},     // stride 3 > kernel 2: phases with no tap
      {2, 28, 28, 1, 16, 3, 3, 2, 2, 1, 1},    // stride 2, one input channel: the dot kernel per phase
      // Winograd in the simd backend: F(2x2, 3x3) (forward) and F(4x4, 3x3)
      // (input gradient) on odd sizes (tiles cut by the border) and on many
      // tiles over several tasks; F(2x2, 3x3) both ways on one pixel.
      {3, 5, 7, 16, 48, 3, 3, 1, 1, 1, 1},
      {4, 13, 10, 32, 48, 3, 3, 1, 1, 1, 1},
      {17, 6, 6, 32, 16, 3, 3, 1, 1, 1, 1},
      {2, 1, 1, 16, 32, 3, 3, 1, 1, 1, 1},
  };
  for (const Variant& v : variants_under_test()) {
    auto be = make_backend(v.name, v.threads);
    for (const Conv2dGeometry& g : cases) {
      INFO(v.describe() << " " << describe(g));
      const int64_t in_n = g.batch * g.in_h * g.in_w * g.in_c, out_n = g.batch * g.out_h() * g.out_w() * g.out_c;
      const int64_t w_n = g.out_c * g.in_c * g.kernel_h * g.kernel_w;
      const auto in = random_vector(in_n, rng), w = random_vector(w_n, rng), b = random_vector(g.out_c, rng);
      const auto dout = random_vector(out_n, rng);
      const ParamsKey key = next_key(v.keyed);

      std::vector<float> want(static_cast<size_t>(out_n), kNaN), got(static_cast<size_t>(out_n), kNaN);
      ref.conv2d_forward(g, in.data(), w.data(), b.data(), want.data());
      be->conv2d_forward(g, in.data(), w.data(), b.data(), got.data(), key);
      expect_close(got, want, "forward");

      std::vector<float> din_want(static_cast<size_t>(in_n), kNaN), din_got(static_cast<size_t>(in_n), kNaN);
      ref.conv2d_backward_input(g, dout.data(), w.data(), din_want.data());
      be->conv2d_backward_input(g, dout.data(), w.data(), din_got.data(), key);
      expect_close(din_got, din_want, "backward_input");

      // A second call (the cached weights when keyed) gives the same result.
      std::vector<float> again(static_cast<size_t>(out_n), kNaN);
      be->conv2d_forward(g, in.data(), w.data(), b.data(), again.data(), key);
      CHECK(again == got);

      auto dw_want = random_vector(w_n, rng), db_want = random_vector(g.out_c, rng);
      auto dw_got = dw_want, db_got = db_want;
      ref.conv2d_backward_params(g, in.data(), dout.data(), dw_want.data(), db_want.data());
      be->conv2d_backward_params(g, in.data(), dout.data(), dw_got.data(), db_got.data());
      expect_close(dw_got, dw_want, "backward_params weight");
      expect_close(db_got, db_want, "backward_params bias");
    }
  }
}

TEST_CASE("every backend's grouped, depthwise and dilated conv2d matches the reference", "[backend][conv2d][groups]") {
  ReferenceBackend ref;
  Rng rng(43);
  // {batch, in_h, in_w, in_c, out_c, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, groups, dilation_h,
  // dilation_w}. Channel counts below, at and between multiples of the SIMD widths (4, 8, 16: the depthwise
  // kernels' overlapping last vector and their scalar path).
  const std::vector<Conv2dGeometry> cases = {
      // Depthwise, multiplier 1.
      {2, 9, 11, 32, 32, 3, 3, 1, 1, 1, 1, 32, 1, 1},    // 3x3 stride 1 (input gradient: rotated convolution)
      {3, 10, 9, 24, 24, 3, 3, 2, 2, 1, 1, 24, 1, 1},    // stride 2 (input gradient: gathered)
      {2, 7, 8, 20, 20, 3, 3, 1, 1, 1, 1, 20, 1, 1},     // 20 channels: a last vector overlapping
      {1, 8, 8, 3, 3, 3, 3, 1, 1, 1, 1, 3, 1, 1},        // fewer channels than a vector
      {2, 9, 9, 17, 17, 5, 5, 1, 1, 2, 2, 17, 1, 1},     // 5x5, odd channels
      {2, 11, 10, 16, 16, 3, 3, 1, 1, 2, 2, 16, 2, 2},   // dilation 2, same padding
      {2, 12, 9, 16, 16, 3, 3, 2, 1, 0, 1, 16, 2, 1},    // stride (2, 1), dilation (2, 1)
      {2, 6, 6, 8, 8, 3, 3, 1, 1, 3, 3, 8, 1, 1},        // pad 3 > kernel - 1: gathered at stride 1
      {2, 7, 5, 12, 12, 3, 2, 1, 1, 0, 0, 12, 1, 1},     // non-square kernel, no padding
      {2, 1, 1, 16, 16, 3, 3, 1, 1, 1, 1, 16, 1, 1},     // one pixel
      {4, 14, 14, 64, 64, 3, 3, 1, 1, 1, 1, 64, 1, 1},   // many rows: tasks over the threads
      {2, 15, 14, 96, 96, 3, 3, 2, 2, 1, 1, 96, 1, 1},   // stride 2, odd size
      {2, 5, 6, 16, 16, 1, 1, 1, 1, 0, 0, 16, 1, 1},     // 1x1 (a per-channel scale)
      {1, 4, 13, 8, 8, 3, 3, 1, 2, 1, 0, 8, 1, 3},       // narrow rows, dilation (1, 3)
      // Depthwise, channel multiplier 2 and 3.
      {2, 8, 7, 8, 16, 3, 3, 1, 1, 1, 1, 8, 1, 1},
      {2, 9, 9, 5, 10, 3, 3, 2, 2, 1, 1, 5, 1, 1},
      {1, 10, 10, 3, 9, 3, 3, 1, 1, 2, 2, 3, 2, 2},
      // Grouped, per-group GEMMs.
      {2, 8, 8, 8, 12, 3, 3, 1, 1, 1, 1, 2, 1, 1},       // groups 2
      {3, 7, 9, 12, 6, 3, 2, 2, 1, 1, 0, 3, 1, 1},       // groups 3, 2 outputs per group, stride (2, 1)
      {2, 10, 10, 64, 64, 3, 3, 1, 1, 1, 1, 4, 1, 1},    // groups 4 of 16 channels
      {2, 6, 6, 32, 64, 1, 1, 1, 1, 0, 0, 8, 1, 1},      // grouped 1x1
      {2, 9, 8, 16, 16, 3, 3, 1, 1, 1, 1, 8, 1, 1},      // groups of 2 channels (gathered rows)
      {2, 9, 9, 32, 16, 3, 3, 1, 1, 1, 1, 2, 1, 1},      // Winograd's shape, but grouped
      {1, 6, 7, 4, 70, 3, 3, 1, 1, 1, 1, 2, 2, 2},       // 35 outputs per group: a partial panel
      // Dilated, no groups.
      {2, 11, 12, 5, 7, 3, 3, 1, 1, 2, 2, 1, 2, 2},
      {2, 10, 9, 16, 32, 3, 3, 1, 1, 1, 1, 1, 2, 1},     // Winograd's shape, but dilated
      {1, 12, 12, 3, 4, 3, 3, 2, 2, 0, 0, 1, 3, 3},
      {2, 7, 7, 20, 2, 3, 3, 1, 1, 2, 2, 1, 2, 2},       // input gradient by dot products
  };
  for (const Variant& v : variants_under_test()) {
    auto be = make_backend(v.name, v.threads);
    for (const Conv2dGeometry& g : cases) {
      INFO(v.describe() << " " << describe(g));
      REQUIRE_NOTHROW(check_conv2d_geometry(g, "case"));
      const int64_t in_n = g.batch * g.in_h * g.in_w * g.in_c, out_n = g.batch * g.out_h() * g.out_w() * g.out_c;
      const int64_t w_n = g.out_c * g.group_in_c() * g.kernel_h * g.kernel_w;
      const auto in = random_vector(in_n, rng), w = random_vector(w_n, rng), b = random_vector(g.out_c, rng);
      const auto dout = random_vector(out_n, rng);
      const ParamsKey key = next_key(v.keyed);

      std::vector<float> want(static_cast<size_t>(out_n), kNaN), got(static_cast<size_t>(out_n), kNaN);
      ref.conv2d_forward(g, in.data(), w.data(), b.data(), want.data());
      be->conv2d_forward(g, in.data(), w.data(), b.data(), got.data(), key);
      expect_close(got, want, "forward");
      std::vector<float> no_bias_want(static_cast<size_t>(out_n), kNaN), no_bias_got = no_bias_want;
      ref.conv2d_forward(g, in.data(), w.data(), nullptr, no_bias_want.data());
      be->conv2d_forward(g, in.data(), w.data(), nullptr, no_bias_got.data(), {key.weight, 0});
      expect_close(no_bias_got, no_bias_want, "forward without bias");

      std::vector<float> din_want(static_cast<size_t>(in_n), kNaN), din_got(static_cast<size_t>(in_n), kNaN);
      ref.conv2d_backward_input(g, dout.data(), w.data(), din_want.data());
      be->conv2d_backward_input(g, dout.data(), w.data(), din_got.data(), key);
      expect_close(din_got, din_want, "backward_input");

      std::vector<float> again(static_cast<size_t>(out_n), kNaN);
      be->conv2d_forward(g, in.data(), w.data(), b.data(), again.data(), key);
      CHECK(again == got);

      auto dw_want = random_vector(w_n, rng), db_want = random_vector(g.out_c, rng);
      auto dw_got = dw_want, db_got = db_want;
      ref.conv2d_backward_params(g, in.data(), dout.data(), dw_want.data(), db_want.data());
      be->conv2d_backward_params(g, in.data(), dout.data(), dw_got.data(), db_got.data());
      expect_close(dw_got, dw_want, "backward_params weight");
      expect_close(db_got, db_want, "backward_params bias");
    }
  }
}

TEST_CASE("the simd backend's depthwise kernels: which geometries, thread counts, and the weight cache",
          "[backend][simd][conv2d][groups]") {
  CHECK(SimdBackend::uses_depthwise({2, 9, 11, 32, 32, 3, 3, 1, 1, 1, 1, 32, 1, 1}));
  CHECK(SimdBackend::uses_depthwise({2, 9, 9, 5, 10, 3, 3, 2, 2, 1, 1, 5, 1, 1}));  // multiplier 2
  CHECK_FALSE(SimdBackend::uses_depthwise({2, 8, 8, 8, 12, 3, 3, 1, 1, 1, 1, 2, 1, 1}));
  CHECK_FALSE(SimdBackend::uses_depthwise({2, 8, 8, 1, 12, 3, 3, 1, 1, 1, 1, 1, 1, 1}));  // one channel, no groups
  for (bool backward : {false, true}) {
    // Winograd's shape otherwise, but grouped, depthwise or dilated: the direct paths.
    CHECK_FALSE(SimdBackend::uses_winograd({2, 9, 9, 32, 16, 3, 3, 1, 1, 1, 1, 2, 1, 1}, backward));
    CHECK_FALSE(SimdBackend::uses_winograd({2, 9, 9, 16, 16, 3, 3, 1, 1, 1, 1, 16, 1, 1}, backward));
    CHECK_FALSE(SimdBackend::uses_winograd({2, 10, 9, 16, 32, 3, 3, 1, 1, 1, 1, 1, 2, 1}, backward));
    CHECK(SimdBackend::uses_winograd({2, 10, 9, 16, 32, 3, 3, 1, 1, 1, 1, 1, 1, 1}, backward));
  }
  // Results do not depend on the thread count: bit for bit, 1 to 3 threads.
  Rng rng(12);
  for (const Conv2dGeometry& g : std::vector<Conv2dGeometry>{{3, 16, 15, 40, 40, 3, 3, 1, 1, 1, 1, 40, 1, 1},
                                                             {3, 16, 15, 40, 40, 3, 3, 2, 2, 1, 1, 40, 1, 1},
                                                             {2, 12, 12, 24, 48, 5, 5, 1, 1, 4, 4, 24, 2, 2},
                                                             {2, 12, 12, 48, 48, 3, 3, 1, 1, 1, 1, 4, 1, 1}}) {
    INFO(describe(g) << " groups " << g.groups << " dilation " << g.dilation_h << "," << g.dilation_w);
    const int64_t in_n = g.batch * g.in_h * g.in_w * g.in_c, out_n = g.batch * g.out_h() * g.out_w() * g.out_c;
    const auto in = random_vector(in_n, rng), w = random_vector(g.out_c * g.group_in_c() * 9 * 3, rng);
    const auto b = random_vector(g.out_c, rng), dout = random_vector(out_n, rng);
    std::vector<float> out1, din1;
    for (int threads : {1, 2, 3}) {
      SimdBackend simd(threads);
      std::vector<float> out(static_cast<size_t>(out_n), kNaN), din(static_cast<size_t>(in_n), kNaN);
      simd.conv2d_forward(g, in.data(), w.data(), b.data(), out.data());
      simd.conv2d_backward_input(g, dout.data(), w.data(), din.data());
      if (threads == 1) {
        out1 = out;
        din1 = din;
        CHECK(count_not_finite(out) == 0);
        CHECK(count_not_finite(din) == 0);
      } else {
        CHECK(out == out1);
        CHECK(din == din1);
      }
    }
  }
  // Packed once per contents; a changed weight is repacked and followed.
  const Conv2dGeometry g{2, 9, 9, 16, 32, 3, 3, 1, 1, 1, 1, 16, 1, 1};
  const int64_t in_n = g.batch * g.in_h * g.in_w * g.in_c, out_n = g.batch * g.out_h() * g.out_w() * g.out_c;
  auto in = random_vector(in_n, rng), w = random_vector(g.out_c * 9, rng), b = random_vector(g.out_c, rng);
  SimdBackend simd(2);
  ReferenceBackend ref;
  std::vector<float> out(static_cast<size_t>(out_n)), want(static_cast<size_t>(out_n));
  const ParamsKey key = next_key(true);
  for (int i = 0; i < 3; ++i) simd.conv2d_forward(g, in.data(), w.data(), b.data(), out.data(), key);
  CHECK(simd.pack_count() == 1);
  w[7] += 1.0f;
  simd.conv2d_forward(g, in.data(), w.data(), b.data(), out.data(), next_key(true));
  CHECK(simd.pack_count() == 2);
  ref.conv2d_forward(g, in.data(), w.data(), b.data(), want.data());
  expect_close(out, want, "after a weight change");
}

TEST_CASE("the simd backend runs 3x3 stride-1 pad-1 convolutions as Winograd F(2x2, 3x3) or F(4x4, 3x3)",
          "[backend][simd]") {
  // The conv2d test above compares them with the reference; this makes sure
  // that comparison covers both Winograd tiles and the direct path.
  const Conv2dGeometry conv2{32, 14, 14, 32, 64, 3, 3, 1, 1, 1, 1}, conv3{32, 7, 7, 64, 128, 3, 3, 1, 1, 1, 1};
  const Conv2dGeometry odd{3, 5, 7, 16, 48, 3, 3, 1, 1, 1, 1}, many{4, 13, 10, 32, 48, 3, 3, 1, 1, 1, 1};
  const Conv2dGeometry six{17, 6, 6, 32, 16, 3, 3, 1, 1, 1, 1}, pixel{2, 1, 1, 16, 32, 3, 3, 1, 1, 1, 1};
  for (bool backward : {false, true}) {
    for (const Conv2dGeometry& g : {conv2, conv3, odd, many, six, pixel}) CHECK(SimdBackend::uses_winograd(g, backward));
  }
  // Forward passes F(2x2); input gradients F(4x4) where its GEMMs are
  // smaller: 36 positions per 4x4 outputs against 16 per 2x2.
  for (const Conv2dGeometry& g : {conv2, conv3, odd, many, six, pixel}) CHECK(SimdBackend::winograd_tile(g, false) == 2);
  for (const Conv2dGeometry& g : {conv2, conv3, odd, many}) CHECK(SimdBackend::winograd_tile(g, true) == 4);
  for (const Conv2dGeometry& g : {six, pixel}) CHECK(SimdBackend::winograd_tile(g, true) == 2);
  const Conv2dGeometry conv1{32, 28, 28, 1, 32, 3, 3, 1, 1, 1, 1}, strided{3, 7, 9, 16, 16, 3, 3, 2, 2, 1, 1},
      unpadded{1, 9, 11, 16, 16, 3, 3, 1, 1, 0, 0};
  for (bool backward : {false, true}) {
    CHECK_FALSE(SimdBackend::uses_winograd(conv1, backward));  // one channel in (forward) or out (gradient)
    CHECK_FALSE(SimdBackend::uses_winograd(strided, backward));
    CHECK_FALSE(SimdBackend::uses_winograd(unpadded, backward));
  }
}

TEST_CASE("every backend's dense, max-pool and ReLU match the reference", "[backend]") {
  ReferenceBackend ref;
  Rng rng(37);
  for (const Variant& v : variants_under_test()) {
    auto be = make_backend(v.name, v.threads);
    for (auto [n, fin, fout] : std::vector<std::array<int64_t, 3>>{
             {1, 6272, 128}, {5, 13, 7}, {32, 128, 10}, {9, 40, 33}, {3, 7, 100}, {32, 6272, 128}}) {
      INFO(v.describe() << " dense " << n << "x" << fin << " -> " << fout);
      const auto x = random_vector(n * fin, rng), w = random_vector(fout * fin, rng), b = random_vector(fout, rng);
      const auto dy = random_vector(n * fout, rng);
      const ParamsKey key = next_key(v.keyed);
      std::vector<float> want(static_cast<size_t>(n * fout), kNaN), got = want;
      ref.dense_forward(n, fin, fout, x.data(), w.data(), b.data(), want.data());
      be->dense_forward(n, fin, fout, x.data(), w.data(), b.data(), got.data(), key);
      expect_close(got, want, "dense forward");
      std::vector<float> dx_want(static_cast<size_t>(n * fin), kNaN), dx_got = dx_want;
      ref.dense_backward_input(n, fin, fout, dy.data(), w.data(), dx_want.data());
      be->dense_backward_input(n, fin, fout, dy.data(), w.data(), dx_got.data(), key);
      expect_close(dx_got, dx_want, "dense backward_input");
      auto dw_want = random_vector(fout * fin, rng), db_want = random_vector(fout, rng);
      auto dw_got = dw_want, db_got = db_want;
      ref.dense_backward_params(n, fin, fout, x.data(), dy.data(), dw_want.data(), db_want.data());
      be->dense_backward_params(n, fin, fout, x.data(), dy.data(), dw_got.data(), db_got.data());
      expect_close(dw_got, dw_want, "dense backward_params weight");
      expect_close(db_got, db_want, "dense backward_params bias");
    }
    // {batch, in_h, in_w, channels, kernel_h, kernel_w, stride_h, stride_w}
    for (const Pool2dGeometry& g : std::vector<Pool2dGeometry>{{2, 28, 28, 32, 2, 2, 2, 2},
                                                               {3, 7, 5, 3, 3, 2, 2, 1},
                                                               {1, 14, 14, 64, 2, 2, 2, 2},
                                                               {2, 7, 7, 19, 2, 2, 2, 2},
                                                               {1, 5, 6, 4, 2, 3, 1, 3},
                                                               {2, 9, 8, 5, 3, 2, 3, 2}}) {
      INFO(v.describe() << " maxpool " << g.batch << "x" << g.in_h << "x" << g.in_w << "x" << g.channels << " k"
                        << g.kernel_h << "x" << g.kernel_w << " s" << g.stride_h << "," << g.stride_w);
      const int64_t in_n = g.batch * g.in_h * g.in_w * g.channels, out_n = g.batch * g.out_h() * g.out_w() * g.channels;
      auto in = random_vector(in_n, rng);
      for (int64_t i = 0; i < in_n / 3; ++i) in[static_cast<size_t>(i)] = 0.0f;  // flat regions: ties
      // Ties between later window elements too: two values only.
      for (int64_t i = in_n / 3; i < in_n / 2; ++i) {
        float& e = in[static_cast<size_t>(i)];
        e = e > 0 ? 0.5f : -0.5f;
      }
      std::vector<float> want(static_cast<size_t>(out_n), kNaN), got = want;
      std::vector<int64_t> arg_want(static_cast<size_t>(out_n), -1), arg_got = arg_want;
      ref.maxpool2d_forward(g, in.data(), want.data(), arg_want.data());
      be->maxpool2d_forward(g, in.data(), got.data(), arg_got.data());
      expect_close(got, want, "maxpool forward");
      CHECK(arg_got == arg_want);
      const auto dout = random_vector(out_n, rng);
      std::vector<float> din_want(static_cast<size_t>(in_n), kNaN), din_got = din_want;
      ref.maxpool2d_backward(g, dout.data(), arg_want.data(), din_want.data());
      be->maxpool2d_backward(g, dout.data(), arg_want.data(), din_got.data());
      expect_close(din_got, din_want, "maxpool backward");
    }
    for (int64_t count : {int64_t{1001}, int64_t{3} << 16, int64_t{7}}) {
      INFO(v.describe() << " relu " << count);
      const auto x = random_vector(count, rng), dx = random_vector(count, rng);
      std::vector<float> want(static_cast<size_t>(count), kNaN), got = want, dwant = want, dgot = want;
      ref.relu_forward(count, x.data(), want.data());
      be->relu_forward(count, x.data(), got.data());
      expect_close(got, want, "relu forward");
      ref.relu_backward(count, want.data(), dx.data(), dwant.data());
      be->relu_backward(count, want.data(), dx.data(), dgot.data());
      expect_close(dgot, dwant, "relu backward");
    }
    // SmeLU: the base class's loops (the reference backend keeps them) are
    // the reference; inputs in [-1, 1] against beta 0.5 reach all three
    // pieces, and a backend's own version gives the same floats.
    for (int64_t count : {int64_t{1001}, int64_t{3} << 16, int64_t{7}}) {
      INFO(v.describe() << " smelu " << count);
      const auto x = random_vector(count, rng), dx = random_vector(count, rng);
      std::vector<float> want(static_cast<size_t>(count), kNaN), got = want, dwant = want, dgot = want;
      ref.smelu_forward(count, 0.5, x.data(), want.data());
      be->smelu_forward(count, 0.5, x.data(), got.data());
      CHECK(got == want);
      ref.smelu_backward(count, 0.5, x.data(), dx.data(), dwant.data());
      be->smelu_backward(count, 0.5, x.data(), dx.data(), dgot.data());
      CHECK(dgot == dwant);
    }
  }
}

TEST_CASE("every backend's per-channel affine map matches the base class's loop", "[backend][batchnorm]") {
  ReferenceBackend ref;  // the base class's loop
  Rng rng(41);
  for (const Variant& v : variants_under_test()) {
    auto be = make_backend(v.name, v.threads);
    // Channel counts below, at and past the SIMD widths; enough pixels for several chunks.
    for (auto [pixels, channels] : std::vector<std::array<int64_t, 2>>{{1, 1}, {7, 3}, {5, 16}, {9, 17}, {4000, 32}, {3, 70}}) {
      INFO(v.describe() << " " << pixels << " pixels x " << channels << " channels");
      const int64_t count = pixels * channels;
      const auto in = random_vector(count, rng), scale = random_vector(channels, rng), shift = random_vector(channels, rng);
      for (const float* s : {shift.data(), static_cast<const float*>(nullptr)}) {
        std::vector<float> want(static_cast<size_t>(count), kNaN), got = want;
        ref.channel_affine(count, channels, in.data(), scale.data(), s, want.data());
        be->channel_affine(count, channels, in.data(), scale.data(), s, got.data());
        expect_close(got, want, s ? "scale and shift" : "scale only", 1e-6);
        if (!s) {
          for (int64_t i = 0; i < count; i += channels + 1)  // spot checks of the formula itself
            CHECK(want[static_cast<size_t>(i)] == scale[static_cast<size_t>(i % channels)] * in[static_cast<size_t>(i)]);
        }
      }
    }
  }
}

TEST_CASE("the reference SmeLU is the closed form in each piece, and its derivative", "[backend][smelu]") {
  ReferenceBackend ref;
  const double beta = 0.5;
  const std::vector<float> x = {-2.0f, -0.5f, -0.25f, 0.0f, 0.3f, 0.5f, 1.5f};
  std::vector<float> y(x.size()), g(x.size()), ones(x.size(), 1.0f);
  ref.smelu_forward(static_cast<int64_t>(x.size()), beta, x.data(), y.data());
  ref.smelu_backward(static_cast<int64_t>(x.size()), beta, x.data(), ones.data(), g.data());
  for (size_t i = 0; i < x.size(); ++i) {
    const double v = x[i];
    const double want = v >= beta ? v : (v <= -beta ? 0.0 : (v + beta) * (v + beta) / (4 * beta));
    const double slope = v >= beta ? 1.0 : (v <= -beta ? 0.0 : (v + beta) / (2 * beta));
    INFO("x = " << v);
    CHECK(y[i] == Approx(want).margin(1e-7));
    CHECK(g[i] == Approx(slope).margin(1e-7));
  }
}

namespace {

struct ForwardBackward {
  std::vector<float> out, grad;
};

// Logits, and the input gradient of sum(logits * r), for a batch.
ForwardBackward run_model(Model& m, Backend& be, const Tensor& x, const Tensor& r) {
  const Tensor out = m.forward(x, be);
  const Tensor g = m.backward(r, be);
  return {std::vector<float>(out.data(), out.data() + out.size()), std::vector<float>(g.data(), g.data() + g.size())};
}

}  // namespace

// The whole-model tests follow the rule of decision_margins.h: logits (and
// F) are compared everywhere; an input gradient element only where no
// fragile decision of the pass that produced it (a ReLU pre-activation
// within T rounding scales of 0, two max-pool inputs within T scales of each
// other but not tied exactly) can reach it, since such a decision two correct
// backends may take either way, and which way depends on the CPU's summation
// order. (Whole rows would be too coarse: at T = 64 most rows of these
// 28x28 networks hold a fragile decision somewhere, most of them in the
// first layers, whose flips reach a few pixels.) The elements compared must
// be most of them, so the tests cannot go vacuous.
namespace {

// The elements of g that no fragile decision reaches.
std::vector<float> unreached(const std::vector<float>& g, const std::vector<uint8_t>& reach, size_t begin = 0) {
  std::vector<float> kept;
  for (size_t i = 0; i < reach.size() - begin && i < g.size(); ++i)
    if (!reach[begin + i]) kept.push_back(g[i]);
  return kept;
}

}  // namespace

TEST_CASE("whole models agree across backends: logits and input gradients", "[backend][model]") {
  for (const auto& [what, arch] : {std::pair{"fashion_cnn_v1", named_architecture("fashion_cnn_v1")},
                                   std::pair{"fashion_cnn_smelu", named_architecture("fashion_cnn_smelu")},
                                   std::pair{"odd_cnn", odd_cnn()}, std::pair{"depthwise_cnn", depthwise_cnn()}}) {
    Model m(arch);
    m.init_he(11);
    Rng rng(5);
    int64_t rows = 0, fragile_rows = 0, elements = 0, compared = 0;
    std::string decisions;
    for (int64_t batch : {int64_t{1}, int64_t{7}, int64_t{32}}) {
      const Tensor x = random_tensor(m.batch_input_shape(batch), rng, 0, 1);
      Tensor r({batch, m.num_outputs()});
      for (int64_t i = 0; i < batch; ++i) r[i * m.num_outputs() + i % m.num_outputs()] = 1.0f;  // one logit each
      ReferenceBackend ref;
      const ForwardBackward want = run_model(m, ref, x, r);
      const FragileDecisions fragile = find_fragile_decisions(m, x);
      rows += batch;
      fragile_rows += fragile.fragile_rows();
      elements += x.size();
      compared += x.size() - fragile.reached();
      decisions +=
          " [batch " + std::to_string(batch) + ": " + (fragile.per_layer.empty() ? "none" : fragile.per_layer) + "]";
      const std::vector<float> want_stable = unreached(want.grad, fragile.reach);
      for (const std::string& name : backends_under_test()) {
        INFO(what << " batch " << batch << " " << name << ": " << fragile.fragile_rows()
                  << " rows with a fragile decision (" << fragile.per_layer << "), reaching " << fragile.reached()
                  << " of " << x.size() << " elements");
        auto be = make_backend(name);
        const ForwardBackward got = run_model(m, *be, x, r);
        expect_close(got.out, want.out, "logits", 1e-4);
        REQUIRE(got.grad.size() == want.grad.size());
        CHECK(count_not_finite(got.grad) == 0);  // every element written, reached or not
        expect_close(unreached(got.grad, fragile.reach), want_stable,
                     "input gradient where no fragile decision reaches", 1e-4);
        // Again: the backend's packed weights are reused and give the same numbers.
        const ForwardBackward again = run_model(m, *be, x, r);
        CHECK(again.out == got.out);
        CHECK(again.grad == got.grad);
      }
    }
    INFO(what << ": input gradients compared in " << compared << " of " << elements << " elements; " << fragile_rows
              << " of " << rows << " rows hold a fragile decision; fragile decisions per layer:" << decisions);
    CHECK(2 * compared >= elements);
  }
}

namespace {

// F and dF/dx at every path point, as IG evaluates them (the same chunks).
struct PerPoint {
  std::vector<double> values;
  std::vector<float> grads;  // points x numel
};

PerPoint per_point(TargetFunction& f, const Tensor& points, int64_t batch_size) {
  const int64_t count = points.dim(0), numel = points.size() / count;
  PerPoint p;
  p.values.assign(static_cast<size_t>(count), std::numeric_limits<double>::quiet_NaN());
  p.grads.assign(static_cast<size_t>(points.size()), kNaN);
  evaluate_in_chunks(
      f, count, batch_size,
      [&](int64_t i, float* dst) { std::copy(points.data() + i * numel, points.data() + (i + 1) * numel, dst); },
      [&](int64_t i, double value, const float* grad) {
        p.values[static_cast<size_t>(i)] = value;
        std::copy(grad, grad + numel, p.grads.begin() + static_cast<std::ptrdiff_t>(i * numel));
      });
  return p;
}

std::vector<float> point_row(const std::vector<float>& grads, int64_t k, int64_t numel) {
  const auto b = grads.begin() + static_cast<std::ptrdiff_t>(k * numel);
  return std::vector<float>(b, b + static_cast<std::ptrdiff_t>(numel));
}

}  // namespace

// IG_i = (x_i - x'_i) sum_k w_k g_k,i over the path points k. Where a
// fragile decision at point k reaches element i, the backend's gradient
// g_be,k,i may differ from the reference's g_ref,k,i by a whole unit's
// contribution, at most |g_ref,k,i| + |g_be,k,i|. So, element by element:
//   |IG_be - IG_ref| <= 1e-4 max |IG_ref|
//                       + sum over k reaching i of w_k |x - x'| (|g_ref,k| + |g_be,k|)
// (the gap: the same allowance summed over i), and at every point the
// gradient agrees within 1e-4 of the largest along the path wherever no
// fragile decision reaches; F agrees at every point. A wrong kernel shows
// where nothing is fragile, which must be most of the elements.
TEST_CASE("whole-model IG agrees across backends within 1e-4 relative", "[backend][model][ig]") {
  for (const auto& [what, arch] : {std::pair{"fashion_cnn_v1", named_architecture("fashion_cnn_v1")},
                                   std::pair{"fashion_cnn_smelu", named_architecture("fashion_cnn_smelu")},
                                   std::pair{"odd_cnn", odd_cnn()}, std::pair{"depthwise_cnn", depthwise_cnn()}}) {
    Model m(arch);
    m.init_he(21);
    Rng rng(6);
    Tensor x = random_tensor(m.batch_input_shape(1), rng, 0, 1);
    for (int64_t i = 0; i < x.size() / 3; ++i) x[i] = 0.0f;  // a flat region: max-pool ties along the path
    const Tensor baseline(m.batch_input_shape(1));
    IGOptions options;
    options.quadrature = Quadrature::GaussLegendre;
    options.steps = 32;
    options.batch_size = 16;  // two chunks
    ReferenceBackend ref;
    ModelTarget ref_target(m, ref, 1);
    const Attribution want = integrated_gradients(ref_target, x, baseline, options);
    const std::vector<float> want_values(want.values.data(), want.values.data() + want.values.size());

    // The path points IG evaluates, their fragile decisions, and the reference's gradients there.
    const QuadratureRule rule = quadrature_rule(options.quadrature, options.steps);
    const StraightPath path(baseline, x);
    const int64_t points = static_cast<int64_t>(rule.size()), numel = x.size();
    Tensor pts(m.batch_input_shape(points));
    for (int64_t k = 0; k < points; ++k) path.point(rule.nodes[static_cast<size_t>(k)], pts.data() + k * numel);
    const FragileDecisions fragile = find_fragile_decisions(m, pts);
    const PerPoint want_pts = per_point(ref_target, pts, options.batch_size);
    std::vector<double> delta(static_cast<size_t>(numel));
    path.velocity(0.0, delta.data());
    {
      // They are the gradients IG integrated.
      std::vector<double> ig(static_cast<size_t>(numel), 0.0);
      for (int64_t k = 0; k < points; ++k)
        for (int64_t i = 0; i < numel; ++i)
          ig[static_cast<size_t>(i)] += rule.weights[static_cast<size_t>(k)] *
                                        want_pts.grads[static_cast<size_t>(k * numel + i)] *
                                        delta[static_cast<size_t>(i)];
      expect_close(std::vector<float>(ig.begin(), ig.end()), want_values, "IG from the per-point gradients", 1e-6, 0.0);
    }
    double gradient_scale = 0.0;
    for (float g : want_pts.grads) gradient_scale = std::max(gradient_scale, static_cast<double>(std::abs(g)));
    INFO(what << ": " << fragile.fragile_rows() << " of " << points << " path points with a fragile decision ("
              << fragile.per_layer << "; " << fragile.exact_ties << " windows tied exactly), reaching "
              << fragile.reached() << " of " << pts.size() << " gradient elements");
    CHECK(2 * fragile.reached() <= pts.size());

    for (const std::string& name : backends_under_test()) {
      INFO(what << " " << name);
      auto be = make_backend(name);
      ModelTarget target(m, *be, 1);
      const Attribution got = integrated_gradients(target, x, baseline, options);
      const PerPoint got_pts = per_point(target, pts, options.batch_size);
      for (int64_t k = 0; k < points; ++k) {
        INFO("path point " << k << " (alpha " << rule.nodes[static_cast<size_t>(k)] << ")"
                           << (fragile.fragile(k) ? ", fragile" : ""));
        CHECK(std::abs(got_pts.values[static_cast<size_t>(k)] - want_pts.values[static_cast<size_t>(k)]) <=
              1e-4 * std::max(1.0, std::abs(want_pts.values[static_cast<size_t>(k)])));
        const std::vector<float> g = point_row(got_pts.grads, k, numel);
        CHECK(count_not_finite(g) == 0);
        const size_t begin = static_cast<size_t>(k * numel);
        expect_close(unreached(g, fragile.reach, begin),
                     unreached(point_row(want_pts.grads, k, numel), fragile.reach, begin),
                     "input gradient where no fragile decision reaches", 1e-4, gradient_scale);
      }
      std::vector<double> allowance(static_cast<size_t>(numel), 0.0);
      for (int64_t k = 0; k < points; ++k) {
        const double w = rule.weights[static_cast<size_t>(k)];
        for (int64_t i = 0; i < numel; ++i) {
          const size_t j = static_cast<size_t>(k * numel + i);
          if (!fragile.reach[j]) continue;
          const double magnitudes =
              std::abs(static_cast<double>(want_pts.grads[j])) + std::abs(static_cast<double>(got_pts.grads[j]));
          allowance[static_cast<size_t>(i)] += w * std::abs(delta[static_cast<size_t>(i)]) * magnitudes;
        }
      }
      double total_allowance = 0.0;
      for (double a : allowance) total_allowance += a;
      expect_within_allowance(std::vector<float>(got.values.data(), got.values.data() + got.values.size()), want_values,
                              allowance, "IG attributions", 1e-4);
      CHECK(std::abs(got.f_input - want.f_input) <= 1e-4 * std::max(1.0, std::abs(want.f_input)));
      INFO("gap " << got.gap << " against " << want.gap << ", allowance " << total_allowance);
      CHECK(std::abs(got.gap - want.gap) <=
            1e-4 * std::max(1.0, std::abs(want.f_input - want.f_baseline)) + total_allowance);
    }
  }
}

TEST_CASE("TimedBackend passes every op through unchanged and counts each kind", "[backend][timed]") {
  Model m(named_architecture("fashion_cnn_v1"));
  m.init_he(3);
  Rng rng(9);
  const Tensor x = random_tensor(m.batch_input_shape(2), rng, 0, 1);
  Tensor r({2, m.num_outputs()});
  r[1] = 1.0f;
  r[m.num_outputs() + 4] = 1.0f;
  ReferenceBackend ref, inner;
  TimedBackend timed(inner);
  const ForwardBackward want = run_model(m, ref, x, r);
  const ForwardBackward got = run_model(m, timed, x, r);
  CHECK(got.out == want.out);  // the same backend underneath: bit for bit
  CHECK(got.grad == want.grad);
  // fashion_cnn_v1: 3 convolutions, 2 dense layers, 2 max-pools, 4 ReLUs.
  CHECK(timed.calls(TimedBackend::ConvForward) == 3);
  CHECK(timed.calls(TimedBackend::ConvBackwardInput) == 3);
  CHECK(timed.calls(TimedBackend::DenseForward) == 2);
  CHECK(timed.calls(TimedBackend::DenseBackwardInput) == 2);
  CHECK(timed.calls(TimedBackend::MaxPoolForward) == 2);
  CHECK(timed.calls(TimedBackend::MaxPoolBackward) == 2);
  CHECK(timed.calls(TimedBackend::ReluForward) == 4);
  CHECK(timed.calls(TimedBackend::ReluBackward) == 4);
  CHECK(timed.calls(TimedBackend::ConvBackwardParams) == 0);
  CHECK(timed.calls(TimedBackend::SmeluForward) == 0);
  double sum = 0.0;
  for (int op = 0; op < TimedBackend::kOps; ++op) {
    CHECK(timed.ms(static_cast<TimedBackend::Op>(op)) >= 0.0);
    sum += timed.ms(static_cast<TimedBackend::Op>(op));
  }
  CHECK(timed.total_ms() == Approx(sum));
  CHECK(timed.ms(TimedBackend::ConvForward) > 0.0);
  CHECK(std::string(TimedBackend::op_name(TimedBackend::ConvForward)) == "conv2d forward");
  timed.reset();
  CHECK(timed.calls(TimedBackend::ConvForward) == 0);
  CHECK(timed.total_ms() == 0.0);

  // fashion_cnn_smelu: the same with 4 SmeLUs in place of the ReLUs.
  Model smooth(named_architecture("fashion_cnn_smelu"));
  smooth.init_he(3);
  const ForwardBackward smooth_want = run_model(smooth, ref, x, r);
  const ForwardBackward smooth_got = run_model(smooth, timed, x, r);
  CHECK(smooth_got.out == smooth_want.out);
  CHECK(smooth_got.grad == smooth_want.grad);
  CHECK(timed.calls(TimedBackend::SmeluForward) == 4);
  CHECK(timed.calls(TimedBackend::SmeluBackward) == 4);
  CHECK(timed.calls(TimedBackend::ReluForward) == 0);
}

TEST_CASE("the simd backend packs weights once per contents and again after a change", "[backend][simd]") {
  Model m(odd_cnn());
  m.init_he(3);
  Rng rng(9);
  const Tensor x = random_tensor(m.batch_input_shape(4), rng, 0, 1);
  Tensor r({4, m.num_outputs()}, 1.0f);
  SimdBackend simd(2);
  ReferenceBackend ref;
  run_model(m, simd, x, r);
  // Four weighted layers, each packed for its forward and its input
  // gradient; the stride-(2, 1) convolution's input gradient once for each
  // of the two phases of its stride.
  CHECK(simd.pack_count() == 9);
  for (int i = 0; i < 3; ++i) run_model(m, simd, x, r);
  CHECK(simd.pack_count() == 9);
  // Another batch size reuses the same packed weights.
  const Tensor x1 = random_tensor(m.batch_input_shape(1), rng, 0, 1);
  run_model(m, simd, x1, Tensor({1, m.num_outputs()}, 1.0f));
  CHECK(simd.pack_count() == 9);

  // Change one weight in place, as an optimizer step would: the next pass
  // repacks that layer (the strided one: forward and two phases) and follows
  // the new weights.
  Tensor& w = m.layer(3).parameters().at(0).value;
  w[5] += 0.5f;
  const ForwardBackward got = run_model(m, simd, x, r);
  CHECK(simd.pack_count() == 12);
  const ForwardBackward want = run_model(m, ref, x, r);
  expect_close(got.out, want.out, "logits after a weight change", 1e-4);
  expect_close(got.grad, want.grad, "input gradient after a weight change", 1e-4);

  // A bias change repacks the forward weights only.
  m.layer(6).parameters().at(1).value[0] -= 1.0f;
  const ForwardBackward got2 = run_model(m, simd, x, r);
  CHECK(simd.pack_count() == 13);
  const ForwardBackward want2 = run_model(m, ref, x, r);
  expect_close(got2.out, want2.out, "logits after a bias change", 1e-4);

  // A model loaded in place of another (same shapes, perhaps the same
  // addresses) never sees the old model's packed weights.
  m = Model(odd_cnn());
  m.init_he(4);
  const ForwardBackward got3 = run_model(m, simd, x, r);
  const ForwardBackward want3 = run_model(m, ref, x, r);
  expect_close(got3.out, want3.out, "logits of a new model", 1e-4);
  expect_close(got3.grad, want3.grad, "input gradient of a new model", 1e-4);
}

#ifdef IGSCOPE_HAVE_XNNPACK
TEST_CASE("the xnnpack backend creates weight operators once per contents", "[backend][xnnpack]") {
  Model m(odd_cnn());
  m.init_he(3);
  Rng rng(9);
  const Tensor x = random_tensor(m.batch_input_shape(4), rng, 0, 1);
  Tensor r({4, m.num_outputs()}, 1.0f);
  XnnpackBackend xnn(2);
  ReferenceBackend ref;
  run_model(m, xnn, x, r);
  CHECK(xnn.create_count() == 8);
  run_model(m, xnn, x, r);
  run_model(m, xnn, random_tensor(m.batch_input_shape(3), rng, 0, 1), Tensor({3, m.num_outputs()}, 1.0f));
  CHECK(xnn.create_count() == 8);
  m.layer(0).parameters().at(0).value[2] *= -1.0f;
  const ForwardBackward got = run_model(m, xnn, x, r);
  CHECK(xnn.create_count() == 10);
  const ForwardBackward want = run_model(m, ref, x, r);
  expect_close(got.out, want.out, "logits after a weight change", 1e-4);
  expect_close(got.grad, want.grad, "input gradient after a weight change", 1e-4);
}
#endif

TEST_CASE("the thread pool runs every task once, back to back, and passes exceptions on", "[backend][threads]") {
  for (int threads : {1, 2, 3}) {
    INFO(threads << " threads");
    ThreadPool pool(threads);
    CHECK(pool.threads() == threads);
    bool all_once = true;
    for (int round = 0; round < 2000; ++round) {
      const int64_t count = 1 + round % 37;
      std::vector<std::atomic<int>> hits(static_cast<size_t>(count));
      pool.parallel_for(count, [&](int64_t i) { hits[static_cast<size_t>(i)].fetch_add(1); });
      for (auto& h : hits) all_once = all_once && h.load() == 1;
    }
    CHECK(all_once);
    CHECK_THROWS_WITH(pool.parallel_for(50,
                                        [](int64_t i) {
                                          if (i == 17) throw Error("task 17 failed");
                                        }),
                      "task 17 failed");
    std::atomic<int64_t> sum{0};
    pool.parallel_for(100, [&](int64_t i) { sum += i; });  // still usable after an exception
    CHECK(sum.load() == 4950);
  }
  CHECK_THROWS_WITH(ThreadPool(-2), Catch::Contains("thread count must be >= 0"));
}

TEST_CASE("Tensor::content_id changes with every mutable access and never repeats", "[backend][tensor]") {
  Tensor a({3, 2}, 1.0f);
  const uint64_t id = a.content_id();
  CHECK(a.content_id() == id);
  const Tensor& ca = a;
  CHECK(ca[1] == 1.0f);
  CHECK(ca.data() != nullptr);
  CHECK(a.content_id() == id);  // const reads keep it
  a[1] = 2.0f;
  const uint64_t id2 = a.content_id();
  CHECK(id2 != id);
  a.data();
  CHECK(a.content_id() != id2);
  const uint64_t id3 = a.content_id();
  a.fill(0.0f);
  CHECK(a.content_id() != id3);
  Tensor b = a;  // a copy is another tensor
  CHECK(b.content_id() != a.content_id());
  const uint64_t ida = a.content_id();
  Tensor c = std::move(a);  // a move carries the contents and the id
  CHECK(c.content_id() == ida);
}

TEST_CASE("bad kernel parameters give clear errors", "[backend][errors]") {
  for (const std::string& name : backends_under_test()) {
    INFO(name);
    auto be = make_backend(name, 1);
    std::vector<float> buf(64, 0.0f);
    std::vector<int64_t> arg(64);
    Conv2dGeometry g{1, 4, 4, 1, 1, 3, 3, 1, 1, 0, 0};
    g.stride_h = 0;
    CHECK_THROWS_AS(be->conv2d_forward(g, buf.data(), buf.data(), nullptr, buf.data()), Error);
    CHECK_THROWS_WITH(be->conv2d_backward_input(g, buf.data(), buf.data(), buf.data()), Catch::Contains("stride"));
    g.stride_h = 1;
    g.kernel_h = 9;
    CHECK_THROWS_WITH(be->conv2d_forward(g, buf.data(), buf.data(), nullptr, buf.data()),
                      Catch::Contains("smaller than the kernel"));
    g.kernel_h = 3;
    g.dilation_w = 2;  // a 3x5 extent on a 4x4 image
    CHECK_THROWS_WITH(be->conv2d_backward_input(g, buf.data(), buf.data(), buf.data()),
                      Catch::Contains("smaller than the kernel (dilated)"));
    g.dilation_w = 0;
    CHECK_THROWS_WITH(be->conv2d_forward(g, buf.data(), buf.data(), nullptr, buf.data()),
                      Catch::Contains("dilation must be >= 1"));
    const Conv2dGeometry ungrouped{1, 4, 4, 4, 6, 3, 3, 1, 1, 1, 1, 4, 1, 1};  // 6 outputs in 4 groups
    CHECK_THROWS_WITH(be->conv2d_forward(ungrouped, buf.data(), buf.data(), nullptr, buf.data()),
                      Catch::Contains("groups (4) must be >= 1 and divide"));
    CHECK_THROWS_WITH(be->conv2d_backward_params(ungrouped, buf.data(), buf.data(), buf.data(), nullptr),
                      Catch::Contains("groups (4)"));
    if (name == "eigen") continue;  // dense and pooling: the Eigen backend trusts the layers' checks
    CHECK_THROWS_WITH(be->dense_forward(1, 0, 3, buf.data(), buf.data(), nullptr, buf.data()),
                      Catch::Contains("features must be >= 1"));
    CHECK_THROWS_WITH(be->dense_backward_input(-1, 2, 3, buf.data(), buf.data(), buf.data()),
                      Catch::Contains("batch"));
    CHECK_THROWS_WITH(be->maxpool2d_forward({1, 1, 4, 1, 2, 2, 2, 2}, buf.data(), buf.data(), arg.data()),
                      Catch::Contains("window"));
  }
  CHECK_THROWS_WITH(make_backend("simd", -1), Catch::Contains("threads must be >= 0"));
}

TEST_CASE("unknown backend names are refused", "[backend]") {
  CHECK_THROWS_WITH(make_backend("tpu"), Catch::Contains("unknown backend 'tpu'"));
}
