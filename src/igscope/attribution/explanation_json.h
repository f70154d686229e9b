#pragma once
// Explanations and attribution requests as JSON: the one format the command
// line (igscope attribute --json) writes and the web page reads and sends.
#include <nlohmann/json.hpp>

#include "igscope/attribution/explain.h"
#include "igscope/model.h"

namespace igscope {

// Everything explain() returned, with what was asked: method, target (index
// and class name), output, predicted, outputs, probabilities, f_input,
// f_baseline, attribution_sum, gap, relative_gap, evaluations, shape,
// attributions (rows [H][W] for one channel, [H][W][C] otherwise), and for
// path methods the baseline, quadrature, steps, baseline_image, path (the
// first path's samples: alpha, weight, f, grad_norm, slope) and paths.
// Numbers with no value (f_baseline of a plain gradient) are null.
nlohmann::json explanation_json(const Explanation& e, const AttributionRequest& request, const Model& model);

// A request from JSON; every key is optional (defaults as in
// AttributionRequest): method, target, output, baseline, steps, quadrature,
// batch_size, adaptive (a relative tolerance, or null / absent for off),
// max_steps, smoothgrad {samples, sigma, statistic}, blur_max_sigma, seed.
// Throws Error naming the key for a wrong type, an unknown key or a bad value.
AttributionRequest request_from_json(const nlohmann::json& j);

}  // namespace igscope
