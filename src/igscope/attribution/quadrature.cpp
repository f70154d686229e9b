#include "igscope/attribution/quadrature.h"

#include <cmath>
#include <list>
#include <mutex>
#include <utility>

#include "igscope/error.h"

namespace igscope {

namespace {

constexpr double kPi = 3.14159265358979323846;

void check_steps(int64_t steps, const char* what, int64_t min = 1) {
  if (steps < min || steps > kMaxQuadratureSteps)
    throw Error(std::string(what) + " needs between " + std::to_string(min) + " and " +
                std::to_string(kMaxQuadratureSteps) + " steps, got " + std::to_string(steps));
}

// P_n(x) and P_{n-1}(x) by the three-term recurrence.
void legendre(int64_t n, double x, double& pn, double& pn1) {
  double p0 = 1.0, p1 = x;
  if (n == 0) {
    pn = 1.0;
    pn1 = 0.0;
    return;
  }
  for (int64_t k = 1; k < n; ++k) {
    const double p2 = ((2.0 * static_cast<double>(k) + 1.0) * x * p1 - static_cast<double>(k) * p0) /
                      (static_cast<double>(k) + 1.0);
    p0 = p1;
    p1 = p2;
  }
  pn = p1;
  pn1 = p0;
}

}  // namespace

namespace {

QuadratureRule compute_gauss_legendre_rule(int64_t n) {
  QuadratureRule r;
  r.nodes.resize(static_cast<size_t>(n));
  r.weights.resize(static_cast<size_t>(n));
  const double dn = static_cast<double>(n);
  // Roots come in pairs +-x; compute the positive half (i counts from the
  // largest root down) and mirror. Nodes on [-1, 1] map to (1 + x) / 2 and
  // weights halve.
  for (int64_t i = 0; i < (n + 1) / 2; ++i) {
    double x = std::cos(kPi * (static_cast<double>(i) + 0.75) / (dn + 0.5));
    double pn = 0, pn1 = 0, dp = 1;
    for (int iter = 0; iter < 100; ++iter) {
      legendre(n, x, pn, pn1);
      dp = dn * (x * pn - pn1) / (x * x - 1.0);
      const double dx = pn / dp;
      x -= dx;
      if (std::abs(dx) <= 1e-15) break;
    }
    legendre(n, x, pn, pn1);
    dp = dn * (x * pn - pn1) / (x * x - 1.0);
    const double w = 1.0 / ((1.0 - x * x) * dp * dp);  // 2 / ((1-x^2) P'^2), halved
    const size_t hi = static_cast<size_t>(n - 1 - i), lo = static_cast<size_t>(i);
    r.nodes[hi] = 0.5 * (1.0 + x);
    r.nodes[lo] = 0.5 * (1.0 - x);
    r.weights[hi] = w;
    r.weights[lo] = w;
  }
  if (n % 2 == 1) r.nodes[static_cast<size_t>(n / 2)] = 0.5;
  return r;
}

// The most recently used rules, newest first.
constexpr size_t kCachedRules = 8;
std::mutex cache_mutex;
std::list<std::pair<int64_t, QuadratureRule>> cached_rules;

}  // namespace

QuadratureRule gauss_legendre_rule(int64_t n) {
  check_steps(n, "gausslegendre");
  {
    const std::lock_guard<std::mutex> lock(cache_mutex);
    for (auto it = cached_rules.begin(); it != cached_rules.end(); ++it)
      if (it->first == n) {
        cached_rules.splice(cached_rules.begin(), cached_rules, it);
        return it->second;
      }
  }
  QuadratureRule r = compute_gauss_legendre_rule(n);  // outside the lock: slow for large n
  const std::lock_guard<std::mutex> lock(cache_mutex);
  cached_rules.emplace_front(n, r);
  if (cached_rules.size() > kCachedRules) cached_rules.pop_back();
  return r;
}

QuadratureRule gauss_lobatto_rule(int64_t n) {
  check_steps(n, "Gauss-Lobatto", 2);
  QuadratureRule r;
  r.nodes.resize(static_cast<size_t>(n));
  r.weights.resize(static_cast<size_t>(n));
  const int64_t m = n - 1;  // interior nodes are the roots of P'_m
  const double dm = static_cast<double>(m);
  const double end_weight = 1.0 / (dm * (dm + 1.0));  // 2 / (n (n-1)), halved
  r.nodes.front() = 0.0;
  r.nodes.back() = 1.0;
  r.weights.front() = end_weight;
  r.weights.back() = end_weight;
  for (int64_t i = 1; i <= m / 2; ++i) {
    double x = std::cos(kPi * static_cast<double>(i) / dm);  // Chebyshev-Lobatto guess
    for (int iter = 0; iter < 100; ++iter) {
      double pm = 0, pm1 = 0;
      legendre(m, x, pm, pm1);
      const double dp = dm * (x * pm - pm1) / (x * x - 1.0);
      // (1 - x^2) P'' = 2 x P' - m (m+1) P
      const double d2p = (2.0 * x * dp - dm * (dm + 1.0) * pm) / (1.0 - x * x);
      const double dx = dp / d2p;
      x -= dx;
      if (std::abs(dx) <= 1e-15) break;
    }
    double pm = 0, pm1 = 0;
    legendre(m, x, pm, pm1);
    const double w = 1.0 / (dm * (dm + 1.0) * pm * pm);
    const size_t hi = static_cast<size_t>(n - 1 - i), lo = static_cast<size_t>(i);
    r.nodes[hi] = 0.5 * (1.0 + x);
    r.nodes[lo] = 0.5 * (1.0 - x);
    r.weights[hi] = w;
    r.weights[lo] = w;
  }
  if (n % 2 == 1) r.nodes[static_cast<size_t>(n / 2)] = 0.5;
  return r;
}

QuadratureRule quadrature_rule(Quadrature rule, int64_t steps) {
  if (rule == Quadrature::GaussLegendre) return gauss_legendre_rule(steps);
  check_steps(steps, quadrature_name(rule).c_str());
  QuadratureRule r;
  const double n = static_cast<double>(steps);
  const size_t count = static_cast<size_t>(rule == Quadrature::RiemannTrapezoid ? steps + 1 : steps);
  r.nodes.resize(count);
  r.weights.assign(count, 1.0 / n);
  for (size_t k = 0; k < count; ++k) {
    const double dk = static_cast<double>(k);
    switch (rule) {
      case Quadrature::RiemannLeft:
      case Quadrature::RiemannTrapezoid: r.nodes[k] = dk / n; break;
      case Quadrature::RiemannRight: r.nodes[k] = (dk + 1.0) / n; break;
      case Quadrature::RiemannMiddle: r.nodes[k] = (dk + 0.5) / n; break;
      case Quadrature::GaussLegendre: break;
    }
  }
  if (rule == Quadrature::RiemannTrapezoid) {
    r.weights.front() *= 0.5;
    r.weights.back() *= 0.5;
  }
  return r;
}

std::string quadrature_name(Quadrature rule) {
  switch (rule) {
    case Quadrature::RiemannLeft: return "riemann_left";
    case Quadrature::RiemannRight: return "riemann_right";
    case Quadrature::RiemannMiddle: return "riemann_middle";
    case Quadrature::RiemannTrapezoid: return "riemann_trapezoid";
    case Quadrature::GaussLegendre: return "gausslegendre";
  }
  return "?";
}

const std::vector<std::string>& quadrature_names() {
  static const std::vector<std::string> names{"gausslegendre", "riemann_left", "riemann_right", "riemann_middle",
                                              "riemann_trapezoid"};
  return names;
}

Quadrature parse_quadrature(const std::string& name) {
  for (Quadrature q : {Quadrature::RiemannLeft, Quadrature::RiemannRight, Quadrature::RiemannMiddle,
                       Quadrature::RiemannTrapezoid, Quadrature::GaussLegendre})
    if (quadrature_name(q) == name) return q;
  throw Error("unknown quadrature '" + name +
              "' (known: gausslegendre, riemann_left, riemann_right, riemann_middle, riemann_trapezoid)");
}

int quadrature_order(Quadrature rule) {
  switch (rule) {
    case Quadrature::RiemannLeft:
    case Quadrature::RiemannRight: return 1;
    case Quadrature::RiemannMiddle:
    case Quadrature::RiemannTrapezoid: return 2;
    case Quadrature::GaussLegendre: return 0;
  }
  return 0;
}

}  // namespace igscope
