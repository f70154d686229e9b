#include "igscope/layers/dropout.h"

#include <cmath>

#include "igscope/error.h"

namespace igscope {

Dropout::Dropout(double p, uint64_t seed) : p_(p), rng_(seed) {
  if (!(p >= 0.0 && p < 1.0)) throw Error("dropout: p must be in [0, 1), got " + std::to_string(p));
}

Tensor Dropout::forward(Tensor in, Backend& /*backend*/, Mode mode) {
  if (mode == Mode::Eval || p_ == 0.0) {
    mask_ = Tensor();
    return in;  // moved
  }
  mask_ = Tensor(in.shape());
  Tensor out(in.shape());
  const float scale = static_cast<float>(1.0 / (1.0 - p_));
  for (int64_t i = 0; i < in.size(); ++i) {
    const double u = rng_.uniform();
    mask_[i] = u < p_ ? 0.0f : scale;
    out[i] = in[i] * mask_[i];
  }
  return out;
}

Tensor Dropout::backward_input(Tensor dout, Backend& /*backend*/) {
  if (mask_.empty()) return dout;  // evaluation pass: identity (moved)
  check_shape(dout, mask_.shape(), "dropout backward");
  Tensor din(dout.shape());
  for (int64_t i = 0; i < dout.size(); ++i) din[i] = dout[i] * mask_[i];
  return din;
}

Tensor Dropout::forward_tangent(const Tensor& din, Backend& backend) { return backward_input(din, backend); }

}  // namespace igscope
