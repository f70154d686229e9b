// IG against math: analytic functions whose exact IG is known per feature,
// the convergence rate of each quadrature through the engine, the axioms
// (completeness, sensitivity, linearity, dummy), averaged baselines and the
// adaptive mode.
#include <catch2/catch.hpp>

#include <cmath>

#include "igscope/attribution/ig.h"
#include "igscope/attribution/path.h"
#include "igscope/error.h"

using namespace igscope;

namespace {

// F(x) = 5 x0 + x1^2 + sin(x2) + 0 * x3 + x4 x5: separable in x0..x3 (x3 a
// dummy), with one product term whose IG is also known in closed form.
FunctionTarget test_function(double scale = 1.0) {
  return FunctionTarget({6}, [scale](const float* x, float* g) {
    const double x0 = x[0], x1 = x[1], x2 = x[2], x4 = x[4], x5 = x[5];
    g[0] = static_cast<float>(scale * 5.0);
    g[1] = static_cast<float>(scale * 2.0 * x1);
    g[2] = static_cast<float>(scale * std::cos(x2));
    g[3] = 0.0f;
    g[4] = static_cast<float>(scale * x5);
    g[5] = static_cast<float>(scale * x4);
    return scale * (5.0 * x0 + x1 * x1 + std::sin(x2) + x4 * x5);
  });
}

// The exact IG of test_function along the straight line from b to x.
std::vector<double> exact_ig(const Tensor& x, const Tensor& b) {
  const double d4 = x[4] - b[4], d5 = x[5] - b[5];
  return {5.0 * (x[0] - b[0]),
          static_cast<double>(x[1]) * x[1] - static_cast<double>(b[1]) * b[1],
          std::sin(static_cast<double>(x[2])) - std::sin(static_cast<double>(b[2])),
          0.0,
          d4 * (b[5] + d5 / 2.0),
          d5 * (b[4] + d4 / 2.0)};
}

Tensor vec(std::initializer_list<float> v) {
  Tensor t({1, static_cast<int64_t>(v.size())});
  int64_t i = 0;
  for (float f : v) t[i++] = f;
  return t;
}

double max_abs_diff(const Tensor& a, const std::vector<double>& b) {
  double m = 0.0;
  for (int64_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(a[i] - b[static_cast<size_t>(i)]));
  return m;
}

// A steep, smooth function of x0 (a sigmoid step at 0.7) for convergence and
// adaptive tests: the slope along the path changes fast in one place.
FunctionTarget steep_function(double k) {
  return FunctionTarget({1}, [k](const float* x, float* g) {
    const double t = std::tanh(k * (x[0] - 0.7));
    g[0] = static_cast<float>(k * (1.0 - t * t));
    return t;
  });
}

}  // namespace

TEST_CASE("IG of a separable analytic function matches the exact IG to 1e-5 with Gauss-Legendre", "[ig][analytic]") {
  FunctionTarget f = test_function();
  const Tensor x = vec({0.9f, 1.7f, 2.5f, 3.0f, 0.8f, -1.2f});
  const Tensor b = vec({0.1f, -0.4f, -1.0f, 0.5f, 0.3f, 0.6f});
  const std::vector<double> want = exact_ig(x, b);
  for (int64_t steps : {8, 16, 64, 1024}) {
    const Attribution a = integrated_gradients(f, x, b, {Quadrature::GaussLegendre, steps, 7});
    INFO("steps = " << steps);
    CHECK(max_abs_diff(a.values, want) <= 1e-5);
    CHECK(a.values[3] == 0.0f);  // dummy: x3 differs from its baseline but F ignores it
    CHECK(std::abs(a.gap) <= 1e-5);
    const double fx = 5 * 0.9 + 1.7 * 1.7 + std::sin(2.5) + 0.8 * -1.2;
    const double fb = 5 * 0.1 + 0.16 + std::sin(-1.0) + 0.3 * 0.6;
    CHECK(a.f_input == Approx(fx).margin(1e-5));
    CHECK(a.f_baseline == Approx(fb).margin(1e-5));
    CHECK(a.sum == Approx(fx - fb).margin(1e-5));
    CHECK(a.evaluations == steps + 2);  // the nodes, and F at both ends
  }
}

TEST_CASE("the path data holds F and the gradient norm at every node", "[ig][analytic]") {
  FunctionTarget f = test_function();
  const Tensor x = vec({0.9f, 1.7f, 2.5f, 3.0f, 0.8f, -1.2f});
  const Tensor b = vec({0.1f, -0.4f, -1.0f, 0.5f, 0.3f, 0.6f});
  for (Quadrature q : {Quadrature::GaussLegendre, Quadrature::RiemannTrapezoid, Quadrature::RiemannLeft}) {
    const Attribution a = integrated_gradients(f, x, b, {q, 10, 4});
    REQUIRE(a.paths.size() == 1);
    const QuadratureRule rule = quadrature_rule(q, 10);
    const PathIntegral& p = a.paths[0];
    REQUIRE(p.samples.size() == rule.size());
    for (size_t k = 0; k < rule.size(); ++k) {
      const double alpha = rule.nodes[k];
      Tensor pt(x.shape()), g;
      for (int64_t i = 0; i < 6; ++i) pt[i] = static_cast<float>(b[i] + alpha * (x[i] - b[i]));
      std::vector<double> v;
      f.evaluate(pt, v, g);
      double norm = 0, slope = 0;
      for (int64_t i = 0; i < 6; ++i) {
        norm += static_cast<double>(g[i]) * g[i];
        slope += static_cast<double>(g[i]) * (x[i] - b[i]);
      }
      CHECK(p.samples[k].alpha == alpha);
      CHECK(p.samples[k].weight == rule.weights[k]);
      CHECK(p.samples[k].value == Approx(v[0]).epsilon(1e-6));
      CHECK(p.samples[k].grad_norm == Approx(std::sqrt(norm)).epsilon(1e-6));
      CHECK(p.samples[k].slope == Approx(slope).epsilon(1e-5));
    }
    // The trapezoid rule has both ends among its nodes: no extra evaluation.
    CHECK(a.evaluations == static_cast<int64_t>(rule.size()) + (q == Quadrature::RiemannTrapezoid ? 0 : q == Quadrature::RiemannLeft ? 1 : 2));
  }
}

TEST_CASE("the engine's error falls at each quadrature's expected rate", "[ig][analytic][quadrature]") {
  FunctionTarget f = steep_function(3.0);
  const Tensor x = vec({1.0f}), b = vec({0.0f});
  const double exact = std::tanh(3.0 * 0.3) - std::tanh(3.0 * -0.7);
  auto error = [&](Quadrature q, int64_t n) {
    return std::abs(integrated_gradients(f, x, b, {q, n, 32}).values[0] - exact);
  };
  auto slope = [&](Quadrature q, const std::vector<int64_t>& ns) {
    double sx = 0, sy = 0, sxx = 0, sxy = 0;
    for (int64_t n : ns) {
      const double lx = std::log(static_cast<double>(n)), ly = std::log(error(q, n));
      sx += lx, sy += ly, sxx += lx * lx, sxy += lx * ly;
    }
    const double m = static_cast<double>(ns.size());
    return (m * sxy - sx * sy) / (m * sxx - sx * sx);
  };
  CHECK(slope(Quadrature::RiemannLeft, {16, 32, 64, 128, 256, 512}) == Approx(-1.0).margin(0.1));
  CHECK(slope(Quadrature::RiemannRight, {16, 32, 64, 128, 256, 512}) == Approx(-1.0).margin(0.1));
  CHECK(slope(Quadrature::RiemannMiddle, {8, 16, 32, 64}) == Approx(-2.0).margin(0.1));
  CHECK(slope(Quadrature::RiemannTrapezoid, {8, 16, 32, 64}) == Approx(-2.0).margin(0.1));
  // Gauss-Legendre: geometric (exponential) convergence down to float32 gradients.
  CHECK(error(Quadrature::GaussLegendre, 4) < 1e-2);
  CHECK(error(Quadrature::GaussLegendre, 8) < error(Quadrature::GaussLegendre, 4) / 50.0);
  CHECK(error(Quadrature::GaussLegendre, 16) < 1e-6);
}

TEST_CASE("IG is linear in the function and sensitive to a feature that alone changes F", "[ig][analytic][axioms]") {
  const Tensor x = vec({0.9f, 1.7f, 2.5f, 3.0f, 0.8f, -1.2f});
  const Tensor b = vec({0.1f, -0.4f, -1.0f, 0.5f, 0.3f, 0.6f});
  SECTION("linearity: IG(a f + b g) = a IG(f) + b IG(g)") {
    FunctionTarget f = test_function();
    FunctionTarget g6({6}, [](const float* v, float* grad) {  // g of x0 only, on 6 features
      std::fill(grad, grad + 6, 0.0f);
      const double t = std::tanh(2.0 * (v[0] - 0.7));
      grad[0] = static_cast<float>(2.0 * (1.0 - t * t));
      return t;
    });
    const double ca = 1.5, cb = -0.75;
    FunctionTarget h({6}, [&](const float* v, float* grad) {
      float ga[6], gb[6];
      Tensor one({1, 6});
      std::copy(v, v + 6, one.data());
      Tensor tg;
      std::vector<double> fa, fb;
      f.evaluate(one, fa, tg);
      std::copy(tg.data(), tg.data() + 6, ga);
      g6.evaluate(one, fb, tg);
      std::copy(tg.data(), tg.data() + 6, gb);
      for (int i = 0; i < 6; ++i) grad[i] = static_cast<float>(ca * ga[i] + cb * gb[i]);
      return ca * fa[0] + cb * fb[0];
    });
    const IGOptions opt{Quadrature::GaussLegendre, 32, 5};
    const Attribution ah = integrated_gradients(h, x, b, opt);
    const Attribution af = integrated_gradients(f, x, b, opt);
    const Attribution ag = integrated_gradients(g6, x, b, opt);
    for (int64_t i = 0; i < 6; ++i) CHECK(ah.values[i] == Approx(ca * af.values[i] + cb * ag.values[i]).margin(1e-5));
    CHECK(ah.gap == Approx(ca * af.gap + cb * ag.gap).margin(1e-5));
  }
  SECTION("sensitivity: one differing feature gets all of F(x) - F(x'), the others zero") {
    FunctionTarget f = test_function();
    Tensor b1 = x;
    b1[2] = -1.0f;  // only x2 differs
    const Attribution a = integrated_gradients(f, x, b1, {Quadrature::GaussLegendre, 16, 32});
    const double df = std::sin(2.5) - std::sin(-1.0);
    CHECK(a.values[2] == Approx(df).epsilon(1e-5));
    CHECK(a.values[2] != 0.0f);
    for (int64_t i : {0, 1, 3, 4, 5}) CHECK(a.values[i] == 0.0f);
  }
  SECTION("dummy: a feature F ignores gets exactly zero under every rule") {
    FunctionTarget f = test_function();
    for (const auto& name : quadrature_names())
      CHECK(integrated_gradients(f, x, b, {parse_quadrature(name), 7, 3}).values[3] == 0.0f);
  }
}

TEST_CASE("several baselines: the attribution is the mean of the per-baseline IGs", "[ig][analytic][baselines]") {
  FunctionTarget f = test_function();
  const Tensor x = vec({0.9f, 1.7f, 2.5f, 3.0f, 0.8f, -1.2f});
  const std::vector<Tensor> bs{vec({0.1f, -0.4f, -1.0f, 0.5f, 0.3f, 0.6f}), vec({0, 0, 0, 0, 0, 0}),
                               vec({1, 1, 1, 1, 1, 1})};
  const IGOptions opt{Quadrature::GaussLegendre, 24, 10};  // chunks straddle baselines
  const Attribution all = integrated_gradients(f, x, bs, opt);
  REQUIRE(all.paths.size() == 3);
  double fb = 0;
  for (int64_t i = 0; i < 6; ++i) {
    double mean = 0;
    for (const auto& b : bs) mean += exact_ig(x, b)[static_cast<size_t>(i)] / 3.0;
    CHECK(all.values[i] == Approx(mean).margin(1e-5));
  }
  for (size_t k = 0; k < bs.size(); ++k) {
    const Attribution one = integrated_gradients(f, x, bs[k], opt);
    CHECK(all.paths[k].f_start == Approx(one.f_baseline).epsilon(1e-12));
    CHECK(all.paths[k].gap == Approx(one.gap).margin(1e-9));
    fb += one.f_baseline / 3.0;
  }
  CHECK(all.f_baseline == Approx(fb).epsilon(1e-12));
  CHECK(all.evaluations == 3 * 24 + 3 + 1);  // nodes; F at three baselines and once at the input
}

TEST_CASE("the adaptive mode reaches its tolerance with fewer evaluations than uniform Gauss-Legendre", "[ig][analytic][adaptive]") {
  FunctionTarget f = steep_function(40.0);  // a sharp step at x0 = 0.7
  const Tensor x = vec({1.0f}), b = vec({0.0f});
  const double exact = std::tanh(40.0 * 0.3) - std::tanh(40.0 * -0.7);
  AdaptiveOptions opt;
  opt.tolerance = 1e-4;
  opt.max_evaluations = 1024;
  const Attribution a = adaptive_integrated_gradients(f, x, {b}, opt);
  REQUIRE(a.paths.size() == 1);
  CHECK(a.paths[0].converged);
  CHECK(std::abs(a.gap) <= 1e-4 * std::abs(a.f_input - a.f_baseline));
  CHECK(a.values[0] == Approx(exact).epsilon(2e-4));
  // The points it spent are the points it reports, with weights summing to 1.
  double wsum = 0;
  for (const auto& s : a.paths[0].samples) wsum += s.weight;
  CHECK(wsum == Approx(1.0).epsilon(1e-12));
  CHECK(a.evaluations == static_cast<int64_t>(a.paths[0].samples.size()));
  // Uniform Gauss-Legendre needs more points (plus F at both ends) for the same gap.
  int64_t uniform = 0;
  for (int64_t n = 1; n <= 1024; ++n) {
    const Attribution u = integrated_gradients(f, x, b, {Quadrature::GaussLegendre, n, 64});
    if (std::abs(u.gap) <= 1e-4 * std::abs(u.f_input - u.f_baseline)) {
      uniform = u.evaluations;
      break;
    }
  }
  INFO("adaptive " << a.evaluations << " evaluations, uniform Gauss-Legendre " << uniform);
  REQUIRE(uniform > 0);
  CHECK(a.evaluations < uniform);
}

TEST_CASE("the adaptive mode stops at its cap and says it did not converge", "[ig][analytic][adaptive]") {
  FunctionTarget f = steep_function(400.0);
  const Tensor x = vec({1.0f}), b = vec({0.0f});
  AdaptiveOptions opt;
  opt.tolerance = 1e-9;
  opt.max_evaluations = 33;
  const Attribution a = adaptive_integrated_gradients(f, x, {b}, opt);
  CHECK_FALSE(a.paths[0].converged);
  CHECK(a.evaluations <= 33);
  CHECK(a.evaluations >= 25);
  SECTION("a smooth function: few points for a loose tolerance, exact features for a tight one") {
    FunctionTarget g = test_function();
    const Tensor x6 = vec({0.9f, 1.7f, 2.5f, 3.0f, 0.8f, -1.2f});
    const Tensor b6 = vec({0.1f, -0.4f, -1.0f, 0.5f, 0.3f, 0.6f});
    AdaptiveOptions o2;
    o2.tolerance = 1e-3;
    const Attribution loose = adaptive_integrated_gradients(g, x6, {b6}, o2);
    CHECK(loose.paths[0].converged);
    CHECK(loose.evaluations == 5);  // two Simpson intervals suffice
    // Only sin(x2) is not integrated exactly by Simpson's rule: its error is the gap.
    CHECK(max_abs_diff(loose.values, exact_ig(x6, b6)) <= 1e-3 * std::abs(loose.f_input - loose.f_baseline));
    o2.tolerance = 1e-7;
    const Attribution tight = adaptive_integrated_gradients(g, x6, {b6}, o2);
    CHECK(tight.paths[0].converged);
    CHECK(max_abs_diff(tight.values, exact_ig(x6, b6)) <= 1e-4);
  }
}

TEST_CASE("bad IG parameters give clear errors", "[ig][errors]") {
  FunctionTarget f = test_function();
  const Tensor x = vec({0.9f, 1.7f, 2.5f, 3.0f, 0.8f, -1.2f});
  const Tensor b = vec({0, 0, 0, 0, 0, 0});
  CHECK_THROWS_WITH(integrated_gradients(f, x, b, {Quadrature::GaussLegendre, 0, 32}),
                    Catch::Contains("number of steps must be between 1 and 16384, got 0"));
  CHECK_THROWS_WITH(integrated_gradients(f, x, b, {Quadrature::GaussLegendre, 8, 0}),
                    Catch::Contains("batch size must be at least 1"));
  CHECK_THROWS_WITH(integrated_gradients(f, x, vec({0, 0, 0}), {}),
                    Catch::Contains("the baseline has shape [1, 3] but one input sample has shape [6]"));
  CHECK_THROWS_WITH(integrated_gradients(f, vec({0, 0}), b, {}), Catch::Contains("the input has shape [1, 2]"));
  Tensor nan = x;
  nan[4] = std::nanf("");
  CHECK_THROWS_WITH(integrated_gradients(f, nan, b, {}), Catch::Contains("the input holds a non-finite value"));
  CHECK_THROWS_WITH(integrated_gradients(f, x, nan, {}), Catch::Contains("the baseline holds a non-finite value"));
  CHECK_THROWS_WITH(integrated_gradients(f, x, std::vector<Tensor>{}, {}), Catch::Contains("at least one baseline"));
  AdaptiveOptions bad;
  bad.tolerance = -1;
  CHECK_THROWS_WITH(adaptive_integrated_gradients(f, x, {b}, bad), Catch::Contains("tolerance must be a finite number > 0"));
  bad.tolerance = 0.01;
  bad.max_evaluations = 4;
  CHECK_THROWS_WITH(adaptive_integrated_gradients(f, x, {b}, bad), Catch::Contains("step cap must be between 5"));
}
