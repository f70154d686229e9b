// igscope eval --model FILE [--json]: test accuracy, per-class precision and
// recall, confusion matrix on the Fashion-MNIST test set.
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>

#include "commands.h"
#include "igscope/backend/backend.h"
#include "igscope/classifier_eval.h"
#include "igscope/data/fashion_mnist.h"
#include "igscope/error.h"
#include "igscope/model.h"

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

}  // namespace

void add_eval_command(CLI::App& app) {
  struct Options {
    std::string model, backend = default_backend();
    bool json = false, predictions = false;
    int64_t limit = 0;
    int threads = 0;
  };
  auto opt = std::make_shared<Options>();
  auto* cmd = app.add_subcommand("eval", "Evaluate a model on the Fashion-MNIST test set");
  cmd->add_option("--model", opt->model, "model file (.safetensors)")->required();
  cmd->add_flag("--json", opt->json, "print one JSON object (its 'accuracy' is the test accuracy as a fraction)");
  cmd->add_flag("--with-predictions", opt->predictions, "with --json: include the predicted class of every image");
  cmd->add_option("--limit", opt->limit, "only the first N test images")->check(CLI::Range(int64_t{0}, int64_t{10000}));
  cmd->add_option("--backend", opt->backend, "kernel backend (" + available_backends() + ")");
  cmd->add_option("--threads", opt->threads, "threads (0: all cores)")->check(CLI::Range(0, 256));
  cmd->callback([opt] {
    Model model = load_model(opt->model);
    Dataset test = load_fashion_mnist("test");
    if (opt->limit > 0) test = test.slice(0, opt->limit);
    auto backend = make_backend(opt->backend, opt->threads);
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
