// Every backend's ops against the reference backend, on random shapes (batch
// 1 and > 1, odd sizes, stride 1 and 2, padding 0 and 1, non-square kernels).
// Outputs are pre-filled with NaN so an element a kernel forgets fails.
// Tolerance: max |backend - reference| <= 1e-5 * max(1, max |reference|)
// (float32 with different summation orders against double accumulation).
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <sstream>

#include "gradient_check.h"
#include "igscope/backend/backend.h"
#include "igscope/backend/reference.h"

using namespace igscope;
using namespace igscope::testing;

namespace {

constexpr double kTolerance = 1e-5;
const float kNaN = std::numeric_limits<float>::quiet_NaN();

std::vector<std::string> backends_under_test() {
  std::vector<std::string> names;
  std::stringstream ss(available_backends());
  for (std::string name; std::getline(ss, name, ',');) {
    name.erase(0, name.find_first_not_of(' '));
    if (name != "reference") names.push_back(name);
  }
  return names;
}

// Accumulating ops start from the same random values in both runs.
void expect_close(const std::vector<float>& got, const std::vector<float>& want, const std::string& what) {
  REQUIRE(got.size() == want.size());
  double scale = 1.0, worst = 0.0;
  size_t not_finite = 0;
  for (float w : want) scale = std::max(scale, static_cast<double>(std::abs(w)));
  for (size_t i = 0; i < got.size(); ++i) {
    if (!std::isfinite(got[i])) ++not_finite;
    else worst = std::max(worst, std::abs(static_cast<double>(got[i]) - want[i]));
  }
  INFO(what << ": max |difference| " << worst << ", scale " << scale);
  CHECK(not_finite == 0);  // an element left at NaN was never written
  CHECK(worst <= kTolerance * scale);
}

std::vector<float> random_vector(int64_t n, Rng& rng) {
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = static_cast<float>(rng.uniform(-1, 1));
  return v;
}

}  // namespace

TEST_CASE("every backend's conv2d matches the reference", "[backend][conv2d]") {
  ReferenceBackend ref;
  Rng rng(31);
  const std::vector<Conv2dGeometry> cases = {
      {1, 28, 28, 1, 32, 3, 3, 1, 1, 1, 1},  // fashion conv1, batch 1
      {3, 7, 9, 5, 6, 3, 3, 2, 2, 1, 1},     // odd sizes, stride 2, pad 1
      {2, 6, 5, 3, 4, 2, 3, 1, 2, 0, 1},     // non-square kernel, mixed stride/pad
      {4, 5, 5, 8, 3, 1, 1, 1, 1, 0, 0},     // 1x1
      {2, 14, 14, 32, 64, 3, 3, 1, 1, 1, 1}, // fashion conv2, batch 2
  };
  for (const std::string& name : backends_under_test()) {
    auto be = make_backend(name);
    for (const Conv2dGeometry& g : cases) {
      INFO(name << " conv " << g.batch << "x" << g.in_h << "x" << g.in_w << "x" << g.in_c << " -> " << g.out_c
                << " k" << g.kernel_h << "x" << g.kernel_w << " s" << g.stride_h << "," << g.stride_w << " p"
                << g.pad_h << "," << g.pad_w);
      const int64_t in_n = g.batch * g.in_h * g.in_w * g.in_c, out_n = g.batch * g.out_h() * g.out_w() * g.out_c;
      const int64_t w_n = g.out_c * g.in_c * g.kernel_h * g.kernel_w;
      const auto in = random_vector(in_n, rng), w = random_vector(w_n, rng), b = random_vector(g.out_c, rng);
      const auto dout = random_vector(out_n, rng);

      std::vector<float> want(static_cast<size_t>(out_n), kNaN), got(static_cast<size_t>(out_n), kNaN);
      ref.conv2d_forward(g, in.data(), w.data(), b.data(), want.data());
      be->conv2d_forward(g, in.data(), w.data(), b.data(), got.data());
      expect_close(got, want, "forward");

      std::vector<float> din_want(static_cast<size_t>(in_n), kNaN), din_got(static_cast<size_t>(in_n), kNaN);
      ref.conv2d_backward_input(g, dout.data(), w.data(), din_want.data());
      be->conv2d_backward_input(g, dout.data(), w.data(), din_got.data());
      expect_close(din_got, din_want, "backward_input");

      auto dw_want = random_vector(w_n, rng), db_want = random_vector(g.out_c, rng);
      auto dw_got = dw_want, db_got = db_want;
      ref.conv2d_backward_params(g, in.data(), dout.data(), dw_want.data(), db_want.data());
      be->conv2d_backward_params(g, in.data(), dout.data(), dw_got.data(), db_got.data());
      expect_close(dw_got, dw_want, "backward_params weight");
      expect_close(db_got, db_want, "backward_params bias");
    }
  }
}

TEST_CASE("every backend's dense, max-pool and ReLU match the reference", "[backend]") {
  ReferenceBackend ref;
  Rng rng(37);
  for (const std::string& name : backends_under_test()) {
    auto be = make_backend(name);
    for (auto [n, fin, fout] : std::vector<std::array<int64_t, 3>>{{1, 6272, 128}, {5, 13, 7}, {32, 128, 10}}) {
      INFO(name << " dense " << n << "x" << fin << " -> " << fout);
      const auto x = random_vector(n * fin, rng), w = random_vector(fout * fin, rng), b = random_vector(fout, rng);
      const auto dy = random_vector(n * fout, rng);
      std::vector<float> want(static_cast<size_t>(n * fout), kNaN), got = want;
      ref.dense_forward(n, fin, fout, x.data(), w.data(), b.data(), want.data());
      be->dense_forward(n, fin, fout, x.data(), w.data(), b.data(), got.data());
      expect_close(got, want, "dense forward");
      std::vector<float> dx_want(static_cast<size_t>(n * fin), kNaN), dx_got = dx_want;
      ref.dense_backward_input(n, fin, fout, dy.data(), w.data(), dx_want.data());
      be->dense_backward_input(n, fin, fout, dy.data(), w.data(), dx_got.data());
      expect_close(dx_got, dx_want, "dense backward_input");
      auto dw_want = random_vector(fout * fin, rng), db_want = random_vector(fout, rng);
      auto dw_got = dw_want, db_got = db_want;
      ref.dense_backward_params(n, fin, fout, x.data(), dy.data(), dw_want.data(), db_want.data());
      be->dense_backward_params(n, fin, fout, x.data(), dy.data(), dw_got.data(), db_got.data());
      expect_close(dw_got, dw_want, "dense backward_params weight");
      expect_close(db_got, db_want, "dense backward_params bias");
    }
    for (const Pool2dGeometry& g : std::vector<Pool2dGeometry>{{2, 28, 28, 32, 2, 2, 2, 2}, {3, 7, 5, 3, 3, 2, 2, 1}}) {
      INFO(name << " maxpool");
      const int64_t in_n = g.batch * g.in_h * g.in_w * g.channels, out_n = g.batch * g.out_h() * g.out_w() * g.channels;
      auto in = random_vector(in_n, rng);
      for (int64_t i = 0; i < in_n / 3; ++i) in[static_cast<size_t>(i)] = 0.0f;  // flat regions: ties
      std::vector<float> want(static_cast<size_t>(out_n), kNaN), got = want;
      std::vector<int64_t> arg_want(static_cast<size_t>(out_n), -1), arg_got = arg_want;
      ref.maxpool2d_forward(g, in.data(), want.data(), arg_want.data());
      be->maxpool2d_forward(g, in.data(), got.data(), arg_got.data());
      expect_close(got, want, "maxpool forward");
      CHECK(arg_got == arg_want);
      const auto dout = random_vector(out_n, rng);
      std::vector<float> din_want(static_cast<size_t>(in_n), kNaN), din_got = din_want;
      ref.maxpool2d_backward(g, dout.data(), arg_want.data(), din_want.data());
      be->maxpool2d_backward(g, dout.data(), arg_got.data(), din_got.data());
      expect_close(din_got, din_want, "maxpool backward");
    }
    const auto v = random_vector(1001, rng), dv = random_vector(1001, rng);
    std::vector<float> want(1001, kNaN), got = want, dwant = want, dgot = want;
    ref.relu_forward(1001, v.data(), want.data());
    be->relu_forward(1001, v.data(), got.data());
    expect_close(got, want, "relu forward");
    ref.relu_backward(1001, want.data(), dv.data(), dwant.data());
    be->relu_backward(1001, got.data(), dv.data(), dgot.data());
    expect_close(dgot, dwant, "relu backward");
  }
}

TEST_CASE("unknown backend names are refused", "[backend]") {
  CHECK_THROWS_WITH(make_backend("tpu"), Catch::Contains("unknown backend 'tpu'"));
}
