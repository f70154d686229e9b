#pragma once
// Softmax and log-softmax over the last dimension of [N, K], and the
// cross-entropy loss computed from logits through log-softmax.
#include <cstdint>
#include <vector>

#include "igscope/layers/layer.h"

namespace igscope {

class Softmax final : public Layer {
 public:
  std::string type() const override { return "softmax"; }
  nlohmann::json to_json() const override { return {{"type", type()}}; }
  Shape output_shape(const Shape& in) const override;

  Tensor forward(Tensor in, Backend& backend, Mode mode) override;
  // din_k = p_k (dout_k - sum_j dout_j p_j)
  Tensor backward_input(Tensor dout, Backend& backend) override;
  // The Jacobian diag(p) - p p^T is symmetric: the same as backward_input.
  Tensor forward_tangent(const Tensor& din, Backend& backend) override;

 private:
  Tensor output_;
};

class LogSoftmax final : public Layer {
 public:
  std::string type() const override { return "log_softmax"; }
  nlohmann::json to_json() const override { return {{"type", type()}}; }
  Shape output_shape(const Shape& in) const override;

  Tensor forward(Tensor in, Backend& backend, Mode mode) override;
  // din_k = dout_k - p_k sum_j dout_j
  Tensor backward_input(Tensor dout, Backend& backend) override;
  // dout_k = din_k - sum_j p_j din_j
  Tensor forward_tangent(const Tensor& din, Backend& backend) override;

 private:
  Tensor output_;
};

// Mean cross-entropy of logits [N, K] against integer labels, and its
// gradient with respect to the logits: (softmax - target) / N. The target is
// the one-hot label, or with label smoothing s in [0, 1) (PyTorch's
// CrossEntropyLoss(label_smoothing=s)) (1 - s) onehot + s / K.
struct CrossEntropyResult {
  double loss = 0.0;
  Tensor dlogits;
};
CrossEntropyResult cross_entropy(const Tensor& logits, const std::vector<int>& labels, double label_smoothing = 0.0);

// Numerically stable softmax / log-softmax of one row of k values.
void softmax_row(const float* in, int64_t k, float* out);
void log_softmax_row(const float* in, int64_t k, float* out);

}  // namespace igscope
