#pragma once
// Model: a directed acyclic graph of nodes (layers) built from an
// architecture description (JSON), loaded from and saved to .safetensors
// with PyTorch state_dict names ("<node id>.weight", "<node id>.bias") and
// the architecture JSON in the header's __metadata__ ("architecture").
//
// Architecture JSON, the chain form (an nn.Sequential: node i is layer i,
// its id is "i", its input the previous layer's output):
//   {"name": "...", "input": [H, W, C] or [F], "classes": ["...", ...] (optional),
//    "layers": [{"type": "conv2d", "out_channels": 32, "kernel": [3, 3],
//                "stride": [1, 1], "padding": [1, 1]},
//               {"type": "relu"}, {"type": "maxpool2d", "kernel": [2, 2], "stride": [2, 2]},
//               {"type": "dropout", "p": 0.25}, {"type": "flatten"},
//               {"type": "dense", "out_features": 10}, ...]}
// and the graph form (docs/model-file.md):
//   {"name": "...", "input": [...], "output": "fc",
//    "nodes": [{"id": "conv1", "type": "conv2d", "inputs": ["input"], ...},
//              {"id": "sum", "type": "add", "inputs": ["conv1", "input"]}, ...]}
// where "input" names the model's input, ids are PyTorch module paths
// ("layer1.0.conv1"), and every node must lead to the output.
// Input channels and input features are inferred from a node's input.
// A tabular model (input [F]) may carry "tabular" (see tabular.h): its
// features' names, their standardisation and its training split.
//
// Nodes are numbered in a topological order (the order given, as far as the
// edges allow); "layer i" everywhere below is node i, and the output node is
// the last. A forward pass frees each node's output as soon as the last node
// reading it has run; where a node feeds several others, the backward pass
// adds their gradients.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "igscope/backend/backend.h"
#include "igscope/layers/layer.h"
#include "igscope/layers/merge.h"
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

  size_t num_layers() const { return nodes_.size(); }
  Layer& layer(size_t i) { return *nodes_.at(i).layer; }
  const Layer& layer(size_t i) const { return *nodes_.at(i).layer; }
  // Node i's id ("3" in a chain), and its inputs: node indices, -1 for the
  // model's input.
  const std::string& node_id(size_t i) const { return nodes_.at(i).id; }
  const std::vector<int>& node_inputs(size_t i) const { return nodes_.at(i).inputs; }
  // True when every path from the input to the output crosses node i, so
  // that completeness holds at its outputs (conductances sum to F(x) - F(x')).
  // Every node of a chain is a cut.
  bool is_cut(size_t i) const { return nodes_.at(i).cut; }
  bool is_chain() const { return chain_; }
  // A node by id, or by index written in decimal; throws Error naming the ids.
  size_t find_node(const std::string& id_or_index) const;

  Tensor forward(const Tensor& x, Backend& backend, Mode mode = Mode::Eval);
  // Backward through every node from the output gradient of the last
  // forward pass; returns the gradient with respect to the input. With
  // accumulate_params, also accumulates every parameter gradient (needs a
  // Mode::Train forward pass).
  Tensor backward(const Tensor& dout, Backend& backend, bool accumulate_params = false);

  // For methods that look inside the network (conductance), at node i, on
  // the last forward pass: backward_to returns the gradient with respect to
  // node i's output (backward through the nodes after it only);
  // backward_from takes a gradient with respect to node i's output and
  // returns the gradient with respect to the input along the paths through
  // node i; tangent_to returns the Jacobian-vector product of node i's output
  // along an input direction `din` (see Layer::forward_tangent). Throw Error
  // for a node out of range.
  Tensor backward_to(const Tensor& dout, Backend& backend, size_t node);
  Tensor backward_from(const Tensor& dnode, Backend& backend, size_t node);
  Tensor tangent_to(const Tensor& din, Backend& backend, size_t node);
  // Layer i's output shape for one sample, without the batch dimension.
  Shape layer_output_shape(size_t i) const;

  struct NamedParameter {
    std::string name;  // "<node id>.<suffix>"
    Parameter* param;
  };
  std::vector<NamedParameter> named_parameters();
  int64_t parameter_count() const;

  struct LayerCost {
    std::string id;
    std::vector<std::string> inputs;  // node ids, "input" for the model's input
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
  struct Node {
    std::string id;
    std::vector<int> inputs;  // node indices, -1: the model's input
    std::unique_ptr<Layer> layer;
    MergeLayer* merge = nullptr;  // the layer as a merge node (several inputs), or null
    std::vector<Shape> input_shapes;  // batch 1
    Shape output_shape;               // batch 1
    int readers = 0;  // input slots of later nodes that read this node's output
    bool cut = false;
  };
  void build_chain(const nlohmann::json& layers);
  void build_graph(const nlohmann::json& nodes, const nlohmann::json& output);
  void finish();  // shapes, readers, cuts; checks the class names
  void check_node(size_t i) const;
  // Backward over nodes hi, hi-1, ..., lo from the gradients in `grads`
  // (one per node, empty where none has arrived); the input's gradient is
  // added into gx.
  void backward_nodes(std::vector<Tensor>& grads, std::vector<char>& has, size_t hi, size_t lo, Backend& backend,
                      bool accumulate_params, Tensor& gx, bool& has_gx);
  bool chain_ = true;
  std::vector<Node> nodes_;
};

// The output shape of one node (its "type" and hyper-parameters, without
// "id" and "inputs") for inputs of the given shapes, batch dimension
// included, by the rules the model applies; throws ModelFileError
// (Architecture) or Error where the model would refuse the node.
Shape node_output_shape(const nlohmann::json& spec, const std::vector<Shape>& inputs);

// Loading validates the container, the architecture, every tensor's presence
// and shape, and that every value is finite; failures are ModelFileError.
Model load_model(const std::string& path);
Model load_model_bytes(const uint8_t* bytes, size_t size);
std::vector<uint8_t> model_to_bytes(Model& model);
void save_model(Model& model, const std::string& path);

}  // namespace igscope
