#include "igscope/attribution/explanation_json.h"

#include <cmath>
#include <set>
#include <type_traits>

#include "igscope/error.h"

namespace igscope {

using nlohmann::json;

namespace {

json number_or_null(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

// Rows of one sample [1, H, W, C]: [H][W] for one channel, [H][W][C] otherwise;
// flat data [1, F] as a flat list.
json sample_rows(const Tensor& t) {
  if (t.rank() != 4) return json(std::vector<float>(t.data(), t.data() + t.size()));
  const int64_t h = t.dim(1), w = t.dim(2), c = t.dim(3);
  json rows = json::array();
  for (int64_t y = 0; y < h; ++y) {
    json row = json::array();
    for (int64_t x = 0; x < w; ++x) {
      if (c == 1) {
        row.push_back(t[y * w + x]);
      } else {
        json px = json::array();
        for (int64_t ch = 0; ch < c; ++ch) px.push_back(t[(y * w + x) * c + ch]);
        row.push_back(px);
      }
    }
    rows.push_back(row);
  }
  return rows;
}

json path_json(const PathIntegral& p) {
  json samples = json::array();
  for (const auto& s : p.samples)
    samples.push_back({{"alpha", s.alpha}, {"weight", s.weight}, {"f", s.value}, {"grad_norm", s.grad_norm}, {"slope", s.slope}});
  return {{"f_start", p.f_start}, {"f_end", p.f_end},         {"sum", p.sum},          {"gap", p.gap},
          {"evaluations", p.evaluations}, {"converged", p.converged}, {"samples", samples}};
}

std::string class_name(const Model& m, int64_t k) {
  const auto& names = m.class_names();
  return k >= 0 && k < static_cast<int64_t>(names.size()) ? names[static_cast<size_t>(k)] : std::to_string(k);
}

template <typename T>
T get_as(const json& j, const char* key, const char* kind) {
  const json& v = j.at(key);
  const bool ok = std::is_same_v<T, std::string> ? v.is_string()
                  : std::is_integral_v<T>        ? v.is_number_integer()
                                                 : v.is_number();
  if (!ok) throw Error(std::string("request: '") + key + "' must be " + kind + ", got " + v.dump());
  return v.get<T>();
}

}  // namespace

json explanation_json(const Explanation& e, const AttributionRequest& req, const Model& model) {
  const Attribution& a = e.attribution;
  json j;
  j["method"] = method_name(req.method);
  j["target"] = e.target;
  j["target_name"] = class_name(model, e.target);
  j["output"] = target_output_name(req.output);
  j["predicted"] = e.predicted;
  j["predicted_name"] = class_name(model, e.predicted);
  j["outputs"] = e.outputs;
  j["probabilities"] = e.probabilities;
  j["f_input"] = number_or_null(a.f_input);
  j["f_baseline"] = number_or_null(a.f_baseline);
  j["attribution_sum"] = a.sum;
  j["gap"] = number_or_null(a.gap);
  j["relative_gap"] = std::isfinite(a.gap) ? number_or_null(a.relative_gap()) : json(nullptr);
  j["evaluations"] = a.evaluations;
  j["shape"] = model.input_shape();
  j["attributions"] = sample_rows(a.values);
  if (uses_baseline(req.method)) j["baseline"] = req.baseline;
  if (is_path_method(req.method)) {
    j["quadrature"] = req.adaptive                       ? "adaptive_gauss_lobatto"
                      : req.method == Method::GuidedIG ? "guided"
                                                       : quadrature_name(req.integration.quadrature);
    j["steps"] = req.integration.steps;
  }
  if (req.method == Method::SmoothGrad || req.method == Method::SmoothGradIG)
    j["smoothgrad"] = {{"samples", req.smoothgrad.samples},
                       {"sigma", req.smoothgrad.sigma},
                       {"statistic", smoothgrad_statistic_name(req.smoothgrad.statistic)},
                       {"seed", req.seed}};
  if (req.method == Method::BlurIG) j["blur_max_sigma"] = req.blur_max_sigma;
  if (req.adaptive)
    j["adaptive"] = {{"tolerance", req.adaptive_options.tolerance}, {"max_steps", req.adaptive_options.max_evaluations}};
  if (!e.baselines.empty()) {
    j["baseline_image"] = sample_rows(e.baselines.front());
    j["baseline_count"] = e.baselines.size();
  }
  if (!a.paths.empty()) {
    json paths = json::array();
    for (const auto& p : a.paths) paths.push_back(path_json(p));
    j["path"] = paths.front()["samples"];
    j["paths"] = paths;
  }
  return j;
}

namespace {

// What both kinds of conductance JSON carry: the request and the node
// (its index, id, description and whether it is a cut of the graph).
json conductance_common(const char* kind, size_t layer, const ConductanceRequest& req, const std::string& baseline,
                        const Model& model) {
  return {{"kind", kind},
          {"layer", layer},
          {"node_id", model.node_id(layer)},
          {"cut", model.is_cut(layer)},
          {"layer_description", model.layer_costs().at(layer).description},
          {"unit_shape", model.layer_output_shape(layer)},
          {"target", req.target},
          {"target_name", class_name(model, req.target)},
          {"output", target_output_name(req.output)},
          {"baseline", baseline},
          {"quadrature", quadrature_name(req.integration.quadrature)},
          {"steps", req.integration.steps},
          {"batch_size", req.integration.batch_size}};
}

}  // namespace

json conductance_json(const LayerConductance& c, const ConductanceRequest& req, const std::string& baseline,
                      const Model& model) {
  json j = conductance_common("layer", c.layer, req, baseline, model);
  j["channels"] = c.channels;
  j["units"] = std::vector<float>(c.units.data(), c.units.data() + c.units.size());
  j["f_input"] = c.f_input;
  j["f_baseline"] = c.f_baseline;
  j["sum"] = c.sum;
  j["gap"] = c.gap;
  j["relative_gap"] = number_or_null(c.relative_gap());
  j["evaluations"] = c.evaluations;
  return j;
}

json conductance_json(const NeuronConductance& c, const ConductanceRequest& req, const std::string& baseline,
                      const Model& model) {
  json j = conductance_common("neuron", c.layer, req, baseline, model);
  j["unit"] = c.unit;
  j["attributions"] = std::vector<float>(c.attributions.data(), c.attributions.data() + c.attributions.size());
  j["conductance"] = c.conductance;
  j["f_input"] = c.f_input;
  j["f_baseline"] = c.f_baseline;
  j["evaluations"] = c.evaluations;
  return j;
}

AttributionRequest request_from_json(const json& j) {
  if (!j.is_object()) throw Error("request: expected a JSON object, got " + j.dump());
  static const std::set<std::string> known{"method", "target", "output",    "baseline",     "steps",          "quadrature",
                                           "batch_size", "adaptive", "max_steps", "smoothgrad", "blur_max_sigma", "seed"};
  for (const auto& [key, value] : j.items())
    if (!known.count(key)) throw Error("request: unknown key '" + key + "'");
  AttributionRequest r;
  if (j.contains("method")) r.method = parse_method(get_as<std::string>(j, "method", "a string"));
  if (j.contains("target")) r.target = get_as<int64_t>(j, "target", "an integer (-1: the predicted class)");
  if (j.contains("output")) r.output = parse_target_output(get_as<std::string>(j, "output", "a string"));
  if (j.contains("baseline")) r.baseline = get_as<std::string>(j, "baseline", "a baseline spec string");
  if (j.contains("steps")) r.integration.steps = get_as<int64_t>(j, "steps", "an integer");
  if (j.contains("quadrature")) r.integration.quadrature = parse_quadrature(get_as<std::string>(j, "quadrature", "a string"));
  if (j.contains("batch_size")) r.integration.batch_size = get_as<int64_t>(j, "batch_size", "an integer");
  if (j.contains("adaptive") && !j["adaptive"].is_null()) {
    if (r.method != Method::IG && r.method != Method::BlurIG)
      throw Error("request: 'adaptive' applies to the path methods ig and blurig, not " + method_name(r.method));
    r.adaptive = true;
    r.adaptive_options.tolerance = get_as<double>(j, "adaptive", "a number (the relative tolerance) or null");
  }
  if (j.contains("max_steps")) r.adaptive_options.max_evaluations = get_as<int64_t>(j, "max_steps", "an integer");
  if (j.contains("smoothgrad")) {
    const json& s = j["smoothgrad"];
    if (!s.is_object()) throw Error("request: 'smoothgrad' must be an object {samples, sigma, statistic}");
    for (const auto& [key, value] : s.items())
      if (key != "samples" && key != "sigma" && key != "statistic") throw Error("request: unknown key 'smoothgrad." + key + "'");
    if (s.contains("samples")) r.smoothgrad.samples = get_as<int64_t>(s, "samples", "an integer");
    if (s.contains("sigma")) r.smoothgrad.sigma = get_as<double>(s, "sigma", "a number");
    if (s.contains("statistic")) r.smoothgrad.statistic = parse_smoothgrad_statistic(get_as<std::string>(s, "statistic", "a string"));
  }
  if (j.contains("blur_max_sigma")) r.blur_max_sigma = get_as<double>(j, "blur_max_sigma", "a number");
  if (j.contains("seed")) {
    const json& v = j["seed"];
    if (!v.is_number_unsigned() && !(v.is_number_integer() && v.get<int64_t>() >= 0))
      throw Error("request: 'seed' must be a non-negative integer, got " + v.dump());
    r.seed = v.get<uint64_t>();
  }
  return r;
}

}  // namespace igscope
