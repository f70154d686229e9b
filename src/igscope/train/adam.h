#pragma once
// Adam (Kingma & Ba 2015) over a model's parameters, with bias correction,
// as torch.optim.Adam without weight decay.
#include <vector>

#include "igscope/model.h"

namespace igscope {

class Adam {
 public:
  explicit Adam(Model& model, double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8);
  // One update from the gradients accumulated in the parameters.
  void step();
  void set_lr(double lr) { lr_ = lr; }
  double lr() const { return lr_; }

 private:
  std::vector<Parameter*> params_;
  std::vector<std::vector<float>> m_, v_;
  double lr_, beta1_, beta2_, eps_;
  long t_ = 0;
};

}  // namespace igscope
