#pragma once
// A protobuf writer for tests: builds small ONNX models byte by byte, so the
// importer's tests need no exporter, and so they can also build what no
// exporter writes (cycles, dangling inputs, truncated fields, NaN weights).
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace igscope::testing {

class Pb {
 public:
  Pb& varint(uint32_t field, uint64_t v) {
    key(field, 0);
    raw_varint(v);
    return *this;
  }
  Pb& bytes(uint32_t field, const std::string& s) {
    key(field, 2);
    raw_varint(s.size());
    b_ += s;
    return *this;
  }
  Pb& message(uint32_t field, const Pb& m) { return bytes(field, m.b_); }
  Pb& f32(uint32_t field, float f) {
    key(field, 5);
    char c[4];
    std::memcpy(c, &f, 4);
    b_.append(c, 4);
    return *this;
  }
  Pb& packed_floats(uint32_t field, const std::vector<float>& v) {
    std::string s(v.size() * 4, '\0');
    std::memcpy(s.data(), v.data(), s.size());
    return bytes(field, s);
  }
  Pb& packed_ints(uint32_t field, const std::vector<int64_t>& v) {
    Pb p;
    for (int64_t x : v) p.raw_varint(static_cast<uint64_t>(x));
    return bytes(field, p.b_);
  }
  const std::string& str() const { return b_; }
  std::vector<uint8_t> data() const { return {b_.begin(), b_.end()}; }
  void raw_varint(uint64_t v) {
    while (v >= 0x80) {
      b_ += static_cast<char>((v & 0x7f) | 0x80);
      v >>= 7;
    }
    b_ += static_cast<char>(v);
  }

 private:
  void key(uint32_t field, uint32_t type) { raw_varint(static_cast<uint64_t>(field) << 3 | type); }
  std::string b_;
};

// ONNX messages (field numbers of onnx/onnx.proto).
inline Pb onnx_tensor(const std::string& name, const std::vector<int64_t>& dims, const std::vector<float>& values) {
  Pb t;
  t.packed_ints(1, dims).varint(2, 1).packed_floats(4, values).bytes(8, name);
  return t;
}
inline Pb onnx_int64_tensor(const std::string& name, const std::vector<int64_t>& dims, const std::vector<int64_t>& values) {
  Pb t;
  t.packed_ints(1, dims).varint(2, 7).packed_ints(7, values).bytes(8, name);
  return t;
}
inline Pb onnx_attr_int(const std::string& name, int64_t v) {
  Pb a;
  a.bytes(1, name).varint(20, 2).varint(3, static_cast<uint64_t>(v));
  return a;
}
inline Pb onnx_attr_float(const std::string& name, float v) {
  Pb a;
  a.bytes(1, name).varint(20, 1).f32(2, v);
  return a;
}
inline Pb onnx_attr_ints(const std::string& name, const std::vector<int64_t>& v) {
  Pb a;
  a.bytes(1, name).varint(20, 7).packed_ints(8, v);
  return a;
}
inline Pb onnx_node(const std::string& op, const std::vector<std::string>& inputs,
                    const std::vector<std::string>& outputs, const std::string& name, const std::vector<Pb>& attrs = {}) {
  Pb n;
  for (const auto& i : inputs) n.bytes(1, i);
  for (const auto& o : outputs) n.bytes(2, o);
  n.bytes(3, name).bytes(4, op);
  for (const auto& a : attrs) n.message(5, a);
  return n;
}
// dims: -1 is a symbolic dimension ("batch").
inline Pb onnx_value_info(const std::string& name, const std::vector<int64_t>& dims) {
  Pb shape;
  for (int64_t d : dims) {
    Pb dim;
    if (d < 0) dim.bytes(2, "batch");
    else dim.varint(1, static_cast<uint64_t>(d));
    shape.message(1, dim);
  }
  Pb tensor;
  tensor.varint(1, 1).message(2, shape);
  Pb type;
  type.message(1, tensor);
  Pb v;
  v.bytes(1, name).message(2, type);
  return v;
}
inline Pb onnx_graph(const std::vector<Pb>& nodes, const std::vector<Pb>& initializers, const std::vector<Pb>& inputs,
                     const std::vector<Pb>& outputs) {
  Pb g;
  for (const auto& n : nodes) g.message(1, n);
  g.bytes(2, "test_graph");
  for (const auto& t : initializers) g.message(5, t);
  for (const auto& i : inputs) g.message(11, i);
  for (const auto& o : outputs) g.message(12, o);
  return g;
}
inline Pb onnx_model(const Pb& graph, int64_t opset = 13) {
  Pb op;
  op.bytes(1, "").varint(2, static_cast<uint64_t>(opset));
  Pb m;
  m.varint(1, 8).bytes(2, "igscope-tests").message(7, graph).message(8, op);
  return m;
}

}  // namespace igscope::testing
