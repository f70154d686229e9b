#include "igscope/robustness/attacks.h"

#include <algorithm>
#include <cmath>

#include "igscope/error.h"

namespace igscope {

std::string attack_name(AttackKind kind) { return kind == AttackKind::FGSM ? "fgsm" : "pgd"; }

AttackKind parse_attack(const std::string& name) {
  if (name == "fgsm") return AttackKind::FGSM;
  if (name == "pgd") return AttackKind::PGD;
  throw Error("unknown attack '" + name + "' (known: fgsm, pgd)");
}

void check_attack_options(const AttackOptions& o) {
  if (!std::isfinite(o.epsilon) || o.epsilon < 0.0)
    throw Error("the attack's epsilon must be a finite number >= 0, got " + std::to_string(o.epsilon));
  if (o.steps < 1 || o.steps > 10000)
    throw Error("PGD's steps must be in [1, 10000], got " + std::to_string(o.steps));
  if (!std::isfinite(o.step_size))
    throw Error("PGD's step size must be finite (or negative for the default), got " + std::to_string(o.step_size));
  check_range(o.range);
}

double pgd_step_size(const AttackOptions& o) {
  return o.step_size >= 0.0 ? o.step_size : 2.5 * o.epsilon / static_cast<double>(o.steps);
}

Tensor loss_input_gradient(Model& model, Backend& backend, const Tensor& x, const std::vector<int>& labels,
                           double* loss, std::vector<int>* predictions) {
  if (x.rank() < 1 || x.dim(0) != static_cast<int64_t>(labels.size()))
    throw Error("the attack needs one label per input row: " + std::to_string(labels.size()) + " labels for input " +
                shape_to_string(x.shape()));
  for (int64_t i = 0; i < x.size(); ++i)
    if (!std::isfinite(x[i])) throw Error("the attacked input holds a value that is not finite");
  const Tensor out = model.forward(x, backend, Mode::Eval);
  const int64_t batch = out.dim(0), k = batch > 0 ? out.size() / batch : 0;
  for (int label : labels)
    if (label < 0 || label >= k)
      throw Error("label " + std::to_string(label) + " is outside the model's classes 0.." + std::to_string(k - 1));
  std::string last;
  if (model.num_layers() > 0) last = model.layer(model.num_layers() - 1).type();
  Tensor seed(out.shape());
  double total = 0.0;
  const double inv_batch = 1.0 / static_cast<double>(std::max<int64_t>(batch, 1));
  if (predictions) predictions->clear();
  std::vector<double> p(static_cast<size_t>(k));
  for (int64_t n = 0; n < batch; ++n) {
    const float* row = out.data() + n * k;
    float* s = seed.data() + n * k;
    const int y = labels[static_cast<size_t>(n)];
    if (predictions) predictions->push_back(static_cast<int>(std::max_element(row, row + k) - row));
    if (last == "log_softmax") {
      total -= row[y];
      s[y] = static_cast<float>(-inv_batch);
    } else if (last == "softmax") {
      total -= std::log(static_cast<double>(row[y]));
      s[y] = static_cast<float>(-inv_batch / static_cast<double>(row[y]));
    } else {
      // d CE / d z_j = softmax(z)_j - [j = y], softmax computed stably in double.
      const double mx = *std::max_element(row, row + k);
      double z = 0.0;
      for (int64_t j = 0; j < k; ++j) z += (p[static_cast<size_t>(j)] = std::exp(static_cast<double>(row[j]) - mx));
      total -= static_cast<double>(row[y]) - mx - std::log(z);
      for (int64_t j = 0; j < k; ++j)
        s[j] = static_cast<float>((p[static_cast<size_t>(j)] / z - (j == y ? 1.0 : 0.0)) * inv_batch);
    }
  }
  if (loss) *loss = total * inv_batch;
  return model.backward(seed, backend);
}

namespace {

float sign_of(float g) { return g > 0.0f ? 1.0f : (g < 0.0f ? -1.0f : 0.0f); }

}  // namespace

Tensor adversarial_example(Model& model, Backend& backend, const Tensor& x, const std::vector<int>& labels,
                           const AttackOptions& options, std::vector<Tensor>* iterates) {
  check_attack_options(options);
  const float lo = static_cast<float>(options.range.lo), hi = static_cast<float>(options.range.hi);
  const float eps = static_cast<float>(options.epsilon);
  Tensor adv = x;
  if (iterates) iterates->clear();
  if (options.kind == AttackKind::FGSM) {
    const Tensor g = loss_input_gradient(model, backend, x, labels);
    for (int64_t i = 0; i < adv.size(); ++i) adv[i] = std::clamp(x[i] + eps * sign_of(g[i]), lo, hi);
    return adv;
  }
  const float alpha = static_cast<float>(pgd_step_size(options));
  for (int64_t step = 0; step < options.steps; ++step) {
    const Tensor g = loss_input_gradient(model, backend, adv, labels);
    for (int64_t i = 0; i < adv.size(); ++i) {
      const float moved = adv[i] + alpha * sign_of(g[i]);
      adv[i] = std::clamp(std::min(std::max(moved, x[i] - eps), x[i] + eps), lo, hi);
    }
    if (iterates) iterates->push_back(adv);
  }
  return adv;
}

}  // namespace igscope
