// igscope robustness: test accuracy of one or more models under a frequency
// filter (low-pass or high-pass, of growing strength) or an adversarial
// attack (FGSM or PGD, of growing epsilon), as a table and as JSON.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "commands.h"
#include "igscope/data/fashion_mnist.h"
#include "igscope/error.h"
#include "igscope/robustness/robustness_eval.h"
#include "inputs.h"
#include "progress.h"

namespace igscope::tools {

namespace {

struct Options {
  std::vector<std::string> models;
  std::string filter, attack, backend, out;
  std::vector<double> strengths;
  int64_t steps = 10, limit = 0, batch = 100;
  double step_size = -1.0;
  int threads = 0;
  bool json = false;
};

void print_table(const RobustnessTable& t) {
  std::printf("%s accuracy over %lld test images\n%-10s", t.perturbation.name().c_str(),
              static_cast<long long>(t.images), t.perturbation.kind == Perturbation::Kind::Filter ? "sigma" : "epsilon");
  for (const auto& c : t.curves) std::printf(" %18s", c.model.c_str());
  std::printf("\n");
  for (size_t s = 0; s < t.strengths.size(); ++s) {
    std::printf("%-10g", t.strengths[s]);
    for (const auto& c : t.curves) std::printf(" %17.2f%%", 100 * c.accuracy[s]);
    std::printf("\n");
  }
}

void run(const Options& o) {
  if (o.filter.empty() == o.attack.empty()) throw Error("give either --filter or --attack");
  RobustnessTable table;
  table.perturbation = parse_perturbation(o.filter.empty() ? o.attack : o.filter);
  if (table.perturbation.kind == Perturbation::Kind::Attack) {
    table.perturbation.attack.steps = o.steps;
    table.perturbation.attack.step_size = o.step_size;
  }
  if (o.strengths.empty()) throw Error("--strengths needs at least one value");
  table.strengths = o.strengths;
  std::unique_ptr<Backend> backend = make_backend(o.backend.empty() ? default_backend() : o.backend, o.threads);
  std::vector<Model> models;
  for (const auto& path : o.models) {
    models.push_back(load_model(path));
    table.curves.push_back({std::filesystem::path(path).stem().string(), {}});
  }
  if (table.perturbation.kind == Perturbation::Kind::Attack)
    for (double s : o.strengths) {
      AttackOptions check = table.perturbation.attack;
      check.epsilon = s;
      check_attack_options(check);
    }
  else
    for (double s : o.strengths) check_filter_sigma(s);
  Dataset test = load_fashion_mnist("test");
  if (o.limit > 0) test = test.slice(0, o.limit);
  table.images = test.size();
  // Each model is attacked within its own pixel range; the table states the first model's.
  if (!models.empty()) table.perturbation.attack.range = input_range(models[0]);
  Progress progress;
  const double total = static_cast<double>(models.size() * o.strengths.size() * static_cast<size_t>(test.size()));
  double done = 0;
  for (size_t m = 0; m < models.size(); ++m) {
    Perturbation p = table.perturbation;
    if (p.kind == Perturbation::Kind::Attack) p.attack.range = input_range(models[m]);
    for (double s : o.strengths) {
      const double accuracy = accuracy_under(models[m], *backend, test, p, s, o.batch, [&](int64_t n) {
        char line[160];
        std::snprintf(line, sizeof line, "%s  %s %g  %lld / %lld images", table.curves[m].model.c_str(),
                      p.name().c_str(), s, static_cast<long long>(n), static_cast<long long>(test.size()));
        progress.update((done + static_cast<double>(n)) / total, line);
      });
      done += static_cast<double>(test.size());
      table.curves[m].accuracy.push_back(accuracy);
    }
  }
  progress.finish("done");
  const nlohmann::json j = table.to_json();
  if (!o.out.empty()) {
    std::ofstream f(o.out);
    if (!f) throw Error("cannot open '" + o.out + "' for writing");
    f << j.dump(1) << "\n";
  }
  if (o.json) std::cout << j.dump() << "\n";
  else print_table(table);
}

}  // namespace

void add_robustness_command(CLI::App& app) {
  auto opt = std::make_shared<Options>();
  auto* cmd = app.add_subcommand(
      "robustness", "Test accuracy of models under low-pass / high-pass filtering or FGSM / PGD attacks");
  cmd->add_option("--models", opt->models, "comma-separated model files (.safetensors)")->required()->delimiter(',');
  auto* filter = cmd->add_option("--filter", opt->filter,
                                 "lowpass (Gaussian blur of sigma pixels) or highpass (the image minus that blur, "
                                 "plus its mean)")
                     ->check(CLI::IsMember({"lowpass", "highpass"}));
  auto* attack = cmd->add_option("--attack", opt->attack,
                                 "fgsm or pgd (L-infinity, ascending the cross-entropy of the true label)")
                     ->check(CLI::IsMember({"fgsm", "pgd"}));
  filter->excludes(attack);
  cmd->add_option("--strengths,--eps", opt->strengths,
                  "comma-separated strengths: the filter's sigma in pixels, or the attack's epsilon")
      ->required()
      ->delimiter(',');
  cmd->add_option("--steps", opt->steps, "PGD iterations")->check(CLI::Range(int64_t{1}, int64_t{10000}));
  cmd->add_option("--step-size", opt->step_size, "PGD step size (default 2.5 epsilon / steps)")
      ->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--limit", opt->limit, "only the first N test images")->check(CLI::Range(int64_t{0}, int64_t{10000}));
  cmd->add_option("--batch-size", opt->batch, "images per batch")->check(CLI::Range(int64_t{1}, int64_t{10000}));
  cmd->add_option("--backend", opt->backend, "kernel backend (" + available_backends() + ")");
  cmd->add_option("--threads", opt->threads, "threads (0: all cores)")->check(CLI::Range(0, 256));
  cmd->add_option("--out", opt->out, "write the table as JSON");
  cmd->add_flag("--json", opt->json, "print the table as one JSON object");
  cmd->callback([opt] { run(*opt); });
}

}  // namespace igscope::tools
