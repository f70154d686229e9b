#include "igscope/layers/maxpool2d.h"

#include "igscope/error.h"

namespace igscope {

MaxPool2d::MaxPool2d(int64_t kernel_h, int64_t kernel_w, int64_t stride_h, int64_t stride_w)
    : kh_(kernel_h), kw_(kernel_w), sh_(stride_h), sw_(stride_w) {
  if (kh_ < 1 || kw_ < 1 || sh_ < 1 || sw_ < 1)
    throw Error("maxpool2d: kernel and stride must be >= 1");
}

nlohmann::json MaxPool2d::to_json() const {
  return {{"type", type()}, {"kernel", {kh_, kw_}}, {"stride", {sh_, sw_}}};
}

Pool2dGeometry MaxPool2d::geometry(const Shape& in) const {
  if (in.size() != 4) throw Error("maxpool2d: expected input [N, H, W, C], got " + shape_to_string(in));
  if (in[1] < kh_ || in[2] < kw_)
    throw Error("maxpool2d: input " + shape_to_string(in) + " is smaller than the window");
  Pool2dGeometry g;
  g.batch = in[0];
  g.in_h = in[1];
  g.in_w = in[2];
  g.channels = in[3];
  g.kernel_h = kh_;
  g.kernel_w = kw_;
  g.stride_h = sh_;
  g.stride_w = sw_;
  return g;
}

Shape MaxPool2d::output_shape(const Shape& in) const {
  const Pool2dGeometry g = geometry(in);
  return {g.batch, g.out_h(), g.out_w(), g.channels};
}

Tensor MaxPool2d::forward(Tensor in, Backend& backend, Mode /*mode*/) {
  const Pool2dGeometry g = geometry(in.shape());
  Tensor out = Tensor::uninitialized(output_shape(in.shape()));
  argmax_.resize(static_cast<size_t>(out.size()));
  backend.maxpool2d_forward(g, in.data(), out.data(), argmax_.data());
  input_shape_ = in.shape();
  return out;
}

Tensor MaxPool2d::backward_input(Tensor dout, Backend& backend) {
  check_shape(dout, output_shape(input_shape_), "maxpool2d backward");
  Tensor din = Tensor::uninitialized(input_shape_);
  backend.maxpool2d_backward(geometry(input_shape_), dout.data(), argmax_.data(), din.data());
  return din;
}

// The output follows the input at each window's maximum.
Tensor MaxPool2d::forward_tangent(const Tensor& din, Backend& /*backend*/) {
  check_shape(din, input_shape_, "maxpool2d tangent");
  Tensor dout(output_shape(input_shape_));
  for (int64_t o = 0; o < dout.size(); ++o) dout[o] = din[argmax_[static_cast<size_t>(o)]];
  return dout;
}

}  // namespace igscope
