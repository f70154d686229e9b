#pragma once
// Path integrals of a function's gradient, the engine under IG and Blur IG:
//
//   A_i = integral over alpha in [0, 1] of dF/dx_i(gamma(alpha)) * dgamma_i/dalpha
//
// For the straight path gamma(alpha) = x' + alpha (x - x') this is IG. By
// the chain rule, sum_i A_i = F(gamma(1)) - F(gamma(0)) exactly; a
// quadrature's departure from it is the completeness gap.
//
// Path points are evaluated in chunks of at most batch_size, so memory is
// bounded by the chunk, whatever the number of steps (uniform mode).
#include <cstdint>
#include <vector>

#include "igscope/attribution/quadrature.h"
#include "igscope/attribution/result.h"
#include "igscope/attribution/target.h"

namespace igscope {

class Path {
 public:
  virtual ~Path() = default;
  virtual const Shape& shape() const = 0;  // of one point, [1, ...]
  virtual void point(double alpha, float* out) const = 0;          // gamma(alpha)
  virtual void velocity(double alpha, double* out) const = 0;      // dgamma/dalpha
};

// gamma(alpha) = baseline + alpha (input - baseline).
class StraightPath final : public Path {
 public:
  StraightPath(const Tensor& baseline, const Tensor& input);
  const Shape& shape() const override { return input_.shape(); }
  void point(double alpha, float* out) const override;
  void velocity(double alpha, double* out) const override;

 private:
  Tensor baseline_, input_;
  std::vector<double> delta_;
};

// Blur IG: gamma(alpha) = blur(input, max_sigma (1 - alpha)), from the input
// blurred by max_sigma (alpha = 0) to the input itself (alpha = 1), with
// the blur's exact derivative in sigma. The kernel radius is held at
// ceil(4 max_sigma) along the whole path, so the path is smooth.
class BlurPath final : public Path {
 public:
  BlurPath(const Tensor& input, double max_sigma);
  const Shape& shape() const override { return input_.shape(); }
  void point(double alpha, float* out) const override;
  void velocity(double alpha, double* out) const override;
  double max_sigma() const { return max_sigma_; }

 private:
  Tensor input_;
  double max_sigma_;
  int64_t radius_;
};

// Integrates every path with the same rule, all points streamed through f in
// chunks of batch_size. Adds each path's attributions into `accum`
// (numel of one point, zeroed by the caller). With shared_end, every path
// ends at the same point and F there is evaluated once.
std::vector<PathIntegral> integrate_paths(TargetFunction& f, const std::vector<const Path*>& paths,
                                          const QuadratureRule& rule, int64_t batch_size, bool shared_end,
                                          std::vector<double>& accum);

// Adaptive integration of one path. [0, 1] starts as initial_intervals equal
// intervals, each integrated by a Gauss-Lobatto rule of points_per_interval
// points (3: Simpson's rule), whose end points neighbouring intervals share.
// Because F is known at every interval end, each interval's own completeness
// gap Q_j - (F(b_j) - F(a_j)) is known exactly, and they sum to the total
// gap. While |total gap| > tolerance (relative to |F(1) - F(0)| when
// relative), the intervals with the largest local gap (where the slope
// changes fastest) are halved; every point already evaluated is kept (the
// ends and, for an odd number of points, the midpoint). Stops at
// max_evaluations; the result says whether it converged.
// Memory: the integrand at every evaluated point (max_evaluations x one input).
struct AdaptiveOptions {
  double tolerance = 0.01;
  bool relative = true;
  int64_t max_evaluations = 1024;
  int64_t initial_intervals = 2;
  int64_t points_per_interval = 3;
  int64_t batch_size = 32;       // points per chunk
  int64_t points_per_round = 2;  // new points per refinement round (at least one interval is split)
};
void check_adaptive_options(const AdaptiveOptions& options);  // throws Error
PathIntegral integrate_path_adaptive(TargetFunction& f, const Path& path, const AdaptiveOptions& options,
                                     std::vector<double>& accum);

}  // namespace igscope
