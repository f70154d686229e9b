#pragma once
#include "igscope/layers/layer.h"
#include "igscope/random.h"

namespace igscope {

// Inverted dropout, as PyTorch's nn.Dropout: in training each element is
// zeroed with probability p and the rest are scaled by 1 / (1 - p); in
// evaluation it is the identity. The mask comes from a seeded generator, so
// a training run is reproducible.
class Dropout final : public Layer {
 public:
  explicit Dropout(double p, uint64_t seed = 0);

  std::string type() const override { return "dropout"; }
  nlohmann::json to_json() const override { return {{"type", type()}, {"p", p_}}; }
  Shape output_shape(const Shape& in) const override { return in; }

  Tensor forward(Tensor in, Backend& backend, Mode mode) override;
  Tensor backward_input(Tensor dout, Backend& backend) override;
  Tensor forward_tangent(const Tensor& din, Backend& backend) override;

  void seed(uint64_t seed) { rng_ = Rng(seed); }
  double p() const { return p_; }

 private:
  double p_;
  Rng rng_;
  Tensor mask_;  // per element 0 or 1/(1-p); empty after an evaluation pass
};

}  // namespace igscope
