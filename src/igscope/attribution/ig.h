#pragma once
// Integrated Gradients (Sundararajan, Taly & Yan 2017) and Blur IG (Xu,
// Venugopalan & Sundararajan 2020) over any TargetFunction.
//
//   IG_i(x; x') = (x_i - x'_i) * integral_0^1 dF/dx_i(x' + alpha (x - x')) dalpha
//
// With several baselines (averaged noise draws, or training images: expected
// gradients) the attributions are the mean of the per-baseline IGs, and the
// gap is taken against the mean of F over the baselines.
#include <cstdint>
#include <vector>

#include "igscope/attribution/path.h"
#include "igscope/attribution/quadrature.h"
#include "igscope/attribution/result.h"
#include "igscope/attribution/target.h"

namespace igscope {

struct IGOptions {
  Quadrature quadrature = Quadrature::GaussLegendre;
  int64_t steps = 64;
  int64_t batch_size = 32;  // path points per chunk: bounds memory, whatever steps is
};

// Throws Error for bad steps or batch size, a baseline or input that is not
// one finite sample of f's input shape, or an empty list of baselines.
Attribution integrated_gradients(TargetFunction& f, const Tensor& input, const std::vector<Tensor>& baselines,
                                 const IGOptions& options = {});
Attribution integrated_gradients(TargetFunction& f, const Tensor& input, const Tensor& baseline,
                                 const IGOptions& options = {});

// IG whose quadrature refines itself until |gap| <= tolerance, each baseline
// on its own (see integrate_path_adaptive in path.h).
Attribution adaptive_integrated_gradients(TargetFunction& f, const Tensor& input, const std::vector<Tensor>& baselines,
                                          const AdaptiveOptions& options = {});

// Blur IG: the path from the input blurred by max_sigma (pixels) to the input.
struct BlurIGOptions {
  double max_sigma = 10.0;
  IGOptions integration;
};
Attribution blur_integrated_gradients(TargetFunction& f, const Tensor& input, const BlurIGOptions& options = {});
Attribution adaptive_blur_integrated_gradients(TargetFunction& f, const Tensor& input, double max_sigma,
                                               const AdaptiveOptions& options = {});

// For implementers of further methods: one sample [1, ...] of f's input
// shape, with finite values (throws Error naming `what`).
Tensor as_sample(TargetFunction& f, const Tensor& t, const std::string& what);
void check_ig_options(const IGOptions& options);

}  // namespace igscope
