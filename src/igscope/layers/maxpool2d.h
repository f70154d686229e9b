#pragma once
#include "igscope/layers/layer.h"

namespace igscope {

// Max pooling over NHWC input (no padding). Forward keeps the argmax of each
// window; ties go to the first maximum in row-major window order, as in
// PyTorch, so gradients agree exactly on flat (all-equal) regions.
class MaxPool2d final : public Layer {
 public:
  MaxPool2d(int64_t kernel_h, int64_t kernel_w, int64_t stride_h, int64_t stride_w);

  std::string type() const override { return "maxpool2d"; }
  nlohmann::json to_json() const override;
  Shape output_shape(const Shape& in) const override;

  Tensor forward(Tensor in, Backend& backend, Mode mode) override;
  Tensor backward_input(Tensor dout, Backend& backend) override;
  Tensor forward_tangent(const Tensor& din, Backend& backend) override;

  const std::vector<int64_t>& argmax() const { return argmax_; }

 private:
  Pool2dGeometry geometry(const Shape& in) const;
  int64_t kh_, kw_, sh_, sw_;
  Shape input_shape_;
  std::vector<int64_t> argmax_;
};

}  // namespace igscope
