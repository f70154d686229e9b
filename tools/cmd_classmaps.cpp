// igscope classmaps: per class of the Fashion-MNIST test set, the mean signed
// and the mean absolute attribution (each image explained for its labelled
// class), written as PNG heatmaps and one JSON file.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "commands.h"
#include "igscope/attribution/class_maps.h"
#include "igscope/attribution/heatmap.h"
#include "igscope/data/fashion_mnist.h"
#include "igscope/error.h"
#include "igscope/model.h"
#include "inputs.h"
#include "progress.h"

#include "png_output.h"

namespace igscope::tools {

namespace {

struct Options {
  std::string model, out, method = "ig", baseline = "black", quadrature = "gausslegendre", backend;
  int64_t steps = 32, batch = 32, limit = 0, scale = 8;
  double clip = 99.0;
  int threads = 0;
  uint64_t seed = 0;
};

void run(const Options& o) {
  Model model = load_model(o.model);
  if (model.input_shape().size() != 3) throw Error("classmaps needs an image model; '" + o.model + "' is not one");
  std::unique_ptr<Backend> backend = make_backend(o.backend.empty() ? default_backend() : o.backend, o.threads);
  AttributionRequest req;
  req.method = parse_method(o.method);
  req.baseline = o.baseline;
  req.integration = {parse_quadrature(o.quadrature), o.steps, o.batch};
  req.seed = o.seed;
  const HeatmapOptions signed_style{HeatmapStyle::Signed, o.clip, 0.0, o.scale, 0.0, 1.0};
  const HeatmapOptions abs_style{HeatmapStyle::Magnitude, o.clip, 0.0, o.scale, 0.0, 1.0};
  abs_percentile({}, o.clip);  // a bad clip fails before the work

  BaselineData baseline_data;
  if (uses_baseline(req.method)) read_baseline_data(parse_baseline_spec(req.baseline), model, baseline_data);
  Dataset test = load_fashion_mnist("test");
  if (o.limit > 0) test = test.slice(0, o.limit);
  if (shape_numel(model.input_shape()) != test.images.size() / std::max<int64_t>(test.size(), 1))
    throw Error("the model's input " + shape_to_string(model.input_shape()) + " is not a Fashion-MNIST image");
  const int64_t classes = model.num_outputs();

  std::error_code ec;
  std::filesystem::create_directories(o.out, ec);
  if (ec) throw Error("cannot create the folder '" + o.out + "': " + ec.message());

  Progress progress;
  const auto t0 = std::chrono::steady_clock::now();
  const ClassMaps maps = class_mean_maps(model, *backend, test.images, test.labels, classes, req, baseline_data.sources,
                                         [&](int64_t done, int64_t total) {
                                           progress.update(static_cast<double>(done) / static_cast<double>(total),
                                                           std::to_string(done) + "/" + std::to_string(total) + " images");
                                         });
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  progress.finish(std::to_string(test.size()) + " images in " + format_duration(seconds));

  nlohmann::json j = {{"model", o.model},       {"method", o.method},         {"baseline", o.baseline},
                      {"quadrature", o.quadrature}, {"steps", o.steps},         {"images", test.size()},
                      {"shape", model.input_shape()}, {"clip_percentile", o.clip}, {"seconds", seconds},
                      {"target", "each image's labelled class"}};
  j["classes"] = nlohmann::json::array();
  std::printf("%-3s %-12s %6s %14s %14s %12s\n", "#", "class", "images", "mean sum", "mean |attr|", "mean rel gap");
  for (int64_t c = 0; c < classes; ++c) {
    const size_t k = static_cast<size_t>(c);
    const std::string stem = "class_" + std::to_string(c);
    double total = 0.0, total_abs = 0.0;
    for (int64_t i = 0; i < maps.mean_signed[k].size(); ++i) {
      total += maps.mean_signed[k][i];
      total_abs += maps.mean_abs[k][i];
    }
    nlohmann::json entry = {{"index", c},
                            {"name", class_name(model, c)},
                            {"count", maps.counts[k]},
                            {"mean_sum", total},
                            {"mean_abs_sum", total_abs},
                            {"mean_signed", std::vector<float>(maps.mean_signed[k].data(),
                                                               maps.mean_signed[k].data() + maps.mean_signed[k].size())},
                            {"mean_abs", std::vector<float>(maps.mean_abs[k].data(),
                                                            maps.mean_abs[k].data() + maps.mean_abs[k].size())}};
    entry["mean_relative_gap"] = std::isfinite(maps.mean_relative_gap[k]) ? nlohmann::json(maps.mean_relative_gap[k])
                                                                          : nlohmann::json(nullptr);
    if (maps.counts[k] > 0) {
      write_png(o.out + "/" + stem + "_signed.png", render_heatmap(maps.mean_signed[k], nullptr, signed_style));
      write_png(o.out + "/" + stem + "_abs.png", render_heatmap(maps.mean_abs[k], nullptr, abs_style));
      entry["signed_png"] = stem + "_signed.png";
      entry["abs_png"] = stem + "_abs.png";
    }
    j["classes"].push_back(entry);
    std::printf("%-3lld %-12s %6lld %14.5g %14.5g %12.3g\n", static_cast<long long>(c), class_name(model, c).c_str(),
                static_cast<long long>(maps.counts[k]), total, total_abs, maps.mean_relative_gap[k]);
  }
  const std::string json_path = o.out + "/classmaps.json";
  std::ofstream out(json_path);
  if (!out) throw Error("cannot write '" + json_path + "'");
  out << j.dump() << "\n";
  if (!out) throw Error("cannot write '" + json_path + "'");
  std::printf("wrote %s and two PNG heatmaps per class (class_K_signed.png, class_K_abs.png)\n", json_path.c_str());
}

}  // namespace

void add_classmaps_command(CLI::App& app) {
  auto o = std::make_shared<Options>();
  auto* cmd = app.add_subcommand(
      "classmaps", "Per class of the test set: the mean signed and mean absolute attribution, as PNG heatmaps and JSON");
  cmd->add_option("--model", o->model, "model file (.safetensors)")->required();
  cmd->add_option("--out", o->out, "output folder (created if needed)")->required();
  cmd->add_option("--method", o->method, "ig, gradient (saliency), gradxinput, smoothgrad, smoothgrad_ig, blurig, guidedig")
      ->check(CLI::IsMember(method_names()));
  cmd->add_option("--baseline", o->baseline, "the path's start x', one of:\n" + baseline_help())->capture_default_str();
  cmd->add_option("--steps", o->steps, "quadrature steps")->capture_default_str();
  cmd->add_option("--quadrature", o->quadrature, "gausslegendre, riemann_left, riemann_right, riemann_middle, riemann_trapezoid")
      ->check(CLI::IsMember(quadrature_names()));
  cmd->add_option("--limit", o->limit, "only the first N test images (0: all 10,000)")->check(CLI::Range(int64_t{0}, int64_t{10000}));
  cmd->add_option("--seed", o->seed, "seed for random baselines")->capture_default_str();
  cmd->add_option("--batch", o->batch, "path points per batch (bounds memory)")->capture_default_str();
  cmd->add_option("--scale", o->scale, "heatmap: pixels per input pixel")->capture_default_str();
  cmd->add_option("--clip", o->clip, "heatmap: clip at this percentile of |value|, per map")->capture_default_str();
  cmd->add_option("--backend", o->backend,
                  "kernel backend (" + available_backends() + "; default " + default_backend_reason() + ")");
  cmd->add_option("--threads", o->threads, "threads (0: all cores)")->capture_default_str();
  cmd->callback([o] { run(*o); });
}

}  // namespace igscope::tools
