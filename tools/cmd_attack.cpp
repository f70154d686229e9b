// igscope attack: an adversarial example for one input (FGSM or PGD under an
// L-infinity budget), with the model's prediction before and after.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "commands.h"
#include "igscope/attribution/target.h"
#include "igscope/error.h"
#include "igscope/robustness/attacks.h"
#include "inputs.h"
#include "png_output.h"

namespace igscope::tools {

namespace {

struct Options {
  std::string model, input, attack = "fgsm", backend, json_path, png_path;
  double epsilon = 0.03, step_size = -1.0;
  int64_t steps = 10, label = -1;
  int threads = 0;
  bool trace = false;
};

void run(const Options& o) {
  Model model = load_model(o.model);
  if (model.tabular()) throw Error("attacks perturb images; this is a tabular model");
  std::unique_ptr<Backend> backend = make_backend(o.backend.empty() ? default_backend() : o.backend, o.threads);
  AttackOptions a;
  a.kind = parse_attack(o.attack);
  a.epsilon = o.epsilon;
  a.steps = o.steps;
  a.step_size = o.step_size;
  a.range = input_range(model);
  check_attack_options(a);
  const Input input = read_input(o.input, model);
  const int64_t k = model.num_outputs();
  const std::vector<double> before = softmax(model_outputs(model, *backend, input.sample));
  const int64_t predicted = std::max_element(before.begin(), before.end()) - before.begin();
  const int64_t label = o.label >= 0 ? o.label : (input.label ? *input.label : predicted);
  if (label >= k) throw Error("--label " + std::to_string(label) + " is outside the model's classes 0.." + std::to_string(k - 1));
  std::vector<Tensor> iterates;
  const Tensor adv = adversarial_example(model, *backend, input.sample, {static_cast<int>(label)}, a,
                                         o.trace ? &iterates : nullptr);
  const std::vector<double> after = softmax(model_outputs(model, *backend, adv));
  const int64_t adv_predicted = std::max_element(after.begin(), after.end()) - after.begin();
  double linf = 0.0;
  for (int64_t i = 0; i < adv.size(); ++i) linf = std::max(linf, std::abs(static_cast<double>(adv[i]) - input.sample[i]));

  std::printf("input      %s%s\n", o.input.c_str(),
              input.label ? (" (label " + std::to_string(*input.label) + " " + class_name(model, *input.label) + ")").c_str() : "");
  std::printf("attack     %s, epsilon %g", o.attack.c_str(), o.epsilon);
  if (a.kind == AttackKind::PGD) std::printf(", %lld steps of %g", static_cast<long long>(a.steps), pgd_step_size(a));
  std::printf(", ascending the loss of class %lld %s\n", static_cast<long long>(label), class_name(model, label).c_str());
  std::printf("before     %lld %s (p = %.4f); p(label) = %.4f\n", static_cast<long long>(predicted),
              class_name(model, predicted).c_str(), before[static_cast<size_t>(predicted)], before[static_cast<size_t>(label)]);
  std::printf("after      %lld %s (p = %.4f); p(label) = %.4f\n", static_cast<long long>(adv_predicted),
              class_name(model, adv_predicted).c_str(), after[static_cast<size_t>(adv_predicted)], after[static_cast<size_t>(label)]);
  std::printf("max |x' - x| = %.6g\n", linf);

  if (!o.json_path.empty()) {
    nlohmann::json j = {{"model", o.model},
                        {"input", o.input},
                        {"attack", o.attack},
                        {"epsilon", o.epsilon},
                        {"label", label},
                        {"predicted_before", predicted},
                        {"predicted_after", adv_predicted},
                        {"probabilities_before", before},
                        {"probabilities_after", after},
                        {"linf", linf},
                        {"shape", adv.shape()},
                        {"adversarial", std::vector<float>(adv.data(), adv.data() + adv.size())}};
    if (a.kind == AttackKind::PGD) {
      j["steps"] = a.steps;
      j["step_size"] = pgd_step_size(a);
      if (o.trace) {
        j["iterates"] = nlohmann::json::array();
        for (const Tensor& t : iterates) j["iterates"].push_back(std::vector<float>(t.data(), t.data() + t.size()));
      }
    }
    std::ofstream f(o.json_path);
    if (!f) throw Error("cannot open '" + o.json_path + "' for writing");
    f << j.dump() << "\n";
  }
  if (!o.png_path.empty()) write_image_png(o.png_path, adv);
}

}  // namespace

void add_attack_command(CLI::App& app) {
  auto o = std::make_shared<Options>();
  auto* cmd = app.add_subcommand("attack", "An adversarial example for one input: FGSM or PGD (L-infinity)");
  cmd->add_option("--model", o->model, "model file (.safetensors)")->required();
  cmd->add_option("--input", o->input, "test:INDEX (Fashion-MNIST test set) or an image file (PNG) of the model's size")
      ->required();
  cmd->add_option("--attack", o->attack, "fgsm or pgd")->check(CLI::IsMember({"fgsm", "pgd"}))->capture_default_str();
  cmd->add_option("--eps", o->epsilon, "L-infinity budget, in pixel units of the [0, 1] range")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  cmd->add_option("--steps", o->steps, "PGD iterations")->check(CLI::Range(int64_t{1}, int64_t{10000}))->capture_default_str();
  cmd->add_option("--step-size", o->step_size, "PGD step size (default 2.5 eps / steps)")->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--label", o->label,
                  "class whose cross-entropy the attack ascends (default: the test image's label, else the prediction)")
      ->check(CLI::Range(int64_t{0}, int64_t{1000000}));
  cmd->add_option("--backend", o->backend, "kernel backend (" + available_backends() + ")");
  cmd->add_option("--threads", o->threads, "threads (0: all cores)")->check(CLI::Range(0, 256));
  cmd->add_option("--json", o->json_path, "write the adversarial input (float32 values) and both predictions here");
  cmd->add_flag("--trace", o->trace, "with --json and pgd: also write every PGD iterate");
  cmd->add_option("--png", o->png_path, "write the adversarial image here (8-bit, so rounded)");
  cmd->callback([o] { run(*o); });
}

}  // namespace igscope::tools
