#include "igscope/train/mse.h"

#include "igscope/error.h"

namespace igscope {

MseResult mean_squared_error(const Tensor& output, const Tensor& target) {
  if (output.shape() != target.shape() || output.size() == 0)
    throw Error("mean squared error: output " + shape_to_string(output.shape()) + " and target " +
                shape_to_string(target.shape()) + " must have the same, non-empty shape");
  MseResult r;
  r.doutput = Tensor(output.shape());
  const double n = static_cast<double>(output.size());
  for (int64_t i = 0; i < output.size(); ++i) {
    const double d = static_cast<double>(output[i]) - target[i];
    r.loss += d * d;
    r.doutput[i] = static_cast<float>(2.0 * d / n);
  }
  r.loss /= n;
  return r;
}

}  // namespace igscope
