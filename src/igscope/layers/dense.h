#pragma once
#include "igscope/layers/layer.h"

namespace igscope {

// Fully connected layer over [N, in_features], or over every token of
// [N, T, in_features] (as nn.Linear applies to the last axis):
// y = x W^T + b, weight [out_features, in_features], bias [out_features].
class Dense final : public Layer {
 public:
  Dense(int64_t in_features, int64_t out_features);

  std::string type() const override { return "dense"; }
  nlohmann::json to_json() const override;
  Shape output_shape(const Shape& in) const override;
  int64_t multiply_adds(const Shape& in) const override;

  Tensor forward(Tensor in, Backend& backend, Mode mode) override;
  Tensor backward_input(Tensor dout, Backend& backend) override;
  Tensor forward_tangent(const Tensor& din, Backend& backend) override;
  void backward_params(const Tensor& dout, Backend& backend) override;

  Tensor& weight() { return params_[0].value; }
  Tensor& bias() { return params_[1].value; }

 private:
  int64_t in_f_, out_f_;
  Tensor input_;  // kept by forward for backward_params
  Shape input_shape_;
  int64_t batch_ = 0;  // rows of the last forward pass: N, or N T
  Tensor zero_bias_;  // forward_tangent's bias (the tangent of a constant is 0)
};

}  // namespace igscope
