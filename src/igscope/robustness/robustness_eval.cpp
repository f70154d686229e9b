#include "igscope/robustness/robustness_eval.h"

#include "igscope/classifier_eval.h"
#include "igscope/error.h"

namespace igscope {

std::string Perturbation::name() const {
  return kind == Kind::Filter ? frequency_filter_name(filter) : attack_name(attack.kind);
}

Perturbation parse_perturbation(const std::string& name) {
  Perturbation p;
  if (name == "lowpass" || name == "highpass") {
    p.kind = Perturbation::Kind::Filter;
    p.filter = parse_frequency_filter(name);
  } else if (name == "fgsm" || name == "pgd") {
    p.kind = Perturbation::Kind::Attack;
    p.attack.kind = parse_attack(name);
  } else {
    throw Error("unknown perturbation '" + name + "' (known: lowpass, highpass, fgsm, pgd)");
  }
  return p;
}

Tensor perturb(Model& model, Backend& backend, const Tensor& x, const std::vector<int>& labels, const Perturbation& p,
               double strength) {
  if (p.kind == Perturbation::Kind::Filter) return frequency_filter(x, p.filter, strength);
  AttackOptions options = p.attack;
  options.epsilon = strength;
  return adversarial_example(model, backend, x, labels, options);
}

double accuracy_under(Model& model, Backend& backend, const Dataset& data, const Perturbation& p, double strength,
                      int64_t batch_size, const std::function<void(int64_t)>& progress) {
  if (data.size() == 0) throw Error("cannot measure accuracy on an empty data set");
  if (batch_size < 1) throw Error("the batch size must be at least 1");
  int64_t correct = 0;
  for (int64_t b = 0; b < data.size(); b += batch_size) {
    const int64_t n = std::min(batch_size, data.size() - b);
    const Tensor x = dataset_batch(model, data, b, n);
    const std::vector<int> labels(data.labels.begin() + b, data.labels.begin() + b + n);
    const Tensor moved = perturb(model, backend, x, labels, p, strength);
    const std::vector<int> predicted = argmax_rows(model.forward(moved, backend, Mode::Eval));
    for (int64_t i = 0; i < n; ++i) correct += predicted[static_cast<size_t>(i)] == labels[static_cast<size_t>(i)];
    if (progress) progress(b + n);
  }
  return static_cast<double>(correct) / static_cast<double>(data.size());
}

nlohmann::json RobustnessTable::to_json() const {
  nlohmann::json models = nlohmann::json::array();
  for (const auto& c : curves) models.push_back({{"model", c.model}, {"accuracy", c.accuracy}});
  nlohmann::json j = {{"perturbation", perturbation.name()},
                      {"strength", perturbation.kind == Perturbation::Kind::Filter ? "sigma" : "epsilon"},
                      {"strengths", strengths},
                      {"images", images},
                      {"models", models}};
  if (perturbation.kind == Perturbation::Kind::Attack) {
    j["range"] = {perturbation.attack.range.lo, perturbation.attack.range.hi};
    if (perturbation.attack.kind == AttackKind::PGD) {
      j["steps"] = perturbation.attack.steps;
      j["step_size"] = perturbation.attack.step_size >= 0 ? nlohmann::json(perturbation.attack.step_size)
                                                          : nlohmann::json("2.5 epsilon / steps");
    }
  }
  return j;
}

}  // namespace igscope
