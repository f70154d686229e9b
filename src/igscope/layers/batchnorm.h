#pragma once
#include "igscope/layers/layer.h"

namespace igscope {

// Batch normalisation over the channel axis of [N, H, W, C] (nn.BatchNorm2d)
// or the feature axis of [N, F] (nn.BatchNorm1d), with PyTorch's tensors:
//   weight [C], bias [C]                      trained
//   running_mean [C], running_var [C]          buffers, updated in training
//   num_batches_tracked []                     buffer, stored as I64
// Training (Mode::Train) normalises with the batch's mean and biased variance
// over the M = N*H*W values of a channel, y = weight * (x - mean) /
// sqrt(var + eps) + bias, and updates running = (1 - momentum) running +
// momentum batch (the unbiased variance, M / (M - 1) var, for running_var),
// num_batches_tracked += 1. Evaluation is the affine map with the running
// statistics: y = weight / sqrt(running_var + eps) * (x - running_mean) + bias.
class BatchNorm final : public Layer {
 public:
  BatchNorm(int64_t num_features, double eps = 1e-5, double momentum = 0.1);

  std::string type() const override { return "batchnorm"; }
  nlohmann::json to_json() const override;
  Shape output_shape(const Shape& in) const override;
  int64_t multiply_adds(const Shape& in) const override;

  Tensor forward(Tensor in, Backend& backend, Mode mode) override;
  // Training: the gradient through the batch statistics,
  //   din = weight / (M sqrt(var + eps)) (M dy - sum(dy) - xhat sum(dy xhat));
  // evaluation: dy * weight / sqrt(running_var + eps).
  Tensor backward_input(Tensor dout, Backend& backend) override;
  // The product of the same Jacobian with a direction shaped like the input.
  Tensor forward_tangent(const Tensor& din, Backend& backend) override;
  // dweight += sum(dy xhat), dbias += sum(dy); needs a training forward pass.
  void backward_params(const Tensor& dout, Backend& backend) override;

  // weight 1, bias 0, running_mean 0, running_var 1, num_batches_tracked 0.
  void reset_parameters();

  int64_t num_features() const { return c_; }
  double eps() const { return eps_; }
  double momentum() const { return momentum_; }
  Tensor& weight() { return params_[0].value; }
  Tensor& bias() { return params_[1].value; }
  Tensor& running_mean() { return params_[2].value; }
  Tensor& running_var() { return params_[3].value; }
  Tensor& num_batches_tracked() { return params_[4].value; }

 private:
  void check_input(const Tensor& t, const char* what) const;

  int64_t c_;
  double eps_, momentum_;
  Mode mode_ = Mode::Eval;  // of the last forward pass
  Shape shape_;             // the last forward pass's input shape
  Tensor xhat_;             // training: the normalised input
  std::vector<double> inv_std_;  // per channel: 1 / sqrt(var + eps) of the last pass
};

}  // namespace igscope
