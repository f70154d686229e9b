// igscope conductance: how much of one input's Integrated Gradients flows
// through each channel (or unit) of a hidden layer, and the layer's
// completeness; with --unit, one unit's conductance split over the input
// features (neuron conductance).
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>

#include "commands.h"
#include "igscope/attribution/conductance.h"
#include "igscope/attribution/explanation_json.h"
#include "igscope/error.h"
#include "igscope/model.h"
#include "inputs.h"

namespace igscope::tools {

namespace {

struct Options {
  std::string model, input, baseline = "black", quadrature = "gausslegendre", output = "logit", unit, json_path, backend,
      layer;
  int64_t target = -1, steps = 64, batch = 32;
  int threads = 0;
  uint64_t seed = 0;
};

std::string describe_layer(const Model& m, size_t i) { return m.layer_costs().at(i).description; }

void run(const Options& o) {
  Model model = load_model(o.model);
  std::unique_ptr<Backend> backend = make_backend(o.backend.empty() ? default_backend() : o.backend, o.threads);
  const size_t layer = model.find_node(o.layer);
  const Shape unit_shape = model.layer_output_shape(layer);
  const int64_t unit = o.unit.empty() ? -1 : parse_unit(o.unit, unit_shape);
  const Input input = read_input(o.input, model);

  const BaselineSpec spec = parse_baseline_spec(o.baseline);
  BaselineData data;
  read_baseline_data(spec, model, data);
  const ValueRange range = input_range(model);
  const std::vector<Tensor> baselines = make_baselines(spec, input.sample, range, data.sources, o.seed);

  ConductanceRequest req;
  req.layer = layer;
  req.target = o.target < 0 ? predicted_class(model, *backend, input.sample) : o.target;
  req.output = parse_target_output(o.output);
  req.integration = {parse_quadrature(o.quadrature), o.steps, o.batch};

  std::printf("input      %s%s\n", o.input.c_str(),
              input.label ? (" (label " + std::to_string(*input.label) + " " + class_name(model, *input.label) + ")").c_str()
                          : "");
  std::printf("target     %lld %s, %s\n", static_cast<long long>(req.target), class_name(model, req.target).c_str(),
              o.output.c_str());
  std::printf("layer      %zu (%s): %s, output %s\n", layer, model.node_id(layer).c_str(),
              describe_layer(model, layer).c_str(), shape_to_string(unit_shape).c_str());
  std::printf("path       baseline %s, %s, %lld steps\n", o.baseline.c_str(), o.quadrature.c_str(),
              static_cast<long long>(o.steps));

  // The core's conductance JSON, and where the input came from.
  auto with_context = [&](nlohmann::json j, double ms) {
    j["model"] = o.model;
    j["input"] = o.input;
    j["label"] = input.label ? nlohmann::json(*input.label) : nlohmann::json(nullptr);
    j["milliseconds"] = ms;
    j["backend"] = backend->name();
    j["baseline_images"] = nlohmann::json::array();
    for (const Tensor& b : baselines) j["baseline_images"].push_back(std::vector<float>(b.data(), b.data() + b.size()));
    return j;
  };
  nlohmann::json j;
  const auto t0 = std::chrono::steady_clock::now();
  if (unit < 0) {
    const LayerConductance c = layer_conductance(model, *backend, input.sample, baselines, req);
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    std::printf("\n%8s  %14s\n", unit_shape.size() == 3 ? "channel" : "unit", "conductance");
    for (size_t k = 0; k < c.channels.size(); ++k) std::printf("%8zu  %14.6g\n", k, c.channels[k]);
    std::printf("\nF(x)       %.6g\nF(x')      %.6g\nsum        %.6g (all units of the layer)\n", c.f_input,
                c.f_baseline, c.sum);
    if (c.cut)
      std::printf("gap        %.3g (%.3g%% of |F(x) - F(x')|): completeness at node %s, a cut of the graph\n", c.gap,
                  100.0 * c.relative_gap(), model.node_id(layer).c_str());
    else
      std::printf("gap        %.3g: not a completeness gap, node %s is not a cut (paths from the input to the "
                  "output bypass it), so its conductances need not sum to F(x) - F(x')\n",
                  c.gap, model.node_id(layer).c_str());
    std::printf("evaluated  %lld points in %.1f ms (%s backend)\n", static_cast<long long>(c.evaluations), ms,
                backend->name().c_str());
    j = with_context(conductance_json(c, req, o.baseline, model), ms);
  } else {
    const NeuronConductance c = neuron_conductance(model, *backend, input.sample, baselines, req, unit);
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    double largest = 0.0;
    int64_t at = 0;
    for (int64_t i = 0; i < c.attributions.size(); ++i)
      if (std::abs(c.attributions[i]) > largest) largest = std::abs(c.attributions[at = i]);
    std::printf("unit       %lld (flat index in %s)\n", static_cast<long long>(unit), shape_to_string(unit_shape).c_str());
    std::printf("\nF(x)       %.6g\nF(x')      %.6g\nconductance %.6g (the unit's share of F(x) - F(x') = %.6g)\n",
                c.f_input, c.f_baseline, c.conductance, c.f_input - c.f_baseline);
    std::printf("largest    input feature %lld: %.6g\n", static_cast<long long>(at), static_cast<double>(c.attributions[at]));
    std::printf("evaluated  %lld points in %.1f ms (%s backend)\n", static_cast<long long>(c.evaluations), ms,
                backend->name().c_str());
    j = with_context(conductance_json(c, req, o.baseline, model), ms);
  }
  if (!o.json_path.empty()) {
    std::ofstream out(o.json_path);
    if (!out) throw Error("cannot write '" + o.json_path + "'");
    out << j.dump() << "\n";
    if (!out) throw Error("cannot write '" + o.json_path + "'");
    std::printf("wrote      %s\n", o.json_path.c_str());
  }
}

}  // namespace

void add_conductance_command(CLI::App& app) {
  auto o = std::make_shared<Options>();
  auto* cmd = app.add_subcommand(
      "conductance", "Conductance: IG through each channel or unit of a hidden layer, or one unit over the input");
  cmd->add_option("--model", o->model, "model file (.safetensors)")->required();
  cmd->add_option("--input", o->input, "test:INDEX (Fashion-MNIST test set) or an image file (PNG) of the model's size")
      ->required();
  cmd->add_option("--layer", o->layer, "node whose outputs are the hidden units: its id or index (see igscope info)")
      ->required();
  cmd->add_option("--unit", o->unit,
                  "one unit of that layer (H,W,C coordinates, or a flat index): its neuron conductance over the input");
  cmd->add_option("--target", o->target, "class to explain (default: the predicted class)");
  cmd->add_option("--output", o->output, "explain the class's logit or its softmax probability")
      ->check(CLI::IsMember({"logit", "probability"}));
  cmd->add_option("--baseline", o->baseline, "the path's start x', one of:\n" + baseline_help())->capture_default_str();
  cmd->add_option("--steps", o->steps, "quadrature steps")->capture_default_str();
  cmd->add_option("--quadrature", o->quadrature, "gausslegendre, riemann_left, riemann_right, riemann_middle, riemann_trapezoid")
      ->check(CLI::IsMember(quadrature_names()));
  cmd->add_option("--seed", o->seed, "seed for random baselines")->capture_default_str();
  cmd->add_option("--batch", o->batch, "path points per batch (bounds memory)")->capture_default_str();
  cmd->add_option("--backend", o->backend,
                  "kernel backend (" + available_backends() + "; default " + default_backend_reason() + ")");
  cmd->add_option("--threads", o->threads, "threads (0: all cores)")->capture_default_str();
  cmd->add_option("--json", o->json_path, "write the conductances, F(x), F(x') and the gap here");
  cmd->callback([o] { run(*o); });
}

}  // namespace igscope::tools
