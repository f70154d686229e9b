#pragma once
#include "igscope/layers/layer.h"

namespace igscope {

// Layer normalisation over the last axis (PyTorch's nn.LayerNorm(D)) of
// [N, F] or of tokens [N, T, D]; weight [D], bias [D]. Each row of D values
// is normalised with its own mean and biased variance, in training and
// evaluation alike:
//   xhat = (x - mean) / sqrt(var + eps),  y = weight * xhat + bias.
// With dxhat = dy * weight, the input gradient is
//   dx = (dxhat - mean(dxhat) - xhat mean(dxhat xhat)) / sqrt(var + eps),
// and the tangent (the Jacobian is symmetric before the weight) is
//   dy = weight (dx - mean(dx) - xhat mean(dx xhat)) / sqrt(var + eps).
// Statistics are summed in double.
class LayerNorm final : public Layer {
 public:
  explicit LayerNorm(int64_t features, double eps = 1e-5);

  std::string type() const override { return "layernorm"; }
  nlohmann::json to_json() const override;
  Shape output_shape(const Shape& in) const override;
  int64_t multiply_adds(const Shape& in) const override;

  Tensor forward(Tensor in, Backend& backend, Mode mode) override;
  Tensor backward_input(Tensor dout, Backend& backend) override;
  Tensor forward_tangent(const Tensor& din, Backend& backend) override;
  // dweight += sum(dy xhat), dbias += sum(dy) over the rows.
  void backward_params(const Tensor& dout, Backend& backend) override;
  // weight 1, bias 0, as PyTorch.
  bool initialise(Rng& rng) override;

 private:
  // out = scale (v - mean(v) - xhat mean(v xhat)) / std per row, where
  // scale is the weight or 1.
  Tensor project(const Tensor& v, const float* scale) const;
  void check_pass(const Tensor& t, const char* what) const;

  int64_t d_;
  double eps_;
  Shape shape_;                 // the last forward pass's input shape
  Tensor xhat_;                 // the normalised input of the last pass
  std::vector<float> inv_std_;  // per row
};

}  // namespace igscope
