#include "igscope/model.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <map>
#include <set>

#include "igscope/error.h"
#include "igscope/layers/activations.h"
#include "igscope/layers/affine.h"
#include "igscope/layers/attention.h"
#include "igscope/layers/batchnorm.h"
#include "igscope/layers/conv2d.h"
#include "igscope/layers/dense.h"
#include "igscope/layers/dropout.h"
#include "igscope/layers/flatten.h"
#include "igscope/layers/layernorm.h"
#include "igscope/layers/merge.h"
#include "igscope/layers/pad2d.h"
#include "igscope/layers/pooling.h"
#include "igscope/layers/relu.h"
#include "igscope/layers/smelu.h"
#include "igscope/layers/softmax.h"
#include "igscope/layers/tokens.h"
#include "igscope/random.h"
#include "igscope/safetensors.h"

namespace igscope {

namespace {

using K = ModelFileErrorKind;
using nlohmann::json;

[[noreturn]] void arch_error(const std::string& message) { throw ModelFileError(K::Architecture, message); }

int64_t positive_int(const json& v, const std::string& what) {
  if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > (1 << 20))
    arch_error(what + " must be a non-negative integer, got " + v.dump());
  return v.get<int64_t>();
}

// An int or a pair [h, w] (as in PyTorch's kernel_size / stride / padding).
std::pair<int64_t, int64_t> int_pair(const json& layer, const char* key, std::pair<int64_t, int64_t> fallback,
                                     const std::string& where) {
  if (!layer.contains(key)) {
    if (fallback.first < 0) arch_error(where + ": missing '" + key + "'");
    return fallback;
  }
  const json& v = layer[key];
  if (v.is_array()) {
    if (v.size() != 2) arch_error(where + ": '" + key + "' must be an integer or [h, w]");
    return {positive_int(v[0], where + " " + key), positive_int(v[1], where + " " + key)};
  }
  const int64_t x = positive_int(v, where + " " + key);
  return {x, x};
}

std::unique_ptr<Layer> make_layer(const json& spec, const Shape& in, size_t index) {
  const std::string where = "layer " + std::to_string(index);
  if (!spec.is_object() || !spec.contains("type") || !spec["type"].is_string())
    arch_error(where + ": needs a \"type\" string");
  const std::string type = spec["type"].get<std::string>();
  const bool image = in.size() == 4;
  try {
    if (type == "conv2d") {
      if (!image) arch_error(where + " (conv2d) needs image input [H, W, C], got " + shape_to_string(in));
      if (!spec.contains("out_channels")) arch_error(where + " (conv2d): missing 'out_channels'");
      const auto k = int_pair(spec, "kernel", {-1, -1}, where);
      const auto s = int_pair(spec, "stride", {1, 1}, where);
      const auto p = int_pair(spec, "padding", {0, 0}, where), d = int_pair(spec, "dilation", {1, 1}, where);
      return std::make_unique<Conv2d>(in[3], positive_int(spec["out_channels"], where + " out_channels"),
                                      k.first, k.second, s.first, s.second, p.first, p.second,
                                      positive_int(spec.value("groups", json(1)), where + " groups"), d.first, d.second);
    }
    if (is_pooling_type(type)) return make_pooling_layer(spec, in);
    if (type == "dense") {
      if (in.size() != 2 && in.size() != 3)
        arch_error(where + " (dense) needs flat input or tokens; add a flatten layer before it");
      if (!spec.contains("out_features")) arch_error(where + " (dense): missing 'out_features'");
      return std::make_unique<Dense>(in.back(), positive_int(spec["out_features"], where + " out_features"));
    }
    if (type == "layernorm") {
      if (in.size() != 2 && in.size() != 3)
        arch_error(where + " (layernorm) needs flat input [F] or tokens [T, D], got " + shape_to_string(in));
      const json eps = spec.value("eps", json(1e-5));
      if (!eps.is_number()) arch_error(where + " (layernorm): 'eps' must be a number");
      return std::make_unique<LayerNorm>(in.back(), eps.get<double>());
    }
    if (type == "attention") {
      check_tokens(in, 0, where + " (attention)");
      if (!spec.contains("heads")) arch_error(where + " (attention): missing 'heads'");
      return std::make_unique<Attention>(in[2], positive_int(spec["heads"], where + " heads"));
    }
    if (type == "patch_embed") {
      if (!image) arch_error(where + " (patch_embed) needs image input [H, W, C], got " + shape_to_string(in));
      if (!spec.contains("dim") || !spec.contains("patch")) arch_error(where + " (patch_embed): needs 'dim' and 'patch'");
      return std::make_unique<PatchEmbed>(in[3], positive_int(spec["dim"], where + " dim"),
                                          positive_int(spec["patch"], where + " patch"));
    }
    if (type == "class_token") {
      check_tokens(in, 0, where + " (class_token)");
      return std::make_unique<ClassToken>(in[2]);
    }
    if (type == "position_embedding") {
      check_tokens(in, 0, where + " (position_embedding)");
      return std::make_unique<PositionEmbedding>(in[1], in[2]);
    }
    if (type == "select_token") {
      const json index = spec.value("index", json(0));
      if (!index.is_number_integer()) arch_error(where + " (select_token): 'index' must be an integer");
      return std::make_unique<SelectToken>(index.get<int64_t>());
    }
    if (type == "mean_tokens") return std::make_unique<MeanTokens>();
    if (type == "relu") return std::make_unique<ReLU>();
    if (type == "batchnorm") {
      if (in.size() != 4 && in.size() != 2)
        arch_error(where + " (batchnorm) needs image input [H, W, C] or flat input [F], got " + shape_to_string(in));
      const json eps = spec.value("eps", json(1e-5)), momentum = spec.value("momentum", json(0.1));
      if (!eps.is_number()) arch_error(where + " (batchnorm): 'eps' must be a number");
      if (!momentum.is_number())
        arch_error(where + " (batchnorm): 'momentum' must be a number (a cumulative average, PyTorch's None, is not supported)");
      return std::make_unique<BatchNorm>(in.back(), eps.get<double>(), momentum.get<double>());
    }
    if (is_activation_type(type)) return make_activation(spec);
    if (type == "smelu") {
      if (!spec.contains("beta") || !spec["beta"].is_number()) arch_error(where + " (smelu): 'beta' must be a number");
      return std::make_unique<SmeLU>(spec["beta"].get<double>());
    }
    if (type == "affine") return make_affine(spec);
    if (type == "pad2d") {
      if (!image) arch_error(where + " (pad2d) needs image input [H, W, C], got " + shape_to_string(in));
      return make_pad2d(spec);
    }
    if (type == "flatten") return std::make_unique<Flatten>();
    if (type == "softmax") return std::make_unique<Softmax>();
    if (type == "log_softmax") return std::make_unique<LogSoftmax>();
    if (type == "dropout") {
      const json p = spec.value("p", json(0.5));
      if (!p.is_number()) arch_error(where + " (dropout): 'p' must be a number");
      return std::make_unique<Dropout>(p.get<double>(), index);
    }
  } catch (const ModelFileError&) {
    throw;
  } catch (const Error& e) {
    arch_error(where + ": " + e.what());
  }
  arch_error(where + ": unknown layer type '" + type +
             "' (known: conv2d, maxpool2d, avgpool2d, global_avgpool, dense, relu, smelu, sigmoid, tanh, gelu, silu, "
             "leaky_relu, relu6, hardswish, hardsigmoid, batchnorm, layernorm, affine, pad2d, dropout, flatten, softmax, "
             "log_softmax, patch_embed, class_token, position_embedding, attention, select_token, mean_tokens; in the "
             "graph form also add, concat, mul)");
}

// "conv2d kernel=3x3 out_channels=32 padding=1x1 stride=1x1"
std::string describe(const Layer& layer) {
  const json j = layer.to_json();
  std::string s = j["type"].get<std::string>();
  for (const auto& [key, value] : j.items()) {
    if (key == "type") continue;
    s += " " + key + "=";
    if (value.is_array()) {
      for (size_t i = 0; i < value.size(); ++i) s += (i ? "x" : "") + value[i].dump();
    } else {
      s += value.dump();
    }
  }
  return s;
}

}  // namespace

namespace {

// A node id: PyTorch module-path segments ([A-Za-z0-9_]+) joined by dots.
bool valid_id(const std::string& id) {
  if (id.empty() || id.size() > 200 || id.front() == '.' || id.back() == '.' || id.find("..") != std::string::npos)
    return false;
  for (char c : id)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.')) return false;
  return true;
}

std::unique_ptr<MergeLayer> make_merge(const std::string& type) {
  if (type == "add") return std::make_unique<Add>();
  if (type == "concat") return std::make_unique<Concat>();
  if (type == "mul") return std::make_unique<Mul>();
  return nullptr;
}

bool is_merge_type(const std::string& type) { return type == "add" || type == "concat" || type == "mul"; }

}  // namespace

Model::Model(const json& arch) {
  if (!arch.is_object()) arch_error("the architecture must be a JSON object");
  if (arch.contains("name") && !arch["name"].is_string()) arch_error("'name' must be a string");
  name_ = arch.value("name", std::string("unnamed"));
  if (!arch.contains("input") || !arch["input"].is_array() ||
      (arch["input"].size() != 3 && arch["input"].size() != 1))
    arch_error("'input' must be [height, width, channels] or [features]");
  for (const auto& d : arch["input"]) {
    const int64_t v = positive_int(d, "input dimension");
    if (v < 1) arch_error("input dimensions must be >= 1");
    input_shape_.push_back(v);
  }
  if (arch.contains("classes")) {
    if (!arch["classes"].is_array()) arch_error("'classes' must be an array of strings");
    for (const auto& c : arch["classes"]) {
      if (!c.is_string()) arch_error("'classes' must be an array of strings");
      classes_.push_back(c.get<std::string>());
    }
  }
  if (arch.contains("tabular")) {
    if (input_shape_.size() != 1) arch_error("'tabular' needs a flat input [features]");
    try {
      tabular_ = TabularInfo::from_json(arch["tabular"], input_shape_[0]);
    } catch (const ModelFileError&) {
      throw;
    } catch (const Error& e) {
      arch_error(e.what());
    }
  }
  const bool has_layers = arch.contains("layers"), has_nodes = arch.contains("nodes");
  if (has_layers == has_nodes)
    arch_error("the architecture needs either 'layers' (a chain) or 'nodes' and 'output' (a graph)");
  if (has_layers) {
    if (!arch["layers"].is_array() || arch["layers"].empty()) arch_error("'layers' must be a non-empty array");
    if (arch.contains("output")) arch_error("'output' belongs to the graph form ('nodes'), not to 'layers'");
    build_chain(arch["layers"]);
  } else {
    if (!arch["nodes"].is_array() || arch["nodes"].empty()) arch_error("'nodes' must be a non-empty array");
    if (!arch.contains("output") || !arch["output"].is_string())
      arch_error("the graph form needs 'output', the id of the output node");
    build_graph(arch["nodes"], arch["output"]);
  }
  finish();
}

void Model::build_chain(const json& layers) {
  chain_ = true;
  Shape shape = batch_input_shape(1);
  for (size_t i = 0; i < layers.size(); ++i) {
    if (layers[i].is_object() && layers[i].contains("type") && layers[i]["type"].is_string() &&
        is_merge_type(layers[i]["type"].get<std::string>()))
      arch_error("layer " + std::to_string(i) + " (" + layers[i]["type"].get<std::string>() +
                 ") combines several inputs: use the graph form ('nodes' with 'inputs')");
    Node node;
    node.id = std::to_string(i);
    node.inputs = {static_cast<int>(i) - 1};
    node.layer = make_layer(layers[i], shape, i);
    node.input_shapes = {shape};
    try {
      shape = node.layer->output_shape(shape);
    } catch (const Error& e) {
      arch_error("layer " + std::to_string(i) + " (" + node.layer->type() + "): " + e.what());
    }
    node.output_shape = shape;
    nodes_.push_back(std::move(node));
  }
}

void Model::build_graph(const json& specs, const json& output) {
  chain_ = false;
  const size_t n = specs.size();
  std::vector<std::string> ids(n);
  std::vector<std::vector<std::string>> input_ids(n);
  std::map<std::string, size_t> by_id;
  for (size_t i = 0; i < n; ++i) {
    const json& spec = specs[i];
    const std::string where = "node " + std::to_string(i);
    if (!spec.is_object() || !spec.contains("id") || !spec["id"].is_string())
      arch_error(where + ": needs an \"id\" string");
    ids[i] = spec["id"].get<std::string>();
    if (!valid_id(ids[i]) || ids[i] == "input")
      arch_error(where + ": id '" + ids[i] +
                 "' must be letters, digits and '_' in dot-separated parts (a PyTorch module path), and not 'input'");
    if (!by_id.emplace(ids[i], i).second) arch_error("node id '" + ids[i] + "' appears twice");
    if (!spec.contains("inputs") || !spec["inputs"].is_array() || spec["inputs"].empty())
      arch_error("node '" + ids[i] + "': needs \"inputs\", a non-empty array of node ids (or \"input\")");
    for (const auto& in : spec["inputs"]) {
      if (!in.is_string()) arch_error("node '" + ids[i] + "': \"inputs\" must hold node ids (strings)");
      input_ids[i].push_back(in.get<std::string>());
    }
  }
  for (size_t i = 0; i < n; ++i)
    for (const std::string& in : input_ids[i])
      if (in != "input" && !by_id.count(in))
        arch_error("node '" + ids[i] + "' reads '" + in + "', which is not a node id (nor \"input\")");
  const std::string out_id = output.get<std::string>();
  if (!by_id.count(out_id)) arch_error("'output' is '" + out_id + "', which is not a node id");

  // Every node must lead to the output: walk back from it.
  std::vector<char> used(n, 0);
  std::vector<size_t> stack{by_id[out_id]};
  used[stack.back()] = 1;
  while (!stack.empty()) {
    const size_t i = stack.back();
    stack.pop_back();
    for (const std::string& in : input_ids[i])
      if (in != "input" && !used[by_id[in]]) {
        used[by_id[in]] = 1;
        stack.push_back(by_id[in]);
      }
  }
  for (size_t i = 0; i < n; ++i)
    if (!used[i]) arch_error("node '" + ids[i] + "' does not lead to the output '" + out_id + "'");

  // Topological order, keeping the given order where the edges allow
  // (Kahn's algorithm, always taking the first ready node).
  std::vector<int> waiting(n, 0);
  std::vector<std::vector<size_t>> readers(n);
  for (size_t i = 0; i < n; ++i)
    for (const std::string& in : input_ids[i])
      if (in != "input") {
        ++waiting[i];
        readers[by_id[in]].push_back(i);
      }
  std::set<size_t> ready;
  for (size_t i = 0; i < n; ++i)
    if (waiting[i] == 0) ready.insert(i);
  std::vector<size_t> order;
  while (!ready.empty()) {
    const size_t i = *ready.begin();
    ready.erase(ready.begin());
    order.push_back(i);
    for (size_t r : readers[i])
      if (--waiting[r] == 0) ready.insert(r);
  }
  if (order.size() != n) {
    std::string cycle;
    for (size_t i = 0; i < n; ++i)
      if (waiting[i] > 0) cycle += (cycle.empty() ? "'" : ", '") + ids[i] + "'";
    arch_error("the graph has a cycle through nodes " + cycle);
  }
  // Every node leads to the output, so the output is ready last: order.back().
  std::vector<int> position(n);
  for (size_t k = 0; k < n; ++k) position[order[k]] = static_cast<int>(k);
  for (size_t k = 0; k < n; ++k) {
    const size_t i = order[k];
    json spec = specs[i];
    spec.erase("id");
    spec.erase("inputs");
    const std::string type = spec.contains("type") && spec["type"].is_string() ? spec["type"].get<std::string>() : "";
    Node node;
    node.id = ids[i];
    for (const std::string& in : input_ids[i]) {
      node.inputs.push_back(in == "input" ? -1 : position[by_id[in]]);
      node.input_shapes.push_back(node.inputs.back() < 0 ? batch_input_shape(1)
                                                         : nodes_[static_cast<size_t>(node.inputs.back())].output_shape);
    }
    const std::string where = "node '" + node.id + "'";
    try {
      if (auto merge = make_merge(type)) {
        for (const auto& [key, value] : spec.items())
          if (key != "type") arch_error(where + " (" + type + "): unexpected key '" + key + "'");
        node.merge = merge.get();
        node.layer = std::move(merge);
        node.output_shape = node.merge->output_shape(node.input_shapes);
      } else {
        if (node.inputs.size() != 1)
          arch_error(where + " (" + (type.empty() ? "?" : type) + ") takes one input, got " +
                     std::to_string(node.inputs.size()));
        try {
          node.layer = make_layer(spec, node.input_shapes[0], k);
        } catch (const ModelFileError& e) {
          // make_layer names the layer by index; name the node instead.
          std::string detail = e.detail();
          const std::string prefix = "layer " + std::to_string(k);
          if (detail.rfind(prefix, 0) == 0) detail = where + detail.substr(prefix.size());
          throw ModelFileError(e.kind(), detail);
        }
        node.output_shape = node.layer->output_shape(node.input_shapes[0]);
      }
    } catch (const ModelFileError&) {
      throw;
    } catch (const Error& e) {
      arch_error(where + " (" + type + "): " + e.what());
    }
    nodes_.push_back(std::move(node));
  }
}

void Model::finish() {
  const size_t n = nodes_.size();
  for (Node& node : nodes_) node.readers = 0;
  for (const Node& node : nodes_)
    for (int in : node.inputs)
      if (in >= 0) ++nodes_[static_cast<size_t>(in)].readers;
  // Node i is a cut when, without it, no path leads from the input to the
  // output: a forward sweep of what the input reaches, skipping node i.
  for (size_t cut = 0; cut < n; ++cut) {
    std::vector<char> reached(n, 0);
    for (size_t i = 0; i < n; ++i) {
      if (i == cut) continue;
      for (int in : nodes_[i].inputs)
        if (in < 0 || reached[static_cast<size_t>(in)]) reached[i] = 1;
    }
    nodes_[cut].cut = !reached[n - 1];
  }
  const Shape& shape = nodes_.back().output_shape;
  if (!classes_.empty() && (shape.size() != 2 || shape[1] != static_cast<int64_t>(classes_.size())))
    arch_error("the model has " + shape_to_string(shape) + " outputs but " +
               std::to_string(classes_.size()) + " class names");
}

json Model::architecture() const {
  json arch = {{"name", name_}, {"input", input_shape_}};
  if (chain_) {
    json layers = json::array();
    for (const auto& node : nodes_) layers.push_back(node.layer->to_json());
    arch["layers"] = layers;
  } else {
    json nodes = json::array();
    for (const auto& node : nodes_) {
      json j = node.layer->to_json();
      j["id"] = node.id;
      j["inputs"] = json::array();
      for (int in : node.inputs) j["inputs"].push_back(in < 0 ? std::string("input") : nodes_[static_cast<size_t>(in)].id);
      nodes.push_back(j);
    }
    arch["nodes"] = nodes;
    arch["output"] = nodes_.back().id;
  }
  if (!classes_.empty()) arch["classes"] = classes_;
  if (tabular_) arch["tabular"] = tabular_->to_json();
  return arch;
}

void Model::set_tabular(TabularInfo info) {
  if (input_shape_.size() != 1) throw Error("tabular information needs a model with flat input [features]");
  tabular_ = TabularInfo::from_json(info.to_json(), input_shape_[0]);
}

Shape Model::batch_input_shape(int64_t batch) const {
  Shape s{batch};
  s.insert(s.end(), input_shape_.begin(), input_shape_.end());
  return s;
}

int64_t Model::num_outputs() const {
  const Shape& out = nodes_.back().output_shape;
  return shape_numel(out) / out[0];
}

size_t Model::find_node(const std::string& key) const {
  for (size_t i = 0; i < nodes_.size(); ++i)
    if (nodes_[i].id == key) return i;
  std::string known;
  for (size_t i = 0; i < nodes_.size() && i < 40; ++i) known += (i ? ", " : "") + nodes_[i].id;
  if (nodes_.size() > 40) known += ", ...";
  const std::string range = "the model has " + std::to_string(nodes_.size()) + " nodes (0.." +
                            std::to_string(nodes_.size() - 1) + "; ids " + known + "; see igscope info)";
  if (!key.empty() && key.size() < 10 && key.find_first_not_of("0123456789") == std::string::npos) {
    const size_t i = std::stoul(key);
    if (i < nodes_.size()) return i;
    throw Error("node " + key + " is out of range: " + range);
  }
  throw Error("no node '" + key + "': " + range);
}

void Model::check_node(size_t i) const {
  if (i >= nodes_.size())
    throw Error("layer " + std::to_string(i) + " is out of range: the model has " + std::to_string(nodes_.size()) +
                " layers (0.." + std::to_string(nodes_.size() - 1) + ")");
}

Tensor Model::forward(const Tensor& x, Backend& backend, Mode mode) {
  check_shape(x, batch_input_shape(x.rank() ? x.dim(0) : 0), "model input");
  const size_t n = nodes_.size();
  std::vector<Tensor> out(n);
  std::vector<int> left(n);
  for (size_t i = 0; i < n; ++i) left[i] = nodes_[i].readers;
  // A node's input: moved from the producer at its last reader, else copied.
  auto take = [&](int j) -> Tensor {
    if (j < 0) return x;
    const size_t k = static_cast<size_t>(j);
    return --left[k] == 0 ? std::move(out[k]) : Tensor(out[k]);
  };
  for (size_t i = 0; i < n; ++i) {
    Node& nd = nodes_[i];
    if (nd.merge) {
      std::vector<Tensor> ins;
      for (int j : nd.inputs) ins.push_back(take(j));
      out[i] = nd.merge->forward(std::move(ins), backend, mode);
    } else {
      out[i] = nd.layer->forward(take(nd.inputs[0]), backend, mode);
    }
  }
  return std::move(out[n - 1]);
}

namespace {
void add_into(Tensor& acc, bool& has, Tensor g) {
  if (!has) {
    acc = std::move(g);
    has = true;
    return;
  }
  if (acc.shape() != g.shape())
    throw Error("gradient shapes disagree where a node feeds several: " + shape_to_string(acc.shape()) + " and " +
                shape_to_string(g.shape()));
  float* a = acc.data();
  const float* b = g.data();
  for (int64_t i = 0; i < acc.size(); ++i) a[i] += b[i];
}
}  // namespace

void Model::backward_nodes(std::vector<Tensor>& grads, std::vector<char>& has, size_t hi, size_t lo, Backend& backend,
                           bool accumulate_params, Tensor& gx, bool& has_gx) {
  for (size_t i = hi + 1; i-- > lo;) {
    if (!has[i]) continue;
    Node& nd = nodes_[i];
    Tensor g = std::move(grads[i]);
    has[i] = 0;
    if (accumulate_params) nd.layer->backward_params(g, backend);
    std::vector<Tensor> ins;
    if (nd.merge) {
      ins = nd.merge->backward_inputs(std::move(g), backend);
    } else {
      ins.push_back(nd.layer->backward_input(std::move(g), backend));
    }
    for (size_t k = 0; k < nd.inputs.size(); ++k) {
      const int j = nd.inputs[k];
      if (j < 0) {
        add_into(gx, has_gx, std::move(ins[k]));
      } else {
        bool h = has[static_cast<size_t>(j)] != 0;
        add_into(grads[static_cast<size_t>(j)], h, std::move(ins[k]));
        has[static_cast<size_t>(j)] = 1;
      }
    }
  }
}

Tensor Model::backward(const Tensor& dout, Backend& backend, bool accumulate_params) {
  const size_t n = nodes_.size();
  std::vector<Tensor> grads(n);
  std::vector<char> has(n, 0);
  grads[n - 1] = dout;
  has[n - 1] = 1;
  Tensor gx;
  bool has_gx = false;
  backward_nodes(grads, has, n - 1, 0, backend, accumulate_params, gx, has_gx);
  return gx;
}

Tensor Model::backward_to(const Tensor& dout, Backend& backend, size_t node) {
  check_node(node);
  const size_t n = nodes_.size();
  if (node == n - 1) return dout;
  std::vector<Tensor> grads(n);
  std::vector<char> has(n, 0);
  grads[n - 1] = dout;
  has[n - 1] = 1;
  Tensor gx;
  bool has_gx = false;
  backward_nodes(grads, has, n - 1, node + 1, backend, false, gx, has_gx);
  if (!has[node]) throw Error("node " + nodes_[node].id + " received no gradient");
  return std::move(grads[node]);
}

Tensor Model::backward_from(const Tensor& dnode, Backend& backend, size_t node) {
  check_node(node);
  std::vector<Tensor> grads(nodes_.size());
  std::vector<char> has(nodes_.size(), 0);
  grads[node] = dnode;
  has[node] = 1;
  Tensor gx;
  bool has_gx = false;
  backward_nodes(grads, has, node, 0, backend, false, gx, has_gx);
  return gx;
}

Tensor Model::tangent_to(const Tensor& din, Backend& backend, size_t node) {
  check_node(node);
  // Only node's ancestors (and node itself) matter; count their readers among them.
  std::vector<char> needed(node + 1, 0);
  needed[node] = 1;
  for (size_t i = node + 1; i-- > 0;)
    if (needed[i])
      for (int j : nodes_[i].inputs)
        if (j >= 0) needed[static_cast<size_t>(j)] = 1;
  std::vector<int> left(node + 1, 0);
  for (size_t i = 0; i <= node; ++i)
    if (needed[i])
      for (int j : nodes_[i].inputs)
        if (j >= 0) ++left[static_cast<size_t>(j)];
  std::vector<Tensor> t(node + 1);
  for (size_t i = 0; i <= node; ++i) {
    if (!needed[i]) continue;
    Node& nd = nodes_[i];
    if (nd.merge) {
      std::vector<const Tensor*> ins;
      for (int j : nd.inputs) ins.push_back(j < 0 ? &din : &t[static_cast<size_t>(j)]);
      t[i] = nd.merge->forward_tangent(ins, backend);
    } else {
      const int j = nd.inputs[0];
      t[i] = nd.layer->forward_tangent(j < 0 ? din : t[static_cast<size_t>(j)], backend);
    }
    for (int j : nd.inputs)
      if (j >= 0 && --left[static_cast<size_t>(j)] == 0) t[static_cast<size_t>(j)] = Tensor();
  }
  return std::move(t[node]);
}

Shape Model::layer_output_shape(size_t i) const {
  check_node(i);
  return Shape(nodes_[i].output_shape.begin() + 1, nodes_[i].output_shape.end());
}

std::vector<Model::NamedParameter> Model::named_parameters() {
  std::vector<NamedParameter> out;
  for (auto& node : nodes_)
    for (auto& p : node.layer->parameters()) out.push_back({node.id + "." + p.suffix, &p});
  return out;
}

int64_t Model::parameter_count() const {
  int64_t n = 0;
  for (const auto& node : nodes_)
    for (const auto& p : node.layer->parameters())
      if (p.trainable) n += p.value.size();  // buffers (running statistics) are not parameters
  return n;
}

std::vector<Model::LayerCost> Model::layer_costs() const {
  std::vector<LayerCost> out;
  for (const auto& node : nodes_) {
    int64_t params = 0;
    for (const auto& p : node.layer->parameters())
      if (p.trainable) params += p.value.size();
    Shape per_sample(node.output_shape.begin() + 1, node.output_shape.end());
    std::vector<std::string> inputs;
    for (int in : node.inputs) inputs.push_back(in < 0 ? std::string("input") : nodes_[static_cast<size_t>(in)].id);
    const int64_t macs =
        node.merge ? node.merge->multiply_adds(node.input_shapes) : node.layer->multiply_adds(node.input_shapes[0]);
    out.push_back({node.id, inputs, describe(*node.layer), per_sample, params, macs});
  }
  return out;
}

int64_t Model::multiply_adds() const {
  int64_t n = 0;
  for (const auto& c : layer_costs()) n += c.multiply_adds;
  return n;
}

void Model::init_he(uint64_t seed) {
  Rng rng(seed);
  for (auto& node : nodes_) {
    Layer* layer = node.layer.get();
    if (auto* bn = dynamic_cast<BatchNorm*>(layer)) {  // as PyTorch: the identity map
      bn->reset_parameters();
      continue;
    }
    if (layer->initialise(rng)) continue;
    for (auto& p : layer->parameters()) {
      Tensor& w = layer->parameters().front().value;  // the weight: [out, fan_in...]
      const double fan_in = static_cast<double>(w.size() / w.dim(0));
      if (p.suffix == "weight") {
        const double std = std::sqrt(2.0 / fan_in);
        for (int64_t i = 0; i < p.value.size(); ++i) p.value[i] = static_cast<float>(std * rng.normal());
      } else {
        const double bound = 1.0 / std::sqrt(fan_in);
        for (int64_t i = 0; i < p.value.size(); ++i) p.value[i] = static_cast<float>(rng.uniform(-bound, bound));
      }
    }
  }
}

void Model::zero_grad() {
  for (auto& node : nodes_)
    for (auto& p : node.layer->parameters()) p.grad.fill(0.0f);
}

void Model::seed_dropout(uint64_t seed) {
  for (size_t i = 0; i < nodes_.size(); ++i)
    if (auto* d = dynamic_cast<Dropout*>(nodes_[i].layer.get())) d->seed(seed * 1000003ull + i);
}

Model load_model_bytes(const uint8_t* bytes, size_t size) {
  SafetensorsContents contents = parse_safetensors(bytes, size);
  auto it = contents.metadata.find("architecture");
  if (it == contents.metadata.end())
    throw ModelFileError(K::NoArchitecture, "the header's __metadata__ has no \"architecture\" entry");
  json arch;
  try {
    arch = json::parse(it->second);
  } catch (const json::exception& e) {
    throw ModelFileError(K::Architecture, std::string("the architecture is not valid JSON: ") + e.what());
  }
  Model model(arch);
  std::set<std::string> expected;
  for (auto& np : model.named_parameters()) {
    expected.insert(np.name);
    auto t = contents.tensors.find(np.name);
    if (t == contents.tensors.end())
      throw ModelFileError(K::MissingTensor, "the architecture needs tensor '" + np.name + "' of shape " +
                                                 shape_to_string(np.param->value.shape()) + ", not in the file");
    const bool stored_i64 = contents.int64_tensors.count(np.name) > 0;
    if (stored_i64 != np.param->int64)
      throw ModelFileError(K::Dtype, "tensor '" + np.name + "' has dtype " + (stored_i64 ? "I64" : "F32") +
                                         " but must be " + (np.param->int64 ? "I64" : "F32") +
                                         " (I64 is read only for batchnorm's num_batches_tracked)");
    if (t->second.shape() != np.param->value.shape())
      throw ModelFileError(K::ShapeMismatch, "tensor '" + np.name + "' has shape " +
                                                 shape_to_string(t->second.shape()) + " but the architecture needs " +
                                                 shape_to_string(np.param->value.shape()));
    for (int64_t i = 0; i < t->second.size(); ++i)
      if (!std::isfinite(t->second[i]))
        throw ModelFileError(K::NonFinite, "tensor '" + np.name + "' holds a non-finite value (" +
                                               std::to_string(t->second[i]) + ") at flat index " +
                                               std::to_string(i));
    np.param->value = std::move(t->second);
  }
  for (const auto& entry : contents.tensors)
    if (!expected.count(entry.first) && contents.int64_tensors.count(entry.first))
      throw ModelFileError(K::Dtype, "tensor '" + entry.first +
                                         "' has dtype I64, which igscope reads only for batchnorm's num_batches_tracked");
  for (const auto& entry : contents.tensors)
    if (!expected.count(entry.first))
      throw ModelFileError(K::UnexpectedTensor,
                           "tensor '" + entry.first + "' is not a parameter of the architecture");
  return model;
}

Shape node_output_shape(const json& spec, const std::vector<Shape>& inputs) {
  if (!spec.is_object() || !spec.contains("type") || !spec["type"].is_string())
    arch_error("a node needs a \"type\" string");
  const std::string type = spec["type"].get<std::string>();
  if (auto merge = make_merge(type)) return merge->output_shape(inputs);
  if (inputs.size() != 1) arch_error(type + " takes one input, got " + std::to_string(inputs.size()));
  return make_layer(spec, inputs[0], 0)->output_shape(inputs[0]);
}

Model load_model(const std::string& path) {
  const std::vector<uint8_t> bytes = read_file_bytes(path);
  try {
    return load_model_bytes(bytes.data(), bytes.size());
  } catch (const ModelFileError& e) {
    throw ModelFileError(e.kind(), "'" + path + "': " + e.detail());
  }
}

std::vector<uint8_t> model_to_bytes(Model& model) {
  std::vector<std::pair<std::string, const Tensor*>> tensors;
  std::set<std::string> int64_names;
  for (auto& np : model.named_parameters()) {
    tensors.emplace_back(np.name, &np.param->value);
    if (np.param->int64) int64_names.insert(np.name);
  }
  return serialize_safetensors(tensors, {{"format", "pt"}, {"architecture", model.architecture().dump()}},
                               int64_names);
}

void save_model(Model& model, const std::string& path) { write_file_bytes(path, model_to_bytes(model)); }

}  // namespace igscope
