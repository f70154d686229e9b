#pragma once
// Explanations, attribution requests and conductances as JSON: the one format
// the command line (igscope attribute --json, igscope conductance --json)
// writes and the web page reads and sends.
#include <nlohmann/json.hpp>

#include "igscope/attribution/conductance.h"
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

// A conductance with what was asked (baseline: the spec the baselines were
// made from), for both kinds: kind ("layer" or "neuron"), layer,
// layer_description, unit_shape, target, target_name, output, baseline,
// quadrature, steps, batch_size, f_input, f_baseline, evaluations. A layer's
// adds channels (per channel, or per unit of a dense layer), units (every
// unit, flat in unit_shape's order), sum, gap and relative_gap; a neuron's
// adds unit (its flat index), attributions (flat, over the input features)
// and conductance. The caller adds timings and where the input came from.
nlohmann::json conductance_json(const LayerConductance& c, const ConductanceRequest& request,
                                const std::string& baseline, const Model& model);
nlohmann::json conductance_json(const NeuronConductance& c, const ConductanceRequest& request,
                                const std::string& baseline, const Model& model);

// A request from JSON; every key is optional (defaults as in
// AttributionRequest): method, target, output, baseline, steps, quadrature,
// batch_size, adaptive (a relative tolerance, or null / absent for off),
// max_steps, smoothgrad {samples, sigma, statistic}, blur_max_sigma, seed.
// Throws Error naming the key for a wrong type, an unknown key or a bad value.
AttributionRequest request_from_json(const nlohmann::json& j);

}  // namespace igscope
