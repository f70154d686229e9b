#pragma once
// Quadrature rules on [0, 1] for the path integral of Integrated Gradients.
//
//   riemann_left       nodes k/n,        k = 0..n-1, weights 1/n      error O(1/n)
//   riemann_right      nodes (k+1)/n,    k = 0..n-1, weights 1/n      error O(1/n)
//   riemann_middle     nodes (k+1/2)/n,  k = 0..n-1, weights 1/n      error O(1/n^2)
//   riemann_trapezoid  nodes k/n,        k = 0..n (n intervals, n+1 nodes),
//                      weights 1/n, halved at both ends               error O(1/n^2)
//   gausslegendre      the n roots of the Legendre polynomial P_n mapped to
//                      [0, 1]; exact for polynomials of degree <= 2n-1
//
// "steps" is n for every rule; only the trapezoid rule evaluates n+1 points.
// Gauss-Legendre (and Gauss-Lobatto, used by the adaptive mode) nodes and
// weights are computed by Newton's method on the Legendre recurrence, for
// any n up to kMaxQuadratureSteps. That costs O(n^2) (2 s for n = 16384), so
// the last few Gauss-Legendre rules are kept and handed out again
// (thread-safe): evaluating a data set recomputes nothing per image.
#include <cstdint>
#include <string>
#include <vector>

namespace igscope {

enum class Quadrature { RiemannLeft, RiemannRight, RiemannMiddle, RiemannTrapezoid, GaussLegendre };

constexpr int64_t kMaxQuadratureSteps = 16384;

struct QuadratureRule {
  std::vector<double> nodes;    // in [0, 1], increasing
  std::vector<double> weights;  // sum to 1
  size_t size() const { return nodes.size(); }
};

// Throws igscope::Error for steps outside [1, kMaxQuadratureSteps].
QuadratureRule quadrature_rule(Quadrature rule, int64_t steps);
QuadratureRule gauss_legendre_rule(int64_t n);
// n >= 2 points including both ends of [0, 1]; exact for degree <= 2n-3.
QuadratureRule gauss_lobatto_rule(int64_t n);

// Names as the command line takes them: riemann_left, riemann_right,
// riemann_middle, riemann_trapezoid, gausslegendre.
std::string quadrature_name(Quadrature rule);
Quadrature parse_quadrature(const std::string& name);  // throws Error on an unknown name
const std::vector<std::string>& quadrature_names();

// The order of convergence of the rule's error on smooth integrands
// (1 or 2 for Riemann rules; 0 for Gauss-Legendre, which converges faster
// than any power of 1/n).
int quadrature_order(Quadrature rule);

}  // namespace igscope
