#pragma once
// The methods IG is usually compared with.
//
//   gradient            dF/dx at the input (saliency; Simonyan et al. 2014)
//   gradient x input    x * dF/dx (Shrikumar et al. 2016)
//   SmoothGrad          the gradient averaged over noisy copies of the input,
//                       x + N(0, (sigma (hi - lo))^2) (Smilkov et al. 2017):
//                       mean, squared mean (mean of squares), or variance (VarGrad)
//   SmoothGrad over IG  the same statistics of IG over noisy copies of the
//                       input, the baselines held fixed
#include <cstdint>
#include <string>
#include <vector>

#include "igscope/attribution/baselines.h"
#include "igscope/attribution/ig.h"
#include "igscope/attribution/result.h"
#include "igscope/attribution/target.h"

namespace igscope {

Attribution gradient_saliency(TargetFunction& f, const Tensor& input);
Attribution gradient_times_input(TargetFunction& f, const Tensor& input);

enum class SmoothGradStatistic { Mean, SquaredMean, Variance };
std::string smoothgrad_statistic_name(SmoothGradStatistic s);  // "mean", "squared", "variance"
SmoothGradStatistic parse_smoothgrad_statistic(const std::string& name);

struct SmoothGradOptions {
  int64_t samples = 50;
  double sigma = 0.15;  // noise standard deviation as a fraction of the range hi - lo
  SmoothGradStatistic statistic = SmoothGradStatistic::Mean;
  ValueRange range;
  uint64_t seed = 0;
  int64_t batch_size = 32;
};
void check_smoothgrad_options(const SmoothGradOptions& options);  // throws Error

Attribution smoothgrad(TargetFunction& f, const Tensor& input, const SmoothGradOptions& options = {});
// f_input and f_baseline are those of the noise-free input; gap is the mean
// of the per-sample gaps (for the mean statistic; NaN for the others).
Attribution smoothgrad_ig(TargetFunction& f, const Tensor& input, const std::vector<Tensor>& baselines,
                          const SmoothGradOptions& options = {}, const IGOptions& ig = {});

}  // namespace igscope
