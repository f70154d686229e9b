#include "igscope/layers/maxpool2d.h"

#include "igscope/error.h"

namespace igscope {

MaxPool2d::MaxPool2d(int64_t kernel_h, int64_t kernel_w, int64_t stride_h, int64_t stride_w, int64_t pad_h,
                     int64_t pad_w, bool ceil_mode)
    : MaxPool2d(PoolWindow{kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, ceil_mode}) {}

MaxPool2d::MaxPool2d(const PoolWindow& window) : window_(window) { window_.check(type()); }

nlohmann::json MaxPool2d::to_json() const {
  nlohmann::json j = {{"type", type()}};
  window_.write(j, false);
  return j;
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
