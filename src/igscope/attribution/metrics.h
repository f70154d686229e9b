#pragma once
// Faithfulness metrics: how well an attribution map explains the function it
// was computed for, with numbers instead of eyeballing.
//
//   deletion / insertion (Petsiuk et al. 2018): features are moved, in
//     decreasing order of attribution, from the input to a reference (deletion:
//     F should fall fast, low area is good) or from the reference to the input
//     (insertion: F should rise fast, high area is good). The curve is F at
//     `steps` + 1 evenly spaced fractions of the features; its area (AUC) is
//     the trapezoid rule over the fraction in [0, 1].
//   infidelity (Yeh et al. 2019, as Captum's infidelity with normalize=False):
//     E_I[(I . attr - (F(x) - F(x - I)))^2] for perturbations I ~ N(0, sigma^2).
//   max-sensitivity (Yeh et al. 2019, as Captum's sensitivity_max): the largest
//     ||attr(x + d) - attr(x)|| / ||attr(x)|| over perturbations d uniform in
//     [-radius, radius] per feature (Frobenius norms).
#include <cstdint>
#include <functional>
#include <vector>

#include "igscope/attribution/target.h"
#include "igscope/tensor.h"

namespace igscope {

struct PerturbationCurve {
  std::vector<double> fractions;  // 0, 1/steps, ..., 1
  std::vector<double> values;     // F at each fraction
  double auc = 0.0;
};

// The order in which features move: decreasing attribution, ties broken by index.
std::vector<int64_t> attribution_order(const Tensor& attributions);

// input, reference and attributions are one sample ([1, ...] or the sample shape).
PerturbationCurve deletion_curve(TargetFunction& f, const Tensor& input, const Tensor& reference,
                                 const Tensor& attributions, int64_t steps = 20, int64_t batch_size = 32);
PerturbationCurve insertion_curve(TargetFunction& f, const Tensor& input, const Tensor& reference,
                                  const Tensor& attributions, int64_t steps = 20, int64_t batch_size = 32);

struct InfidelityOptions {
  int64_t samples = 16;
  double sigma = 0.1;
  uint64_t seed = 0;
  int64_t batch_size = 32;
};
double infidelity(TargetFunction& f, const Tensor& input, const Tensor& attributions,
                  const InfidelityOptions& options = {});

struct SensitivityOptions {
  int64_t samples = 5;
  double radius = 0.02;
  uint64_t seed = 0;
};
// explain(x) returns the attributions of the same method at x.
using Explainer = std::function<Tensor(const Tensor& input)>;
double max_sensitivity(const Explainer& explain, const Tensor& input, const Tensor& attributions,
                       const SensitivityOptions& options = {});

}  // namespace igscope
