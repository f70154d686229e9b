#pragma once
// Layer: one step of a sequential model, with its hand-written backward pass.
//
//   forward(in)          -> out, keeping what the backward pass needs
//   backward_input(dout) -> din, the gradient with respect to the last input
// Both take their argument by value: a caller that no longer needs it moves
// it in, and a layer that keeps it (ReLU's mask, training inputs) or passes
// it on (evaluation-mode dropout) then copies nothing.
//   backward_params(dout)   accumulates the parameters' gradients (training)
//   forward_tangent(din) -> dout, the Jacobian-vector product (conductance)
//
// Shapes are per batch: images are [N, H, W, C] (NHWC), flat data [N, F].
// Parameters are stored in PyTorch's layouts, under PyTorch's state_dict
// suffixes ("weight", "bias"), so a model file maps one-to-one onto an
// nn.Sequential built from the same architecture.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "igscope/backend/backend.h"
#include "igscope/random.h"
#include "igscope/tensor.h"

namespace igscope {

struct Parameter {
  std::string suffix;  // "weight" or "bias" (or a buffer's name, as "running_mean")
  Tensor value;
  Tensor grad;  // same shape as value; accumulated by backward_params
  // false for a buffer (batchnorm's running statistics and counter): saved and
  // loaded like a parameter, updated by the layer itself, never by an optimiser.
  bool trainable = true;
  // Stored as I64 in the file (PyTorch's num_batches_tracked); held as float here.
  bool int64 = false;
  // Whether AdamW's weight decay applies (to weights of rank >= 2 only);
  // false for learned embeddings (class token, position embedding).
  bool decay = true;
};

enum class Mode { Eval, Train };

class Layer {
 public:
  virtual ~Layer() = default;

  // The layer's type name as written in architecture JSON ("conv2d", ...).
  virtual std::string type() const = 0;
  // The layer's description in architecture JSON (type and hyper-parameters).
  virtual nlohmann::json to_json() const = 0;
  // Output shape for an input of the given shape (batch dimension included);
  // throws igscope::Error when the input shape does not fit the layer.
  virtual Shape output_shape(const Shape& in) const = 0;
  // Multiply-adds of one forward pass for one sample of the given shape.
  virtual int64_t multiply_adds(const Shape& /*in*/) const { return 0; }

  virtual Tensor forward(Tensor in, Backend& backend, Mode mode) = 0;
  virtual Tensor backward_input(Tensor dout, Backend& backend) = 0;
  virtual void backward_params(const Tensor& /*dout*/, Backend& /*backend*/) {}
  // The Jacobian-vector product at the last forward pass: the directional
  // derivative of the output along `din` (shaped like that pass's input).
  // Conductance follows the path through a hidden layer with it. Linear
  // layers apply their weights without the bias; elementwise layers (and
  // softmax), whose Jacobians are symmetric, reuse backward_input. The
  // default throws igscope::Error naming the layer type.
  virtual Tensor forward_tangent(const Tensor& din, Backend& backend);

  // Draws the layer's own initial parameters, as PyTorch initialises that
  // module, and returns true; false (the default) leaves them to the model's
  // He initialisation of "weight" and "bias" (Model::init_he).
  virtual bool initialise(Rng& /*rng*/) { return false; }

  std::vector<Parameter>& parameters() { return params_; }
  const std::vector<Parameter>& parameters() const { return params_; }

 protected:
  std::vector<Parameter> params_;
};

// Throws igscope::Error unless `t` has exactly `expected` as its shape.
void check_shape(const Tensor& t, const Shape& expected, const std::string& what);

}  // namespace igscope
