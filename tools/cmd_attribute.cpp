// igscope attribute: attributions of one input (a PNG, or an image of the
// Fashion-MNIST test set) by IG or a comparison method; writes a heatmap PNG
// and a JSON file with the attributions, F(x), F(x'), the gap and the path.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <string>

#include "commands.h"
#include "inputs.h"
#include "igscope/attribution/explain.h"
#include "igscope/attribution/explanation_json.h"
#include "igscope/attribution/heatmap.h"
#include "igscope/data/fashion_mnist.h"
#include "igscope/error.h"
#include "igscope/model.h"

#include "png_output.h"

namespace igscope::tools {

namespace {

struct Options {
  std::string model, input, method = "ig", baseline = "black", quadrature = "gausslegendre", output = "logit";
  std::string json_path, png_path, style = "signed", statistic = "mean", backend;
  int64_t target = -1, steps = 64, batch = 32, samples = 50, max_steps = 1024;
  int threads = 0;
  double adaptive = 0.0, sigma = 0.15, blur_sigma = 10.0, clip = 99.0, overlay = 0.0;
  int64_t scale = 10;
  uint64_t seed = 0;
};

// A signed per-feature table: raw value, standardised value, baseline, attribution, and a bar.
void print_feature_table(const Model& model, const Input& input, const Explanation& e) {
  const TabularInfo& info = *model.tabular();
  const Tensor& a = e.attribution.values;
  double largest = 0.0;
  for (int64_t i = 0; i < a.size(); ++i) largest = std::max(largest, std::abs(static_cast<double>(a[i])));
  std::printf("\n%-8s %10s %10s %12s %12s\n", "feature", "value", "standard.", "baseline", "attribution");
  for (int64_t i = 0; i < a.size(); ++i) {
    const size_t k = static_cast<size_t>(i);
    double base = 0.0;
    for (const Tensor& b : e.baselines) base += b[i];
    base = info.mean[k] + info.std[k] * base / static_cast<double>(std::max<size_t>(e.baselines.size(), 1));
    const int width = largest > 0 ? static_cast<int>(std::lround(20.0 * std::abs(a[i]) / largest)) : 0;
    std::printf("%-8s %10.4g %10.4f %12.4g %12.5g  %s%s\n", info.features[k].c_str(), input.raw[k],
                static_cast<double>(input.sample[i]), base, static_cast<double>(a[i]), a[i] < 0 ? "-" : "+",
                std::string(static_cast<size_t>(width), a[i] < 0 ? '<' : '>').c_str());
  }
  std::printf("%-8s %10s %10s %12s %12.5g\n", "sum", "", "", "", e.attribution.sum);
  std::printf("\nprediction %.5g (%s), measured %.5g, row in the %s split\n", e.outputs[0], info.target.c_str(),
              *input.target, input.held_out ? "held-out" : "training");
  std::printf("completeness: F(x) - F(x') = %.6g, sum of attributions %.6g, gap %.3g\n",
              e.attribution.f_input - e.attribution.f_baseline, e.attribution.sum, e.attribution.gap);
}

void run(const Options& o) {
  Model model = load_model(o.model);
  std::unique_ptr<Backend> backend = make_backend(o.backend.empty() ? default_backend() : o.backend, o.threads);
  const Input input = read_input(o.input, model);

  AttributionRequest req;
  req.method = parse_method(o.method);
  req.target = o.target;
  req.output = parse_target_output(o.output);
  req.baseline = o.baseline;
  req.integration = {parse_quadrature(o.quadrature), o.steps, o.batch};
  if (o.adaptive != 0.0) {
    if (req.method != Method::IG && req.method != Method::BlurIG)
      throw Error("--adaptive applies to the path methods ig and blurig, not " + o.method);
    req.adaptive = true;
    req.adaptive_options.tolerance = o.adaptive;
    req.adaptive_options.max_evaluations = o.max_steps;
  }
  req.smoothgrad.samples = o.samples;
  req.smoothgrad.sigma = o.sigma;
  req.smoothgrad.statistic = parse_smoothgrad_statistic(o.statistic);
  req.blur_max_sigma = o.blur_sigma;
  req.seed = o.seed;
  req.range = input_range(model);
  if (model.num_outputs() == 1 && req.output == TargetOutput::Probability)
    throw Error("the model has one output (a regressor): explain it as it is (--output logit)");
  if (model.tabular() && !o.png_path.empty()) throw Error("--png draws images; a tabular model's attributions are a table");
  const HeatmapOptions heat{parse_heatmap_style(o.style), o.clip, o.overlay, o.scale, req.range.lo, req.range.hi};
  abs_percentile({}, heat.clip_percentile);  // bad rendering options fail before the work

  // What some baselines need: a custom image, or the training set.
  BaselineData baseline_data;
  if (uses_baseline(req.method)) read_baseline_data(parse_baseline_spec(req.baseline), model, baseline_data);
  const BaselineSources& sources = baseline_data.sources;

  const auto t0 = std::chrono::steady_clock::now();
  const Explanation e = explain(model, *backend, input.sample, req, sources);
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  const Attribution& a = e.attribution;

  std::printf("input      %s%s\n", o.input.c_str(),
              input.label ? (" (label " + std::to_string(*input.label) + " " + class_name(model, *input.label) + ")").c_str() : "");
  if (!model.tabular()) {
    std::printf("predicted  %lld %s (p = %.4f)\n", static_cast<long long>(e.predicted), class_name(model, e.predicted).c_str(),
                e.probabilities[static_cast<size_t>(e.predicted)]);
    std::printf("target     %lld %s, %s\n", static_cast<long long>(e.target), class_name(model, e.target).c_str(),
                o.output.c_str());
  }
  std::printf("method     %s", method_name(req.method).c_str());
  if (uses_baseline(req.method)) std::printf(", baseline %s", req.baseline.c_str());
  if (req.method == Method::BlurIG) std::printf(", max sigma %g", req.blur_max_sigma);
  if (req.adaptive)
    std::printf(", adaptive (tolerance %g, cap %lld)", o.adaptive, static_cast<long long>(o.max_steps));
  else if (req.method == Method::GuidedIG)
    std::printf(", %lld steps", static_cast<long long>(o.steps));
  else if (is_path_method(req.method))
    std::printf(", %s, %lld steps", o.quadrature.c_str(), static_cast<long long>(o.steps));
  std::printf("\nF(x)       %.6g\n", a.f_input);
  if (std::isfinite(a.gap)) {
    std::printf("F(x')      %.6g\nsum        %.6g\ngap        %.3g (%.3g%% of |F(x) - F(x')|)\n", a.f_baseline, a.sum, a.gap,
                100.0 * a.relative_gap());
    if (req.adaptive) {
      bool converged = true;
      for (const auto& p : a.paths) converged = converged && p.converged;
      if (!converged) std::printf("warning    the adaptive mode reached its cap before the tolerance\n");
    }
  } else {
    std::printf("sum        %.6g\n", a.sum);
  }
  std::printf("evaluated  %lld points in %.1f ms (%s backend)\n", static_cast<long long>(a.evaluations), ms,
              backend->name().c_str());
  if (model.tabular()) print_feature_table(model, input, e);

  if (!o.json_path.empty()) {
    nlohmann::json j = explanation_json(e, req, model);
    j["model"] = o.model;
    j["input"] = o.input;
    j["label"] = input.label ? nlohmann::json(*input.label) : nlohmann::json(nullptr);
    if (model.tabular()) {
      j["features"] = model.tabular()->features;
      j["raw"] = input.raw;
      j["target_value"] = *input.target;
      j["held_out"] = input.held_out;
    }
    j["milliseconds"] = ms;
    j["backend"] = backend->name();
    std::ofstream out(o.json_path);
    if (!out) throw Error("cannot write '" + o.json_path + "'");
    out << j.dump() << "\n";
    if (!out) throw Error("cannot write '" + o.json_path + "'");
    std::printf("wrote      %s\n", o.json_path.c_str());
  }
  if (!o.png_path.empty()) {
    write_png(o.png_path, render_heatmap(a.values, &input.sample, heat));
    std::printf("wrote      %s\n", o.png_path.c_str());
  }
}

}  // namespace

void add_attribute_command(CLI::App& app) {
  auto o = std::make_shared<Options>();
  auto* cmd = app.add_subcommand("attribute", "Attributions of one input: IG (any quadrature, any baseline) or a comparison method");
  cmd->add_option("--model", o->model, "model file (.safetensors)")->required();
  cmd->add_option("--input", o->input, "test:INDEX (Fashion-MNIST test set) or an image file (PNG) of the model's size")->required();
  cmd->add_option("--target", o->target, "class to explain (default: the predicted class)");
  cmd->add_option("--output", o->output, "explain the class's logit or its softmax probability")
      ->check(CLI::IsMember({"logit", "probability"}));
  cmd->add_option("--method", o->method, "ig, gradient (saliency), gradxinput, smoothgrad, smoothgrad_ig, blurig, guidedig")
      ->check(CLI::IsMember(method_names()));
  cmd->add_option("--baseline", o->baseline, "the path's start x', one of:\n" + baseline_help())->capture_default_str();
  cmd->add_option("--steps", o->steps, "quadrature steps (Guided IG: gradient steps along its path)")->capture_default_str();
  cmd->add_option("--quadrature", o->quadrature, "gausslegendre, riemann_left, riemann_right, riemann_middle, riemann_trapezoid")
      ->check(CLI::IsMember(quadrature_names()));
  cmd->add_option("--adaptive", o->adaptive,
                  "refine until |gap| <= TOL * |F(x) - F(x')| (ig, blurig), instead of a fixed number of steps");
  cmd->add_option("--max-steps", o->max_steps, "the adaptive mode's cap on evaluated points")->capture_default_str();
  cmd->add_option("--samples", o->samples, "SmoothGrad samples")->capture_default_str();
  cmd->add_option("--sigma", o->sigma, "SmoothGrad noise, a fraction of the input range")->capture_default_str();
  cmd->add_option("--statistic", o->statistic, "SmoothGrad statistic: mean, squared, variance")
      ->check(CLI::IsMember({"mean", "squared", "variance"}));
  cmd->add_option("--blur-sigma", o->blur_sigma, "Blur IG: the largest blur (pixels)")->capture_default_str();
  cmd->add_option("--seed", o->seed, "seed for random baselines and SmoothGrad noise")->capture_default_str();
  cmd->add_option("--batch", o->batch, "path points per batch (bounds memory)")->capture_default_str();
  cmd->add_option("--backend", o->backend,
                  "kernel backend (" + available_backends() + "; default " + default_backend_reason() + ")");
  cmd->add_option("--threads", o->threads, "threads (0: all cores)")->capture_default_str();
  cmd->add_option("--json", o->json_path, "write the attributions, F(x), F(x'), the gap and the path data here");
  cmd->add_option("--png", o->png_path, "write a heatmap here");
  cmd->add_option("--style", o->style, "heatmap: signed (red for, blue against), magnitude, positive")
      ->check(CLI::IsMember({"signed", "magnitude", "positive"}));
  cmd->add_option("--clip", o->clip, "heatmap: clip at this percentile of |attribution|")->capture_default_str();
  cmd->add_option("--overlay", o->overlay, "heatmap: opacity over the grey-scale input (0: no overlay)")->capture_default_str();
  cmd->add_option("--scale", o->scale, "heatmap: pixels per input pixel")->capture_default_str();
  cmd->callback([o] { run(*o); });
}

}  // namespace igscope::tools
