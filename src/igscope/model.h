#pragma once
// Model: a sequential stack of layers built from an architecture description
// (JSON), loaded from and saved to .safetensors with PyTorch state_dict names
// ("<layer index>.weight", "<layer index>.bias", as nn.Sequential names them)
// and the architecture JSON in the header's __metadata__ ("architecture").
//
// Architecture JSON:
//   {"name": "...", "input": [H, W, C] or [F], "classes": ["...", ...] (optional),
//    "layers": [{"type": "conv2d", "out_channels": 32, "kernel": [3, 3],
//                "stride": [1, 1], "padding": [1, 1]},
//               {"type": "relu"}, {"type": "maxpool2d", "kernel": [2, 2], "stride": [2, 2]},
//               {"type": "dropout", "p": 0.25}, {"type": "flatten"},
//               {"type": "dense", "out_features": 10}, ...]}
// Input channels and input features are inferred from the previous layer.
// A tabular model (input [F]) may carry "tabular" (see tabular.h): its
// features' names, their standardisation and its training split.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "igscope/backend/backend.h"
#include "igscope/layers/layer.h"
#include "igscope/tabular.h"
#include "igscope/tensor.h"

namespace igscope {

class Model {
 public:
  // Builds the layers; throws ModelFileError(Architecture) on a bad description.
  explicit Model(const nlohmann::json& architecture);
  Model(Model&&) noexcept = default;
  Model& operator=(Model&&) noexcept = default;

  const std::string& name() const { return name_; }
  const std::vector<std::string>& class_names() const { return classes_; }
  const std::optional<TabularInfo>& tabular() const { return tabular_; }
  // Throws Error unless the info fits the model's input (a flat [F]).
  void set_tabular(TabularInfo info);
  nlohmann::json architecture() const;
  // Shape of one input sample without the batch dimension: [H, W, C] or [F].
  const Shape& input_shape() const { return input_shape_; }
  Shape batch_input_shape(int64_t batch) const;
  int64_t num_outputs() const;

  size_t num_layers() const { return layers_.size(); }
  Layer& layer(size_t i) { return *layers_.at(i); }
  const Layer& layer(size_t i) const { return *layers_.at(i); }

  Tensor forward(const Tensor& x, Backend& backend, Mode mode = Mode::Eval);
  // Backward through every layer from the output gradient of the last
  // forward pass; returns the gradient with respect to the input. With
  // accumulate_params, also accumulates every parameter gradient (needs a
  // Mode::Train forward pass).
  Tensor backward(const Tensor& dout, Backend& backend, bool accumulate_params = false);

  // Layers [begin, end) on their own, for methods that look inside the
  // network (conductance). forward_layers takes layer begin's input and
  // returns layer end-1's output; backward_layers takes the gradient with
  // respect to layer end-1's output and returns it with respect to layer
  // begin's input; tangent_layers returns the Jacobian-vector product of the
  // same layers at their last forward pass (see Layer::forward_tangent).
  // Throws Error for an empty or out-of-range slice.
  Tensor forward_layers(const Tensor& h, Backend& backend, size_t begin, size_t end, Mode mode = Mode::Eval);
  Tensor backward_layers(const Tensor& dout, Backend& backend, size_t begin, size_t end);
  Tensor tangent_layers(const Tensor& din, Backend& backend, size_t begin, size_t end);
  // Layer i's output shape for one sample, without the batch dimension.
  Shape layer_output_shape(size_t i) const;

  struct NamedParameter {
    std::string name;  // "<layer index>.<suffix>"
    Parameter* param;
  };
  std::vector<NamedParameter> named_parameters();
  int64_t parameter_count() const;

  struct LayerCost {
    std::string description;
    Shape output_shape;  // per sample
    int64_t parameters;
    int64_t multiply_adds;  // per sample
  };
  std::vector<LayerCost> layer_costs() const;
  int64_t multiply_adds() const;  // per sample, whole forward pass

  // Kaiming/He normal weights (std sqrt(2 / fan_in)); biases uniform in
  // +-1/sqrt(fan_in), as PyTorch initialises them.
  void init_he(uint64_t seed);
  void zero_grad();
  // Reseeds every dropout layer (layer i gets a seed derived from `seed` and i).
  void seed_dropout(uint64_t seed);

 private:
  std::string name_;
  std::vector<std::string> classes_;
  std::optional<TabularInfo> tabular_;
  Shape input_shape_;
  std::vector<std::unique_ptr<Layer>> layers_;
  std::vector<Shape> shapes_;  // shapes_[i] is layer i's per-sample input shape; last is the output
};

// Loading validates the container, the architecture, every tensor's presence
// and shape, and that every value is finite; failures are ModelFileError.
Model load_model(const std::string& path);
Model load_model_bytes(const uint8_t* bytes, size_t size);
std::vector<uint8_t> model_to_bytes(Model& model);
void save_model(Model& model, const std::string& path);

}  // namespace igscope
