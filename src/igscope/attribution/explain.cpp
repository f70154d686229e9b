#include "igscope/attribution/explain.h"

#include <algorithm>
#include <cmath>

#include "igscope/error.h"

namespace igscope {

std::string method_name(Method m) {
  switch (m) {
    case Method::IG: return "ig";
    case Method::Gradient: return "gradient";
    case Method::GradientTimesInput: return "gradxinput";
    case Method::SmoothGrad: return "smoothgrad";
    case Method::SmoothGradIG: return "smoothgrad_ig";
    case Method::BlurIG: return "blurig";
    case Method::GuidedIG: return "guidedig";
  }
  return "?";
}

const std::vector<std::string>& method_names() {
  static const std::vector<std::string> names{"ig", "gradient", "saliency", "gradxinput", "smoothgrad", "smoothgrad_ig",
                                              "blurig",   "guidedig"};
  return names;
}

Method parse_method(const std::string& name) {
  if (name == "saliency") return Method::Gradient;
  for (Method m : {Method::IG, Method::Gradient, Method::GradientTimesInput, Method::SmoothGrad, Method::SmoothGradIG,
                   Method::BlurIG, Method::GuidedIG})
    if (method_name(m) == name) return m;
  throw Error("unknown method '" + name + "' (known: ig, gradient (saliency), gradxinput, smoothgrad, smoothgrad_ig, blurig, guidedig)");
}

Explanation explain(Model& model, Backend& backend, const Tensor& input, const AttributionRequest& req,
                    const BaselineSources& sources) {
  check_range(req.range);
  check_sample(input, model.input_shape(), "the input");
  Tensor x = input;
  x.reshape(model.batch_input_shape(1));

  Explanation e;
  e.outputs = model_outputs(model, backend, x);
  e.predicted = std::max_element(e.outputs.begin(), e.outputs.end()) - e.outputs.begin();
  e.probabilities = softmax(e.outputs);
  e.target = req.target < 0 ? e.predicted : req.target;
  if (req.target < -1)
    throw Error("target class " + std::to_string(req.target) + " is out of range (-1 means the predicted class)");
  ModelTarget f(model, backend, e.target, req.output);
  f.set_cancel_check(req.cancelled);

  SmoothGradOptions sg = req.smoothgrad;
  sg.seed = req.seed;
  sg.range = req.range;
  sg.batch_size = req.integration.batch_size;
  AdaptiveOptions ad = req.adaptive_options;
  ad.batch_size = req.integration.batch_size;

  if (uses_baseline(req.method)) {
    const BaselineSpec spec = parse_baseline_spec(req.baseline);
    e.baselines = make_baselines(spec, x, req.range, sources, req.seed);
  }
  switch (req.method) {
    case Method::IG:
      e.attribution = req.adaptive ? adaptive_integrated_gradients(f, x, e.baselines, ad)
                                   : integrated_gradients(f, x, e.baselines, req.integration);
      break;
    case Method::Gradient: e.attribution = gradient_saliency(f, x); break;
    case Method::GradientTimesInput: e.attribution = gradient_times_input(f, x); break;
    case Method::SmoothGrad: e.attribution = smoothgrad(f, x, sg); break;
    case Method::SmoothGradIG: e.attribution = smoothgrad_ig(f, x, e.baselines, sg, req.integration); break;
    case Method::BlurIG:
      e.attribution = req.adaptive ? adaptive_blur_integrated_gradients(f, x, req.blur_max_sigma, ad)
                                   : blur_integrated_gradients(f, x, {req.blur_max_sigma, req.integration});
      e.baselines.push_back(gaussian_blur(x, req.blur_max_sigma));
      break;
    case Method::GuidedIG: {
      if (req.adaptive) throw Error("the adaptive mode applies to ig and blurig, not guidedig");
      GuidedIGOptions g = req.guided;
      g.steps = req.integration.steps;
      e.attribution = guided_integrated_gradients(f, x, e.baselines, g);
      break;
    }
  }
  return e;
}

}  // namespace igscope
