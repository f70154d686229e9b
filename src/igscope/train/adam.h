#pragma once
// Adam (Kingma & Ba 2015) over a model's parameters, with bias correction,
// as torch.optim.Adam; with weight_decay > 0, decoupled weight decay
// (Loshchilov & Hutter 2019) as torch.optim.AdamW: each step first shrinks a
// decayed tensor, w <- w (1 - lr weight_decay), then takes the Adam step.
// Decayed are the tensors of two or more dimensions (conv2d, dense and
// attention weights); biases, batchnorm's and layernorm's weight and bias
// (one-dimensional) and learned embeddings (the class token and position
// embedding, Parameter::decay false) are not, as is customary, and buffers (batchnorm's running statistics) are
// never touched.
#include <vector>

#include "igscope/model.h"

namespace igscope {

class Adam {
 public:
  explicit Adam(Model& model, double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8,
                double weight_decay = 0.0);
  // One update from the gradients accumulated in the parameters.
  void step();
  void set_lr(double lr) { lr_ = lr; }
  double lr() const { return lr_; }
  double weight_decay() const { return weight_decay_; }
  // The names ("<node id>.<suffix>") of the tensors weight decay applies to
  // (empty without weight decay).
  const std::vector<std::string>& decayed() const { return decayed_names_; }

 private:
  std::vector<Parameter*> params_;
  std::vector<char> decay_;  // per entry of params_
  std::vector<std::string> decayed_names_;
  std::vector<std::vector<float>> m_, v_;
  double lr_, beta1_, beta2_, eps_, weight_decay_;
  long t_ = 0;
};

}  // namespace igscope
