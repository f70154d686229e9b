#pragma once
// Guided IG (Kapishnikov et al. 2021): instead of the straight line, the path
// from the baseline to the input is chosen as it is walked. At each of
// `steps` steps the gradient is taken at the current point, and the
// features with the smallest |gradient| (a `fraction` of those that can
// still move) are moved first, until the L1 distance left to the input is
// (1 - k / steps) of the whole; no feature may fall behind, or run ahead of,
// the straight line's progress by more than max_dist. The attributions are
// sum over the moves of gradient * move (a left Riemann sum along the path),
// so they are complete up to a gap that shrinks as steps grows.
#include <cstdint>
#include <vector>

#include "igscope/attribution/result.h"
#include "igscope/attribution/target.h"

namespace igscope {

struct GuidedIGOptions {
  int64_t steps = 128;    // gradient evaluations along the path (one at a time)
  double fraction = 0.25;  // share of the movable features moved per inner iteration
  double max_dist = 0.02;  // how far (in alpha) a feature may stray from the straight line
};
void check_guided_ig_options(const GuidedIGOptions& options);  // throws Error

// With several baselines, the mean of the per-baseline attributions.
Attribution guided_integrated_gradients(TargetFunction& f, const Tensor& input, const std::vector<Tensor>& baselines,
                                        const GuidedIGOptions& options = {});

}  // namespace igscope
