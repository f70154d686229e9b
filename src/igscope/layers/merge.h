#pragma once
// Merge nodes: the graph nodes that combine several inputs into one output.
//
//   add     any number (>= 2) of inputs of one shape, summed (residual sums)
//   concat  >= 2 inputs joined along the last axis: channels of [N, H, W, C]
//           (Inception, DenseNet) or features of [N, F]; the other axes agree
//   mul     two inputs multiplied elementwise, of one shape, or one of them
//           [N, 1, 1, C] broadcast over the other's [N, H, W, C]
//           (squeeze-and-excitation)
//
// The single-input Layer interface does not apply (it throws); the model
// calls the list forms below. Inputs keep their order: backward_inputs
// returns one gradient per input, and forward_tangent takes one tangent per
// input, in that order.
#include <vector>

#include "igscope/layers/layer.h"

namespace igscope {

class MergeLayer : public Layer {
 public:
  // How many inputs the node takes: an exact count, or at least min_inputs.
  virtual size_t min_inputs() const { return 2; }
  virtual bool exact_inputs() const { return false; }

  using Layer::multiply_adds;
  virtual Shape output_shape(const std::vector<Shape>& in) const = 0;
  virtual int64_t multiply_adds(const std::vector<Shape>& /*in*/) const { return 0; }
  virtual Tensor forward(std::vector<Tensor> in, Backend& backend, Mode mode) = 0;
  virtual std::vector<Tensor> backward_inputs(Tensor dout, Backend& backend) = 0;
  virtual Tensor forward_tangent(const std::vector<const Tensor*>& din, Backend& backend) = 0;

  // The single-input forms throw igscope::Error: a merge node takes a list.
  Shape output_shape(const Shape& in) const final;
  Tensor forward(Tensor in, Backend& backend, Mode mode) final;
  Tensor backward_input(Tensor dout, Backend& backend) final;
  Tensor forward_tangent(const Tensor& din, Backend& backend) final;

 protected:
  // Throws igscope::Error unless the number of inputs fits the node.
  void check_count(size_t n) const;
};

class Add final : public MergeLayer {
 public:
  using MergeLayer::forward;
  using MergeLayer::forward_tangent;
  using MergeLayer::multiply_adds;
  using MergeLayer::output_shape;
  std::string type() const override { return "add"; }
  nlohmann::json to_json() const override { return {{"type", type()}}; }
  Shape output_shape(const std::vector<Shape>& in) const override;
  int64_t multiply_adds(const std::vector<Shape>& in) const override;
  Tensor forward(std::vector<Tensor> in, Backend& backend, Mode mode) override;
  std::vector<Tensor> backward_inputs(Tensor dout, Backend& backend) override;
  Tensor forward_tangent(const std::vector<const Tensor*>& din, Backend& backend) override;

 private:
  std::vector<Shape> input_shapes_;
};

class Concat final : public MergeLayer {
 public:
  using MergeLayer::forward;
  using MergeLayer::forward_tangent;
  using MergeLayer::multiply_adds;
  using MergeLayer::output_shape;
  std::string type() const override { return "concat"; }
  nlohmann::json to_json() const override { return {{"type", type()}}; }
  Shape output_shape(const std::vector<Shape>& in) const override;
  Tensor forward(std::vector<Tensor> in, Backend& backend, Mode mode) override;
  std::vector<Tensor> backward_inputs(Tensor dout, Backend& backend) override;
  Tensor forward_tangent(const std::vector<const Tensor*>& din, Backend& backend) override;

 private:
  Tensor join(const std::vector<const Tensor*>& in) const;
  std::vector<Shape> input_shapes_;
};

class Mul final : public MergeLayer {
 public:
  using MergeLayer::forward;
  using MergeLayer::forward_tangent;
  using MergeLayer::multiply_adds;
  using MergeLayer::output_shape;
  std::string type() const override { return "mul"; }
  nlohmann::json to_json() const override { return {{"type", type()}}; }
  size_t min_inputs() const override { return 2; }
  bool exact_inputs() const override { return true; }
  Shape output_shape(const std::vector<Shape>& in) const override;
  int64_t multiply_adds(const std::vector<Shape>& in) const override;
  Tensor forward(std::vector<Tensor> in, Backend& backend, Mode mode) override;
  std::vector<Tensor> backward_inputs(Tensor dout, Backend& backend) override;
  Tensor forward_tangent(const std::vector<const Tensor*>& din, Backend& backend) override;

 private:
  // out = a * b with b broadcast when it is the [N, 1, 1, C] one.
  static Tensor product(const Tensor& a, const Tensor& b);
  Tensor a_, b_;  // the last forward pass's inputs, in the order given
};

}  // namespace igscope
