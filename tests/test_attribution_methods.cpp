// Baselines, the Gaussian blur, Blur IG, SmoothGrad, gradient x input and
// heatmaps, each against math or an independent computation.
#include <catch2/catch.hpp>

#include <cmath>
#include <set>

#include "igscope/attribution/baselines.h"
#include "igscope/attribution/blur.h"
#include "igscope/attribution/gradients.h"
#include "igscope/attribution/guided_ig.h"
#include "igscope/attribution/heatmap.h"
#include "igscope/attribution/ig.h"
#include "igscope/error.h"

using namespace igscope;

namespace {

Tensor test_image(int64_t h, int64_t w, int64_t c, uint64_t seed) {
  Rng rng(seed);
  Tensor t({1, h, w, c});
  for (int64_t i = 0; i < t.size(); ++i) t[i] = static_cast<float>(rng.uniform());
  return t;
}

// Direct 2-D convolution with reflected borders, written independently of
// blur.cpp: out(y, x) = sum_{i,j} k_i k_j in(mirror(y + i), mirror(x + j)).
Tensor brute_force_blur(const Tensor& in, double sigma) {
  const int64_t r = static_cast<int64_t>(std::ceil(4 * sigma));
  std::vector<double> k;
  double z = 0;
  for (int64_t j = -r; j <= r; ++j) z += std::exp(-0.5 * static_cast<double>(j * j) / (sigma * sigma));
  for (int64_t j = -r; j <= r; ++j) k.push_back(std::exp(-0.5 * static_cast<double>(j * j) / (sigma * sigma)) / z);
  auto mirror = [](int64_t i, int64_t n) {
    while (i < 0 || i >= n) i = i < 0 ? -i - 1 : 2 * n - i - 1;
    return i;
  };
  const int64_t h = in.dim(1), w = in.dim(2), c = in.dim(3);
  Tensor out(in.shape());
  for (int64_t y = 0; y < h; ++y)
    for (int64_t x = 0; x < w; ++x)
      for (int64_t ch = 0; ch < c; ++ch) {
        double s = 0;
        for (int64_t i = -r; i <= r; ++i)
          for (int64_t j = -r; j <= r; ++j)
            s += k[static_cast<size_t>(i + r)] * k[static_cast<size_t>(j + r)] *
                 in[(mirror(y + i, h) * w + mirror(x + j, w)) * c + ch];
        out[(y * w + x) * c + ch] = static_cast<float>(s);
      }
  return out;
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  double m = 0;
  for (int64_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(static_cast<double>(a[i]) - b[i]));
  return m;
}

// F(x) = sum_i c_i x_i^2 over an image: its gradient 2 c_i x_i is linear, so
// SmoothGrad's statistics are known in closed form.
FunctionTarget quadratic(const Shape& shape, std::vector<double> c) {
  return FunctionTarget(shape, [c](const float* x, float* g) {
    double f = 0;
    for (size_t i = 0; i < c.size(); ++i) {
      f += c[i] * x[i] * x[i];
      g[i] = static_cast<float>(2 * c[i] * x[i]);
    }
    return f;
  });
}

// A smooth non-linear function of an image (for path completeness).
FunctionTarget smooth_image_function(const Shape& shape) {
  const int64_t n = shape_numel(shape);
  return FunctionTarget(shape, [n](const float* x, float* g) {
    double s = 0;
    for (int64_t i = 0; i < n; ++i) s += std::sin(0.3 * static_cast<double>(i)) * x[i];
    for (int64_t i = 0; i < n; ++i) g[i] = static_cast<float>(std::cos(s) * std::sin(0.3 * static_cast<double>(i)) + 0.2 * x[i] * static_cast<double>(i % 3));
    double q = 0;
    for (int64_t i = 0; i < n; ++i) q += 0.1 * x[i] * x[i] * static_cast<double>(i % 3);
    return std::sin(s) + q;
  });
}

}  // namespace

TEST_CASE("baseline specs parse, print back, and refuse nonsense with the grammar", "[baselines]") {
  for (const char* s : {"black", "white", "constant:0.25", "uniform", "gaussian:0.1", "blur:3", "maxdist", "mean",
                        "train:16", "avg:8:uniform", "avg:4:gaussian:0.2@7", "uniform@42", "image:some file@x.png"})
    CHECK(parse_baseline_spec(s).to_string() == s);
  CHECK(parse_baseline_spec("image:a@b.png").image_path == "a@b.png");
  CHECK(parse_baseline_spec("uniform@42").seed.value() == 42);
  CHECK_THROWS_WITH(parse_baseline_spec("gaussian:-0.1"), Catch::Contains("sigma must be >= 0"));
  CHECK_THROWS_WITH(parse_baseline_spec("blur:-2"), Catch::Contains("sigma must be >= 0"));
  CHECK_THROWS_WITH(parse_baseline_spec("blur"), Catch::Contains("'blur' needs a sigma"));
  CHECK_THROWS_WITH(parse_baseline_spec("gaussian:abc"), Catch::Contains("sigma must be a number, got 'abc'"));
  CHECK_THROWS_WITH(parse_baseline_spec("black:3"), Catch::Contains("'black' takes no parameter"));
  CHECK_THROWS_WITH(parse_baseline_spec("purple"), Catch::Contains("unknown kind 'purple'"));
  CHECK_THROWS_WITH(parse_baseline_spec("avg:4:black"), Catch::Contains("needs a random kind"));
  CHECK_THROWS_WITH(parse_baseline_spec("avg:0:uniform"), Catch::Contains("whole number >= 1"));
  CHECK_THROWS_WITH(parse_baseline_spec("train:2.5"), Catch::Contains("whole number >= 1"));
  CHECK_THROWS_WITH(parse_baseline_spec("uniform@-3"), Catch::Contains("seed after '@'"));
  CHECK_THROWS_WITH(parse_baseline_spec("nan"), Catch::Contains("known: black, white"));
}

TEST_CASE("every kind of the baseline grammar table parses and an unknown kind is refused with the whole table",
          "[baselines][grammar]") {
  std::set<int> kinds;
  for (const BaselineSyntax& row : baseline_grammar()) {
    INFO("grammar row " << row.syntax << " (example " << row.example << ")");
    BaselineSpec spec;
    REQUIRE_NOTHROW(spec = parse_baseline_spec(row.example));
    CHECK(spec.kind == row.kind);
    CHECK(spec.to_string() == row.example);
    if (row.kind != BaselineKind::Image)  // image:PATH takes the rest as the path, '@' included
      CHECK(parse_baseline_spec(std::string(row.example) + "@3").seed.value() == 3);
    // the syntax and its example name the same kind
    const std::string syntax = row.syntax, example = row.example;
    CHECK(syntax.substr(0, syntax.find(':')) == example.substr(0, example.find(':')));
    CHECK(std::string(row.meaning).size() > 10);
    CHECK(baseline_help().find(row.syntax) != std::string::npos);
    CHECK(baseline_help().find(row.meaning) != std::string::npos);
    kinds.insert(static_cast<int>(row.kind));
  }
  // every kind the parser knows is in the table
  CHECK(kinds.size() == static_cast<size_t>(BaselineKind::Training) + 1);
  CHECK(baseline_kinds().find("median") != std::string::npos);
  try {
    parse_baseline_spec("purple");
    FAIL("an unknown kind parsed");
  } catch (const Error& e) {
    const std::string m = e.what();
    CHECK(m.find("unknown kind 'purple'") != std::string::npos);
    CHECK(m.find("(known: " + baseline_kinds() + ")") != std::string::npos);
    for (const BaselineSyntax& row : baseline_grammar()) CHECK(m.find(row.syntax) != std::string::npos);
  }
}

TEST_CASE("every baseline kind gives what it promises", "[baselines]") {
  const Tensor x = test_image(6, 5, 1, 3);
  const ValueRange r{0.0, 1.0};
  auto one = [&](const std::string& spec, const BaselineSources& src = {}, uint64_t seed = 0) {
    auto v = make_baselines(parse_baseline_spec(spec), x, r, src, seed);
    REQUIRE(v.size() == 1);
    REQUIRE(v[0].shape() == x.shape());
    return v[0];
  };
  SECTION("constants") {
    for (int64_t i = 0; i < x.size(); ++i) {
      CHECK(one("black")[i] == 0.0f);
      CHECK(one("white")[i] == 1.0f);
      CHECK(one("constant:0.25")[i] == 0.25f);
    }
    const ValueRange wide{-1.0, 3.0};
    CHECK(make_baselines(parse_baseline_spec("black"), x, wide)[0][0] == -1.0f);
    CHECK(make_baselines(parse_baseline_spec("white"), x, wide)[0][0] == 3.0f);
  }
  SECTION("maximum distance: each pixel at the far end of the range") {
    const Tensor m = one("maxdist");
    for (int64_t i = 0; i < x.size(); ++i) {
      CHECK(std::abs(m[i] - x[i]) >= 0.5f);
      CHECK((m[i] == 0.0f || m[i] == 1.0f));
    }
  }
  SECTION("random kinds are seeded") {
    const Tensor u1 = one("uniform", {}, 5), u2 = one("uniform", {}, 5), u3 = one("uniform", {}, 6);
    CHECK(max_abs_diff(u1, u2) == 0.0);
    CHECK(max_abs_diff(u1, u3) > 0.1);
    CHECK(max_abs_diff(one("uniform@9", {}, 5), one("uniform", {}, 9)) == 0.0);  // @SEED overrides the default
    for (int64_t i = 0; i < u1.size(); ++i) CHECK((u1[i] >= 0.0f && u1[i] <= 1.0f));
  }
  SECTION("Gaussian noise around the input is clipped to the range and has the asked spread") {
    const Tensor big({1, 100, 100, 1}, 0.5f);  // far from the ends: clipping is rare
    Rng rng(3);
    const Tensor g = gaussian_noise_baseline(big, 0.1, r, rng);
    double m = 0, v = 0;
    for (int64_t i = 0; i < g.size(); ++i) m += (g[i] - 0.5) / static_cast<double>(g.size());
    for (int64_t i = 0; i < g.size(); ++i) v += (g[i] - 0.5 - m) * (g[i] - 0.5 - m) / static_cast<double>(g.size());
    CHECK(std::abs(m) < 0.005);
    CHECK(std::sqrt(v) == Approx(0.1).epsilon(0.03));
    const Tensor wide = one("gaussian:3");
    for (int64_t i = 0; i < wide.size(); ++i) CHECK((wide[i] >= 0.0f && wide[i] <= 1.0f));
    CHECK(max_abs_diff(one("gaussian:0"), x) == 0.0);
  }
  SECTION("blur is the input blurred") {
    CHECK(max_abs_diff(one("blur:1.5"), brute_force_blur(x, 1.5)) < 1e-6);
    CHECK(max_abs_diff(one("blur:0"), x) == 0.0);
  }
  SECTION("custom image, data-set mean and training images") {
    Tensor img = test_image(6, 5, 1, 11);
    CHECK(max_abs_diff(one("image:x.png", {&img, nullptr}), img) == 0.0);
    Tensor data({4, 6, 5, 1});
    for (int64_t i = 0; i < data.size(); ++i) data[i] = static_cast<float>(i / 30);  // image k is all k
    const Tensor mean = one("mean", {nullptr, &data});
    for (int64_t i = 0; i < mean.size(); ++i) CHECK(mean[i] == 1.5f);
    const auto train = make_baselines(parse_baseline_spec("train:3"), x, r, {nullptr, &data}, 1);
    REQUIRE(train.size() == 3);
    std::set<float> seen;
    for (const auto& t : train) seen.insert(t[0]);
    CHECK(seen.size() == 3);  // drawn without replacement
    CHECK(make_baselines(parse_baseline_spec("avg:5:gaussian:0.1"), x, r, {}, 1).size() == 5);
  }
}

TEST_CASE("bad baseline parameters give clear errors", "[baselines][errors]") {
  const Tensor x = test_image(6, 5, 1, 3);
  const ValueRange r;
  Tensor wrong = test_image(7, 5, 1, 3);
  CHECK_THROWS_WITH(make_baselines(parse_baseline_spec("image:w.png"), x, r, {&wrong, nullptr}),
                    Catch::Contains("the image has shape [1, 7, 5, 1] but the input has shape [1, 6, 5, 1]"));
  CHECK_THROWS_WITH(make_baselines(parse_baseline_spec("image:w.png"), x, r), Catch::Contains("no image was supplied"));
  CHECK_THROWS_WITH(make_baselines(parse_baseline_spec("constant:1.5"), x, r),
                    Catch::Contains("outside the valid range [0, 1]"));
  CHECK_THROWS_WITH(make_baselines(parse_baseline_spec("mean"), x, r), Catch::Contains("no data set was supplied"));
  Tensor data({2, 6, 5, 1});
  CHECK_THROWS_WITH(make_baselines(parse_baseline_spec("train:3"), x, r, {nullptr, &data}),
                    Catch::Contains("asks for 3 training images but the data set has 2"));
  Tensor nan_img = x;
  nan_img[3] = std::nanf("");
  CHECK_THROWS_WITH(make_baselines(parse_baseline_spec("image:n.png"), x, r, {&nan_img, nullptr}),
                    Catch::Contains("non-finite value at flat index 3"));
  CHECK_THROWS_WITH(make_baselines(parse_baseline_spec("black"), x, ValueRange{1.0, 0.0}), Catch::Contains("lo < hi"));
  Rng rng(1);
  CHECK_THROWS_WITH(gaussian_noise_baseline(x, -0.5, r, rng), Catch::Contains("sigma must be a finite number >= 0"));
  CHECK_THROWS_WITH(gaussian_blur(x, -1.0), Catch::Contains("blur sigma must be a finite number >= 0"));
  CHECK_THROWS_WITH(gaussian_blur(Tensor({1, 4}), 1.0), Catch::Contains("blurring needs image input"));
}

TEST_CASE("the Gaussian blur matches a direct 2-D convolution and keeps the image's mass", "[blur]") {
  const Tensor x = test_image(9, 7, 2, 5);
  for (double sigma : {0.5, 1.0, 2.5, 6.0}) {
    INFO("sigma = " << sigma);
    const Tensor b = gaussian_blur(x, sigma);
    CHECK(max_abs_diff(b, brute_force_blur(x, sigma)) < 1e-6);
    double sx = 0, sb = 0;
    for (int64_t i = 0; i < x.size(); ++i) sx += x[i], sb += b[i];
    CHECK(sb == Approx(sx).epsilon(1e-6));  // reflected borders lose no mass
  }
  // A very wide blur flattens each channel to its mean.
  const Tensor flat = gaussian_blur(x, 200.0);
  for (int64_t ch = 0; ch < 2; ++ch) {
    double mean = 0;
    for (int64_t p = 0; p < 63; ++p) mean += x[p * 2 + ch] / 63.0;
    for (int64_t p = 0; p < 63; ++p) CHECK(flat[p * 2 + ch] == Approx(mean).margin(1e-3));
  }
}

TEST_CASE("the blur's sigma derivative and the Blur IG path velocity match finite differences", "[blur]") {
  const Tensor x = test_image(8, 8, 1, 7);
  const int64_t radius = 12;
  for (double sigma : {0.4, 1.0, 2.7}) {
    const double h = 1e-2;  // float32 outputs: a smaller step drowns in rounding
    const Tensor d = gaussian_blur_dsigma(x, sigma, radius);
    const Tensor up = gaussian_blur(x, sigma + h, radius), down = gaussian_blur(x, sigma - h, radius);
    double worst = 0, scale = 0;
    for (int64_t i = 0; i < x.size(); ++i) {
      const double fd = (static_cast<double>(up[i]) - down[i]) / (2 * h);
      worst = std::max(worst, std::abs(fd - d[i]));
      scale = std::max(scale, std::abs(fd));
    }
    INFO("sigma = " << sigma);
    CHECK(worst <= 2e-3 * scale);
  }
  const BlurPath path(x, 3.0);
  std::vector<float> p0(64), p1(64), p2(64);
  std::vector<double> v(64);
  path.point(0.0, p0.data());
  path.point(1.0, p1.data());
  const Tensor full = gaussian_blur(x, 3.0);
  for (int64_t i = 0; i < 64; ++i) {
    CHECK(p0[static_cast<size_t>(i)] == Approx(full[i]).margin(1e-6));
    CHECK(p1[static_cast<size_t>(i)] == x[i]);
  }
  path.point(0.5 + 1e-3, p1.data());
  path.point(0.5 - 1e-3, p2.data());
  path.velocity(0.5, v.data());
  for (size_t i = 0; i < 64; ++i) CHECK(v[i] == Approx((p1[i] - p2[i]) / 2e-3).margin(2e-3));
}

TEST_CASE("Blur IG is complete: its attributions sum to F(x) - F(blurred x)", "[blur][ig]") {
  const Tensor x = test_image(8, 8, 1, 9);
  FunctionTarget f = smooth_image_function({8, 8, 1});
  const Attribution a = blur_integrated_gradients(f, x, {4.0, {Quadrature::GaussLegendre, 64, 16}});
  std::vector<double> fb, fx;
  f.evaluate_values(gaussian_blur(x, 4.0), fb);
  f.evaluate_values(x, fx);
  CHECK(a.f_baseline == Approx(fb[0]).epsilon(1e-6));
  CHECK(a.f_input == Approx(fx[0]).epsilon(1e-6));
  const double delta = std::abs(fx[0] - fb[0]);
  REQUIRE(delta > 0.05);
  CHECK(std::abs(a.gap) <= 1e-5 * delta);
  CHECK(a.method == "blurig");
  // Riemann left with few steps (the original paper's rule) is visibly incomplete.
  const Attribution rough = blur_integrated_gradients(f, x, {4.0, {Quadrature::RiemannLeft, 8, 16}});
  CHECK(std::abs(rough.gap) > 10 * std::abs(a.gap));
  CHECK_THROWS_WITH(blur_integrated_gradients(f, x, {0.0, {}}), Catch::Contains("maximum sigma > 0"));
}

TEST_CASE("SmoothGrad's mean, squared mean and variance match their closed forms", "[smoothgrad]") {
  // grad_i = 2 c_i (x_i + e_i), e_i ~ N(0, s^2): mean 2 c_i x_i,
  // variance 4 c_i^2 s^2, squared mean their sum of squares.
  const Tensor x = test_image(3, 3, 1, 2);
  std::vector<double> c{1, -2, 0.5, 3, 0, 1, -1, 2, 0.25};
  FunctionTarget f = quadratic({3, 3, 1}, c);
  SmoothGradOptions o;
  o.samples = 4000;
  o.sigma = 0.2;
  o.range = {0.0, 2.0};  // sigma is a fraction of the range: s = 0.4
  const double s = 0.4;
  o.statistic = SmoothGradStatistic::Mean;
  const Attribution mean = smoothgrad(f, x, o);
  o.statistic = SmoothGradStatistic::Variance;
  const Attribution var = smoothgrad(f, x, o);
  o.statistic = SmoothGradStatistic::SquaredMean;
  const Attribution sq = smoothgrad(f, x, o);
  for (int64_t i = 0; i < 9; ++i) {
    const double ci = c[static_cast<size_t>(i)], m = 2 * ci * x[i], v = 4 * ci * ci * s * s;
    const double se = std::sqrt(v / 4000.0);  // standard error of the mean
    CHECK(std::abs(mean.values[i] - m) <= 4 * se + 1e-6);
    CHECK(var.values[i] == Approx(v).epsilon(0.1).margin(1e-9));
    CHECK(sq.values[i] == Approx(m * m + v).epsilon(0.1).margin(1e-6));
  }
  CHECK(mean.evaluations == 4001);
  // Same seed, same result; sigma 0 is the plain gradient.
  CHECK(max_abs_diff(smoothgrad(f, x, o).values, sq.values) == 0.0);
  o.sigma = 0.0;
  o.statistic = SmoothGradStatistic::Mean;
  o.samples = 3;
  CHECK(max_abs_diff(smoothgrad(f, x, o).values, gradient_saliency(f, x).values) < 1e-7);
}

TEST_CASE("gradient x input is IG from a black baseline for a linear function, and SmoothGrad over IG with sigma 0 is IG",
          "[smoothgrad][ig]") {
  const Tensor x = test_image(4, 4, 1, 8);
  FunctionTarget lin({4, 4, 1}, [](const float* v, float* g) {
    double f = 0;
    for (int i = 0; i < 16; ++i) {
      g[i] = static_cast<float>(0.5 * i - 3);
      f += g[i] * v[i];
    }
    return f;
  });
  const Attribution gi = gradient_times_input(lin, x);
  const Attribution ig = integrated_gradients(lin, x, Tensor(x.shape()), {Quadrature::GaussLegendre, 4, 32});
  CHECK(max_abs_diff(gi.values, ig.values) < 1e-5);
  CHECK(gi.method == "gradxinput");
  FunctionTarget f = smooth_image_function({4, 4, 1});
  SmoothGradOptions o;
  o.sigma = 0.0;
  o.samples = 2;
  const IGOptions igo{Quadrature::GaussLegendre, 16, 32};
  const Attribution plain = integrated_gradients(f, x, Tensor(x.shape()), igo);
  const Attribution sgi = smoothgrad_ig(f, x, {Tensor(x.shape())}, o, igo);
  CHECK(max_abs_diff(plain.values, sgi.values) < 1e-6);
  CHECK(sgi.gap == Approx(plain.gap).margin(1e-9));
  CHECK(sgi.evaluations == 2 * plain.evaluations + 1);
  o.samples = 0;
  CHECK_THROWS_WITH(smoothgrad(f, x, o), Catch::Contains("between 1 and 1000000 samples, got 0"));
  o.samples = 4;
  o.sigma = -0.1;
  CHECK_THROWS_WITH(smoothgrad(f, x, o), Catch::Contains("noise sigma must be a finite number >= 0"));
  CHECK_THROWS_WITH(parse_smoothgrad_statistic("median"), Catch::Contains("known: mean, squared, variance"));
}

TEST_CASE("heatmaps: red for, blue against, percentile clipping, magnitude, overlay", "[heatmap]") {
  Tensor a({1, 1, 4, 1});
  a[0] = 1.0f, a[1] = -0.5f, a[2] = 0.0f, a[3] = 4.0f;
  HeatmapOptions o;
  o.clip_percentile = 75;  // |values| 0, 0.5, 1, 4: the 75th percentile is 1, so 4 saturates
  const RgbImage img = render_heatmap(a, nullptr, o);
  REQUIRE(img.width == 4);
  auto px = [&](const RgbImage& im, int64_t i) {
    const uint8_t* p = &im.pixels[static_cast<size_t>(i * 3)];
    return std::vector<int>{p[0], p[1], p[2]};
  };
  CHECK(px(img, 0) == std::vector<int>{255, 0, 0});
  CHECK(px(img, 1) == std::vector<int>{128, 128, 255});
  CHECK(px(img, 2) == std::vector<int>{255, 255, 255});
  CHECK(px(img, 3) == std::vector<int>{255, 0, 0});
  o.clip_percentile = 100;
  CHECK(px(render_heatmap(a, nullptr, o), 0) == std::vector<int>{255, 191, 191});
  o.style = HeatmapStyle::Magnitude;
  CHECK(px(render_heatmap(a, nullptr, o), 3) == std::vector<int>{255, 255, 255});
  CHECK(px(render_heatmap(a, nullptr, o), 2) == std::vector<int>{0, 0, 0});
  o.style = HeatmapStyle::Signed;
  o.overlay = 1.0;
  o.scale = 3;
  Tensor input({1, 1, 4, 1}, 0.5f);
  const RgbImage over = render_heatmap(a, &input, o);
  CHECK(over.width == 12);
  CHECK(over.height == 3);
  CHECK(px(over, 6) == std::vector<int>{128, 128, 128});  // zero attribution shows the input
  CHECK(px(over, 9) == std::vector<int>{255, 0, 0});
  o.clip_percentile = 0;
  CHECK_THROWS_WITH(render_heatmap(a, nullptr, o), Catch::Contains("percentile must be in (0, 100]"));
  o.clip_percentile = 99;
  CHECK_THROWS_WITH(render_heatmap(a, nullptr, o), Catch::Contains("overlay needs the input"));
  CHECK_THROWS_WITH(parse_heatmap_style("rainbow"), Catch::Contains("known: signed, magnitude, positive"));
}

TEST_CASE("Guided IG: exact for linear functions, complete as steps grow, and it moves low-gradient features first",
          "[guidedig]") {
  const Tensor x = test_image(4, 4, 1, 12);
  Tensor b(x.shape());
  b[5] = x[5];  // one feature already at the input
  SECTION("a linear function: every path gives w * (x - b)") {
    FunctionTarget lin({4, 4, 1}, [](const float* v, float* g) {
      double f = 0;
      for (int i = 0; i < 16; ++i) {
        g[i] = static_cast<float>(0.25 * i - 2);
        f += g[i] * v[i];
      }
      return f;
    });
    const Attribution a = guided_integrated_gradients(lin, x, {b}, {16, 0.25, 0.02});
    for (int64_t i = 0; i < 16; ++i) CHECK(a.values[i] == Approx((0.25 * static_cast<double>(i) - 2) * (x[i] - b[i])).margin(1e-6));
    CHECK(std::abs(a.gap) < 1e-6);
    CHECK(a.evaluations == 17);  // one gradient per step, and F at the input
    CHECK(a.paths[0].samples.size() == 16);
  }
  SECTION("a non-linear function: the gap shrinks with the steps; unmoved features get zero") {
    FunctionTarget f = smooth_image_function({4, 4, 1});
    const Attribution coarse = guided_integrated_gradients(f, x, {b}, {16, 0.25, 0.02});
    const Attribution fine = guided_integrated_gradients(f, x, {b}, {512, 0.25, 0.02});
    CHECK(std::abs(fine.gap) < std::abs(coarse.gap) / 4);
    CHECK(fine.relative_gap() < 0.01);
    CHECK(fine.values[5] == 0.0f);
    // Not the straight line in disguise.
    const Attribution ig = integrated_gradients(f, x, b, {Quadrature::GaussLegendre, 64, 32});
    double diff = 0, scale = 0;
    for (int64_t i = 0; i < 16; ++i) {
      diff = std::max(diff, std::abs(static_cast<double>(fine.values[i]) - ig.values[i]));
      scale = std::max(scale, std::abs(static_cast<double>(ig.values[i])));
    }
    CHECK(diff > 1e-3 * scale);
  }
  SECTION("F = x0 x1 + 0.1 x0 from 0 to (1, 1), unconstrained: x1 (zero gradient) goes first and gets nothing") {
    // Moving x1 first, x0 = 0 all along: x1 earns integral of x0 dx1 = 0, and
    // x0 then earns integral of (x1 + 0.1) dx0 = 1.1. The straight line gives 0.6 and 0.5.
    FunctionTarget f({2}, [](const float* v, float* g) {
      g[0] = v[1] + 0.1f;
      g[1] = v[0];
      return static_cast<double>(v[0]) * v[1] + 0.1 * v[0];
    });
    Tensor one({1, 2}, 1.0f);
    const Attribution a = guided_integrated_gradients(f, one, {Tensor({1, 2})}, {64, 0.5, 1.0});
    CHECK(a.values[0] == Approx(1.1).margin(0.03));
    CHECK(a.values[1] == Approx(0.0).margin(0.03));
    CHECK(a.sum == Approx(1.1).margin(1e-6));
  }
  FunctionTarget f = smooth_image_function({4, 4, 1});
  CHECK_THROWS_WITH(guided_integrated_gradients(f, x, {b}, {0, 0.25, 0.02}), Catch::Contains("between 1 and 16384 steps, got 0"));
  CHECK_THROWS_WITH(guided_integrated_gradients(f, x, {b}, {8, 0.0, 0.02}), Catch::Contains("fraction must be in (0, 1]"));
  CHECK_THROWS_WITH(guided_integrated_gradients(f, x, {b}, {8, 0.25, -1.0}), Catch::Contains("max_dist must be in [0, 1]"));
}
