#pragma once
// The functions attribution methods explain: a scalar F of one input sample,
// evaluated with its gradient dF/dx for a whole batch of inputs at once.
// The CNN (one output class, as logit or softmax probability) is one such
// function; an analytic test function is another.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "igscope/backend/backend.h"
#include "igscope/model.h"
#include "igscope/tensor.h"

namespace igscope {

class TargetFunction {
 public:
  virtual ~TargetFunction() = default;
  // Shape of one input sample, without the batch dimension.
  virtual Shape input_shape() const = 0;
  // x: [B, input_shape...]. Sets values to the B values F(x_b) and grads to
  // the B gradients dF/dx_b (shape of x).
  virtual void evaluate(const Tensor& x, std::vector<double>& values, Tensor& grads) = 0;
  // F only. The default calls evaluate and drops the gradients.
  virtual void evaluate_values(const Tensor& x, std::vector<double>& values);
};

// Which of the model's outputs is explained.
enum class TargetOutput {
  Logit,        // the model's output for the class, as it is
  Probability,  // softmax over the model's outputs, at the class
};
std::string target_output_name(TargetOutput output);   // "logit", "probability"
TargetOutput parse_target_output(const std::string&);  // throws Error

// One class of a model, through the model's hand-written backward pass.
// The model runs in evaluation mode (dropout off). Throws Error when the
// class is out of range, or for Probability when the model already ends in
// softmax / log_softmax.
class ModelTarget final : public TargetFunction {
 public:
  ModelTarget(Model& model, Backend& backend, int64_t target_class, TargetOutput output = TargetOutput::Logit);
  Shape input_shape() const override { return model_.input_shape(); }
  void evaluate(const Tensor& x, std::vector<double>& values, Tensor& grads) override;
  void evaluate_values(const Tensor& x, std::vector<double>& values) override;

  int64_t target_class() const { return target_; }
  TargetOutput output() const { return output_; }
  // Polled before every evaluation; when it returns true the evaluation
  // throws Cancelled instead of running.
  void set_cancel_check(std::function<bool()> cancelled) { cancelled_ = std::move(cancelled); }
  // F for the model's outputs `out` [B, K] (one value per row) and, when
  // seed is not null, dF/dout: where a backward pass through the model starts.
  void target_values(const Tensor& out, std::vector<double>& values, Tensor* seed) const;

 private:
  Model& model_;
  Backend& backend_;
  void throw_if_cancelled() const;
  int64_t target_;
  TargetOutput output_;
  std::function<bool()> cancelled_;
};

// A function given per sample: f(x, grad) returns F(x) and writes dF/dx to
// grad (both of numel(input_shape) floats). For analytic test functions and
// small models written by hand.
class FunctionTarget final : public TargetFunction {
 public:
  using Fn = std::function<double(const float* x, float* grad)>;
  FunctionTarget(Shape input_shape, Fn fn) : shape_(std::move(input_shape)), fn_(std::move(fn)) {}
  Shape input_shape() const override { return shape_; }
  void evaluate(const Tensor& x, std::vector<double>& values, Tensor& grads) override;

 private:
  Shape shape_;
  Fn fn_;
};

// The model's outputs for one input sample [1, ...] (evaluation mode), and
// the index of the largest output (the predicted class).
std::vector<double> model_outputs(Model& model, Backend& backend, const Tensor& input);
// Softmax of a model's outputs (computed stably, in double).
std::vector<double> softmax(const std::vector<double>& outputs);
int64_t predicted_class(Model& model, Backend& backend, const Tensor& input);

// Evaluates `f` at `count` points in chunks of at most `batch_size` points, so
// memory stays bounded by the chunk whatever `count` is. fill(i, dst) writes
// point i (numel(input_shape) floats); consume(i, value, grad) receives F and
// dF/dx at point i, in increasing i. With grads == false only values are
// computed (a forward pass) and consume gets grad == nullptr.
using FillPoint = std::function<void(int64_t index, float* dst)>;
using ConsumePoint = std::function<void(int64_t index, double value, const float* grad)>;
void evaluate_in_chunks(TargetFunction& f, int64_t count, int64_t batch_size, const FillPoint& fill,
                        const ConsumePoint& consume, bool grads = true);

// Throws Error naming `what` unless the tensor holds one sample of `shape`
// ([1, shape...] or shape itself) with finite values only.
void check_sample(const Tensor& t, const Shape& shape, const std::string& what);
// [1, shape...] for a sample shape.
Shape sample_batch_shape(const Shape& shape);

}  // namespace igscope
