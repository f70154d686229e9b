// Every layer's backward_input and backward_params against central finite
// differences of L = sum(out * R), on random shapes: batch > 1, odd sizes,
// stride 1 and 2, padding 0 and 1, non-square kernels.
//
// Tolerance: max |analytic - numerical| <= 1e-3 * max |numerical|. The
// forward passes are float32 with double accumulation; with eps = 1e-2 on
// piecewise-linear layers the finite difference is exact up to float
// rounding (about 1e-5 relative here), so 1e-3 leaves a margin of ~100x
// while a wrong gradient (a missed term, a transposed index) is off by O(1).
#include <catch2/catch.hpp>

#include <set>

#include "gradient_check.h"
#include "igscope/backend/reference.h"
#include "igscope/layers/conv2d.h"
#include "igscope/layers/dense.h"
#include "igscope/layers/dropout.h"
#include "igscope/layers/flatten.h"
#include "igscope/layers/maxpool2d.h"
#include "igscope/layers/relu.h"
#include "igscope/layers/smelu.h"
#include "igscope/error.h"
#include "igscope/layers/softmax.h"

using namespace igscope;
using namespace igscope::testing;

namespace {

constexpr double kTolerance = 1e-3;

void randomize_params(Layer& layer, Rng& rng) {
  for (auto& p : layer.parameters())
    for (int64_t i = 0; i < p.value.size(); ++i) p.value[i] = static_cast<float>(rng.uniform(-1, 1));
}

// Values that are pairwise at least `gap` apart (in random order), so that a
// perturbation smaller than gap/2 never changes which element is the maximum
// or the sign of a ReLU input.
Tensor spread_tensor(const Shape& shape, Rng& rng, double gap) {
  Tensor t(shape);
  std::vector<int64_t> order(static_cast<size_t>(t.size()));
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int64_t>(i);
  for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[rng.below(i)]);
  const double offset = -gap * static_cast<double>(t.size()) / 2.0 + gap / 2.0;
  for (int64_t i = 0; i < t.size(); ++i) t[order[static_cast<size_t>(i)]] = static_cast<float>(offset + gap * static_cast<double>(i));
  return t;
}

struct ConvCase {
  int64_t n, h, w, cin, cout, kh, kw, sh, sw, ph, pw;
};

// Shapes covering odd and even sizes, square and non-square kernels, strides 1
// and 2 (mixed per axis), padding 0 and 1, a 1x1 kernel, batch 1 and a 5x5 kernel.
const std::vector<ConvCase> kConvCases = {
    {2, 5, 7, 3, 4, 3, 3, 1, 1, 1, 1},  // odd sizes, pad 1
    {3, 6, 5, 2, 3, 3, 2, 2, 2, 0, 0},  // non-square kernel, stride 2, pad 0
    {2, 7, 7, 1, 2, 2, 3, 2, 1, 1, 0},  // mixed stride and padding
    {1, 4, 4, 3, 2, 1, 1, 1, 1, 0, 0},  // 1x1, batch 1
    {2, 5, 6, 2, 3, 3, 1, 1, 2, 1, 1},  // 3x1 kernel, stride (1, 2)
    {2, 9, 9, 2, 2, 5, 5, 2, 2, 1, 1},  // large kernel, stride 2, pad 1
};

}  // namespace

TEST_CASE("conv2d gradients match finite differences", "[layers][conv2d][gradient]") {
  ReferenceBackend backend;
  Rng rng(42);
  for (const ConvCase& c : kConvCases) {
    Conv2d conv(c.cin, c.cout, c.kh, c.kw, c.sh, c.sw, c.ph, c.pw);
    randomize_params(conv, rng);
    const Tensor x = random_tensor({c.n, c.h, c.w, c.cin}, rng);
    INFO("input " << shape_to_string(x.shape()) << " kernel " << c.kh << "x" << c.kw << " stride " << c.sh
                  << "," << c.sw << " pad " << c.ph << "," << c.pw);
    const auto in = check_input_gradient(conv, x, backend, Mode::Train, 1e-2);
    CHECK(in.relative_error() <= kTolerance);
    const auto par = check_param_gradient(conv, x, backend, Mode::Train, 1e-2);
    CHECK(par.relative_error() <= kTolerance);
    CHECK(in.checked == x.size());
  }
}

TEST_CASE("dense gradients match finite differences", "[layers][dense][gradient]") {
  ReferenceBackend backend;
  Rng rng(7);
  for (auto [n, fin, fout] : std::vector<std::array<int64_t, 3>>{{3, 7, 5}, {1, 4, 9}, {5, 13, 3}}) {
    Dense dense(fin, fout);
    randomize_params(dense, rng);
    const Tensor x = random_tensor({n, fin}, rng);
    CHECK(check_input_gradient(dense, x, backend, Mode::Train, 1e-2).relative_error() <= kTolerance);
    CHECK(check_param_gradient(dense, x, backend, Mode::Train, 1e-2).relative_error() <= kTolerance);
  }
}

TEST_CASE("relu gradient matches finite differences away from 0", "[layers][relu][gradient]") {
  ReferenceBackend backend;
  Rng rng(3);
  ReLU relu;
  const Tensor x = spread_tensor({3, 5, 3, 2}, rng, 0.05);
  CHECK(check_input_gradient(relu, x, backend, Mode::Eval, 1e-2).relative_error() <= kTolerance);
}

TEST_CASE("smelu gradient matches finite differences in all three pieces", "[layers][smelu][gradient]") {
  ReferenceBackend backend;
  Rng rng(4);
  for (double beta : {0.1, 0.5, 2.0}) {
    SmeLU smelu(beta);
    // Values spread over [-3, 3] land in the zero, quadratic and linear pieces;
    // the finite-difference step stays inside one piece away from +-beta.
    Tensor x = spread_tensor({3, 5, 3, 2}, rng, 0.05);
    for (int64_t i = 0; i < x.size(); ++i) {
      x[i] *= 3.0f;
      if (std::abs(std::abs(x[i]) - beta) < 0.03) x[i] += 0.06f;
    }
    INFO("beta " << beta);
    CHECK(check_input_gradient(smelu, x, backend, Mode::Eval, 1e-2).relative_error() <= kTolerance);
  }
}

TEST_CASE("smelu is 0, quadratic and the identity on its three pieces, and refuses a bad beta", "[layers][smelu]") {
  ReferenceBackend backend;
  SmeLU smelu(0.5);
  Tensor x({1, 5});
  const float in[5] = {-2.0f, -0.5f, 0.0f, 0.25f, 3.0f};
  std::copy(in, in + 5, x.data());
  const Tensor y = smelu.forward(x, backend, Mode::Eval);
  CHECK(y[0] == 0.0f);
  CHECK(y[1] == 0.0f);
  CHECK(y[2] == Approx(0.125));    // (0 + 0.5)^2 / 2
  CHECK(y[3] == Approx(0.28125));  // 0.75^2 / 2
  CHECK(y[4] == 3.0f);
  CHECK_THROWS_WITH(SmeLU(0.0), Catch::Contains("beta must be a positive number"));
  CHECK_THROWS_WITH(SmeLU(std::nan("")), Catch::Contains("beta must be a positive number"));
}

TEST_CASE("maxpool2d gradient matches finite differences without ties", "[layers][maxpool][gradient]") {
  ReferenceBackend backend;
  Rng rng(5);
  struct PoolCase {
    int64_t n, h, w, c, kh, kw, sh, sw;
  };
  for (const PoolCase& p : std::vector<PoolCase>{{2, 6, 6, 3, 2, 2, 2, 2},
                                                 {3, 7, 5, 2, 3, 2, 2, 1},
                                                 {2, 5, 5, 1, 3, 3, 1, 1}}) {
    MaxPool2d pool(p.kh, p.kw, p.sh, p.sw);
    const Tensor x = spread_tensor({p.n, p.h, p.w, p.c}, rng, 0.05);
    CHECK(check_input_gradient(pool, x, backend, Mode::Eval, 1e-2).relative_error() <= kTolerance);
  }
}

TEST_CASE("maxpool2d gives a tie to the first maximum in row-major window order",
          "[layers][maxpool]") {
  ReferenceBackend backend;
  MaxPool2d pool(2, 2, 2, 2);
  // One 4x4 channel: window (0,0) all equal; window (0,1) ties between its
  // second row entries; window (1,0) ties between top-right and bottom-left.
  Tensor x({1, 4, 4, 1});
  const float v[16] = {1, 1, 0, 0,  //
                       1, 1, 5, 5,  //
                       0, 7, 2, 2,  //
                       7, 0, 2, 3};
  for (int i = 0; i < 16; ++i) x[i] = v[i];
  const Tensor out = pool.forward(x, backend, Mode::Eval);
  CHECK(pool.argmax() == std::vector<int64_t>{0, 6, 9, 15});
  const Tensor din = pool.backward_input(Tensor({1, 2, 2, 1}, 1.0f), backend);
  std::vector<float> got(din.data(), din.data() + 16);
  CHECK(got == std::vector<float>{1, 0, 0, 0, 0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 1});
  CHECK(out[0] == 1.0f);
  CHECK(out[3] == 3.0f);
}

TEST_CASE("dropout: seeded mask, inverted scaling, identity in eval", "[layers][dropout][gradient]") {
  ReferenceBackend backend;
  Rng rng(11);
  Dropout drop(0.4, 123);
  const Tensor x = random_tensor({4, 5, 5, 3}, rng);
  SECTION("gradient matches finite differences for a fixed mask") {
    const auto c = check_input_gradient(drop, x, backend, Mode::Train, 1e-2, 1, [&] { drop.seed(99); });
    CHECK(c.relative_error() <= kTolerance);
  }
  SECTION("evaluation is the identity, forward and backward") {
    const Tensor y = drop.forward(x, backend, Mode::Eval);
    const Tensor g = drop.backward_input(x, backend);
    for (int64_t i = 0; i < x.size(); ++i) {
      REQUIRE(y[i] == x[i]);
      REQUIRE(g[i] == x[i]);
    }
  }
  SECTION("training zeroes about p of the elements and scales the rest by 1/(1-p)") {
    const Tensor ones({100, 100}, 1.0f);
    const Tensor y = drop.forward(ones, backend, Mode::Train);
    int64_t zeros = 0;
    for (int64_t i = 0; i < y.size(); ++i) {
      if (y[i] == 0.0f) ++zeros;
      else REQUIRE(y[i] == Approx(1.0 / 0.6));
    }
    CHECK(static_cast<double>(zeros) / static_cast<double>(y.size()) == Approx(0.4).margin(0.02));
  }
  SECTION("the same seed gives the same mask") {
    drop.seed(5);
    const Tensor a = drop.forward(x, backend, Mode::Train);
    drop.seed(5);
    const Tensor b = drop.forward(x, backend, Mode::Train);
    const Tensor c = drop.forward(x, backend, Mode::Train);
    bool differs = false;
    for (int64_t i = 0; i < a.size(); ++i) {
      REQUIRE(a[i] == b[i]);
      differs = differs || a[i] != c[i];
    }
    CHECK(differs);
  }
}

TEST_CASE("flatten orders features as C, H, W (PyTorch's NCHW flatten)", "[layers][flatten][gradient]") {
  ReferenceBackend backend;
  Flatten flat;
  const int64_t n = 2, h = 3, w = 4, c = 5;
  Tensor x({n, h, w, c});
  for (int64_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i);
  const Tensor y = flat.forward(x, backend, Mode::Eval);
  REQUIRE(y.shape() == Shape{n, c * h * w});
  for (int64_t b = 0; b < n; ++b)
    for (int64_t yy = 0; yy < h; ++yy)
      for (int64_t xx = 0; xx < w; ++xx)
        for (int64_t ch = 0; ch < c; ++ch)
          REQUIRE(y[b * c * h * w + ch * h * w + yy * w + xx] == x[((b * h + yy) * w + xx) * c + ch]);
  Rng rng(2);
  CHECK(check_input_gradient(flat, random_tensor({n, h, w, c}, rng), backend, Mode::Eval, 1e-2)
            .relative_error() <= kTolerance);
}

TEST_CASE("softmax and log-softmax gradients match finite differences", "[layers][softmax][gradient]") {
  ReferenceBackend backend;
  Rng rng(13);
  const Tensor x = random_tensor({4, 7}, rng, -3, 3);
  Softmax softmax;
  LogSoftmax log_softmax;
  // Smooth functions: eps 1e-3 keeps the truncation error O(eps^2) ~ 1e-6.
  CHECK(check_input_gradient(softmax, x, backend, Mode::Eval, 1e-3).relative_error() <= 2e-3);
  CHECK(check_input_gradient(log_softmax, x, backend, Mode::Eval, 1e-3).relative_error() <= 2e-3);
  const Tensor p = softmax.forward(x, backend, Mode::Eval);
  for (int64_t b = 0; b < 4; ++b) {
    double sum = 0.0;
    for (int64_t k = 0; k < 7; ++k) sum += p[b * 7 + k];
    CHECK(sum == Approx(1.0).epsilon(1e-6));
  }
  // Large logits must not overflow.
  Tensor big({1, 3});
  big[0] = 1000.0f;
  big[1] = 999.0f;
  big[2] = -1000.0f;
  const Tensor q = softmax.forward(big, backend, Mode::Eval);
  CHECK(q[0] == Approx(1.0 / (1.0 + std::exp(-1.0))));
  CHECK(std::isfinite(log_softmax.forward(big, backend, Mode::Eval)[2]));
}

TEST_CASE("cross-entropy gradient matches finite differences", "[layers][softmax][gradient]") {
  Rng rng(17);
  Tensor logits = random_tensor({5, 4}, rng, -2, 2);
  const std::vector<int> labels = {0, 3, 1, 1, 2};
  for (const double smoothing : {0.0, 0.1, 0.5}) {
    const CrossEntropyResult r = cross_entropy(logits, labels, smoothing);
    const double eps = 1e-3;
    double worst = 0.0, largest = 0.0;
    for (int64_t i = 0; i < logits.size(); ++i) {
      const float orig = logits[i];
      logits[i] = static_cast<float>(orig + eps);
      const double up = cross_entropy(logits, labels, smoothing).loss;
      logits[i] = static_cast<float>(orig - eps);
      const double down = cross_entropy(logits, labels, smoothing).loss;
      logits[i] = orig;
      const double numerical = (up - down) / (2 * eps);
      worst = std::max(worst, std::abs(numerical - r.dlogits[i]));
      largest = std::max(largest, std::abs(numerical));
    }
    INFO("label smoothing " << smoothing);
    CHECK(worst <= 2e-3 * largest);
  }
  CHECK_THROWS_AS(cross_entropy(logits, {0, 1, 2, 3, 4}), Error);  // label 4 of 4 classes
  CHECK_THROWS_AS(cross_entropy(logits, labels, 1.0), Error);
}

TEST_CASE("cross-entropy with label smoothing equals its definition", "[layers][softmax]") {
  // Logits (0, log 3): p = (1/4, 3/4). Label 1, smoothing 0.2 over K = 2:
  // target (0.1, 0.9), loss = -(0.1 log 1/4 + 0.9 log 3/4), gradient p - target.
  Tensor logits({1, 2});
  logits[1] = static_cast<float>(std::log(3.0));
  const CrossEntropyResult r = cross_entropy(logits, {1}, 0.2);
  CHECK(r.loss == Approx(-(0.1 * std::log(0.25) + 0.9 * std::log(0.75))).epsilon(1e-6));
  CHECK(r.dlogits[0] == Approx(0.25 - 0.1).epsilon(1e-6));
  CHECK(r.dlogits[1] == Approx(0.75 - 0.9).epsilon(1e-6));
}

// A layer whose backward pass is wrong in one element: the checker must see it.
class OffByOneGradient final : public Layer {
 public:
  explicit OffByOneGradient(Conv2d& inner) : inner_(inner) {}
  std::string type() const override { return "broken"; }
  nlohmann::json to_json() const override { return {}; }
  Shape output_shape(const Shape& in) const override { return inner_.output_shape(in); }
  Tensor forward(Tensor in, Backend& b, Mode m) override { return inner_.forward(std::move(in), b, m); }
  Tensor backward_input(Tensor dout, Backend& b) override {
    Tensor din = inner_.backward_input(std::move(dout), b);
    din[din.size() / 2] *= 1.05f;  // 5% off in a single element
    return din;
  }

 private:
  Conv2d& inner_;
};

TEST_CASE("the gradient check rejects a deliberately wrong gradient", "[layers][gradient]") {
  ReferenceBackend backend;
  Rng rng(1);
  Conv2d conv(2, 3, 3, 3, 1, 1, 1, 1);
  randomize_params(conv, rng);
  OffByOneGradient broken(conv);
  const Tensor x = random_tensor({2, 5, 5, 2}, rng);
  CHECK(check_input_gradient(conv, x, backend, Mode::Eval, 1e-2).relative_error() <= kTolerance);
  CHECK(check_input_gradient(broken, x, backend, Mode::Eval, 1e-2).relative_error() > kTolerance);
}
