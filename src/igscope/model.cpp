#include "igscope/model.h"

#include <cmath>
#include <set>

#include "igscope/error.h"
#include "igscope/layers/activations.h"
#include "igscope/layers/batchnorm.h"
#include "igscope/layers/conv2d.h"
#include "igscope/layers/dense.h"
#include "igscope/layers/dropout.h"
#include "igscope/layers/flatten.h"
#include "igscope/layers/maxpool2d.h"
#include "igscope/layers/relu.h"
#include "igscope/layers/smelu.h"
#include "igscope/layers/softmax.h"
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
    if (type == "maxpool2d") {
      if (!image) arch_error(where + " (maxpool2d) needs image input, got " + shape_to_string(in));
      const auto k = int_pair(spec, "kernel", {-1, -1}, where);
      const auto s = int_pair(spec, "stride", k, where);
      return std::make_unique<MaxPool2d>(k.first, k.second, s.first, s.second);
    }
    if (type == "dense") {
      if (in.size() != 2) arch_error(where + " (dense) needs flat input; add a flatten layer before it");
      if (!spec.contains("out_features")) arch_error(where + " (dense): missing 'out_features'");
      return std::make_unique<Dense>(in[1], positive_int(spec["out_features"], where + " out_features"));
    }
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
             "' (known: conv2d, maxpool2d, dense, relu, smelu, sigmoid, tanh, gelu, silu, leaky_relu, relu6, "
             "hardswish, hardsigmoid, batchnorm, dropout, flatten, softmax, log_softmax)");
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
  if (!arch.contains("layers") || !arch["layers"].is_array() || arch["layers"].empty())
    arch_error("'layers' must be a non-empty array");
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

  Shape shape = batch_input_shape(1);
  for (size_t i = 0; i < arch["layers"].size(); ++i) {
    auto layer = make_layer(arch["layers"][i], shape, i);
    shapes_.push_back(shape);
    try {
      shape = layer->output_shape(shape);
    } catch (const Error& e) {
      arch_error("layer " + std::to_string(i) + " (" + layer->type() + "): " + e.what());
    }
    layers_.push_back(std::move(layer));
  }
  shapes_.push_back(shape);
  if (!classes_.empty() && (shape.size() != 2 || shape[1] != static_cast<int64_t>(classes_.size())))
    arch_error("the model has " + shape_to_string(shape) + " outputs but " +
               std::to_string(classes_.size()) + " class names");
}

json Model::architecture() const {
  json layers = json::array();
  for (const auto& l : layers_) layers.push_back(l->to_json());
  json arch = {{"name", name_}, {"input", input_shape_}, {"layers", layers}};
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
  const Shape& out = shapes_.back();
  return shape_numel(out) / out[0];
}

Tensor Model::forward(const Tensor& x, Backend& backend, Mode mode) {
  check_shape(x, batch_input_shape(x.rank() ? x.dim(0) : 0), "model input");
  Tensor h = layers_.front()->forward(x, backend, mode);
  for (size_t i = 1; i < layers_.size(); ++i) h = layers_[i]->forward(std::move(h), backend, mode);
  return h;
}

Tensor Model::backward(const Tensor& dout, Backend& backend, bool accumulate_params) {
  Tensor g = dout;
  for (size_t i = layers_.size(); i-- > 0;) {
    if (accumulate_params) layers_[i]->backward_params(g, backend);
    g = layers_[i]->backward_input(std::move(g), backend);
  }
  return g;
}

namespace {
void check_slice(size_t begin, size_t end, size_t layers) {
  if (begin >= end || end > layers)
    throw Error("layers [" + std::to_string(begin) + ", " + std::to_string(end) + ") are not a slice of the model's " +
                std::to_string(layers) + " layers");
}
}  // namespace

Tensor Model::forward_layers(const Tensor& x, Backend& backend, size_t begin, size_t end, Mode mode) {
  check_slice(begin, end, layers_.size());
  Tensor h = layers_[begin]->forward(x, backend, mode);
  for (size_t i = begin + 1; i < end; ++i) h = layers_[i]->forward(std::move(h), backend, mode);
  return h;
}

Tensor Model::backward_layers(const Tensor& dout, Backend& backend, size_t begin, size_t end) {
  check_slice(begin, end, layers_.size());
  Tensor g = dout;
  for (size_t i = end; i-- > begin;) g = layers_[i]->backward_input(std::move(g), backend);
  return g;
}

Tensor Model::tangent_layers(const Tensor& din, Backend& backend, size_t begin, size_t end) {
  check_slice(begin, end, layers_.size());
  Tensor t = din;
  for (size_t i = begin; i < end; ++i) t = layers_[i]->forward_tangent(t, backend);
  return t;
}

Shape Model::layer_output_shape(size_t i) const {
  if (i >= layers_.size())
    throw Error("layer " + std::to_string(i) + " is out of range: the model has " + std::to_string(layers_.size()) +
                " layers (0.." + std::to_string(layers_.size() - 1) + ")");
  return Shape(shapes_[i + 1].begin() + 1, shapes_[i + 1].end());
}

std::vector<Model::NamedParameter> Model::named_parameters() {
  std::vector<NamedParameter> out;
  for (size_t i = 0; i < layers_.size(); ++i)
    for (auto& p : layers_[i]->parameters()) out.push_back({std::to_string(i) + "." + p.suffix, &p});
  return out;
}

int64_t Model::parameter_count() const {
  int64_t n = 0;
  for (const auto& l : layers_)
    for (const auto& p : l->parameters())
      if (p.trainable) n += p.value.size();  // buffers (running statistics) are not parameters
  return n;
}

std::vector<Model::LayerCost> Model::layer_costs() const {
  std::vector<LayerCost> out;
  for (size_t i = 0; i < layers_.size(); ++i) {
    int64_t params = 0;
    for (const auto& p : layers_[i]->parameters())
      if (p.trainable) params += p.value.size();
    Shape per_sample(shapes_[i + 1].begin() + 1, shapes_[i + 1].end());
    out.push_back({describe(*layers_[i]), per_sample, params, layers_[i]->multiply_adds(shapes_[i])});
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
  for (auto& layer : layers_) {
    if (auto* bn = dynamic_cast<BatchNorm*>(layer.get())) {  // as PyTorch: the identity map
      bn->reset_parameters();
      continue;
    }
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
  for (auto& l : layers_)
    for (auto& p : l->parameters()) p.grad.fill(0.0f);
}

void Model::seed_dropout(uint64_t seed) {
  for (size_t i = 0; i < layers_.size(); ++i)
    if (auto* d = dynamic_cast<Dropout*>(layers_[i].get())) d->seed(seed * 1000003ull + i);
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
