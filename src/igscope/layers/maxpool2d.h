#pragma once
#include "igscope/layers/layer.h"
#include "igscope/layers/pooling.h"

namespace igscope {

// Max pooling over NHWC input, as PyTorch's nn.MaxPool2d (kernel, stride,
// padding, ceil_mode; see layers/pooling.h and Pool2dGeometry). Padded cells
// are -infinity, never chosen. Forward keeps the argmax of each window; ties
// go to the first maximum in row-major window order, as in PyTorch, so
// gradients agree exactly on flat (all-equal) regions.
class MaxPool2d final : public Layer {
 public:
  MaxPool2d(int64_t kernel_h, int64_t kernel_w, int64_t stride_h, int64_t stride_w, int64_t pad_h = 0,
            int64_t pad_w = 0, bool ceil_mode = false);
  explicit MaxPool2d(const PoolWindow& window);

  std::string type() const override { return "maxpool2d"; }
  // padding and ceil_mode only when they are not the defaults, so the
  // architecture JSON of a model without them is what it always was.
  nlohmann::json to_json() const override;
  Shape output_shape(const Shape& in) const override;

  Tensor forward(Tensor in, Backend& backend, Mode mode) override;
  Tensor backward_input(Tensor dout, Backend& backend) override;
  Tensor forward_tangent(const Tensor& din, Backend& backend) override;

  const std::vector<int64_t>& argmax() const { return argmax_; }

 private:
  Pool2dGeometry geometry(const Shape& in) const { return window_.geometry(in, type()); }
  PoolWindow window_;
  Shape input_shape_;
  std::vector<int64_t> argmax_;
};

}  // namespace igscope
