#include "igscope/import/onnx_import.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cstddef>
#include <cmath>
#include <deque>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <cstdlib>

#include "igscope/import/onnx_proto.h"
#include "igscope/import/protobuf_wire.h"
#include "igscope/safetensors.h"

namespace igscope {

using nlohmann::json;

const std::vector<std::string>& supported_onnx_operators() {
  static const std::vector<std::string> ops = {
      "Conv",        "BatchNormalization", "Relu",      "LeakyRelu", "Clip",      "Sigmoid",           "Tanh",
      "HardSigmoid", "HardSwish",          "Gelu",      "Erf",       "Mul",       "Add",               "Sub",
      "Div",         "Concat",             "MaxPool",   "AveragePool", "GlobalAveragePool", "Pad",   "Flatten",
      "Reshape",     "Gemm",               "MatMul",    "Dropout",   "Identity",  "Constant",          "Softmax",
      "LogSoftmax",  "Shape",              "Gather",    "Unsqueeze", "Squeeze",   "Cast"};
  return ops;
}

namespace {

constexpr int64_t kMinOpset = 11, kMaxOpset = 18;

std::string supported_list() {
  std::string s;
  for (const std::string& op : supported_onnx_operators()) s += (s.empty() ? "" : ", ") + op;
  return s + " (Erf only inside the pattern PyTorch exports for GELU; Clip as ReLU or ReLU6; Mul, Add, Sub and Div "
             "by per-channel constants, Add and Mul of two tensors; Reshape only to [N, -1]; Softmax last; Shape, Gather, "
             "Unsqueeze, Squeeze and Cast only to compute a Reshape's target, as x.view(x.size(0), -1) exports)";
}

// A value of the ONNX graph: a constant (an initializer or a Constant node's
// tensor) or a tensor computed by an igscope node.
struct Value {
  bool constant = false;
  const onnx::TensorProto* tensor = nullptr;  // constant
  std::string node;                           // computed: igscope node id, "input" for the model's input
  Shape shape;                                // computed: igscope shape, batch 1: [1, H, W, C] or [1, F]
  // A computed tensor's shape, or entries of it (Shape, Gather, Unsqueeze,
  // Concat): what `x.view(x.size(0), -1)` exports to feed a Reshape. kBatch
  // stands for the batch size; `scalar` for a rank-0 value.
  bool shape_value = false;
  bool scalar = false;
  std::vector<int64_t> entries;
};

constexpr int64_t kBatch = std::numeric_limits<int64_t>::min();

bool valid_id_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.'; }

// An igscope node id from an ONNX name: PyTorch module paths stay as they are
// ("layer1.0.conv1"); anything else becomes [A-Za-z0-9_.] with single dots.
std::string sanitize(const std::string& name) {
  std::string s;
  for (char c : name) {
    const char d = valid_id_char(c) ? c : '_';
    if (d == '.' && (s.empty() || s.back() == '.')) continue;
    if (d == '_' && !s.empty() && s.back() == '_') continue;
    s += d;
  }
  while (!s.empty() && (s.front() == '_' || s.front() == '.')) s.erase(s.begin());
  while (!s.empty() && (s.back() == '_' || s.back() == '.')) s.pop_back();
  if (s.size() > 120) s.resize(120);
  while (!s.empty() && s.back() == '.') s.pop_back();
  return s;
}

class Importer {
 public:
  Importer(const onnx::ModelProto& model, const OnnxImportOptions& options) : m_(model), o_(options) {}
  Model run();

 private:
  using Node = onnx::Node;
  [[noreturn]] void fail(const Node& n, const std::string& message) const {
    throw Error("ONNX node '" + n.name + "' (" + n.op_type + "): " + message);
  }
  void check_model();
  void define(const std::string& name, Value v);
  void define_constants();
  void define_input();
  void find_patterns();
  void convert(size_t index);
  void finish_output();

  // Inputs of node n.
  bool has_input(const Node& n, size_t k) const { return k < n.inputs.size() && !n.inputs[k].empty(); }
  const Value& input(const Node& n, size_t k) const;
  // The value `name` as node n reads it; a dangling or out-of-order name fails on n.
  const Value& value_named(const Node& n, const std::string& name) const;
  const Value& computed(const Node& n, size_t k) const;
  const onnx::TensorProto& constant(const Node& n, size_t k) const;
  std::optional<double> scalar(const std::string& name) const;
  // Outputs beyond the first must be unread (Dropout's mask, MaxPool's indices).
  void check_extra_outputs_unused(const Node& n) const;
  void check_attributes(const Node& n, const std::set<std::string>& known) const;
  int64_t attr_int(const Node& n, const char* name, int64_t fallback) const;
  float attr_float(const Node& n, const char* name, float fallback) const;
  std::string attr_string(const Node& n, const char* name, const std::string& fallback) const;
  std::vector<int64_t> attr_ints(const Node& n, const char* name, std::vector<int64_t> fallback) const;

  std::string unique_id(const std::string& hint);
  std::string hint(const Node& n, const std::string& weight_name = "") const;
  // Adds an igscope node reading the given ids and defines the ONNX output
  // `out` as its result.
  std::string emit(json spec, const std::vector<std::string>& inputs, const std::string& id_hint);
  void emit_to(const Node& n, json spec, const std::vector<std::string>& inputs, const std::string& out,
               const std::string& id_hint);
  void put_tensor(const std::string& name, Shape shape, std::vector<float> values, const std::string& origin);

  // The ops.
  void conv(const Node& n);
  void batchnorm(const Node& n);
  void clip(const Node& n);
  void arithmetic(const Node& n);
  void concat(const Node& n);
  void pool(const Node& n, bool max);
  void pad(const Node& n);
  void flatten(const Node& n);
  void reshape(const Node& n);
  void gemm(const Node& n);
  void matmul(const Node& n);
  void shape_op(const Node& n);
  // The entries of a shape value or an int64 constant (empty optional otherwise).
  std::optional<std::vector<int64_t>> shape_entries(const std::string& name) const;
  std::optional<std::vector<double>> per_channel(const onnx::TensorProto& c, const Value& x) const;
  // Pads [top, left, bottom, right] of a Conv or pool from its attributes.
  std::array<int64_t, 4> window_pads(const Node& n, const Value& x, const std::vector<int64_t>& kernel,
                                     const std::vector<int64_t>& strides, const std::vector<int64_t>& dilations) const;

  const onnx::ModelProto& m_;
  const OnnxImportOptions& o_;
  int64_t opset_ = 0;
  std::map<std::string, Value> values_;
  std::map<std::string, size_t> producer_;             // value name -> index of the ONNX node producing it
  std::map<std::string, std::vector<size_t>> readers_;  // value name -> indices of the ONNX nodes reading it
  std::set<std::string> graph_outputs_;
  std::vector<char> skip_;                         // ONNX nodes folded into another
  std::map<size_t, std::string> gelu_;              // final Mul of a GELU pattern -> the pattern's input
  std::map<size_t, size_t> matmul_add_;             // MatMul -> the Add that carries its bias
  std::deque<onnx::TensorProto> owned_;             // tensors made here (Constant attributes, external data)
  std::string input_name_;
  Shape input_shape_;  // igscope, without batch
  json nodes_ = json::array();
  std::map<std::string, Shape> shapes_;  // igscope node id -> output shape, batch 1
  std::set<std::string> ids_;
  std::map<std::string, Tensor> tensors_;
  std::map<std::string, std::string> origin_;  // igscope tensor name -> ONNX tensor name
  std::string output_id_;
};

void Importer::check_model() {
  if (!m_.has_graph) throw Error("ONNX model: the file has no graph (is it an ONNX model?)");
  bool found = false;
  for (const auto& [domain, version] : m_.opset_imports) {
    if (domain.empty() || domain == "ai.onnx") {
      found = true;
      opset_ = version;
    }
  }
  if (!found) throw Error("ONNX model: it imports no default-domain opset (is it an ONNX model?)");
  if (opset_ < kMinOpset || opset_ > kMaxOpset)
    throw Error("ONNX model: opset " + std::to_string(opset_) + "; the importer reads opsets " +
                std::to_string(kMinOpset) + " to " + std::to_string(kMaxOpset) +
                " (re-export with, for example, torch.onnx.export(..., opset_version=17))");
  if (m_.graph.sparse_initializers) throw Error("ONNX model: sparse initializers are not supported");
}

void Importer::define(const std::string& name, Value v) {
  if (name.empty()) return;
  if (!values_.emplace(name, std::move(v)).second)
    throw Error("ONNX model: the value '" + name + "' is defined twice (a graph must assign each value once)");
}

void Importer::define_constants() {
  for (const onnx::TensorProto& t : m_.graph.initializers) {
    const onnx::TensorProto* p = &t;
    if (t.external) {
      if (!o_.read_external)
        throw Error("ONNX model: the tensor '" + t.name +
                    "' is stored in a side file (ONNX external data), which cannot be read here; convert the model "
                    "with `igscope import MODEL.onnx --out MODEL.safetensors` next to its data file, or export it "
                    "with the weights inside the .onnx file");
      std::string location;
      uint64_t offset = 0;
      int64_t length = -1;
      for (const auto& [key, value] : t.external_data) {
        try {
          if (key == "location") location = value;
          else if (key == "offset") offset = std::stoull(value);
          else if (key == "length") length = std::stoll(value);
        } catch (const std::exception&) {
          throw Error("ONNX tensor '" + t.name + "': bad external_data " + key + " '" + value + "'");
        }
      }
      if (location.empty()) throw Error("ONNX tensor '" + t.name + "': external data without a location");
      onnx::TensorProto copy = t;
      copy.external = false;
      copy.external_data.clear();
      copy.raw_data = o_.read_external(location, offset, length);
      owned_.push_back(std::move(copy));
      p = &owned_.back();
    }
    Value v;
    v.constant = true;
    v.tensor = p;
    define(t.name, v);
  }
  const auto& nodes = m_.graph.nodes;
  for (size_t i = 0; i < nodes.size(); ++i) {
    const Node& n = nodes[i];
    if (n.op_type != "Constant" || !(n.domain.empty() || n.domain == "ai.onnx")) continue;
    if (n.outputs.size() != 1 || !n.inputs.empty()) fail(n, "expected no inputs and one output");
    if (n.attributes.size() != 1) fail(n, "expected exactly one attribute (value, value_float, ...)");
    const onnx::Attribute& a = n.attributes[0];
    onnx::TensorProto t;
    if (a.name == "value" && a.t) {
      t = *a.t;
    } else if (a.name == "value_float" || a.name == "value_floats") {
      t.data_type = onnx::kFloat;
      t.float_data = a.name == "value_float" ? std::vector<float>{a.f} : a.floats;
      if (a.name == "value_floats") t.dims = {static_cast<int64_t>(a.floats.size())};
    } else if (a.name == "value_int" || a.name == "value_ints") {
      t.data_type = onnx::kInt64;
      t.int64_data = a.name == "value_int" ? std::vector<int64_t>{a.i} : a.ints;
      if (a.name == "value_ints") t.dims = {static_cast<int64_t>(a.ints.size())};
    } else {
      fail(n, "attribute '" + a.name + "' is not supported (value, value_float(s), value_int(s) are)");
    }
    if (t.external) fail(n, "a Constant with external data is not supported");
    t.name = n.outputs[0];
    owned_.push_back(std::move(t));
    Value v;
    v.constant = true;
    v.tensor = &owned_.back();
    define(n.outputs[0], v);
  }
}

void Importer::define_input() {
  std::vector<const onnx::ValueInfo*> inputs;
  for (const onnx::ValueInfo& v : m_.graph.inputs)
    if (!values_.count(v.name)) inputs.push_back(&v);
  if (inputs.size() != 1)
    throw Error("ONNX model: it has " + std::to_string(inputs.size()) +
                " inputs besides its weights; igscope explains models of one input");
  const onnx::ValueInfo& in = *inputs[0];
  input_name_ = in.name;
  if (!in.is_tensor || in.elem_type != onnx::kFloat)
    throw Error("ONNX model: its input '" + in.name + "' is not a float32 tensor (elem_type " +
                onnx::data_type_name(in.elem_type) + ")");
  std::string shape = "[";
  for (size_t i = 0; i < in.shape.size(); ++i)
    shape += (i ? ", " : "") + (in.shape[i].known ? std::to_string(in.shape[i].value)
                                                  : (in.shape[i].param.empty() ? "?" : in.shape[i].param));
  shape += "]";
  auto known = [&](size_t i) { return in.shape[i].known && in.shape[i].value > 0 && in.shape[i].value <= 65536; };
  if (in.has_shape && in.shape.size() == 4 && known(1) && known(2) && known(3)) {
    input_shape_ = {in.shape[2].value, in.shape[3].value, in.shape[1].value};
  } else if (in.has_shape && in.shape.size() == 2 && known(1)) {
    input_shape_ = {in.shape[1].value};
  } else {
    throw Error("ONNX model: its input '" + in.name + "' has shape " + (in.has_shape ? shape : "(none recorded)") +
                "; igscope takes an image [N, C, H, W] with known C, H and W, or features [N, F]");
  }
  Value v;
  v.node = "input";
  v.shape = {1};
  v.shape.insert(v.shape.end(), input_shape_.begin(), input_shape_.end());
  const int64_t c = input_shape_.back();
  const bool preprocess = o_.input_scale != 1.0 || !o_.mean.empty() || !o_.std.empty();
  if (preprocess) {
    auto fit = [&](const std::vector<double>& list, const char* what, double fallback) {
      if (list.empty()) return std::vector<double>{fallback};
      if (list.size() != 1 && static_cast<int64_t>(list.size()) != c)
        throw Error(std::string("import: the ") + what + " has " + std::to_string(list.size()) +
                    " values; the model's input has " +
                    (c == 1 ? std::string("1 channel (give one value)")
                            : std::to_string(c) + " channels (give 1 or " + std::to_string(c) + ")"));
      return list;
    };
    const std::vector<double> mean = fit(o_.mean, "mean", 0.0), sd = fit(o_.std, "std", 1.0);
    for (double s : sd)
      if (!(s > 0) || !std::isfinite(s)) throw Error("import: every std value must be positive and finite");
    for (double m : mean)
      if (!std::isfinite(m)) throw Error("import: every mean value must be finite");
    if (!(o_.input_scale > 0) || !std::isfinite(o_.input_scale)) throw Error("import: bad input range");
    const size_t k = std::max(mean.size(), sd.size());
    std::vector<double> scale(k), shift(k);
    for (size_t i = 0; i < k; ++i) {
      const double m = mean[mean.size() > 1 ? i : 0], s = sd[sd.size() > 1 ? i : 0];
      scale[i] = o_.input_scale / s;
      shift[i] = -m / s;
    }
    v.node = emit({{"type", "affine"}, {"scale", scale}, {"shift", shift}}, {"input"}, "preprocess");
    v.shape = shapes_.at(v.node);
  }
  define(in.name, v);
}

const Value& Importer::input(const Node& n, size_t k) const {
  if (!has_input(n, k)) fail(n, "input " + std::to_string(k) + " is missing");
  return value_named(n, n.inputs[k]);
}

const Value& Importer::value_named(const Node& n, const std::string& name) const {
  const auto it = values_.find(name);
  if (it != values_.end()) return it->second;
  const auto p = producer_.find(name);
  if (p != producer_.end())
    fail(n, "reads '" + name + "' before the node that produces it ('" + m_.graph.nodes[p->second].name +
                "'): the nodes are out of topological order, or the graph has a cycle");
  fail(n, "reads '" + name + "', which no node, initializer or graph input produces (a dangling input)");
}

const Value& Importer::computed(const Node& n, size_t k) const {
  const Value& v = input(n, k);
  if (v.shape_value)
    fail(n, "input " + std::to_string(k) + " ('" + n.inputs[k] +
                "') is a tensor's shape; shapes are supported only as a Reshape's target");
  if (v.constant)
    fail(n, "input " + std::to_string(k) + " ('" + n.inputs[k] +
                "') is a constant; the importer needs it computed from the model's input");
  return v;
}

const onnx::TensorProto& Importer::constant(const Node& n, size_t k) const {
  const Value& v = input(n, k);
  if (!v.constant) fail(n, "input " + std::to_string(k) + " ('" + n.inputs[k] + "') must be a constant (weights)");
  return *v.tensor;
}

std::optional<double> Importer::scalar(const std::string& name) const {
  const auto it = values_.find(name);
  if (it == values_.end() || !it->second.constant) return std::nullopt;
  const onnx::TensorProto& t = *it->second.tensor;
  if (t.element_count() != 1) return std::nullopt;
  return onnx::tensor_doubles(t)[0];
}

void Importer::check_extra_outputs_unused(const Node& n) const {
  for (size_t k = 1; k < n.outputs.size(); ++k)
    if (!n.outputs[k].empty() && (readers_.count(n.outputs[k]) || graph_outputs_.count(n.outputs[k])))
      fail(n, "its output " + std::to_string(k) + " ('" + n.outputs[k] + "') is used; only the first is supported");
}

void Importer::check_attributes(const Node& n, const std::set<std::string>& known) const {
  for (const onnx::Attribute& a : n.attributes)
    if (!known.count(a.name)) {
      std::string list;
      for (const std::string& k : known) list += (list.empty() ? "" : ", ") + k;
      fail(n, "attribute '" + a.name + "' is not supported" + (list.empty() ? "" : " (known: " + list + ")"));
    }
}

int64_t Importer::attr_int(const Node& n, const char* name, int64_t fallback) const {
  const onnx::Attribute* a = n.attribute(name);
  if (!a) return fallback;
  if (a->type != 2) fail(n, std::string("attribute '") + name + "' must be an integer");
  return a->i;
}

float Importer::attr_float(const Node& n, const char* name, float fallback) const {
  const onnx::Attribute* a = n.attribute(name);
  if (!a) return fallback;
  if (a->type != 1) fail(n, std::string("attribute '") + name + "' must be a float");
  return a->f;
}

std::string Importer::attr_string(const Node& n, const char* name, const std::string& fallback) const {
  const onnx::Attribute* a = n.attribute(name);
  if (!a) return fallback;
  if (a->type != 3) fail(n, std::string("attribute '") + name + "' must be a string");
  return a->s;
}

std::vector<int64_t> Importer::attr_ints(const Node& n, const char* name, std::vector<int64_t> fallback) const {
  const onnx::Attribute* a = n.attribute(name);
  if (!a) return fallback;
  if (a->type != 7) fail(n, std::string("attribute '") + name + "' must be a list of integers");
  return a->ints;
}

std::string Importer::unique_id(const std::string& hint_text) {
  std::string base = hint_text.empty() || hint_text == "input" ? "node" : hint_text;
  std::string id = base;
  for (int k = 2; ids_.count(id); ++k) id = base + "_" + std::to_string(k);
  ids_.insert(id);
  return id;
}

std::string Importer::hint(const Node& n, const std::string& weight_name) const {
  const std::string suffix = ".weight";
  if (weight_name.size() > suffix.size() && weight_name.compare(weight_name.size() - suffix.size(), suffix.size(), suffix) == 0) {
    const std::string path = weight_name.substr(0, weight_name.size() - suffix.size());
    if (sanitize(path) == path) return path;
  }
  std::string s = sanitize(n.name);
  if (s.empty()) {
    s = n.op_type;
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    s = sanitize(s);
  }
  return s;
}

std::string Importer::emit(json spec, const std::vector<std::string>& inputs, const std::string& id_hint) {
  std::vector<Shape> in_shapes;
  for (const std::string& id : inputs) {
    if (id == "input") {
      Shape s = {1};
      s.insert(s.end(), input_shape_.begin(), input_shape_.end());
      in_shapes.push_back(s);
    } else {
      in_shapes.push_back(shapes_.at(id));
    }
  }
  Shape out;
  try {
    out = node_output_shape(spec, in_shapes);
  } catch (const ModelFileError& e) {
    throw Error(e.detail());
  }
  const std::string id = unique_id(id_hint);
  spec["id"] = id;
  spec["inputs"] = inputs;
  nodes_.push_back(std::move(spec));
  shapes_[id] = out;
  return id;
}

void Importer::emit_to(const Node& /*n*/, json spec, const std::vector<std::string>& inputs, const std::string& out,
                       const std::string& id_hint) {
  Value v;
  v.node = emit(std::move(spec), inputs, id_hint);
  v.shape = shapes_.at(v.node);
  define(out, v);
}

void Importer::put_tensor(const std::string& name, Shape shape, std::vector<float> values, const std::string& origin) {
  for (float x : values)
    if (!std::isfinite(x))
      throw Error("ONNX tensor '" + origin + "' holds a NaN or an infinity; the model cannot be imported");
  Tensor t(shape);
  if (static_cast<size_t>(t.size()) != values.size())
    throw Error("ONNX tensor '" + origin + "': " + std::to_string(values.size()) + " values for shape " +
                shape_to_string(shape));
  std::copy(values.begin(), values.end(), t.data());
  tensors_[name] = std::move(t);
  origin_[name] = origin;
}

void Importer::find_patterns() {
  const auto& nodes = m_.graph.nodes;
  auto sole_reader = [&](const std::string& value) -> std::optional<size_t> {
    const auto it = readers_.find(value);
    if (it == readers_.end() || it->second.size() != 1 || graph_outputs_.count(value)) return std::nullopt;
    return it->second[0];
  };
  auto near = [](std::optional<double> v, double x) { return v && std::abs(*v - x) <= 1e-4 * std::abs(x); };
  // The other operand of a binary node, given one of them.
  auto other = [](const Node& n, const std::string& one) -> std::string {
    if (n.inputs.size() != 2) return "";
    return n.inputs[0] == one ? n.inputs[1] : n.inputs[1] == one ? n.inputs[0] : "";
  };
  for (size_t i = 0; i < nodes.size(); ++i) {
    const Node& e = nodes[i];
    // GELU (erf form): y = (x * (erf(x / sqrt(2)) + 1)) * 0.5.
    if (e.op_type == "Erf" && e.inputs.size() == 1 && e.outputs.size() == 1) {
      const auto p = producer_.find(e.inputs[0]);
      if (p == producer_.end()) continue;
      const Node& d = nodes[p->second];
      if (d.inputs.size() != 2 || d.outputs.size() != 1 || sole_reader(d.outputs[0]) != i) continue;
      std::string x;
      if (d.op_type == "Div" && near(scalar(d.inputs[1]), std::sqrt(2.0))) x = d.inputs[0];
      if (d.op_type == "Mul" && near(scalar(d.inputs[1]), std::sqrt(0.5))) x = d.inputs[0];
      if (d.op_type == "Mul" && near(scalar(d.inputs[0]), std::sqrt(0.5))) x = d.inputs[1];
      if (x.empty()) continue;
      const auto ai = sole_reader(e.outputs[0]);
      if (!ai || nodes[*ai].op_type != "Add" || nodes[*ai].outputs.size() != 1) continue;
      const Node& a = nodes[*ai];
      if (!near(scalar(other(a, e.outputs[0])), 1.0)) continue;
      const auto m1i = sole_reader(a.outputs[0]);
      if (!m1i || nodes[*m1i].op_type != "Mul" || other(nodes[*m1i], a.outputs[0]) != x) continue;
      const Node& m1 = nodes[*m1i];
      const auto m2i = sole_reader(m1.outputs[0]);
      if (!m2i || nodes[*m2i].op_type != "Mul" || !near(scalar(other(nodes[*m2i], m1.outputs[0])), 0.5)) continue;
      skip_[p->second] = skip_[i] = skip_[*ai] = skip_[*m1i] = 1;
      gelu_[*m2i] = x;
    }
    // MatMul by a weight matrix followed by the Add of a bias: one dense node.
    if (e.op_type == "MatMul" && e.outputs.size() == 1 && e.inputs.size() == 2) {
      const auto ai = sole_reader(e.outputs[0]);
      if (!ai || nodes[*ai].op_type != "Add" || nodes[*ai].outputs.size() != 1) continue;
      const std::string b = other(nodes[*ai], e.outputs[0]);
      const auto bv = values_.find(b);
      if (b.empty() || bv == values_.end() || !bv->second.constant) continue;
      matmul_add_[i] = *ai;
      skip_[*ai] = 1;
    }
  }
}

std::array<int64_t, 4> Importer::window_pads(const Node& n, const Value& x, const std::vector<int64_t>& kernel,
                                             const std::vector<int64_t>& strides,
                                             const std::vector<int64_t>& dilations) const {
  const std::string auto_pad = attr_string(n, "auto_pad", "NOTSET");
  std::vector<int64_t> pads = attr_ints(n, "pads", {0, 0, 0, 0});
  if (pads.size() != 4) fail(n, "'pads' must have 4 entries for a 2-D window");
  for (int64_t p : pads)
    if (p < 0) fail(n, "negative padding is not supported");
  if (auto_pad == "NOTSET") return {pads[0], pads[1], pads[2], pads[3]};
  if (auto_pad == "VALID") return {0, 0, 0, 0};
  if (auto_pad != "SAME_UPPER" && auto_pad != "SAME_LOWER") fail(n, "unknown auto_pad '" + auto_pad + "'");
  std::array<int64_t, 4> out{};
  const int64_t size[2] = {x.shape[1], x.shape[2]};
  for (int a = 0; a < 2; ++a) {
    const int64_t o = (size[a] + strides[a] - 1) / strides[a];
    const int64_t total = std::max<int64_t>(0, (o - 1) * strides[a] + (kernel[a] - 1) * dilations[a] + 1 - size[a]);
    const int64_t small = total / 2, large = total - small;
    out[a] = auto_pad == "SAME_UPPER" ? small : large;
    out[a + 2] = auto_pad == "SAME_UPPER" ? large : small;
  }
  return out;
}

void Importer::conv(const Node& n) {
  check_attributes(n, {"auto_pad", "dilations", "group", "kernel_shape", "pads", "strides"});
  const Value& x = computed(n, 0);
  if (x.shape.size() != 4) fail(n, "needs an image input [N, C, H, W]");
  const onnx::TensorProto& w = constant(n, 1);
  if (w.dims.size() != 4) fail(n, "only 2-D convolutions are supported (weight of rank " + std::to_string(w.dims.size()) + ")");
  const int64_t m = w.dims[0], group = attr_int(n, "group", 1);
  const std::vector<int64_t> kernel = {w.dims[2], w.dims[3]};
  if (attr_ints(n, "kernel_shape", kernel) != kernel) fail(n, "kernel_shape differs from the weight's shape");
  const auto strides = attr_ints(n, "strides", {1, 1}), dilations = attr_ints(n, "dilations", {1, 1});
  if (strides.size() != 2 || dilations.size() != 2) fail(n, "strides and dilations need 2 entries");
  if (group < 1 || x.shape[3] != w.dims[1] * group)
    fail(n, "the weight takes " + std::to_string(w.dims[1]) + " x " + std::to_string(group) +
                " input channels, the input has " + std::to_string(x.shape[3]));
  std::array<int64_t, 4> p = window_pads(n, x, kernel, strides, dilations);
  const std::string id_hint = hint(n, w.name);
  std::string from = x.node;
  if (p[0] != p[2] || p[1] != p[3]) {
    from = emit({{"type", "pad2d"}, {"padding", {p[0], p[1], p[2], p[3]}}, {"value", 0.0}}, {from}, id_hint + "_pad");
    p = {0, 0, 0, 0};
  }
  json spec = {{"type", "conv2d"},       {"out_channels", m},           {"kernel", kernel},
               {"stride", strides},      {"padding", {p[0], p[1]}}};
  if (group != 1) spec["groups"] = group;
  if (dilations != std::vector<int64_t>{1, 1}) spec["dilation"] = dilations;
  Value v;
  v.node = emit(spec, {from}, id_hint);
  v.shape = shapes_.at(v.node);
  put_tensor(v.node + ".weight", {m, w.dims[1], kernel[0], kernel[1]}, onnx::tensor_floats(w), w.name);
  if (has_input(n, 2)) {
    const onnx::TensorProto& b = constant(n, 2);
    if (b.element_count() != m) fail(n, "the bias has " + std::to_string(b.element_count()) + " values for " + std::to_string(m) + " channels");
    put_tensor(v.node + ".bias", {m}, onnx::tensor_floats(b), b.name);
  } else {
    put_tensor(v.node + ".bias", {m}, std::vector<float>(static_cast<size_t>(m), 0.0f), w.name);
  }
  define(n.outputs.at(0), v);
}

void Importer::batchnorm(const Node& n) {
  check_attributes(n, {"epsilon", "momentum", "training_mode", "spatial"});
  if (attr_int(n, "training_mode", 0) != 0) fail(n, "training_mode=1 is not supported (export the model in eval mode)");
  if (attr_int(n, "spatial", 1) != 1) fail(n, "spatial=0 is not supported");
  check_extra_outputs_unused(n);
  const Value& x = computed(n, 0);
  const int64_t c = x.shape.back();
  const char* names[4] = {"weight", "bias", "running_mean", "running_var"};
  std::vector<const onnx::TensorProto*> t;
  for (size_t k = 1; k <= 4; ++k) {
    t.push_back(&constant(n, k));
    if (t.back()->element_count() != c)
      fail(n, std::string("its ") + names[k - 1] + " has " + std::to_string(t.back()->element_count()) + " values for " +
                  std::to_string(c) + " channels");
  }
  const std::string id_hint = hint(n, t[0]->name);
  Value v;
  v.node = emit({{"type", "batchnorm"}, {"eps", static_cast<double>(attr_float(n, "epsilon", 1e-5f))}}, {x.node}, id_hint);
  v.shape = shapes_.at(v.node);
  for (size_t k = 0; k < 4; ++k) put_tensor(v.node + "." + names[k], {c}, onnx::tensor_floats(*t[k]), t[k]->name);
  define(n.outputs.at(0), v);
}

void Importer::clip(const Node& n) {
  double lo = -std::numeric_limits<double>::infinity(), hi = std::numeric_limits<double>::infinity();
  check_attributes(n, {});
  for (size_t k = 1; k <= 2; ++k) {
    if (!has_input(n, k)) continue;
    const onnx::TensorProto& t = constant(n, k);
    if (t.element_count() != 1) fail(n, "min and max must be scalars");
    (k == 1 ? lo : hi) = onnx::tensor_doubles(t)[0];
  }
  const Value& x = computed(n, 0);
  const bool no_max = hi >= 3.0e38;
  std::string type;
  if (lo == 0 && hi == 6) type = "relu6";
  else if (lo == 0 && no_max) type = "relu";
  else
    fail(n, "Clip to [" + std::to_string(lo) + ", " + std::to_string(hi) +
                "] is not supported; only [0, 6] (ReLU6) and [0, +inf) (ReLU) are");
  emit_to(n, {{"type", type}}, {x.node}, n.outputs.at(0), hint(n));
}

std::optional<std::vector<double>> Importer::per_channel(const onnx::TensorProto& c, const Value& x) const {
  const size_t rank = x.shape.size();  // 4: [N, C, H, W] in ONNX; 2: [N, F]
  if (c.dims.size() > rank) return std::nullopt;
  std::vector<int64_t> dims(rank - c.dims.size(), 1);
  dims.insert(dims.end(), c.dims.begin(), c.dims.end());
  const int64_t channels = x.shape.back();
  for (size_t a = 0; a < rank; ++a) {
    if (a == 1) {
      if (dims[a] != 1 && dims[a] != channels) return std::nullopt;
    } else if (dims[a] != 1) {
      return std::nullopt;
    }
  }
  return onnx::tensor_doubles(c);
}

void Importer::arithmetic(const Node& n) {
  check_attributes(n, {});
  const std::string& op = n.op_type;
  if (n.inputs.size() != 2) fail(n, "expected two inputs");
  const Value& a = input(n, 0);
  const Value& b = input(n, 1);
  if (a.shape_value || b.shape_value) fail(n, "arithmetic on a tensor's shape is not supported");
  if (a.constant && b.constant) fail(n, "both inputs are constants (a constant expression the exporter did not fold)");
  if (!a.constant && !b.constant) {
    if (op == "Add" || op == "Mul") {
      emit_to(n, {{"type", op == "Add" ? "add" : "mul"}}, {a.node, b.node}, n.outputs.at(0), hint(n));
      return;
    }
    fail(n, op + " of two computed tensors is not supported (only " + op + " by a constant)");
  }
  const Value& x = a.constant ? b : a;
  const onnx::TensorProto& c = *(a.constant ? a : b).tensor;
  const auto k = per_channel(c, x);
  if (!k) {
    std::string dims;
    for (int64_t d : c.dims) dims += (dims.empty() ? "" : ", ") + std::to_string(d);
    fail(n, "the constant '" + c.name + "' of shape [" + dims +
                "] is not one value per channel; only scalars and per-channel constants are supported");
  }
  std::vector<double> scale = {1.0}, shift = {0.0};
  if (op == "Add") shift = *k;
  if (op == "Mul") scale = *k;
  if (op == "Sub") {
    if (a.constant) {  // c - x
      scale = {-1.0};
      shift = *k;
    } else {
      shift = *k;
      for (double& s : shift) s = -s;
    }
  }
  if (op == "Div") {
    if (a.constant) fail(n, "division of a constant by a computed tensor is not supported");
    scale = *k;
    for (double& s : scale) {
      if (s == 0) fail(n, "division by zero");
      s = 1.0 / s;
    }
  }
  emit_to(n, {{"type", "affine"}, {"scale", scale}, {"shift", shift}}, {x.node}, n.outputs.at(0), hint(n));
}

void Importer::concat(const Node& n) {
  check_attributes(n, {"axis"});
  if (!n.attribute("axis")) fail(n, "needs an 'axis'");
  bool shapes = false;
  for (size_t k = 0; k < n.inputs.size(); ++k) shapes = shapes || input(n, k).shape_value;
  if (shapes) {
    shape_op(n);
    return;
  }
  std::vector<std::string> inputs;
  size_t rank = 0;
  for (size_t k = 0; k < n.inputs.size(); ++k) {
    const Value& v = computed(n, k);
    rank = v.shape.size();
    inputs.push_back(v.node);
  }
  if (inputs.empty()) fail(n, "needs inputs");
  int64_t axis = attr_int(n, "axis", 1);
  if (axis < 0) axis += static_cast<int64_t>(rank);
  if (axis != 1) fail(n, "only a concat of channels (axis 1) is supported, got axis " + std::to_string(axis));
  if (inputs.size() == 1) {
    define(n.outputs.at(0), input(n, 0));
    return;
  }
  emit_to(n, {{"type", "concat"}}, inputs, n.outputs.at(0), hint(n));
}

void Importer::pool(const Node& n, bool max) {
  if (max) check_attributes(n, {"auto_pad", "ceil_mode", "dilations", "kernel_shape", "pads", "storage_order", "strides"});
  else check_attributes(n, {"auto_pad", "ceil_mode", "count_include_pad", "kernel_shape", "pads", "strides"});
  check_extra_outputs_unused(n);
  const Value& x = computed(n, 0);
  if (x.shape.size() != 4) fail(n, "needs an image input [N, C, H, W]");
  const auto kernel = attr_ints(n, "kernel_shape", {});
  if (kernel.size() != 2) fail(n, "needs a 2-D 'kernel_shape'");
  const auto strides = attr_ints(n, "strides", {1, 1}), dilations = attr_ints(n, "dilations", {1, 1});
  if (strides.size() != 2) fail(n, "'strides' needs 2 entries");
  if (dilations != std::vector<int64_t>{1, 1}) fail(n, "dilated pooling is not supported");
  std::array<int64_t, 4> p = window_pads(n, x, kernel, strides, dilations);
  const bool ceil_mode = attr_int(n, "ceil_mode", 0) != 0;
  const bool include_pad = attr_int(n, "count_include_pad", 0) != 0;
  std::string from = x.node;
  if (p[0] != p[2] || p[1] != p[3]) {
    if (max || !include_pad || ceil_mode)
      fail(n, "asymmetric padding [" + std::to_string(p[0]) + ", " + std::to_string(p[1]) + ", " + std::to_string(p[2]) +
                  ", " + std::to_string(p[3]) + "] is supported only for average pooling that counts the padding");
    from = emit({{"type", "pad2d"}, {"padding", {p[0], p[1], p[2], p[3]}}, {"value", 0.0}}, {from}, hint(n) + "_pad");
    p = {0, 0, 0, 0};
  }
  json spec = {{"type", max ? "maxpool2d" : "avgpool2d"},
               {"kernel", kernel},
               {"stride", strides},
               {"padding", {p[0], p[1]}},
               {"ceil_mode", ceil_mode}};
  if (!max) spec["count_include_pad"] = include_pad;
  emit_to(n, spec, {from}, n.outputs.at(0), hint(n));
}

void Importer::pad(const Node& n) {
  check_attributes(n, {"mode"});
  if (attr_string(n, "mode", "constant") != "constant")
    fail(n, "only constant padding is supported, got mode '" + attr_string(n, "mode", "") + "'");
  const Value& x = computed(n, 0);
  const int64_t rank = static_cast<int64_t>(x.shape.size());
  const std::vector<int64_t> given = onnx::tensor_int64s(constant(n, 1));
  std::vector<int64_t> axes;
  if (has_input(n, 3)) {
    axes = onnx::tensor_int64s(constant(n, 3));
  } else {
    for (int64_t a = 0; a < rank; ++a) axes.push_back(a);
  }
  if (given.size() != 2 * axes.size()) fail(n, "'pads' must have two entries per padded axis");
  std::vector<int64_t> begin(static_cast<size_t>(rank), 0), end(static_cast<size_t>(rank), 0);
  for (size_t i = 0; i < axes.size(); ++i) {
    int64_t a = axes[i] < 0 ? axes[i] + rank : axes[i];
    if (a < 0 || a >= rank) fail(n, "axis out of range");
    begin[static_cast<size_t>(a)] = given[i];
    end[static_cast<size_t>(a)] = given[i + axes.size()];
  }
  double value = 0;
  if (has_input(n, 2)) {
    const onnx::TensorProto& v = constant(n, 2);
    if (v.element_count() != 1) fail(n, "the constant value must be a scalar");
    value = onnx::tensor_doubles(v)[0];
  }
  for (size_t a = 0; a < begin.size(); ++a)
    if (begin[a] < 0 || end[a] < 0) fail(n, "negative padding (cropping) is not supported");
  if (rank != 4 || begin[0] || end[0] || begin[1] || end[1])
    fail(n, "only padding of an image's height and width is supported");
  if (!begin[2] && !begin[3] && !end[2] && !end[3]) {
    define(n.outputs.at(0), x);
    return;
  }
  emit_to(n, {{"type", "pad2d"}, {"padding", {begin[2], begin[3], end[2], end[3]}}, {"value", value}}, {x.node},
          n.outputs.at(0), hint(n));
}

void Importer::flatten(const Node& n) {
  check_attributes(n, {"axis"});
  const Value& x = computed(n, 0);
  int64_t axis = attr_int(n, "axis", 1);
  if (axis < 0) axis += static_cast<int64_t>(x.shape.size());
  if (axis != 1) fail(n, "only Flatten with axis 1 (keeping the batch) is supported, got " + std::to_string(axis));
  if (x.shape.size() == 2) {
    define(n.outputs.at(0), x);
    return;
  }
  emit_to(n, {{"type", "flatten"}}, {x.node}, n.outputs.at(0), hint(n));
}

void Importer::reshape(const Node& n) {
  check_attributes(n, {"allowzero"});
  const Value& x = computed(n, 0);
  if (!has_input(n, 1)) fail(n, "needs its target shape as input 1");
  const auto target = shape_entries(n.inputs[1]);
  if (!target) fail(n, "the target shape must be a constant or computed from the input's shape");
  std::vector<int64_t> shape = *target;
  if (!shape.empty() && shape[0] == kBatch) shape[0] = 0;  // the batch, as 0 means "copy"
  for (int64_t d : shape)
    if (d == kBatch) fail(n, "the batch size may only be the target's first entry");
  int64_t features = 1;
  for (size_t a = 1; a < x.shape.size(); ++a) features *= x.shape[a];
  const bool ok = shape.size() == 2 && (shape[0] == 0 || shape[0] == -1 || shape[0] > 0) &&
                  (shape[1] == features || (shape[1] == -1 && shape[0] != -1));
  if (!ok) {
    std::string s;
    for (int64_t d : shape) s += (s.empty() ? "" : ", ") + std::to_string(d);
    fail(n, "Reshape to [" + s + "] is not supported; only to [N, -1] (a flatten of " + std::to_string(features) +
                " values) is");
  }
  if (x.shape.size() == 2) {
    define(n.outputs.at(0), x);
    return;
  }
  emit_to(n, {{"type", "flatten"}}, {x.node}, n.outputs.at(0), hint(n));
}

void Importer::gemm(const Node& n) {
  check_attributes(n, {"alpha", "beta", "transA", "transB"});
  if (attr_int(n, "transA", 0) != 0) fail(n, "transA=1 is not supported");
  const Value& x = computed(n, 0);
  if (x.shape.size() != 2) fail(n, "needs flat input [N, F] (a Flatten before it)");
  const onnx::TensorProto& b = constant(n, 1);
  if (b.dims.size() != 2) fail(n, "the weight must be a matrix");
  const bool trans_b = attr_int(n, "transB", 0) != 0;
  const int64_t k = trans_b ? b.dims[1] : b.dims[0], m = trans_b ? b.dims[0] : b.dims[1];
  if (k != x.shape[1]) fail(n, "the weight takes " + std::to_string(k) + " features, the input has " + std::to_string(x.shape[1]));
  const double alpha = attr_float(n, "alpha", 1.0f), beta = attr_float(n, "beta", 1.0f);
  const std::vector<float> bv = onnx::tensor_floats(b);
  std::vector<float> w(static_cast<size_t>(m * k));
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < k; ++j)
      w[static_cast<size_t>(i * k + j)] =
          static_cast<float>(alpha * bv[static_cast<size_t>(trans_b ? i * k + j : j * m + i)]);
  std::vector<float> bias(static_cast<size_t>(m), 0.0f);
  std::string bias_name = b.name;
  if (has_input(n, 2)) {
    const onnx::TensorProto& c = constant(n, 2);
    const std::vector<float> cv = onnx::tensor_floats(c);
    if (cv.size() != 1 && static_cast<int64_t>(cv.size()) != m) fail(n, "the bias must have 1 or " + std::to_string(m) + " values");
    for (int64_t i = 0; i < m; ++i) bias[static_cast<size_t>(i)] = static_cast<float>(beta * cv[cv.size() == 1 ? 0 : static_cast<size_t>(i)]);
    bias_name = c.name;
  }
  Value v;
  v.node = emit({{"type", "dense"}, {"out_features", m}}, {x.node}, hint(n, b.name));
  v.shape = shapes_.at(v.node);
  put_tensor(v.node + ".weight", {m, k}, std::move(w), b.name);
  put_tensor(v.node + ".bias", {m}, std::move(bias), bias_name);
  define(n.outputs.at(0), v);
}

void Importer::matmul(const Node& n) {
  check_attributes(n, {});
  const Value& x = computed(n, 0);
  if (x.shape.size() != 2) fail(n, "needs flat input [N, F]");
  const onnx::TensorProto& b = constant(n, 1);
  if (b.dims.size() != 2 || b.dims[0] != x.shape[1]) fail(n, "the weight must be a [" + std::to_string(x.shape[1]) + ", M] matrix");
  const int64_t k = b.dims[0], m = b.dims[1];
  const std::vector<float> bv = onnx::tensor_floats(b);
  std::vector<float> w(static_cast<size_t>(m * k));
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < k; ++j) w[static_cast<size_t>(i * k + j)] = bv[static_cast<size_t>(j * m + i)];
  std::vector<float> bias(static_cast<size_t>(m), 0.0f);
  std::string bias_name = b.name, out = n.outputs.at(0);
  const auto add = matmul_add_.find(static_cast<size_t>(&n - m_.graph.nodes.data()));
  if (add != matmul_add_.end()) {
    const Node& a = m_.graph.nodes[add->second];
    const Value& cv_value = value_named(a, a.inputs[0] == n.outputs[0] ? a.inputs[1] : a.inputs[0]);
    if (!cv_value.constant) fail(a, "the bias added to a MatMul must be a constant");
    const onnx::TensorProto& c = *cv_value.tensor;
    const std::vector<float> cv = onnx::tensor_floats(c);
    if (cv.size() != 1 && static_cast<int64_t>(cv.size()) != m) fail(a, "the bias must have 1 or " + std::to_string(m) + " values");
    for (int64_t i = 0; i < m; ++i) bias[static_cast<size_t>(i)] = cv[cv.size() == 1 ? 0 : static_cast<size_t>(i)];
    bias_name = c.name;
    out = a.outputs.at(0);
  }
  Value v;
  v.node = emit({{"type", "dense"}, {"out_features", m}}, {x.node}, hint(n, b.name));
  v.shape = shapes_.at(v.node);
  put_tensor(v.node + ".weight", {m, k}, std::move(w), b.name);
  put_tensor(v.node + ".bias", {m}, std::move(bias), bias_name);
  define(out, v);
}

std::optional<std::vector<int64_t>> Importer::shape_entries(const std::string& name) const {
  const auto it = values_.find(name);
  if (it == values_.end()) return std::nullopt;
  const Value& v = it->second;
  if (v.shape_value) return v.entries;
  if (v.constant && (v.tensor->data_type == onnx::kInt64 || v.tensor->data_type == onnx::kInt32) &&
      v.tensor->dims.size() <= 1)
    return onnx::tensor_int64s(*v.tensor);
  return std::nullopt;
}

// Shape arithmetic, kept symbolic: the batch stays kBatch, everything else
// is known from the shapes the importer tracks.
void Importer::shape_op(const Node& n) {
  const std::string& op = n.op_type;
  Value out;
  out.shape_value = true;
  auto entries_of = [&](size_t k) {
    if (!has_input(n, k)) fail(n, "input " + std::to_string(k) + " is missing");
    const auto e = shape_entries(n.inputs[k]);
    if (!e) fail(n, "supported only on a tensor's shape or integer constants (to compute a Reshape's target)");
    return *e;
  };
  auto scalar_of = [&](size_t k) {
    if (!has_input(n, k)) return false;
    const auto it = values_.find(n.inputs[k]);
    if (it == values_.end()) return false;
    const Value& v = it->second;
    return v.shape_value ? v.scalar : v.constant && v.tensor && v.tensor->dims.empty();
  };
  if (op == "Shape") {
    check_attributes(n, {"start", "end"});
    const Value& x = computed(n, 0);
    std::vector<int64_t> dims = {kBatch};
    if (x.shape.size() == 4) dims.insert(dims.end(), {x.shape[3], x.shape[1], x.shape[2]});  // N, C, H, W
    else dims.insert(dims.end(), x.shape.begin() + 1, x.shape.end());
    const auto rank = static_cast<int64_t>(dims.size());
    int64_t start = attr_int(n, "start", 0), end = attr_int(n, "end", rank);
    if (start < 0) start += rank;
    if (end < 0) end += rank;
    start = std::clamp<int64_t>(start, 0, rank);
    end = std::clamp<int64_t>(end, start, rank);
    out.entries.assign(dims.begin() + static_cast<std::ptrdiff_t>(start), dims.begin() + static_cast<std::ptrdiff_t>(end));
  } else if (op == "Gather") {
    check_attributes(n, {"axis"});
    if (!input(n, 0).shape_value) fail(n, "Gather is supported only on a tensor's shape (as x.size(0) exports)");
    if (attr_int(n, "axis", 0) != 0) fail(n, "Gather on a shape needs axis 0");
    const std::vector<int64_t> from = entries_of(0), idx = onnx::tensor_int64s(constant(n, 1));
    for (int64_t i : idx) {
      const int64_t j = i < 0 ? i + static_cast<int64_t>(from.size()) : i;
      if (j < 0 || j >= static_cast<int64_t>(from.size())) fail(n, "index out of range");
      out.entries.push_back(from[static_cast<size_t>(j)]);
    }
    out.scalar = constant(n, 1).dims.empty();
  } else if (op == "Unsqueeze" || op == "Squeeze") {
    check_attributes(n, {"axes"});
    std::vector<int64_t> axes = attr_ints(n, "axes", {});
    if (has_input(n, 1)) axes = onnx::tensor_int64s(constant(n, 1));
    out.entries = entries_of(0);
    if (op == "Unsqueeze") {
      if (!scalar_of(0) || axes != std::vector<int64_t>{0}) fail(n, "only the Unsqueeze of a scalar on axis 0 is supported");
    } else {
      if (out.entries.size() != 1 || (!axes.empty() && axes != std::vector<int64_t>{0}))
        fail(n, "only the Squeeze of a one-entry shape is supported");
      out.scalar = true;
    }
  } else if (op == "Cast") {
    check_attributes(n, {"to", "saturate"});
    const int64_t to = attr_int(n, "to", 0);
    if (to != onnx::kInt64 && to != onnx::kInt32) fail(n, "a Cast of a shape is supported only to int64 or int32");
    out.entries = entries_of(0);
    out.scalar = scalar_of(0);
  } else {  // Concat of shapes along axis 0
    if (attr_int(n, "axis", 0) != 0) fail(n, "a Concat of shapes needs axis 0");
    for (size_t k = 0; k < n.inputs.size(); ++k) {
      const std::vector<int64_t> e = entries_of(k);
      out.entries.insert(out.entries.end(), e.begin(), e.end());
    }
  }
  define(n.outputs.at(0), out);
}

void Importer::convert(size_t index) {
  const Node& n = m_.graph.nodes[index];
  if (!(n.domain.empty() || n.domain == "ai.onnx"))
    fail(n, "operator domain '" + n.domain + "' is not supported; the importer converts these default-domain operators: " +
                supported_list());
  const std::string& op = n.op_type;
  if (op == "Constant") return;  // defined before the walk
  if (n.outputs.empty()) fail(n, "has no output");
  const auto gelu = gelu_.find(index);
  if (gelu != gelu_.end()) {
    const Value& x = value_named(n, gelu->second);
    if (x.constant) fail(n, "the GELU pattern's input is a constant");
    emit_to(n, {{"type", "gelu"}, {"approximate", "none"}}, {x.node}, n.outputs[0], hint(n));
    return;
  }
  static const std::map<std::string, std::string> unary = {{"Relu", "relu"},     {"Sigmoid", "sigmoid"},
                                                           {"Tanh", "tanh"},     {"HardSwish", "hardswish"},
                                                           {"Softmax", "softmax"}, {"LogSoftmax", "log_softmax"}};
  if (unary.count(op)) {
    check_attributes(n, op == "Softmax" || op == "LogSoftmax" ? std::set<std::string>{"axis"} : std::set<std::string>{});
    const Value& x = computed(n, 0);
    if (op == "Softmax" || op == "LogSoftmax") {
      int64_t axis = attr_int(n, "axis", opset_ < 13 ? 1 : -1);
      if (axis < 0) axis += static_cast<int64_t>(x.shape.size());
      if (x.shape.size() != 2 || axis != 1) fail(n, "only a softmax over the classes of [N, K] is supported");
    }
    emit_to(n, {{"type", unary.at(op)}}, {x.node}, n.outputs[0], hint(n));
  } else if (op == "LeakyRelu") {
    check_attributes(n, {"alpha"});
    emit_to(n, {{"type", "leaky_relu"}, {"negative_slope", static_cast<double>(attr_float(n, "alpha", 0.01f))}},
            {computed(n, 0).node}, n.outputs[0], hint(n));
  } else if (op == "HardSigmoid") {
    check_attributes(n, {"alpha", "beta"});
    const double alpha = attr_float(n, "alpha", 0.2f), beta = attr_float(n, "beta", 0.5f);
    if (std::abs(alpha - 1.0 / 6.0) > 1e-6 || std::abs(beta - 0.5) > 1e-7)
      fail(n, "HardSigmoid with alpha " + std::to_string(alpha) + " and beta " + std::to_string(beta) +
                  " is not supported; only PyTorch's (alpha 1/6, beta 1/2) is");
    emit_to(n, {{"type", "hardsigmoid"}}, {computed(n, 0).node}, n.outputs[0], hint(n));
  } else if (op == "Gelu") {
    check_attributes(n, {"approximate"});
    const std::string a = attr_string(n, "approximate", "none");
    if (a != "none" && a != "tanh") fail(n, "unknown approximate '" + a + "'");
    emit_to(n, {{"type", "gelu"}, {"approximate", a}}, {computed(n, 0).node}, n.outputs[0], hint(n));
  } else if (op == "Conv") {
    conv(n);
  } else if (op == "BatchNormalization") {
    batchnorm(n);
  } else if (op == "Clip") {
    if (opset_ < 11) fail(n, "Clip before opset 11 is not supported");
    clip(n);
  } else if (op == "Add" || op == "Sub" || op == "Mul" || op == "Div") {
    arithmetic(n);
  } else if (op == "Concat") {
    concat(n);
  } else if (op == "MaxPool" || op == "AveragePool") {
    pool(n, op == "MaxPool");
  } else if (op == "GlobalAveragePool") {
    check_attributes(n, {});
    emit_to(n, {{"type", "global_avgpool"}}, {computed(n, 0).node}, n.outputs[0], hint(n));
  } else if (op == "Pad") {
    pad(n);
  } else if (op == "Flatten") {
    flatten(n);
  } else if (op == "Reshape") {
    reshape(n);
  } else if (op == "Gemm") {
    gemm(n);
  } else if (op == "MatMul") {
    matmul(n);
  } else if (op == "Dropout" || op == "Identity") {
    check_attributes(n, op == "Dropout" ? std::set<std::string>{"seed", "ratio"} : std::set<std::string>{});
    if (op == "Dropout" && has_input(n, 2) && scalar(n.inputs[2]).value_or(0.0) != 0.0)
      fail(n, "training_mode=true is not supported (export the model in eval mode)");
    check_extra_outputs_unused(n);
    define(n.outputs[0], input(n, 0));
  } else if (op == "Shape" || op == "Gather" || op == "Unsqueeze" || op == "Squeeze" || op == "Cast") {
    shape_op(n);
  } else if (op == "Erf") {
    fail(n, "Erf is supported only inside the GELU pattern PyTorch exports (Div by sqrt(2), Erf, Add 1, Mul by the "
            "input, Mul by 0.5)");
  } else {
    fail(n, "operator not supported; the importer converts: " + supported_list());
  }
}

void Importer::finish_output() {
  const auto& outs = m_.graph.outputs;
  if (outs.size() != 1)
    throw Error("ONNX model: it has " + std::to_string(outs.size()) + " outputs; igscope explains models of one output");
  const auto it = values_.find(outs[0].name);
  if (it == values_.end()) throw Error("ONNX model: no node produces the output '" + outs[0].name + "'");
  const Value& v = it->second;
  if (v.constant || v.node == "input") throw Error("ONNX model: the output '" + outs[0].name + "' is not computed by the model");
  if (v.shape.size() != 2)
    throw Error("ONNX model: the output '" + outs[0].name + "' has shape " + shape_to_string(v.shape) +
                " for one sample; igscope explains models whose output is one score per class [N, K]");
  output_id_ = v.node;
  for (const json& node : nodes_) {
    const std::string type = node["type"].get<std::string>();
    if ((type == "softmax" || type == "log_softmax") && node["id"] != output_id_)
      throw Error("ONNX model: the node '" + node["id"].get<std::string>() + "' (" + type +
                  ") is not the last; a softmax is supported only as the model's last node");
  }
}

Model Importer::run() {
  check_model();
  const auto& nodes = m_.graph.nodes;
  for (size_t i = 0; i < nodes.size(); ++i) {
    for (const std::string& out : nodes[i].outputs)
      if (!out.empty()) producer_[out] = i;
    for (const std::string& in : nodes[i].inputs)
      if (!in.empty()) readers_[in].push_back(i);
  }
  for (const onnx::ValueInfo& v : m_.graph.outputs) graph_outputs_.insert(v.name);
  // Every operator the importer does not know, named at once, before any
  // other complaint about the graph.
  std::string unknown;
  std::set<std::string> seen;
  const auto& ops = supported_onnx_operators();
  for (const Node& n : nodes) {
    const bool default_domain = n.domain.empty() || n.domain == "ai.onnx";
    const std::string op = default_domain ? n.op_type : n.domain + "." + n.op_type;
    if ((!default_domain || std::find(ops.begin(), ops.end(), n.op_type) == ops.end()) && seen.insert(op).second)
      unknown += (unknown.empty() ? "" : ", ") + op + " (node '" + n.name + "')";
  }
  if (!unknown.empty())
    throw Error("ONNX model: operators not supported: " + unknown + ". The importer converts: " + supported_list());
  skip_.assign(nodes.size(), 0);
  define_constants();
  define_input();
  find_patterns();
  for (size_t i = 0; i < nodes.size(); ++i) {
    if (skip_[i]) continue;
    try {
      convert(i);
    } catch (const protobuf::WireError&) {
      throw;
    } catch (const Error& e) {
      const std::string message = e.what();
      if (message.rfind("ONNX ", 0) == 0 || message.rfind("import:", 0) == 0) throw;
      fail(nodes[i], message);
    }
  }
  finish_output();

  // Only the nodes the output depends on (ONNX graphs may carry dead ends).
  std::set<std::string> needed = {output_id_};
  for (auto it = nodes_.rbegin(); it != nodes_.rend(); ++it)
    if (needed.count((*it)["id"].get<std::string>()))
      for (const auto& in : (*it)["inputs"]) needed.insert(in.get<std::string>());
  json kept = json::array();
  for (const json& node : nodes_)
    if (needed.count(node["id"].get<std::string>())) kept.push_back(node);

  json arch = {{"name", !o_.name.empty() ? o_.name : !m_.graph.name.empty() ? m_.graph.name : "imported"},
               {"input", input_shape_},
               {"output", output_id_},
               {"nodes", kept}};
  const int64_t k = shapes_.at(output_id_)[1];
  if (!o_.classes.empty()) {
    if (static_cast<int64_t>(o_.classes.size()) != k)
      throw Error("import: " + std::to_string(o_.classes.size()) + " class names for a model of " + std::to_string(k) +
                  " outputs");
    arch["classes"] = o_.classes;
  }
  Model model(arch);
  for (auto& np : model.named_parameters()) {
    const auto t = tensors_.find(np.name);
    if (t == tensors_.end()) {
      if (np.param->suffix == "num_batches_tracked") continue;  // zero: unknown to ONNX
      throw Error("import: no values for '" + np.name + "'");
    }
    if (t->second.shape() != np.param->value.shape())
      throw Error("ONNX tensor '" + origin_[np.name] + "': shape " + shape_to_string(t->second.shape()) + " where " +
                  np.name + " needs " + shape_to_string(np.param->value.shape()));
    np.param->value = std::move(t->second);
  }
  return model;
}

}  // namespace

Model import_onnx(const uint8_t* bytes, size_t size, const OnnxImportOptions& options) {
  if (size == 0) throw Error("ONNX model: the file is empty");
  const onnx::ModelProto proto = onnx::parse_onnx_model(bytes, size);
  return Importer(proto, options).run();
}

OnnxImportOptions parse_onnx_import_options(const std::string& range, const std::string& mean, const std::string& std) {
  OnnxImportOptions o;
  if (range == "0:1") {
    o.input_scale = 1.0;
  } else if (range == "0:255") {
    o.input_scale = 255.0;
  } else {
    throw Error("import: the input range must be 0:1 or 0:255, not '" + range + "'");
  }
  auto list = [](const std::string& text, const char* what) {
    std::vector<double> out;
    if (text.find_first_not_of(" \t") == std::string::npos) return out;
    std::stringstream ss(text);
    for (std::string item; std::getline(ss, item, ',');) {
      const size_t a = item.find_first_not_of(" \t"), b = item.find_last_not_of(" \t");
      const std::string v = a == std::string::npos ? "" : item.substr(a, b - a + 1);
      char* end = nullptr;
      const double d = v.empty() ? 0.0 : std::strtod(v.c_str(), &end);
      if (v.empty() || end != v.c_str() + v.size() || !std::isfinite(d))
        throw Error(std::string("import: the ") + what + ": '" + item + "' is not a number (give R,G,B or one value)");
      out.push_back(d);
    }
    return out;
  };
  o.mean = list(mean, "mean");
  o.std = list(std, "std");
  return o;
}

}  // namespace igscope
