#pragma once
#include "igscope/layers/layer.h"

namespace igscope {

// Smooth ReLU (SmeLU; Shamir, Lin & Coviello 2022), elementwise:
//
//   y = 0                    for x <= -beta
//   y = (x + beta)^2 / 4beta for |x| <  beta
//   y = x                    for x >= beta
//
// Its derivative clamp((x + beta) / 2beta, 0, 1) is continuous, so a network
// built with it has no jumps in its gradient along an IG path except at
// max-pool switches. A ReLU network's gradient jumps at every unit that changes
// sign, and quadrature of a jumping integrand converges only like 1/n.
class SmeLU final : public Layer {
 public:
  explicit SmeLU(double beta);

  std::string type() const override { return "smelu"; }
  nlohmann::json to_json() const override { return {{"type", type()}, {"beta", beta_}}; }
  Shape output_shape(const Shape& in) const override { return in; }
  double beta() const { return beta_; }

  Tensor forward(Tensor in, Backend& backend, Mode mode) override;
  Tensor backward_input(Tensor dout, Backend& backend) override;
  Tensor forward_tangent(const Tensor& din, Backend& backend) override;

 private:
  double beta_;
  Tensor input_;  // kept by forward: the derivative depends on the input
};

}  // namespace igscope
