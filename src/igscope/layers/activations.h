#pragma once
// Elementwise activations, as PyTorch defines them (torch.nn, 1.13):
//
//   sigmoid       1 / (1 + e^-x)
//   tanh          tanh x
//   gelu          x Phi(x)                         ("approximate": "none", default)
//                 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) / 2   ("approximate": "tanh")
//   silu          x sigmoid(x)
//   leaky_relu    x for x > 0, negative_slope * x otherwise  ("negative_slope", default 0.01)
//   relu6         min(max(x, 0), 6)
//   hardsigmoid   relu6(x + 3) / 6
//   hardswish     x hardsigmoid(x)
//
// At the kinks the derivative is PyTorch's (checked in PyTorch 1.13):
//   leaky_relu    x > 0 ? 1 : negative_slope            (at 0: negative_slope)
//   relu6         0 < x < 6 ? 1 : 0                     (at 0 and 6: 0)
//   hardsigmoid   -3 < x < 3 ? 1/6 : 0                  (at -3 and 3: 0)
//   hardswish     x < -3 ? 0 : x <= 3 ? x/3 + 1/2 : 1   (at -3: -1/2, at 3: 3/2)
//
// Each function is one row of a table (forward, derivative), evaluated in
// double per element and rounded to float once. The Jacobian is diagonal, so
// forward_tangent is backward_input. No backend kernels: these are plain
// loops, cheap next to the convolutions around them.
#include <memory>
#include <string>
#include <vector>

#include "igscope/layers/layer.h"

namespace igscope {

enum class ActivationKind { Sigmoid, Tanh, Gelu, GeluTanh, Silu, LeakyRelu, Relu6, Hardswish, Hardsigmoid };

class Activation final : public Layer {
 public:
  // `negative_slope` is used by leaky_relu only; it must be finite.
  explicit Activation(ActivationKind kind, double negative_slope = 0.01);

  std::string type() const override;
  nlohmann::json to_json() const override;
  Shape output_shape(const Shape& in) const override { return in; }
  ActivationKind kind() const { return kind_; }

  Tensor forward(Tensor in, Backend& backend, Mode mode) override;
  Tensor backward_input(Tensor dout, Backend& backend) override;
  Tensor forward_tangent(const Tensor& din, Backend& backend) override;

  // The function and its derivative at one point (what the loops apply).
  double value(double x) const;
  double derivative(double x) const;

 private:
  ActivationKind kind_;
  double slope_;
  Tensor input_;  // kept by forward (moved, not copied): the derivative depends on the input
};

// The architecture type names handled here: "sigmoid", "tanh", "gelu", ...
const std::vector<std::string>& activation_types();
bool is_activation_type(const std::string& type);
// The layer for an architecture entry whose "type" is one of activation_types().
// Throws igscope::Error on a bad parameter ("approximate" not "none"/"tanh",
// a "negative_slope" that is not a finite number) or a key the type does not take.
std::unique_ptr<Layer> make_activation(const nlohmann::json& spec);

}  // namespace igscope
