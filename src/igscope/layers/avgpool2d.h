#pragma once
// Average pooling over NHWC input, as PyTorch defines it:
//
//   avgpool2d       nn.AvgPool2d(kernel, stride, padding, ceil_mode,
//                   count_include_pad): each window's mean, the window clipped
//                   to the padded input (with ceil_mode the last windows can
//                   run past it) and divided by its cell count, padding
//                   included when count_include_pad (the default), the input
//                   cells only otherwise (Backend::avgpool2d_forward).
//   global_avgpool  nn.AdaptiveAvgPool2d(1): [N, H, W, C] -> [N, 1, 1, C],
//                   the mean over H and W (a following flatten gives [N, C]).
//
// Both are linear: backward_input spreads dout / divisor over each window,
// and forward_tangent is the same pooling applied to the tangent. Neither
// keeps its input.
#include "igscope/layers/layer.h"
#include "igscope/layers/pooling.h"

namespace igscope {

class AvgPool2d final : public Layer {
 public:
  AvgPool2d(int64_t kernel_h, int64_t kernel_w, int64_t stride_h, int64_t stride_w, int64_t pad_h = 0,
            int64_t pad_w = 0, bool ceil_mode = false, bool count_include_pad = true);
  AvgPool2d(const PoolWindow& window, bool count_include_pad);

  std::string type() const override { return "avgpool2d"; }
  nlohmann::json to_json() const override;  // every hyper-parameter
  Shape output_shape(const Shape& in) const override;
  // One multiply-add per input cell of each window (padding adds nothing).
  int64_t multiply_adds(const Shape& in) const override;

  Tensor forward(Tensor in, Backend& backend, Mode mode) override;
  Tensor backward_input(Tensor dout, Backend& backend) override;
  Tensor forward_tangent(const Tensor& din, Backend& backend) override;

 private:
  Pool2dGeometry geometry(const Shape& in) const { return window_.geometry(in, type()); }
  PoolWindow window_;
  bool count_include_pad_;
  Shape input_shape_;
};

class GlobalAvgPool final : public Layer {
 public:
  std::string type() const override { return "global_avgpool"; }
  nlohmann::json to_json() const override { return {{"type", type()}}; }
  Shape output_shape(const Shape& in) const override;
  int64_t multiply_adds(const Shape& in) const override;  // one per input value

  Tensor forward(Tensor in, Backend& backend, Mode mode) override;
  Tensor backward_input(Tensor dout, Backend& backend) override;
  Tensor forward_tangent(const Tensor& din, Backend& backend) override;

 private:
  // The whole image as one window (no padding): the backend's average pooling.
  static Pool2dGeometry geometry(const Shape& in);
  Shape input_shape_;
};

}  // namespace igscope
