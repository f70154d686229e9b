#pragma once
// What every attribution method returns: the attributions, and the numbers
// that make them honest (F at the input and the baseline, the sum of the
// attributions, the completeness gap, the F and gradient norm at every path
// point).
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "igscope/tensor.h"

namespace igscope {

// One evaluated point of an integration path.
struct PathSample {
  double alpha = 0.0;      // position on the path, in [0, 1]
  double weight = 0.0;     // the quadrature weight the point carries
  double value = 0.0;      // F at the point
  double grad_norm = 0.0;  // Euclidean norm of dF/dx at the point
  double slope = 0.0;      // dF/dalpha = dF/dx . dgamma/dalpha
};

// One path integral: for IG, the straight line from one baseline to the input.
struct PathIntegral {
  double f_start = 0.0;      // F(gamma(0)): F at the baseline
  double f_end = 0.0;        // F(gamma(1)): F at the input
  double sum = 0.0;          // the quadrature of the slope: this path's attributions, summed
  double gap = 0.0;          // sum - (f_end - f_start), the completeness gap
  int64_t evaluations = 0;   // points at which F was evaluated (with or without the gradient)
  bool converged = true;     // adaptive mode: whether the tolerance was reached
  double tolerance = 0.0;    // adaptive mode: the absolute tolerance on |gap| it aimed for
  std::vector<PathSample> samples;  // in increasing alpha
};

struct Attribution {
  std::string method;
  Tensor values;  // [1, ...input shape]
  // NaN where the method has no baseline (plain gradient, SmoothGrad).
  double f_input = std::numeric_limits<double>::quiet_NaN();
  double f_baseline = std::numeric_limits<double>::quiet_NaN();  // mean over the baselines
  double sum = 0.0;                                              // sum of the attributions
  double gap = std::numeric_limits<double>::quiet_NaN();         // sum - (f_input - f_baseline)
  int64_t evaluations = 0;  // points at which F was evaluated, all paths and samples together
  std::vector<PathIntegral> paths;  // one per baseline (path methods only)

  // |gap| / |f_input - f_baseline| (infinite when F does not change, NaN without a gap).
  double relative_gap() const {
    const double delta = std::abs(f_input - f_baseline);
    return delta > 0.0 ? std::abs(gap) / delta : (gap == 0.0 ? 0.0 : std::numeric_limits<double>::infinity());
  }
};

}  // namespace igscope
