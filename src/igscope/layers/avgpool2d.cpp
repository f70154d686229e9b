#include "igscope/layers/avgpool2d.h"

#include "igscope/error.h"

namespace igscope {

AvgPool2d::AvgPool2d(int64_t kernel_h, int64_t kernel_w, int64_t stride_h, int64_t stride_w, int64_t pad_h,
                     int64_t pad_w, bool ceil_mode, bool count_include_pad)
    : AvgPool2d(PoolWindow{kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, ceil_mode}, count_include_pad) {}

AvgPool2d::AvgPool2d(const PoolWindow& window, bool count_include_pad)
    : window_(window), count_include_pad_(count_include_pad) {
  window_.check(type());
}

nlohmann::json AvgPool2d::to_json() const {
  nlohmann::json j = {{"type", type()}, {"count_include_pad", count_include_pad_}};
  window_.write(j, true);
  return j;
}

Shape AvgPool2d::output_shape(const Shape& in) const {
  const Pool2dGeometry g = geometry(in);
  return {g.batch, g.out_h(), g.out_w(), g.channels};
}

int64_t AvgPool2d::multiply_adds(const Shape& in) const {
  const Pool2dGeometry g = geometry(in);
  int64_t rows = 0, cols = 0;  // input cells summed, per axis, over all windows
  for (int64_t oy = 0; oy < g.out_h(); ++oy) {
    const PoolSpan s = pool_span(oy, g.in_h, g.kernel_h, g.stride_h, g.pad_h, count_include_pad_);
    rows += s.end - s.begin;
  }
  for (int64_t ox = 0; ox < g.out_w(); ++ox) {
    const PoolSpan s = pool_span(ox, g.in_w, g.kernel_w, g.stride_w, g.pad_w, count_include_pad_);
    cols += s.end - s.begin;
  }
  return rows * cols * g.channels;
}

Tensor AvgPool2d::forward(Tensor in, Backend& backend, Mode /*mode*/) {
  const Pool2dGeometry g = geometry(in.shape());
  Tensor out = Tensor::uninitialized({g.batch, g.out_h(), g.out_w(), g.channels});
  backend.avgpool2d_forward(g, count_include_pad_, in.data(), out.data());
  input_shape_ = in.shape();
  return out;
}

Tensor AvgPool2d::backward_input(Tensor dout, Backend& backend) {
  check_shape(dout, output_shape(input_shape_), "avgpool2d backward");
  Tensor din = Tensor::uninitialized(input_shape_);
  backend.avgpool2d_backward(geometry(input_shape_), count_include_pad_, dout.data(), din.data());
  return din;
}

// Linear without a bias: the tangent is pooled as the input is.
Tensor AvgPool2d::forward_tangent(const Tensor& din, Backend& backend) {
  check_shape(din, input_shape_, "avgpool2d tangent");
  const Pool2dGeometry g = geometry(input_shape_);
  Tensor dout = Tensor::uninitialized({g.batch, g.out_h(), g.out_w(), g.channels});
  backend.avgpool2d_forward(g, count_include_pad_, din.data(), dout.data());
  return dout;
}

Pool2dGeometry GlobalAvgPool::geometry(const Shape& in) {
  if (in.size() != 4 || in[1] < 1 || in[2] < 1)
    throw Error("global_avgpool: expected input [N, H, W, C], got " + shape_to_string(in));
  Pool2dGeometry g;
  g.batch = in[0];
  g.in_h = g.kernel_h = g.stride_h = in[1];
  g.in_w = g.kernel_w = g.stride_w = in[2];
  g.channels = in[3];
  return g;
}

Shape GlobalAvgPool::output_shape(const Shape& in) const {
  const Pool2dGeometry g = geometry(in);
  return {g.batch, 1, 1, g.channels};
}

int64_t GlobalAvgPool::multiply_adds(const Shape& in) const {
  const Pool2dGeometry g = geometry(in);
  return g.in_h * g.in_w * g.channels;
}

Tensor GlobalAvgPool::forward(Tensor in, Backend& backend, Mode /*mode*/) {
  const Pool2dGeometry g = geometry(in.shape());
  Tensor out = Tensor::uninitialized(output_shape(in.shape()));
  backend.avgpool2d_forward(g, true, in.data(), out.data());
  input_shape_ = in.shape();
  return out;
}

Tensor GlobalAvgPool::backward_input(Tensor dout, Backend& backend) {
  check_shape(dout, output_shape(input_shape_), "global_avgpool backward");
  Tensor din = Tensor::uninitialized(input_shape_);
  backend.avgpool2d_backward(geometry(input_shape_), true, dout.data(), din.data());
  return din;
}

Tensor GlobalAvgPool::forward_tangent(const Tensor& din, Backend& backend) {
  check_shape(din, input_shape_, "global_avgpool tangent");
  Tensor dout = Tensor::uninitialized(output_shape(input_shape_));
  backend.avgpool2d_forward(geometry(input_shape_), true, din.data(), dout.data());
  return dout;
}

}  // namespace igscope
