// igscope eval --model FILE [--json]: test accuracy, per-class precision and
// recall, confusion matrix on the Fashion-MNIST test set.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>

#include "commands.h"
#include "igscope/attribution/dataset_eval.h"
#include "igscope/backend/backend.h"
#include "igscope/classifier_eval.h"
#include "igscope/data/fashion_mnist.h"
#include "igscope/error.h"
#include "igscope/model.h"
#include "progress.h"

namespace igscope::tools {

namespace {

void print_report(const ClassificationReport& r) {
  std::printf("test accuracy  %.2f%% (%lld / %lld)\n\n", 100 * r.accuracy, static_cast<long long>(r.correct),
              static_cast<long long>(r.total));
  std::printf("%-13s %9s %9s\n", "class", "precision", "recall");
  for (size_t c = 0; c < r.precision.size(); ++c)
    std::printf("%-13s %8.1f%% %8.1f%%\n", r.class_names[c].c_str(), 100 * r.precision[c], 100 * r.recall[c]);
  std::printf("\nconfusion matrix (rows: true class, columns: predicted)\n%-13s", "");
  for (size_t c = 0; c < r.confusion.size(); ++c) std::printf(" %5zu", c);
  std::printf("\n");
  for (size_t t = 0; t < r.confusion.size(); ++t) {
    std::printf("%zu %-11s", t, r.class_names[t].c_str());
    for (int64_t v : r.confusion[t]) std::printf(" %5lld", static_cast<long long>(v));
    std::printf("\n");
  }
}

void print_attribution_summary(const nlohmann::json& s) {
  std::printf("images %lld  accuracy %.2f%%  all pairs: %.2f images/s attributing, %.2f images/s with metrics\n\n",
              static_cast<long long>(s["images"].get<int64_t>()), 100 * s["accuracy"].get<double>(),
              s["attribution_images_per_second"].get<double>(), s["images_per_second"].get<double>());
  std::printf("%-10s %-14s %10s %8s %9s %9s %11s %11s %10s %9s\n", "method", "baseline", "med |gap|", "gap<1%",
              "deletion", "insertion", "infidelity", "sensitivity", "evals/img", "images/s");
  auto num = [](const nlohmann::json& v, const char* fmt, double scale = 1.0) {
    char b[32];
    if (v.is_null()) return std::string("-");
    std::snprintf(b, sizeof b, fmt, scale * v.get<double>());
    return std::string(b);
  };
  for (const auto& r : s["pairs"])
    std::printf("%-10s %-14s %10s %8s %9s %9s %11s %11s %10.0f %9s\n", r["method"].get<std::string>().c_str(),
                r["baseline"].get<std::string>().c_str(), num(r["median_relative_gap"], "%.2f%%", 100).c_str(),
                num(r["fraction_gap_under_1pct"], "%.1f%%", 100).c_str(), num(r["deletion_auc"], "%.4f").c_str(),
                num(r["insertion_auc"], "%.4f").c_str(), num(r["infidelity"], "%.3g").c_str(),
                num(r["max_sensitivity"], "%.3g").c_str(), r["evaluations_per_image"].get<double>(),
                num(r["attribution_images_per_second"], "%.1f").c_str());
}

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    const size_t comma = s.find(',', start);
    const std::string item = s.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (!item.empty()) out.push_back(item);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

}  // namespace

void add_eval_command(CLI::App& app) {
  struct Options {
    std::string model, backend = default_backend();
    bool json = false, predictions = false, attribution = false;
    int64_t limit = 0;
    int threads = 0;
    std::string methods = "ig", baselines = "black,white,uniform,gaussian:0.1,blur:2,maxdist", quadrature = "gausslegendre",
                output = "logit", shard = "0/1", device = "cpu", out;
    AttributionEvalConfig config;
  };
  auto opt = std::make_shared<Options>();
  auto* cmd = app.add_subcommand("eval", "Evaluate a model on the Fashion-MNIST test set");
  cmd->add_option("--model", opt->model, "model file (.safetensors)")->required();
  cmd->add_flag("--json", opt->json, "print one JSON object (its 'accuracy' is the test accuracy as a fraction)");
  cmd->add_flag("--with-predictions", opt->predictions, "with --json: include the predicted class of every image");
  cmd->add_option("--limit", opt->limit, "only the first N test images")->check(CLI::Range(int64_t{0}, int64_t{10000}));
  CLI::Option* backend_option = cmd->add_option(
      "--backend", opt->backend,
      "kernel backend on the cpu (" + available_backends() + "; default " + default_backend_reason() + ")");
  cmd->add_option("--threads", opt->threads, "threads (0: all cores)")->check(CLI::Range(0, 256));
  cmd->add_flag("--attribution", opt->attribution,
                "evaluate attributions: completeness gaps, deletion / insertion AUC, infidelity, max-sensitivity");
  cmd->add_option("--methods", opt->methods, "with --attribution: comma-separated methods (ig, gradient, gradxinput, ...)");
  cmd->add_option("--baselines", opt->baselines, "with --attribution: comma-separated baseline specs, each one of:\n" +
                                                     baseline_help())
      ->capture_default_str();
  cmd->add_option("--steps", opt->config.request.integration.steps, "IG steps")->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--quadrature", opt->quadrature, "IG quadrature");
  cmd->add_option("--output", opt->output, "attributed output: logit or probability");
  cmd->add_option("--seed", opt->config.request.seed, "seed of random baselines (per image: seed + image index)");
  cmd->add_option("--curve-steps", opt->config.curve_steps, "points of the deletion / insertion curves")->check(CLI::Range(1, 100000));
  cmd->add_option("--infidelity-samples", opt->config.infidelity.samples, "perturbations for infidelity (0: skip)")
      ->check(CLI::Range(0, 100000));
  cmd->add_option("--infidelity-sigma", opt->config.infidelity.sigma, "std of infidelity's Gaussian perturbations")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--sensitivity-samples", opt->config.sensitivity.samples,
                  "perturbations for max-sensitivity (0: skip; each re-runs the method)")
      ->check(CLI::Range(0, 100000));
  cmd->add_option("--sensitivity-radius", opt->config.sensitivity.radius, "radius of max-sensitivity's perturbations")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--shard", opt->shard, "with --attribution: evaluate images whose index mod n is i (i/n)");
  cmd->add_option("--device", opt->device, "cpu (the --backend) or cuda (the cuda backend, on CUDA device 0)");
  cmd->add_option("--out", opt->out, "with --attribution: write the per-image records and the summary as JSON");
  cmd->callback([opt, backend_option] {
    std::string backend_name = opt->backend;
    if (opt->device == "cuda") {
      if (available_backends().find("cuda") == std::string::npos)
        throw Error("--device cuda: this build has no cuda backend (CMake found no nvcc, cuBLAS or cuDNN)");
      if (backend_option->count() > 0 && opt->backend != "cuda")
        throw Error("--device cuda runs the cuda backend; --backend " + opt->backend + " runs on the cpu");
      backend_name = "cuda";
    } else if (opt->device != "cpu") {
      throw Error("--device must be cpu or cuda, got '" + opt->device + "'");
    }
    // Made first: without a CUDA device this fails at once ("no CUDA device: ...").
    auto backend = make_backend(backend_name, opt->threads);
    Model model = load_model(opt->model);
    Dataset test = load_fashion_mnist("test");
    if (opt->limit > 0) test = test.slice(0, opt->limit);
    if (opt->attribution) {
      AttributionEvalConfig config = opt->config;
      config.methods = split_list(opt->methods);
      config.baselines = split_list(opt->baselines);
      config.request.integration.quadrature = parse_quadrature(opt->quadrature);
      config.request.output = parse_target_output(opt->output);
      const Shard shard = parse_shard(opt->shard);
      // The data-set mean and expected-gradients baselines draw on the training images.
      Dataset train;
      BaselineSources sources;
      for (const auto& b : config.baselines) {
        const BaselineKind kind = parse_baseline_spec(b).kind;
        if ((kind == BaselineKind::DatasetMean || kind == BaselineKind::Training) && train.size() == 0) {
          train = load_fashion_mnist("train");
          sources.dataset = &train.images;
        }
      }
      Progress progress;
      const AttributionEvalResults results =
          evaluate_attributions(model, *backend, test, config, shard, [&](const EvalProgress& p) {
            char line[128];
            const double remaining = static_cast<double>(p.total - p.done) / std::max(p.images_per_second, 1e-9);
            std::snprintf(line, sizeof line, "%lld / %lld images  %.1f images/s (attribution)  ETA %s",
                          static_cast<long long>(p.done), static_cast<long long>(p.total), p.images_per_second,
                          format_duration(remaining).c_str());
            progress.update(static_cast<double>(p.done) / static_cast<double>(p.total), line);
          }, sources);
      progress.finish("done");
      const nlohmann::json j = results.to_json();
      if (!opt->out.empty()) {
        std::ofstream f(opt->out);
        if (!f) throw Error("cannot open '" + opt->out + "' for writing");
        f << j.dump() << "\n";
      }
      if (opt->json) std::cout << j["summary"].dump() << "\n";
      else print_attribution_summary(j["summary"]);
      return;
    }
    const ClassificationReport r = evaluate_classifier(model, *backend, test);
    if (opt->json) {
      nlohmann::json j = r.to_json();
      j["model"] = opt->model;
      if (opt->predictions) j["predictions"] = r.predictions;
      std::cout << j.dump() << "\n";
    } else {
      print_report(r);
    }
  });
}

}  // namespace igscope::tools
