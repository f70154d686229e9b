// Quadrature rules against math: exactness on polynomials, closed-form nodes
// for small n, and the error's rate of convergence on a smooth integrand.
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>

#include "igscope/attribution/quadrature.h"
#include "igscope/error.h"

using namespace igscope;

namespace {

double integrate(const QuadratureRule& r, const std::function<double(double)>& f) {
  double s = 0.0;
  for (size_t k = 0; k < r.size(); ++k) s += r.weights[k] * f(r.nodes[k]);
  return s;
}

// A smooth integrand with a known integral over [0, 1].
double smooth(double t) { return std::exp(2.0 * t) * std::cos(3.0 * t); }
double smooth_integral() {
  // integral of e^{2t} cos 3t = e^{2t} (2 cos 3t + 3 sin 3t) / 13
  return (std::exp(2.0) * (2.0 * std::cos(3.0) + 3.0 * std::sin(3.0)) - 2.0) / 13.0;
}

// Least-squares slope of log(error) against log(n).
double convergence_slope(Quadrature q, const std::vector<int64_t>& ns) {
  double sx = 0, sy = 0, sxx = 0, sxy = 0;
  for (int64_t n : ns) {
    const double err = std::abs(integrate(quadrature_rule(q, n), smooth) - smooth_integral());
    const double x = std::log(static_cast<double>(n)), y = std::log(err);
    sx += x, sy += y, sxx += x * x, sxy += x * y;
  }
  const double m = static_cast<double>(ns.size());
  return (m * sxy - sx * sy) / (m * sxx - sx * sx);
}

}  // namespace

TEST_CASE("Gauss-Legendre matches the closed forms for n = 1, 2, 3", "[quadrature]") {
  const auto r1 = gauss_legendre_rule(1);
  REQUIRE(r1.size() == 1);
  CHECK(r1.nodes[0] == Approx(0.5).margin(1e-15));
  CHECK(r1.weights[0] == Approx(1.0).margin(1e-15));
  const auto r2 = gauss_legendre_rule(2);
  CHECK(r2.nodes[0] == Approx(0.5 - 0.5 / std::sqrt(3.0)).margin(1e-15));
  CHECK(r2.nodes[1] == Approx(0.5 + 0.5 / std::sqrt(3.0)).margin(1e-15));
  CHECK(r2.weights[0] == Approx(0.5).margin(1e-15));
  const auto r3 = gauss_legendre_rule(3);
  CHECK(r3.nodes[0] == Approx(0.5 - 0.5 * std::sqrt(0.6)).margin(1e-15));
  CHECK(r3.nodes[1] == Approx(0.5).margin(1e-15));
  CHECK(r3.weights[0] == Approx(5.0 / 18.0).margin(1e-15));
  CHECK(r3.weights[1] == Approx(8.0 / 18.0).margin(1e-15));
}

TEST_CASE("Gauss-Legendre with n nodes is exact up to degree 2n-1, with the known error at 2n", "[quadrature]") {
  for (int64_t n = 1; n <= 24; ++n) {
    const auto r = gauss_legendre_rule(n);
    for (int64_t d = 0; d <= 2 * n - 1; ++d) {
      const double got = integrate(r, [d](double t) { return std::pow(t, static_cast<double>(d)); });
      INFO("n = " << n << ", degree " << d);
      CHECK(std::abs(got - 1.0 / static_cast<double>(d + 1)) <= 1e-13);
    }
    // For t^(2n) on [0, 1] the error is exactly (n!)^4 / ((2n+1) ((2n)!)^2)
    // (too small to see in double beyond n = 8).
    if (n <= 8) {
      const double dn = static_cast<double>(n);
      const double want_error =
          std::exp(4.0 * std::lgamma(dn + 1.0) - std::log(2.0 * dn + 1.0) - 2.0 * std::lgamma(2.0 * dn + 1.0));
      const double got = integrate(r, [n](double t) { return std::pow(t, static_cast<double>(2 * n)); });
      INFO("n = " << n << ", degree 2n");
      CHECK((1.0 / (2.0 * dn + 1.0) - got) == Approx(want_error).epsilon(1e-6));
    }
  }
}

TEST_CASE("Gauss-Legendre is well formed up to n = 1024 and beyond", "[quadrature]") {
  for (int64_t n : {64, 257, 1024, 4096}) {
    const auto r = gauss_legendre_rule(n);
    REQUIRE(static_cast<int64_t>(r.size()) == n);
    double wsum = 0.0;
    bool increasing = true, symmetric = true, positive = true;
    for (size_t k = 0; k < r.size(); ++k) {
      wsum += r.weights[k];
      positive = positive && r.weights[k] > 0 && r.nodes[k] > 0 && r.nodes[k] < 1;
      if (k) increasing = increasing && r.nodes[k] > r.nodes[k - 1];
      symmetric = symmetric && std::abs(r.nodes[k] + r.nodes[r.size() - 1 - k] - 1.0) < 1e-14 &&
                  std::abs(r.weights[k] - r.weights[r.size() - 1 - k]) < 1e-15;
    }
    INFO("n = " << n);
    CHECK(std::abs(wsum - 1.0) < 1e-12);
    CHECK(increasing);
    CHECK(symmetric);
    CHECK(positive);
    // A rapidly oscillating integrand that small rules cannot resolve.
    const double got = integrate(r, [](double t) { return std::cos(40.0 * t); });
    CHECK(std::abs(got - std::sin(40.0) / 40.0) < 1e-12);
  }
}

TEST_CASE("Gauss-Legendre rules handed out again are those of the n asked for", "[quadrature]") {
  // More distinct n than the rules kept, interleaved and repeated: each rule
  // must have n nodes and integrate x^(2n-1) exactly (1 / 2n), which a rule
  // of another n does not.
  const std::vector<int64_t> ns = {5, 7, 5, 3, 9, 11, 13, 15, 17, 19, 21, 7, 5, 23, 3, 9, 5};
  for (int64_t n : ns) {
    INFO("n = " << n);
    const QuadratureRule r = gauss_legendre_rule(n);
    REQUIRE(static_cast<int64_t>(r.size()) == n);
    double integral = 0.0;
    for (size_t k = 0; k < r.size(); ++k) integral += r.weights[k] * std::pow(r.nodes[k], static_cast<double>(2 * n - 1));
    CHECK(integral == Approx(1.0 / static_cast<double>(2 * n)).epsilon(1e-12));
  }
}

TEST_CASE("Gauss-Lobatto includes both ends and is exact up to degree 2n-3", "[quadrature]") {
  const auto r3 = gauss_lobatto_rule(3);  // Simpson's rule
  CHECK(r3.nodes == std::vector<double>{0.0, 0.5, 1.0});
  CHECK(r3.weights[0] == Approx(1.0 / 6.0).margin(1e-15));
  CHECK(r3.weights[1] == Approx(4.0 / 6.0).margin(1e-15));
  const auto r5 = gauss_lobatto_rule(5);
  CHECK(r5.nodes[1] == Approx(0.5 - 0.5 * std::sqrt(3.0 / 7.0)).margin(1e-15));
  CHECK(r5.weights[0] == Approx(0.05).margin(1e-15));  // 1/10 on [-1, 1], halved
  for (int64_t n = 2; n <= 16; ++n) {
    const auto r = gauss_lobatto_rule(n);
    CHECK(r.nodes.front() == 0.0);
    CHECK(r.nodes.back() == 1.0);
    for (int64_t d = 0; d <= 2 * n - 2; ++d) {
      const double err =
          std::abs(integrate(r, [d](double t) { return std::pow(t, static_cast<double>(d)); }) - 1.0 / static_cast<double>(d + 1));
      INFO("n = " << n << ", degree " << d);
      if (d <= 2 * n - 3) {
        CHECK(err <= 1e-13);
      } else if (n <= 8) {
        CHECK(err > 1e-12);  // degree 2n-2 is where exactness ends (invisible in double beyond n = 8)
      }
    }
  }
}

TEST_CASE("Riemann rules place their nodes as documented", "[quadrature]") {
  const auto left = quadrature_rule(Quadrature::RiemannLeft, 4);
  CHECK(left.nodes == std::vector<double>{0.0, 0.25, 0.5, 0.75});
  const auto right = quadrature_rule(Quadrature::RiemannRight, 4);
  CHECK(right.nodes == std::vector<double>{0.25, 0.5, 0.75, 1.0});
  const auto mid = quadrature_rule(Quadrature::RiemannMiddle, 4);
  CHECK(mid.nodes == std::vector<double>{0.125, 0.375, 0.625, 0.875});
  const auto trap = quadrature_rule(Quadrature::RiemannTrapezoid, 4);
  CHECK(trap.nodes == std::vector<double>{0.0, 0.25, 0.5, 0.75, 1.0});
  CHECK(trap.weights == std::vector<double>{0.125, 0.25, 0.25, 0.25, 0.125});
  const auto one = quadrature_rule(Quadrature::RiemannTrapezoid, 1);
  CHECK(one.nodes == std::vector<double>{0.0, 1.0});
  CHECK(one.weights == std::vector<double>{0.5, 0.5});
}

TEST_CASE("each rule's error falls at its expected rate", "[quadrature]") {
  const std::vector<int64_t> ns{16, 32, 64, 128, 256, 512, 1024};
  SECTION("Riemann left and right: order 1") {
    CHECK(convergence_slope(Quadrature::RiemannLeft, ns) == Approx(-1.0).margin(0.05));
    CHECK(convergence_slope(Quadrature::RiemannRight, ns) == Approx(-1.0).margin(0.05));
  }
  SECTION("Riemann middle and trapezoid: order 2") {
    CHECK(convergence_slope(Quadrature::RiemannMiddle, ns) == Approx(-2.0).margin(0.05));
    CHECK(convergence_slope(Quadrature::RiemannTrapezoid, ns) == Approx(-2.0).margin(0.05));
  }
  SECTION("Gauss-Legendre: faster than any power, to machine precision by n = 12") {
    double previous = 1.0;
    for (int64_t n = 1; n <= 8; ++n) {
      const double err = std::abs(integrate(gauss_legendre_rule(n), smooth) - smooth_integral());
      INFO("n = " << n << ", error " << err);
      if (n >= 3) CHECK(err < previous / 20.0);  // each extra node gains more than a constant factor
      previous = err;
    }
    CHECK(std::abs(integrate(gauss_legendre_rule(12), smooth) - smooth_integral()) < 1e-14);
  }
  for (Quadrature q : {Quadrature::RiemannLeft, Quadrature::RiemannMiddle, Quadrature::GaussLegendre})
    CHECK(quadrature_order(q) == (q == Quadrature::RiemannLeft ? 1 : q == Quadrature::RiemannMiddle ? 2 : 0));
}

TEST_CASE("bad quadrature parameters give clear errors", "[quadrature][errors]") {
  CHECK_THROWS_WITH(quadrature_rule(Quadrature::GaussLegendre, 0), Catch::Contains("between 1 and 16384 steps, got 0"));
  CHECK_THROWS_WITH(quadrature_rule(Quadrature::RiemannLeft, -3), Catch::Contains("riemann_left needs between 1"));
  CHECK_THROWS_WITH(quadrature_rule(Quadrature::RiemannMiddle, kMaxQuadratureSteps + 1), Catch::Contains("got 16385"));
  CHECK_THROWS_AS(gauss_lobatto_rule(1), Error);
  CHECK_THROWS_WITH(parse_quadrature("simpson"), Catch::Contains("unknown quadrature 'simpson'"));
  for (const auto& name : quadrature_names()) CHECK(quadrature_name(parse_quadrature(name)) == name);
}
