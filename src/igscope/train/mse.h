#pragma once
// Mean squared error of a regressor's outputs [N, K] against targets [N, K]:
// L = sum (out - target)^2 / (N K), and dL/dout = 2 (out - target) / (N K).
#include "igscope/tensor.h"

namespace igscope {

struct MseResult {
  double loss = 0.0;
  Tensor doutput;
};

// Throws Error when the shapes differ or are empty.
MseResult mean_squared_error(const Tensor& output, const Tensor& target);

}  // namespace igscope
