// Pooling with PyTorch's window rules: maxpool2d with padding and ceil_mode,
// avgpool2d (padding, ceil_mode, count_include_pad) and global_avgpool.
//
//   - Output sizes against sizes PyTorch 1.13 gives (a table) and against a
//     window-by-window count written from the rules' wording.
//   - Forward passes against brute force over an explicitly padded grid
//     (-infinity or 0 in the padding, the divisor counted cell by cell).
//   - backward_input against central finite differences (gradient_check.h),
//     forward_tangent against backward_input (<t(v), u> = <v, b(u)>).
//   - Every backend against the reference (ties included for max-pool: the
//     first maximum in row-major window order, padding never chosen).
//   - Bad hyper-parameters are refused with clear messages; model JSON
//     round-trips, and old maxpool2d entries are written as they were.
//
// Tolerances: finite differences as test_layers_gradients.cpp (1e-3 of the
// largest gradient; these layers are linear or piecewise linear, so the
// difference quotient is exact up to float rounding, about 1e-5 here); the
// dot-product identity 1e-5 relative (float32 sums of a few hundred terms);
// backends 1e-5 of max(1, max |reference|) as test_backends.cpp (float sums
// against double), max-pool exactly.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>

#include "backend_compare.h"
#include "gradient_check.h"
#include "igscope/backend/backend.h"
#include "igscope/backend/reference.h"
#include "igscope/error.h"
#include "igscope/layers/avgpool2d.h"
#include "igscope/layers/maxpool2d.h"
#include "igscope/layers/pooling.h"
#include "igscope/model.h"

using namespace igscope;
using namespace igscope::testing;

namespace {

constexpr double kGradientTolerance = 1e-3;
const float kNaN = std::numeric_limits<float>::quiet_NaN();

struct PoolCase {
  int64_t n, h, w, c, kh, kw, sh, sw, ph, pw;
  bool ceil;
};

std::string describe(const PoolCase& p) {
  std::ostringstream os;
  os << p.n << "x" << p.h << "x" << p.w << "x" << p.c << " k" << p.kh << "x" << p.kw << " s" << p.sh << "," << p.sw
     << " p" << p.ph << "," << p.pw << (p.ceil ? " ceil" : " floor");
  return os.str();
}

Pool2dGeometry geometry_of(const PoolCase& p) {
  Pool2dGeometry g;
  g.batch = p.n;
  g.in_h = p.h;
  g.in_w = p.w;
  g.channels = p.c;
  g.kernel_h = p.kh;
  g.kernel_w = p.kw;
  g.stride_h = p.sh;
  g.stride_w = p.sw;
  g.pad_h = p.ph;
  g.pad_w = p.pw;
  g.ceil_mode = p.ceil;
  return g;
}

// Odd and even sizes, square and non-square windows, strides 1 to 3 (mixed
// per axis), padding 0 to 2 (at most half the window), floor and ceil mode,
// among them partial last windows, windows that overhang the padded input,
// a last window dropped by ceil_mode's rule, a 1x1 input and channel counts
// around the SIMD widths.
const std::vector<PoolCase> kCases = {
    {2, 5, 5, 3, 2, 2, 2, 2, 1, 1, true},    // ceil drops the window that would start in the right padding
    {2, 6, 6, 2, 3, 3, 2, 2, 1, 1, true},    // ceil adds a partial window
    {3, 7, 6, 3, 3, 3, 2, 2, 0, 0, true},    // ceil, no padding: overhangs on one axis only
    {2, 7, 5, 4, 3, 2, 2, 1, 1, 1, false},   // mixed stride, padding 1, floor
    {1, 8, 9, 5, 2, 3, 3, 2, 1, 1, true},    // gapped rows (stride > kernel), ceil
    {2, 9, 7, 2, 5, 3, 4, 2, 2, 1, true},    // padding 2 on a 5-high window
    {1, 1, 1, 3, 3, 3, 2, 2, 1, 1, true},    // one pixel under a padded 3x3 window
    {2, 4, 4, 17, 3, 3, 3, 3, 1, 1, true},   // 17 channels (a SIMD tail), windows with padding on both sides
    {1, 6, 6, 33, 2, 2, 2, 2, 0, 0, true},   // ceil where the windows tile exactly (the floor geometry)
    {2, 10, 11, 8, 4, 4, 3, 3, 2, 2, false}, // padding 2 = kernel / 2, floor
    {1, 5, 3, 16, 2, 2, 1, 1, 1, 0, true},   // stride 1 with padding on one axis
};

// Values pairwise at least `gap` apart, in random order, so that a step
// below gap / 2 never changes which cell is a window's maximum.
Tensor spread_tensor(const Shape& shape, Rng& rng, double gap) {
  Tensor t(shape);
  std::vector<int64_t> order(static_cast<size_t>(t.size()));
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int64_t>(i);
  for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[rng.below(i)]);
  const double offset = -gap * static_cast<double>(t.size()) / 2.0;
  for (int64_t i = 0; i < t.size(); ++i)
    t[order[static_cast<size_t>(i)]] = static_cast<float>(offset + gap * static_cast<double>(i));
  return t;
}

double dot(const Tensor& a, const Tensor& b) {
  REQUIRE(a.shape() == b.shape());
  double s = 0.0;
  for (int64_t i = 0; i < a.size(); ++i) s += static_cast<double>(a[i]) * b[i];
  return s;
}

// The number of windows along an axis, from the rules' wording: floor mode
// takes windows while they fit inside the padded input; ceil mode adds
// windows while the previous one has not reached the padded input's end, as
// long as the new one starts inside the input or the left padding.
int64_t windows_by_rule(int64_t in, int64_t k, int64_t s, int64_t p, bool ceil_mode) {
  const int64_t padded = in + 2 * p;
  int64_t o = 0;
  for (;; ++o) {
    const bool fits = ceil_mode ? o * s < in + p && (o == 0 || (o - 1) * s + k < padded) : o * s + k <= padded;
    if (!fits) break;
  }
  return o;
}

// The input laid into its padded grid (pad cells hold `fill`), with a mask
// of the input cells; windows are read there, starting at (oy * s, ox * s).
struct PaddedGrid {
  int64_t H, W;
  std::vector<double> value;
  std::vector<bool> inside;
};

PaddedGrid padded(const Tensor& x, const PoolCase& p, int64_t n, int64_t c, double fill) {
  PaddedGrid g{p.h + 2 * p.ph, p.w + 2 * p.pw, {}, {}};
  g.value.assign(static_cast<size_t>(g.H * g.W), fill);
  g.inside.assign(static_cast<size_t>(g.H * g.W), false);
  for (int64_t y = 0; y < p.h; ++y)
    for (int64_t xx = 0; xx < p.w; ++xx) {
      const size_t at = static_cast<size_t>((y + p.ph) * g.W + xx + p.pw);
      g.value[at] = x[((n * p.h + y) * p.w + xx) * p.c + c];
      g.inside[at] = true;
    }
  return g;
}

// Average pooling by brute force: sum and count the window's cells that lie
// in the padded grid; the divisor counts them all (count_include_pad) or the
// input cells among them.
std::vector<float> brute_avgpool(const Tensor& x, const PoolCase& p, bool count_include_pad) {
  const int64_t oh = windows_by_rule(p.h, p.kh, p.sh, p.ph, p.ceil), ow = windows_by_rule(p.w, p.kw, p.sw, p.pw, p.ceil);
  std::vector<float> out(static_cast<size_t>(p.n * oh * ow * p.c));
  for (int64_t n = 0; n < p.n; ++n)
    for (int64_t c = 0; c < p.c; ++c) {
      const PaddedGrid g = padded(x, p, n, c, 0.0);
      for (int64_t oy = 0; oy < oh; ++oy)
        for (int64_t ox = 0; ox < ow; ++ox) {
          double sum = 0.0;
          int64_t cells = 0, input_cells = 0;
          for (int64_t y = oy * p.sh; y < oy * p.sh + p.kh; ++y)
            for (int64_t xx = ox * p.sw; xx < ox * p.sw + p.kw; ++xx) {
              if (y >= g.H || xx >= g.W) continue;  // past the padded input (ceil_mode)
              const size_t at = static_cast<size_t>(y * g.W + xx);
              sum += g.value[at];
              ++cells;
              input_cells += g.inside[at] ? 1 : 0;
            }
          out[static_cast<size_t>(((n * oh + oy) * ow + ox) * p.c + c)] =
              static_cast<float>(sum / static_cast<double>(count_include_pad ? cells : input_cells));
        }
    }
  return out;
}

// Max pooling by brute force over the -infinity-padded grid: the first
// strictly larger value in row-major window order wins; the flat input index
// of the winner, or -1 if a padded cell won.
void brute_maxpool(const Tensor& x, const PoolCase& p, std::vector<float>& out, std::vector<int64_t>& argmax) {
  const int64_t oh = windows_by_rule(p.h, p.kh, p.sh, p.ph, p.ceil), ow = windows_by_rule(p.w, p.kw, p.sw, p.pw, p.ceil);
  out.assign(static_cast<size_t>(p.n * oh * ow * p.c), 0.0f);
  argmax.assign(out.size(), -1);
  const double inf = std::numeric_limits<double>::infinity();
  for (int64_t n = 0; n < p.n; ++n)
    for (int64_t c = 0; c < p.c; ++c) {
      const PaddedGrid g = padded(x, p, n, c, -inf);
      for (int64_t oy = 0; oy < oh; ++oy)
        for (int64_t ox = 0; ox < ow; ++ox) {
          double best = -inf;
          int64_t best_at = -1;
          bool first = true;
          for (int64_t y = oy * p.sh; y < oy * p.sh + p.kh; ++y)
            for (int64_t xx = ox * p.sw; xx < ox * p.sw + p.kw; ++xx) {
              if (y >= g.H || xx >= g.W) continue;
              const double v = g.value[static_cast<size_t>(y * g.W + xx)];
              if (first || v > best) {
                best = v;
                best_at = g.inside[static_cast<size_t>(y * g.W + xx)]
                              ? ((n * p.h + y - p.ph) * p.w + xx - p.pw) * p.c + c
                              : -1;
                first = false;
              }
            }
          const size_t o = static_cast<size_t>(((n * oh + oy) * ow + ox) * p.c + c);
          out[o] = static_cast<float>(best);
          argmax[o] = best_at;
        }
    }
}

// Inputs with ties: a third zeros (flat regions), a sixth two values only
// (ties between later cells), negative values next to the padding (which is
// -infinity, not 0: a window of negatives must not pick a padded cell).
std::vector<float> tie_heavy(int64_t count, Rng& rng) {
  auto v = random_vector(count, rng);
  for (int64_t i = 0; i < count / 3; ++i) v[static_cast<size_t>(i)] = 0.0f;
  for (int64_t i = count / 3; i < count / 2; ++i) {
    float& e = v[static_cast<size_t>(i)];
    e = e > 0 ? 0.5f : -0.5f;
  }
  for (int64_t i = count / 2; i < 2 * count / 3; ++i) v[static_cast<size_t>(i)] = -0.25f;
  return v;
}

struct BackendVariant {
  std::string name;
  int threads;
};

// Every backend this build has, except the reference (cuda only with a device).
std::vector<BackendVariant> backend_variants() {
  std::vector<BackendVariant> v;
  std::stringstream ss(available_backends());
  for (std::string name; std::getline(ss, name, ',');) {
    name.erase(0, name.find_first_not_of(' '));
    if (name == "reference") continue;
    if (name == "cuda") {
      try {
        make_backend(name, 1);
      } catch (const Error&) {
        continue;  // built in, but no device here (test_cuda_backend.cpp reports the skip)
      }
    }
    for (int threads : {1, 2}) v.push_back({name, threads});
  }
  return v;
}

}  // namespace

TEST_CASE("pooling output sizes follow PyTorch's rule, ceil_mode's last-window rule included", "[pooling]") {
  // {in, kernel, stride, padding, ceil_mode, PyTorch 1.13's output size}
  struct Size {
    int64_t in, k, s, p;
    bool ceil;
    int64_t out;
  };
  const std::vector<Size> torch_sizes = {
      {5, 2, 2, 1, true, 3},  {5, 2, 2, 1, false, 3}, {6, 3, 2, 1, true, 4},   {6, 3, 2, 1, false, 3},
      {7, 3, 2, 0, true, 3},  {7, 3, 2, 0, false, 3}, {4, 3, 3, 1, true, 2},   {4, 3, 3, 0, true, 2},
      {8, 2, 2, 0, true, 4},  {1, 3, 2, 1, true, 1},  {10, 4, 3, 2, true, 4},  {10, 4, 3, 2, false, 4},
      {2, 5, 1, 2, false, 2}, {9, 5, 4, 2, true, 3},  {3, 2, 3, 0, true, 1},   {3, 2, 3, 1, true, 2},
  };
  for (const Size& t : torch_sizes) {
    INFO("in " << t.in << " k " << t.k << " s " << t.s << " p " << t.p << (t.ceil ? " ceil" : " floor"));
    CHECK(Pool2dGeometry::out_size(t.in, t.k, t.s, t.p, t.ceil) == t.out);
  }
  for (int64_t in = 1; in <= 12; ++in)
    for (int64_t k = 1; k <= 6; ++k)
      for (int64_t s = 1; s <= 4; ++s)
        for (int64_t p = 0; 2 * p <= k; ++p)
          for (bool ceil_mode : {false, true}) {
            if (in + 2 * p < k) continue;
            INFO("in " << in << " k " << k << " s " << s << " p " << p << (ceil_mode ? " ceil" : " floor"));
            CHECK(Pool2dGeometry::out_size(in, k, s, p, ceil_mode) == windows_by_rule(in, k, s, p, ceil_mode));
          }
}

TEST_CASE("avgpool2d forward is each window's sum over PyTorch's divisor", "[pooling][avgpool]") {
  ReferenceBackend backend;
  Rng rng(11);
  for (const PoolCase& p : kCases)
    for (bool include : {true, false}) {
      INFO(describe(p) << (include ? " count_include_pad" : " input cells only"));
      AvgPool2d pool(p.kh, p.kw, p.sh, p.sw, p.ph, p.pw, p.ceil, include);
      const Tensor x = random_tensor({p.n, p.h, p.w, p.c}, rng);
      const Tensor y = pool.forward(x, backend, Mode::Eval);
      expect_close(to_vector(y), brute_avgpool(x, p, include), "avgpool2d forward", 1e-6);
    }
  // By hand: a 3x3 input 1..9, kernel 2, stride 2, padding 1, ceil_mode.
  // Output 2x2 (a third window would start in the right padding); windows
  // rows/columns [-1, 1) and [1, 3): cells {1}, {2, 3}, {4, 7}, {5, 6, 8, 9};
  // each window holds 4 padded-grid cells. (PyTorch 1.13 gives these values.)
  Tensor x({1, 3, 3, 1});
  for (int i = 0; i < 9; ++i) x[i] = static_cast<float>(i + 1);
  AvgPool2d with_pad(2, 2, 2, 2, 1, 1, true, true), without_pad(2, 2, 2, 2, 1, 1, true, false);
  CHECK(to_vector(with_pad.forward(x, backend, Mode::Eval)) == std::vector<float>{0.25f, 1.25f, 2.75f, 7.0f});
  CHECK(to_vector(without_pad.forward(x, backend, Mode::Eval)) == std::vector<float>{1.0f, 2.5f, 5.5f, 7.0f});
  // ceil_mode past the padded input: 3x3, kernel 2, stride 2, no padding:
  // windows [0, 2) and [2, 4) clipped to [2, 3); the divisor counts the
  // clipped window either way (there is no padding to count).
  AvgPool2d overhang(2, 2, 2, 2, 0, 0, true, true);
  CHECK(to_vector(overhang.forward(x, backend, Mode::Eval)) == std::vector<float>{3.0f, 4.5f, 7.5f, 9.0f});
}

TEST_CASE("maxpool2d with padding and ceil_mode takes the first maximum among the input cells",
          "[pooling][maxpool]") {
  ReferenceBackend backend;
  Rng rng(12);
  for (const PoolCase& p : kCases) {
    INFO(describe(p));
    MaxPool2d pool(p.kh, p.kw, p.sh, p.sw, p.ph, p.pw, p.ceil);
    const auto values = tie_heavy(p.n * p.h * p.w * p.c, rng);
    Tensor x({p.n, p.h, p.w, p.c});
    std::copy(values.begin(), values.end(), x.data());
    const Tensor y = pool.forward(x, backend, Mode::Eval);
    std::vector<float> want;
    std::vector<int64_t> want_arg;
    brute_maxpool(x, p, want, want_arg);
    CHECK(to_vector(y) == want);
    CHECK(pool.argmax() == want_arg);
    CHECK(std::count(want_arg.begin(), want_arg.end(), int64_t{-1}) == 0);  // padding never wins
  }
  // By hand: all-negative 2x2 input, kernel 2, stride 2, padding 1, ceil_mode:
  // each window holds one input cell and three padded ones.
  Tensor x({1, 2, 2, 1});
  for (int i = 0; i < 4; ++i) x[i] = -1.0f - static_cast<float>(i);
  MaxPool2d pool(2, 2, 2, 2, 1, 1, true);
  CHECK(to_vector(pool.forward(x, backend, Mode::Eval)) == std::vector<float>{-1.0f, -2.0f, -3.0f, -4.0f});
  CHECK(pool.argmax() == std::vector<int64_t>{0, 1, 2, 3});
}

TEST_CASE("pooling gradients match finite differences", "[pooling][gradient]") {
  ReferenceBackend backend;
  Rng rng(13);
  for (const PoolCase& p : kCases) {
    const Shape shape{p.n, p.h, p.w, p.c};
    for (bool include : {true, false}) {
      INFO("avgpool2d " << describe(p) << (include ? " count_include_pad" : " input cells only"));
      AvgPool2d pool(p.kh, p.kw, p.sh, p.sw, p.ph, p.pw, p.ceil, include);
      const auto c = check_input_gradient(pool, random_tensor(shape, rng), backend, Mode::Eval, 1e-2);
      CHECK(c.relative_error() <= kGradientTolerance);
      CHECK(c.checked == shape_numel(shape));
    }
    INFO("maxpool2d " << describe(p));
    MaxPool2d pool(p.kh, p.kw, p.sh, p.sw, p.ph, p.pw, p.ceil);
    CHECK(check_input_gradient(pool, spread_tensor(shape, rng, 0.05), backend, Mode::Eval, 1e-2).relative_error() <=
          kGradientTolerance);
  }
  for (const Shape& shape : std::vector<Shape>{{2, 5, 7, 3}, {1, 1, 1, 4}, {3, 4, 4, 17}}) {
    INFO("global_avgpool " << shape_to_string(shape));
    GlobalAvgPool pool;
    CHECK(check_input_gradient(pool, random_tensor(shape, rng), backend, Mode::Eval, 1e-2).relative_error() <=
          kGradientTolerance);
  }
}

TEST_CASE("pooling tangents are the transposes of the backward passes", "[pooling][tangent]") {
  ReferenceBackend backend;
  Rng rng(14);
  auto check_layer = [&](Layer& layer, const Shape& shape) {
    const Tensor x = spread_tensor(shape, rng, 0.05);
    const Tensor y = layer.forward(x, backend, Mode::Eval);
    const Tensor v = random_tensor(shape, rng), u = random_tensor(y.shape(), rng);
    const double lhs = dot(layer.forward_tangent(v, backend), u);
    const double rhs = dot(v, layer.backward_input(u, backend));
    CHECK(std::abs(lhs - rhs) <= 1e-5 * std::max(1.0, std::abs(rhs)));
  };
  for (const PoolCase& p : kCases) {
    const Shape shape{p.n, p.h, p.w, p.c};
    for (bool include : {true, false}) {
      INFO("avgpool2d " << describe(p) << (include ? " count_include_pad" : " input cells only"));
      AvgPool2d pool(p.kh, p.kw, p.sh, p.sw, p.ph, p.pw, p.ceil, include);
      check_layer(pool, shape);
    }
    INFO("maxpool2d " << describe(p));
    MaxPool2d pool(p.kh, p.kw, p.sh, p.sw, p.ph, p.pw, p.ceil);
    check_layer(pool, shape);
  }
  GlobalAvgPool global;
  check_layer(global, {3, 5, 6, 9});
  // The average pools are linear: the tangent is the forward pass of the tangent.
  AvgPool2d pool(3, 3, 2, 2, 1, 1, true, false);
  const Tensor x = random_tensor({2, 6, 7, 3}, rng), v = random_tensor({2, 6, 7, 3}, rng);
  pool.forward(x, backend, Mode::Eval);
  const Tensor tangent = pool.forward_tangent(v, backend);
  CHECK(to_vector(tangent) == to_vector(pool.forward(v, backend, Mode::Eval)));
}

TEST_CASE("every backend's max-pool with padding and ceil_mode, and average pooling, match the reference",
          "[backend][pooling]") {
  ReferenceBackend ref;
  Rng rng(15);
  std::vector<PoolCase> cases = kCases;
  cases.push_back({2, 28, 28, 32, 3, 3, 2, 2, 1, 1, true});  // a ResNet-style stem pool on a fashion-sized map
  cases.push_back({3, 7, 7, 64, 7, 7, 7, 7, 0, 0, false});   // a global pool as one window
  cases.push_back({2, 9, 9, 19, 3, 3, 3, 3, 1, 1, false});   // stride = kernel with padding (xnnpack falls back)
  cases.push_back({2, 7, 7, 8, 2, 2, 2, 2, 0, 0, true});     // stride = kernel, ceil: a partial last window
  for (const BackendVariant& v : backend_variants()) {
    auto be = make_backend(v.name, v.threads);
    for (const PoolCase& p : cases) {
      INFO(v.name << " threads=" << v.threads << " " << describe(p));
      const Pool2dGeometry g = geometry_of(p);
      const int64_t in_n = p.n * p.h * p.w * p.c, out_n = p.n * g.out_h() * g.out_w() * p.c;
      const auto in = tie_heavy(in_n, rng), dout = random_vector(out_n, rng);

      std::vector<float> want(static_cast<size_t>(out_n), kNaN), got = want;
      std::vector<int64_t> arg_want(static_cast<size_t>(out_n), -1), arg_got = arg_want;
      ref.maxpool2d_forward(g, in.data(), want.data(), arg_want.data());
      be->maxpool2d_forward(g, in.data(), got.data(), arg_got.data());
      CHECK(got == want);
      CHECK(arg_got == arg_want);  // ties: the first maximum in row-major window order
      std::vector<float> din_want(static_cast<size_t>(in_n), kNaN), din_got = din_want;
      ref.maxpool2d_backward(g, dout.data(), arg_want.data(), din_want.data());
      be->maxpool2d_backward(g, dout.data(), arg_want.data(), din_got.data());
      expect_close(din_got, din_want, "maxpool backward");

      const auto x = random_vector(in_n, rng);
      for (bool include : {true, false}) {
        INFO((include ? "count_include_pad" : "input cells only"));
        std::vector<float> avg_want(static_cast<size_t>(out_n), kNaN), avg_got = avg_want;
        ref.avgpool2d_forward(g, include, x.data(), avg_want.data());
        be->avgpool2d_forward(g, include, x.data(), avg_got.data());
        expect_close(avg_got, avg_want, "avgpool forward");
        std::vector<float> back_want(static_cast<size_t>(in_n), kNaN), back_got = back_want;
        ref.avgpool2d_backward(g, include, dout.data(), back_want.data());
        be->avgpool2d_backward(g, include, dout.data(), back_got.data());
        expect_close(back_got, back_want, "avgpool backward");
      }
    }
  }
}

TEST_CASE("the reference average pooling matches brute force, and its backward is its transpose",
          "[backend][pooling]") {
  // The base class's loops are the reference the other backends are held to:
  // forward against the brute force above, backward through <f(x), u> = <x, b(u)>.
  ReferenceBackend ref;
  Rng rng(16);
  for (const PoolCase& p : kCases)
    for (bool include : {true, false}) {
      INFO(describe(p) << (include ? " count_include_pad" : " input cells only"));
      const Pool2dGeometry g = geometry_of(p);
      const int64_t in_n = p.n * p.h * p.w * p.c, out_n = p.n * g.out_h() * g.out_w() * p.c;
      Tensor x({p.n, p.h, p.w, p.c});
      const auto xv = random_vector(in_n, rng), u = random_vector(out_n, rng);
      std::copy(xv.begin(), xv.end(), x.data());
      std::vector<float> y(static_cast<size_t>(out_n), kNaN), b(static_cast<size_t>(in_n), kNaN);
      ref.avgpool2d_forward(g, include, x.data(), y.data());
      expect_close(y, brute_avgpool(x, p, include), "forward", 1e-6);
      ref.avgpool2d_backward(g, include, u.data(), b.data());
      double lhs = 0.0, rhs = 0.0;
      for (int64_t i = 0; i < out_n; ++i) lhs += static_cast<double>(y[static_cast<size_t>(i)]) * u[static_cast<size_t>(i)];
      for (int64_t i = 0; i < in_n; ++i) rhs += static_cast<double>(xv[static_cast<size_t>(i)]) * b[static_cast<size_t>(i)];
      CHECK(count_not_finite(b) == 0);
      CHECK(std::abs(lhs - rhs) <= 1e-5 * std::max(1.0, std::abs(rhs)));
    }
}

TEST_CASE("bad pooling hyper-parameters are refused with clear messages", "[pooling][errors]") {
  CHECK_THROWS_WITH(MaxPool2d(3, 3, 1, 1, 2, 0), Catch::Contains("padding 2x0 must be at most half the kernel 3x3"));
  CHECK_THROWS_WITH(AvgPool2d(2, 4, 1, 1, 1, 3), Catch::Contains("at most half the kernel"));
  CHECK_THROWS_WITH(AvgPool2d(2, 2, 1, 1, -1, 0), Catch::Contains("padding must be >= 0"));
  CHECK_THROWS_WITH(AvgPool2d(0, 2, 1, 1), Catch::Contains("kernel and stride must be >= 1"));
  CHECK_THROWS_WITH(MaxPool2d(2, 2, 0, 2), Catch::Contains("kernel and stride must be >= 1"));
  CHECK_THROWS_WITH(MaxPool2d(5, 5, 1, 1, 1, 1).output_shape({1, 2, 6, 1}),
                    Catch::Contains("with its padding is smaller than the window"));
  CHECK_THROWS_WITH(AvgPool2d(3, 3, 1, 1).output_shape({1, 2, 6, 1}), Catch::Contains("is smaller than the window"));
  CHECK_THROWS_WITH(GlobalAvgPool().output_shape({2, 5}), Catch::Contains("expected input [N, H, W, C]"));

  // The backends check what they are given too (the layers' checks aside).
  std::vector<float> buf(64, 0.0f);
  std::vector<int64_t> arg(64);
  Pool2dGeometry g{1, 4, 4, 1, 3, 3, 1, 1, 2, 0, false};
  for (const std::string& name : {std::string("simd"), std::string("reference")}) {
    INFO(name);
    auto be = make_backend(name, 1);
    CHECK_THROWS_WITH(be->avgpool2d_forward(g, true, buf.data(), buf.data()), Catch::Contains("at most half"));
    CHECK_THROWS_WITH(be->avgpool2d_backward(g, true, buf.data(), buf.data()), Catch::Contains("at most half"));
  }
  CHECK_THROWS_WITH(make_backend("simd", 1)->maxpool2d_forward(g, buf.data(), buf.data(), arg.data()),
                    Catch::Contains("at most half"));

  auto refuse = [](const char* layer, const char* message) {
    const std::string arch = std::string(R"({"input": [6, 6, 2], "layers": [)") + layer + "]}";
    INFO(arch);
    CHECK_THROWS_WITH(Model(nlohmann::json::parse(arch)), Catch::Contains(message));
  };
  refuse(R"({"type": "avgpool2d"})", "missing 'kernel'");
  refuse(R"({"type": "avgpool2d", "kernel": 3, "padding": 2})", "at most half the kernel");
  refuse(R"({"type": "maxpool2d", "kernel": 3, "padding": -1})", "'padding' must be a non-negative integer");
  refuse(R"({"type": "maxpool2d", "kernel": [2, 2, 2]})", "'kernel' must be an integer or [h, w]");
  refuse(R"({"type": "maxpool2d", "kernel": 2, "ceil_mode": 1})", "'ceil_mode' must be true or false");
  refuse(R"({"type": "avgpool2d", "kernel": 2, "count_include_pad": "no"})", "'count_include_pad' must be true or false");
  refuse(R"({"type": "maxpool2d", "kernel": 2, "count_include_pad": false})", "maxpool2d takes only");
  refuse(R"({"type": "avgpool2d", "kernel": 2, "divisor_override": 3})", "got 'divisor_override'");
  refuse(R"({"type": "global_avgpool", "kernel": 2})", "global_avgpool takes no parameters");
  refuse(R"({"type": "avgpool2d", "kernel": 9, "padding": 1})", "smaller than the window");
  refuse(R"({"type": "flatten"}, {"type": "global_avgpool"})", "global_avgpool needs image input");
}

TEST_CASE("pooling layers in architecture JSON: defaults, round trip, and old maxpool2d entries unchanged",
          "[pooling][model]") {
  const auto arch = nlohmann::json::parse(R"({"name": "pools", "input": [9, 8, 2], "layers": [
    {"type": "conv2d", "out_channels": 3, "kernel": 3, "padding": 1},
    {"type": "maxpool2d", "kernel": 2},
    {"type": "maxpool2d", "kernel": 3, "stride": 1, "padding": 1, "ceil_mode": true},
    {"type": "avgpool2d", "kernel": [2, 3], "padding": [1, 1], "ceil_mode": true, "count_include_pad": false},
    {"type": "avgpool2d", "kernel": 2},
    {"type": "global_avgpool"},
    {"type": "flatten"},
    {"type": "dense", "out_features": 4}]})");
  Model model(arch);
  const nlohmann::json layers = model.architecture()["layers"];
  CHECK(layers[1] == nlohmann::json::parse(R"({"type": "maxpool2d", "kernel": [2, 2], "stride": [2, 2]})"));
  CHECK(layers[2] == nlohmann::json::parse(
                         R"({"type": "maxpool2d", "kernel": [3, 3], "stride": [1, 1], "padding": [1, 1], "ceil_mode": true})"));
  CHECK(layers[3] == nlohmann::json::parse(R"({"type": "avgpool2d", "kernel": [2, 3], "stride": [2, 3],
      "padding": [1, 1], "ceil_mode": true, "count_include_pad": false})"));
  CHECK(layers[4] == nlohmann::json::parse(R"({"type": "avgpool2d", "kernel": [2, 2], "stride": [2, 2],
      "padding": [0, 0], "ceil_mode": false, "count_include_pad": true})"));
  CHECK(layers[5] == nlohmann::json::parse(R"({"type": "global_avgpool"})"));
  // Shapes: 9x8 -> 4x4 (maxpool 2) -> 4x4 (3x3 stride 1 pad 1) -> ceil((4+2-2)/2)+1 = 3 by
  // ceil((4+2-3)/3)+1 = 2 -> 1x1 (floor, 2x2) -> global 1x1 -> 3 features.
  CHECK(model.layer_output_shape(1) == Shape{4, 4, 3});
  CHECK(model.layer_output_shape(2) == Shape{4, 4, 3});
  CHECK(model.layer_output_shape(3) == Shape{3, 2, 3});
  CHECK(model.layer_output_shape(4) == Shape{1, 1, 3});
  CHECK(model.layer_output_shape(5) == Shape{1, 1, 3});
  CHECK(model.layer_output_shape(6) == Shape{3});
  // avgpool2d [2, 3] pad 1 ceil on 4x4: rows [-1, 1), [1, 3), [3, 5) hold 1, 2, 1 input rows;
  // columns [-1, 2), [2, 5) hold 2, 2: (1 + 2 + 1) * (2 + 2) cells per channel.
  CHECK(model.layer_costs()[3].multiply_adds == 4 * 4 * 3);
  CHECK(model.layer_costs()[5].multiply_adds == 1 * 1 * 3);

  // Through a model file: the architecture comes back as written.
  model.init_he(3);
  const std::vector<uint8_t> bytes = model_to_bytes(model);
  Model loaded = load_model_bytes(bytes.data(), bytes.size());
  CHECK(loaded.architecture() == model.architecture());

  // An old architecture's maxpool2d entries are written back byte for byte.
  const auto old = nlohmann::json::parse(R"({"name": "old", "input": [8, 8, 1], "layers": [
    {"type": "conv2d", "out_channels": 2, "kernel": [3, 3], "stride": [1, 1], "padding": [1, 1]},
    {"type": "maxpool2d", "kernel": [2, 2], "stride": [2, 2]},
    {"type": "flatten"}, {"type": "dense", "out_features": 3}]})");
  CHECK(Model(old).architecture()["layers"].dump() == old["layers"].dump());
}
