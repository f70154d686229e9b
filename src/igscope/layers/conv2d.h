#pragma once
#include "igscope/layers/layer.h"

namespace igscope {

// 2-D convolution over NHWC input, any kernel size, stride, zero padding,
// dilation and groups (PyTorch's nn.Conv2d; groups == in_channels is a
// depthwise convolution). weight: [out_channels, in_channels / groups,
// kernel_h, kernel_w]; bias: [out_channels].
class Conv2d final : public Layer {
 public:
  Conv2d(int64_t in_channels, int64_t out_channels, int64_t kernel_h, int64_t kernel_w,
         int64_t stride_h = 1, int64_t stride_w = 1, int64_t pad_h = 0, int64_t pad_w = 0, int64_t groups = 1,
         int64_t dilation_h = 1, int64_t dilation_w = 1);

  std::string type() const override { return "conv2d"; }
  nlohmann::json to_json() const override;
  Shape output_shape(const Shape& in) const override;
  int64_t multiply_adds(const Shape& in) const override;

  Tensor forward(Tensor in, Backend& backend, Mode mode) override;
  Tensor backward_input(Tensor dout, Backend& backend) override;
  Tensor forward_tangent(const Tensor& din, Backend& backend) override;
  void backward_params(const Tensor& dout, Backend& backend) override;

  Tensor& weight() { return params_[0].value; }
  Tensor& bias() { return params_[1].value; }

 private:
  Conv2dGeometry geometry(const Shape& in) const;
  int64_t in_c_, out_c_, kh_, kw_, sh_, sw_, ph_, pw_, groups_, dh_, dw_;
  Tensor input_;  // kept by forward for backward_params
  Shape input_shape_;
  Tensor zero_bias_;  // forward_tangent's bias (the tangent of a constant is 0)
};

}  // namespace igscope
