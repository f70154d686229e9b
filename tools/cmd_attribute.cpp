// igscope attribute: attributions of one input (a PNG, or an image of the
// Fashion-MNIST test set) by IG or a comparison method; writes a heatmap PNG
// and a JSON file with the attributions, F(x), F(x'), the gap and the path.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <string>

#include "commands.h"
#include "igscope/attribution/explain.h"
#include "igscope/attribution/explanation_json.h"
#include "igscope/attribution/heatmap.h"
#include "igscope/data/fashion_mnist.h"
#include "igscope/error.h"
#include "igscope/model.h"

#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#include <stb/stb_image.h>
#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb/stb_image_write.h>

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

// A grey-scale (or RGB, for 3-channel models) PNG as one sample [1, H, W, C]
// in [0, 1]; its size must be the model's.
Tensor read_png(const std::string& path, const Shape& shape, const std::string& what) {
  if (shape.size() != 3) throw Error(what + ": the model does not take images");
  const int64_t h = shape[0], w = shape[1], c = shape[2];
  if (c != 1 && c != 3) throw Error(what + ": PNG input needs a model with 1 or 3 channels");
  int iw = 0, ih = 0, ic = 0;
  unsigned char* px = stbi_load(path.c_str(), &iw, &ih, &ic, static_cast<int>(c));
  if (!px) throw Error(what + ": cannot read image '" + path + "': " + stbi_failure_reason());
  std::unique_ptr<unsigned char, void (*)(void*)> guard(px, stbi_image_free);
  if (ih != h || iw != w)
    throw Error(what + ": '" + path + "' is " + std::to_string(iw) + "x" + std::to_string(ih) + " pixels but the model takes " +
                std::to_string(w) + "x" + std::to_string(h));
  Tensor t({1, h, w, c});
  for (int64_t i = 0; i < t.size(); ++i) t[i] = static_cast<float>(px[i]) / 255.0f;
  return t;
}

struct Input {
  Tensor image;
  std::optional<int> label;
};

Input read_input(const std::string& spec, Model& model) {
  if (spec.rfind("test:", 0) == 0) {
    const std::string idx = spec.substr(5);
    if (idx.empty() || idx.find_first_not_of("0123456789") != std::string::npos || idx.size() > 9)
      throw Error("--input test:INDEX needs a non-negative index, got '" + spec + "'");
    const int64_t k = std::stoll(idx);
    const Dataset test = load_fashion_mnist("test");
    if (k >= test.size())
      throw Error("--input " + spec + ": the test set has " + std::to_string(test.size()) + " images (0.." +
                  std::to_string(test.size() - 1) + ")");
    const int64_t per = test.images.size() / test.size();
    if (test.images.size() / test.size() != shape_numel(model.input_shape()))
      throw Error("the model's input " + shape_to_string(model.input_shape()) + " is not a Fashion-MNIST image");
    Input in{Tensor(model.batch_input_shape(1)), test.labels[static_cast<size_t>(k)]};
    std::copy(test.images.data() + k * per, test.images.data() + (k + 1) * per, in.image.data());
    return in;
  }
  return {read_png(spec, model.input_shape(), "--input"), std::nullopt};
}

std::string name_of(const Model& m, int64_t k) {
  const auto& names = m.class_names();
  return k >= 0 && k < static_cast<int64_t>(names.size()) ? names[static_cast<size_t>(k)] : std::to_string(k);
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
  const HeatmapOptions heat{parse_heatmap_style(o.style), o.clip, o.overlay, o.scale, req.range.lo, req.range.hi};
  abs_percentile({}, heat.clip_percentile);  // bad rendering options fail before the work

  // What some baselines need: a custom image, or the training set.
  Tensor custom, train_images;
  BaselineSources sources;
  if (uses_baseline(req.method)) {
    const BaselineSpec spec = parse_baseline_spec(req.baseline);
    if (spec.kind == BaselineKind::Image) {
      custom = read_png(spec.image_path, model.input_shape(), "--baseline " + req.baseline);
      sources.image = &custom;
    }
    if (spec.kind == BaselineKind::DatasetMean || spec.kind == BaselineKind::Training) {
      train_images = load_fashion_mnist("train").images;
      sources.dataset = &train_images;
    }
  }

  const auto t0 = std::chrono::steady_clock::now();
  const Explanation e = explain(model, *backend, input.image, req, sources);
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  const Attribution& a = e.attribution;

  std::printf("input      %s%s\n", o.input.c_str(),
              input.label ? (" (label " + std::to_string(*input.label) + " " + name_of(model, *input.label) + ")").c_str() : "");
  std::printf("predicted  %lld %s (p = %.4f)\n", static_cast<long long>(e.predicted), name_of(model, e.predicted).c_str(),
              e.probabilities[static_cast<size_t>(e.predicted)]);
  std::printf("target     %lld %s, %s\n", static_cast<long long>(e.target), name_of(model, e.target).c_str(),
              o.output.c_str());
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

  if (!o.json_path.empty()) {
    nlohmann::json j = explanation_json(e, req, model);
    j["model"] = o.model;
    j["input"] = o.input;
    j["label"] = input.label ? nlohmann::json(*input.label) : nlohmann::json(nullptr);
    j["milliseconds"] = ms;
    j["backend"] = backend->name();
    std::ofstream out(o.json_path);
    if (!out) throw Error("cannot write '" + o.json_path + "'");
    out << j.dump() << "\n";
    if (!out) throw Error("cannot write '" + o.json_path + "'");
    std::printf("wrote      %s\n", o.json_path.c_str());
  }
  if (!o.png_path.empty()) {
    const RgbImage img = render_heatmap(a.values, &input.image, heat);
    if (!stbi_write_png(o.png_path.c_str(), static_cast<int>(img.width), static_cast<int>(img.height), 3,
                        img.pixels.data(), static_cast<int>(img.width * 3)))
      throw Error("cannot write '" + o.png_path + "'");
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
  cmd->add_option("--baseline", o->baseline,
                  "black, white, constant:V, uniform, gaussian:SIGMA, blur:SIGMA, maxdist, image:FILE.png, mean, "
                  "train:N, avg:N:uniform, avg:N:gaussian:SIGMA; any may end in @SEED");
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
  cmd->add_option("--backend", o->backend, "kernel backend (" + available_backends() + "; default " + default_backend() + ")");
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
