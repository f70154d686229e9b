#include "igscope/import/onnx_proto.h"

#include <array>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>

#include "igscope/error.h"
#include "igscope/import/protobuf_wire.h"

namespace igscope::onnx {

using protobuf::Reader;

const char* data_type_name(int32_t type) {
  switch (type) {
    case 0: return "UNDEFINED";
    case 1: return "FLOAT";
    case 2: return "UINT8";
    case 3: return "INT8";
    case 4: return "UINT16";
    case 5: return "INT16";
    case 6: return "INT32";
    case 7: return "INT64";
    case 8: return "STRING";
    case 9: return "BOOL";
    case 10: return "FLOAT16";
    case 11: return "DOUBLE";
    case 12: return "UINT32";
    case 13: return "UINT64";
    case 14: return "COMPLEX64";
    case 15: return "COMPLEX128";
    case 16: return "BFLOAT16";
    default: return "unknown";
  }
}

int64_t TensorProto::element_count() const {
  int64_t n = 1;
  for (int64_t d : dims) {
    if (d < 0) throw Error("ONNX tensor '" + name + "' has a negative dimension " + std::to_string(d));
    if (d != 0 && n > std::numeric_limits<int64_t>::max() / d)
      throw Error("ONNX tensor '" + name + "' has more elements than fit in 64 bits");
    n *= d;
  }
  return n;
}

const Attribute* Node::attribute(const std::string& attr_name) const {
  for (const Attribute& a : attributes)
    if (a.name == attr_name) return &a;
  return nullptr;
}

namespace {

TensorProto parse_tensor(Reader r) {
  TensorProto t;
  while (r.next()) {
    switch (r.field()) {
      case 1: r.append(t.dims); break;
      case 2: t.data_type = r.int32(); break;
      case 3: t.has_segment = true; r.skip(); break;
      case 4: r.append(t.float_data); break;
      case 5: r.append(t.int32_data); break;
      case 7: r.append(t.int64_data); break;
      case 8: t.name = r.string(); break;
      case 9: t.raw_data = r.string(); break;
      case 10: r.append(t.double_data); break;
      case 11: r.append(t.uint64_data); break;
      case 13: {
        Reader e = r.message("TensorProto.external_data");
        std::string key, value;
        while (e.next()) {
          if (e.field() == 1) key = e.string();
          else if (e.field() == 2) value = e.string();
          else e.skip();
        }
        t.external_data.emplace_back(key, value);
        break;
      }
      case 14: t.external = r.int64() == 1; break;
      default: r.skip();
    }
  }
  return t;
}

Attribute parse_attribute(Reader r) {
  Attribute a;
  while (r.next()) {
    switch (r.field()) {
      case 1: a.name = r.string(); break;
      case 2: a.f = r.fixed32_float(); break;
      case 3: a.i = r.int64(); break;
      case 4: a.s = r.string(); break;
      case 5: a.t = std::make_shared<TensorProto>(parse_tensor(r.message("AttributeProto.t"))); break;
      case 6:
      case 11: a.has_subgraph = true; r.skip(); break;
      case 7: r.append(a.floats); break;
      case 8: r.append(a.ints); break;
      case 9: a.strings.push_back(r.string()); break;
      case 20: a.type = r.int32(); break;
      default: r.skip();
    }
  }
  return a;
}

Node parse_node(Reader r) {
  Node n;
  while (r.next()) {
    switch (r.field()) {
      case 1: n.inputs.push_back(r.string()); break;
      case 2: n.outputs.push_back(r.string()); break;
      case 3: n.name = r.string(); break;
      case 4: n.op_type = r.string(); break;
      case 5: n.attributes.push_back(parse_attribute(r.message("AttributeProto"))); break;
      case 7: n.domain = r.string(); break;
      default: r.skip();
    }
  }
  return n;
}

std::vector<Dimension> parse_shape(Reader r) {
  std::vector<Dimension> dims;
  while (r.next()) {
    if (r.field() != 1) {
      r.skip();
      continue;
    }
    Reader d = r.message("TensorShapeProto.Dimension");
    Dimension dim;
    while (d.next()) {
      if (d.field() == 1) {
        dim.known = true;
        dim.value = d.int64();
      } else if (d.field() == 2) {
        dim.param = d.string();
      } else {
        d.skip();
      }
    }
    dims.push_back(dim);
  }
  return dims;
}

ValueInfo parse_value_info(Reader r) {
  ValueInfo v;
  while (r.next()) {
    if (r.field() == 1) {
      v.name = r.string();
    } else if (r.field() == 2) {
      Reader type = r.message("TypeProto");
      while (type.next()) {
        if (type.field() != 1) {
          type.skip();
          continue;
        }
        v.is_tensor = true;
        Reader tensor = type.message("TypeProto.Tensor");
        while (tensor.next()) {
          if (tensor.field() == 1) {
            v.elem_type = tensor.int32();
          } else if (tensor.field() == 2) {
            v.has_shape = true;
            v.shape = parse_shape(tensor.message("TensorShapeProto"));
          } else {
            tensor.skip();
          }
        }
      }
    } else {
      r.skip();
    }
  }
  return v;
}

Graph parse_graph(Reader r) {
  Graph g;
  while (r.next()) {
    switch (r.field()) {
      case 1: g.nodes.push_back(parse_node(r.message("NodeProto"))); break;
      case 2: g.name = r.string(); break;
      case 5: g.initializers.push_back(parse_tensor(r.message("GraphProto.initializer"))); break;
      case 11: g.inputs.push_back(parse_value_info(r.message("GraphProto.input"))); break;
      case 12: g.outputs.push_back(parse_value_info(r.message("GraphProto.output"))); break;
      case 15: ++g.sparse_initializers; r.skip(); break;
      default: r.skip();
    }
  }
  return g;
}

size_t element_size(int32_t type) {
  switch (type) {
    case kFloat:
    case kInt32: return 4;
    case kInt64:
    case kDouble:
    case kUint64: return 8;
    case kFloat16: return 2;
    case kUint8:
    case kInt8:
    case kBool: return 1;
    default: return 0;
  }
}

[[noreturn]] void tensor_error(const TensorProto& t, const std::string& message) {
  throw Error("ONNX tensor '" + t.name + "': " + message);
}

void check_readable(const TensorProto& t) {
  if (t.external)
    tensor_error(t, "its values are in a side file (external data), which has not been loaded");
  if (t.has_segment) tensor_error(t, "segmented tensors are not supported");
}

// The values' little-endian bytes in the tensor's own data type.
std::string value_bytes(const TensorProto& t) {
  check_readable(t);
  const size_t es = element_size(t.data_type);
  if (es == 0) tensor_error(t, std::string("data type ") + data_type_name(t.data_type) + " is not supported");
  const int64_t n = t.element_count();
  if (!t.raw_data.empty() || n == 0) {
    if (t.raw_data.size() / es != static_cast<size_t>(n) || t.raw_data.size() % es)
      tensor_error(t, "raw_data holds " + std::to_string(t.raw_data.size()) + " bytes, the dims need " +
                          std::to_string(static_cast<uint64_t>(n) * es));
    return t.raw_data;
  }
  std::string out(static_cast<size_t>(n) * es, '\0');
  auto count_error = [&](size_t have) {
    tensor_error(t, "holds " + std::to_string(have) + " values, the dims need " + std::to_string(n));
  };
  switch (t.data_type) {
    case kFloat:
      if (t.float_data.size() != static_cast<size_t>(n)) count_error(t.float_data.size());
      std::memcpy(out.data(), t.float_data.data(), out.size());
      break;
    case kDouble:
      if (t.double_data.size() != static_cast<size_t>(n)) count_error(t.double_data.size());
      std::memcpy(out.data(), t.double_data.data(), out.size());
      break;
    case kInt64:
      if (t.int64_data.size() != static_cast<size_t>(n)) count_error(t.int64_data.size());
      std::memcpy(out.data(), t.int64_data.data(), out.size());
      break;
    case kUint64:
      if (t.uint64_data.size() != static_cast<size_t>(n)) count_error(t.uint64_data.size());
      std::memcpy(out.data(), t.uint64_data.data(), out.size());
      break;
    default:  // int32_data holds int32, int8, uint8, bool and float16 (bit patterns)
      if (t.int32_data.size() != static_cast<size_t>(n)) count_error(t.int32_data.size());
      for (size_t i = 0; i < static_cast<size_t>(n); ++i) {
        const auto v = static_cast<uint32_t>(t.int32_data[i]);
        std::memcpy(out.data() + i * es, &v, es);  // the low bytes, little-endian
      }
  }
  return out;
}

float half_to_float(uint16_t h) {
  const int sign = h >> 15, exponent = (h >> 10) & 0x1f, mantissa = h & 0x3ff;
  double v;
  if (exponent == 0) v = std::ldexp(mantissa, -24);
  else if (exponent == 31) v = mantissa ? std::numeric_limits<double>::quiet_NaN() : std::numeric_limits<double>::infinity();
  else v = std::ldexp(mantissa + 1024, exponent - 25);
  return static_cast<float>(sign ? -v : v);
}

template <typename T>
T read_le(const std::string& bytes, size_t i) {
  T v;
  std::memcpy(&v, bytes.data() + i * sizeof(T), sizeof(T));
  return v;
}

nlohmann::json tensor_json(const TensorProto& t) {
  nlohmann::json j = {{"name", t.name}, {"data_type", t.data_type}, {"dims", t.dims}, {"external", t.external}};
  j["crc32"] = t.external ? std::string() : tensor_crc32(t);
  return j;
}

}  // namespace

ModelProto parse_onnx_model(const uint8_t* bytes, size_t size) {
  Reader r(bytes, size, "ModelProto");
  ModelProto m;
  while (r.next()) {
    switch (r.field()) {
      case 1: m.ir_version = r.int64(); break;
      case 2: m.producer_name = r.string(); break;
      case 3: m.producer_version = r.string(); break;
      case 7:
        m.has_graph = true;
        m.graph = parse_graph(r.message("GraphProto"));
        break;
      case 8: {
        Reader o = r.message("OperatorSetIdProto");
        std::string domain;
        int64_t version = 0;
        while (o.next()) {
          if (o.field() == 1) domain = o.string();
          else if (o.field() == 2) version = o.int64();
          else o.skip();
        }
        m.opset_imports.emplace_back(domain, version);
        break;
      }
      case 25: ++m.functions; r.skip(); break;
      default: r.skip();
    }
  }
  return m;
}

std::vector<double> tensor_doubles(const TensorProto& t) {
  const std::string b = value_bytes(t);
  const size_t n = static_cast<size_t>(t.element_count());
  std::vector<double> out(n);
  for (size_t i = 0; i < n; ++i) {
    switch (t.data_type) {
      case kFloat: out[i] = read_le<float>(b, i); break;
      case kDouble: out[i] = read_le<double>(b, i); break;
      case kInt64: out[i] = static_cast<double>(read_le<int64_t>(b, i)); break;
      case kUint64: out[i] = static_cast<double>(read_le<uint64_t>(b, i)); break;
      case kInt32: out[i] = read_le<int32_t>(b, i); break;
      case kInt8: out[i] = read_le<int8_t>(b, i); break;
      case kUint8:
      case kBool: out[i] = read_le<uint8_t>(b, i); break;
      case kFloat16: out[i] = half_to_float(read_le<uint16_t>(b, i)); break;
      default: tensor_error(t, std::string("data type ") + data_type_name(t.data_type) + " is not supported");
    }
  }
  return out;
}

std::vector<float> tensor_floats(const TensorProto& t) {
  if (t.data_type == kFloat) {
    const std::string b = value_bytes(t);
    std::vector<float> out(b.size() / 4);
    if (!b.empty()) std::memcpy(out.data(), b.data(), b.size());
    return out;
  }
  const std::vector<double> d = tensor_doubles(t);
  return std::vector<float>(d.begin(), d.end());
}

std::vector<int64_t> tensor_int64s(const TensorProto& t) {
  if (t.data_type == kFloat || t.data_type == kDouble || t.data_type == kFloat16)
    tensor_error(t, std::string("expected integers, got ") + data_type_name(t.data_type));
  if (t.data_type == kInt64) {
    const std::string b = value_bytes(t);
    std::vector<int64_t> out(b.size() / 8);
    if (!b.empty()) std::memcpy(out.data(), b.data(), b.size());
    return out;
  }
  const std::vector<double> d = tensor_doubles(t);
  std::vector<int64_t> out(d.size());
  for (size_t i = 0; i < d.size(); ++i) out[i] = static_cast<int64_t>(d[i]);
  return out;
}

std::string tensor_crc32(const TensorProto& t) {
  if (element_size(t.data_type) == 0) return "";
  // CRC-32 of IEEE 802.3 (zlib's crc32), reflected polynomial 0xedb88320.
  static const auto table = [] {
    std::array<uint32_t, 256> tab{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
      tab[i] = c;
    }
    return tab;
  }();
  const std::string b = value_bytes(t);
  uint32_t crc = 0xffffffffu;
  for (unsigned char c : b) crc = table[(crc ^ c) & 0xff] ^ (crc >> 8);
  char hex[9];
  std::snprintf(hex, sizeof hex, "%08x", static_cast<unsigned>(crc ^ 0xffffffffu));
  return hex;
}

nlohmann::json to_json(const ModelProto& m) {
  nlohmann::json j;
  j["ir_version"] = m.ir_version;
  j["producer_name"] = m.producer_name;
  j["opset_import"] = nlohmann::json::array();
  for (const auto& [domain, version] : m.opset_imports) j["opset_import"].push_back({{"domain", domain}, {"version", version}});
  const Graph& g = m.graph;
  nlohmann::json graph = {{"name", g.name}};
  auto values = [](const std::vector<ValueInfo>& vs) {
    nlohmann::json a = nlohmann::json::array();
    for (const ValueInfo& v : vs) {
      nlohmann::json shape = nlohmann::json::array();
      for (const Dimension& d : v.shape) shape.push_back(d.known ? nlohmann::json(d.value) : nlohmann::json(d.param));
      a.push_back({{"name", v.name}, {"elem_type", v.elem_type}, {"shape", v.has_shape ? shape : nlohmann::json()}});
    }
    return a;
  };
  graph["inputs"] = values(g.inputs);
  graph["outputs"] = values(g.outputs);
  graph["initializers"] = nlohmann::json::array();
  for (const TensorProto& t : g.initializers) graph["initializers"].push_back(tensor_json(t));
  graph["nodes"] = nlohmann::json::array();
  for (const Node& n : g.nodes) {
    nlohmann::json attrs = nlohmann::json::array();
    for (const Attribute& a : n.attributes) {
      nlohmann::json ja = {{"name", a.name}, {"type", a.type}};
      switch (a.type) {
        case 1: ja["f"] = a.f; break;
        case 2: ja["i"] = a.i; break;
        case 3: ja["s"] = a.s; break;
        case 4: ja["t"] = a.t ? tensor_json(*a.t) : nlohmann::json(); break;
        case 6: ja["floats"] = a.floats; break;
        case 7: ja["ints"] = a.ints; break;
        case 8: ja["strings"] = a.strings; break;
        default: break;
      }
      attrs.push_back(ja);
    }
    graph["nodes"].push_back({{"name", n.name},
                              {"op_type", n.op_type},
                              {"domain", n.domain},
                              {"inputs", n.inputs},
                              {"outputs", n.outputs},
                              {"attributes", attrs}});
  }
  j["graph"] = graph;
  return j;
}

}  // namespace igscope::onnx
