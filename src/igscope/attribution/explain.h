#pragma once
// One entry point for every attribution method on a model, driven by a
// request a command line or a web page can fill in (no method logic in the
// callers).
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "igscope/attribution/baselines.h"
#include "igscope/attribution/blur.h"
#include "igscope/attribution/gradients.h"
#include "igscope/attribution/guided_ig.h"
#include "igscope/attribution/ig.h"
#include "igscope/attribution/path.h"
#include "igscope/attribution/result.h"
#include "igscope/attribution/target.h"
#include "igscope/backend/backend.h"
#include "igscope/model.h"

namespace igscope {

enum class Method { IG, Gradient, GradientTimesInput, SmoothGrad, SmoothGradIG, BlurIG, GuidedIG };
// ig, gradient (also "saliency"), gradxinput, smoothgrad, smoothgrad_ig, blurig, guidedig
std::string method_name(Method m);
Method parse_method(const std::string& name);  // throws Error
const std::vector<std::string>& method_names();
// Methods that take a baseline spec, and methods that integrate along a path
// (and so report F at both ends and a completeness gap).
inline bool uses_baseline(Method m) { return m == Method::IG || m == Method::SmoothGradIG || m == Method::GuidedIG; }
inline bool is_path_method(Method m) { return uses_baseline(m) || m == Method::BlurIG; }

struct AttributionRequest {
  Method method = Method::IG;
  int64_t target = -1;  // class index; -1: the predicted class
  TargetOutput output = TargetOutput::Logit;
  std::string baseline = "black";  // spec, see baselines.h (IG, SmoothGrad over IG, Guided IG)
  IGOptions integration;           // quadrature, steps, batch size
  bool adaptive = false;           // IG and Blur IG: refine until |gap| <= adaptive_options.tolerance
  AdaptiveOptions adaptive_options;
  SmoothGradOptions smoothgrad;    // samples, sigma, statistic (its seed and range are set from below)
  double blur_max_sigma = 10.0;    // Blur IG
  GuidedIGOptions guided;          // Guided IG (its steps are integration.steps)
  uint64_t seed = 0;               // for random baselines and SmoothGrad noise
  ValueRange range;                // the valid input range
  // Polled before every batch of model evaluations; when it returns true,
  // explain() stops and throws Cancelled. Empty: never cancelled.
  std::function<bool()> cancelled;
};

struct Explanation {
  Attribution attribution;
  int64_t target = 0;
  int64_t predicted = 0;
  std::vector<double> outputs;        // the model's outputs at the input
  std::vector<double> probabilities;  // softmax of the outputs
  std::vector<Tensor> baselines;      // the baselines used (path methods)
};

// Validates everything (the input's shape and values, the target, the
// baseline spec and its parameters, steps, sigmas) and throws Error with a
// clear message on anything wrong.
Explanation explain(Model& model, Backend& backend, const Tensor& input, const AttributionRequest& request,
                    const BaselineSources& sources = {});

}  // namespace igscope
