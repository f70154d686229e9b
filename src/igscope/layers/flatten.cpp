#include "igscope/layers/flatten.h"

#include "igscope/error.h"

namespace igscope {

Shape Flatten::output_shape(const Shape& in) const {
  if (in.size() == 2) return in;
  if (in.size() != 4) throw Error("flatten: expected input [N, H, W, C], got " + shape_to_string(in));
  return {in[0], in[1] * in[2] * in[3]};
}

Tensor Flatten::forward(Tensor in, Backend& /*backend*/, Mode /*mode*/) {
  input_shape_ = in.shape();
  if (in.rank() == 2) return in;
  Tensor out = Tensor::uninitialized(output_shape(in.shape()));
  const int64_t n = in.dim(0), h = in.dim(1), w = in.dim(2), c = in.dim(3);
  for (int64_t b = 0; b < n; ++b)
    for (int64_t y = 0; y < h; ++y)
      for (int64_t x = 0; x < w; ++x)
        for (int64_t ch = 0; ch < c; ++ch)
          out[((b * c + ch) * h + y) * w + x] = in[((b * h + y) * w + x) * c + ch];
  return out;
}

Tensor Flatten::backward_input(Tensor dout, Backend& /*backend*/) {
  check_shape(dout, output_shape(input_shape_), "flatten backward");
  if (input_shape_.size() == 2) return dout;
  Tensor din = Tensor::uninitialized(input_shape_);
  const int64_t n = din.dim(0), h = din.dim(1), w = din.dim(2), c = din.dim(3);
  for (int64_t b = 0; b < n; ++b)
    for (int64_t y = 0; y < h; ++y)
      for (int64_t x = 0; x < w; ++x)
        for (int64_t ch = 0; ch < c; ++ch)
          din[((b * h + y) * w + x) * c + ch] = dout[((b * c + ch) * h + y) * w + x];
  return din;
}

// Flattening is linear: the tangent is flattened the same way.
Tensor Flatten::forward_tangent(const Tensor& din, Backend& backend) {
  check_shape(din, input_shape_, "flatten tangent");
  return forward(din, backend, Mode::Eval);
}

}  // namespace igscope
