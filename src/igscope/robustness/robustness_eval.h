#pragma once
// Test accuracy under a perturbation of growing strength: a frequency filter
// (strength: the filter's sigma in pixels) or an adversarial attack
// (strength: epsilon). The curves `igscope robustness` writes and the page's
// data-set view plots.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "igscope/backend/backend.h"
#include "igscope/data/fashion_mnist.h"
#include "igscope/model.h"
#include "igscope/robustness/attacks.h"
#include "igscope/robustness/filters.h"

namespace igscope {

struct Perturbation {
  enum class Kind { Filter, Attack };
  Kind kind = Kind::Filter;
  FrequencyFilter filter = FrequencyFilter::LowPass;
  AttackOptions attack;  // for Kind::Attack; its epsilon is the strength
  std::string name() const;  // "lowpass", "highpass", "fgsm", "pgd"
};
// "lowpass", "highpass", "fgsm" or "pgd" (throws Error otherwise).
Perturbation parse_perturbation(const std::string& name);

// The batch x [B, H, W, C] under the perturbation at `strength`; attacks
// ascend the loss of `labels` (one per row).
Tensor perturb(Model& model, Backend& backend, const Tensor& x, const std::vector<int>& labels,
               const Perturbation& p, double strength);

// Fraction of `data` the model classifies correctly under the perturbation.
// progress(done) is called after each batch.
double accuracy_under(Model& model, Backend& backend, const Dataset& data, const Perturbation& p, double strength,
                      int64_t batch_size = 100, const std::function<void(int64_t)>& progress = {});

struct RobustnessCurve {
  std::string model;              // a label (the file's name)
  std::vector<double> accuracy;   // one per strength
};
struct RobustnessTable {
  Perturbation perturbation;
  std::vector<double> strengths;
  int64_t images = 0;
  std::vector<RobustnessCurve> curves;
  nlohmann::json to_json() const;
};

}  // namespace igscope
