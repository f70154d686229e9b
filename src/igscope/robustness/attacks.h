#pragma once
// Adversarial perturbations under an L-infinity budget, computed with the
// model's hand-written input gradients (Goodfellow et al. 2015, FGSM; Madry
// et al. 2018, PGD). Both ascend the cross-entropy loss of the given labels:
//
//   FGSM  x' = clamp(x + eps sign(g(x)), lo, hi)
//   PGD   x_0 = x;  x_{k+1} = clamp(min(max(x_k + alpha sign(g(x_k)), x - eps), x + eps), lo, hi)
//
// g is the gradient of the loss with respect to the input and sign(0) = 0, as
// PyTorch's torch.sign. PGD starts at x itself (no random start), so it is
// deterministic; every iterate lies in the epsilon ball around x and in the
// pixel range. The loss is the cross-entropy of the logits, or, for a model
// that ends in softmax or log_softmax, -log of its output at the label.
#include <cstdint>
#include <string>
#include <vector>

#include "igscope/attribution/baselines.h"
#include "igscope/backend/backend.h"
#include "igscope/model.h"
#include "igscope/tensor.h"

namespace igscope {

enum class AttackKind { FGSM, PGD };
std::string attack_name(AttackKind kind);   // "fgsm", "pgd"
AttackKind parse_attack(const std::string&);  // throws Error

struct AttackOptions {
  AttackKind kind = AttackKind::FGSM;
  double epsilon = 0.03;   // L-infinity budget, in pixel units
  int64_t steps = 10;      // PGD iterations
  double step_size = -1;   // PGD's alpha; < 0: 2.5 epsilon / steps (Madry et al.)
  ValueRange range;        // the valid pixel range
};
// Throws Error for a negative or non-finite epsilon, steps outside
// [1, 10000], a non-finite step size or an invalid range.
void check_attack_options(const AttackOptions& options);
double pgd_step_size(const AttackOptions& options);

// The mean over the batch of the cross-entropy loss of `labels` at x
// [B, input...], and its gradient with respect to x. `predictions`, when
// not null, receives each row's predicted class at x. The model runs in
// evaluation mode.
Tensor loss_input_gradient(Model& model, Backend& backend, const Tensor& x, const std::vector<int>& labels,
                           double* loss = nullptr, std::vector<int>* predictions = nullptr);

// The perturbed batch. x [B, input...], one label per row; labels in
// [0, classes). epsilon 0 returns x clamped to the range. For PGD,
// `iterates`, when not null, receives x_1 .. x_steps (the last is the result).
Tensor adversarial_example(Model& model, Backend& backend, const Tensor& x, const std::vector<int>& labels,
                          const AttackOptions& options, std::vector<Tensor>* iterates = nullptr);

}  // namespace igscope
