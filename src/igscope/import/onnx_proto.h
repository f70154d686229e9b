#pragma once
// The parts of ONNX's protobuf schema (onnx/onnx.proto, IR version 3 to 9)
// that describe an inference graph: ModelProto, GraphProto, NodeProto,
// AttributeProto, TensorProto, ValueInfoProto. parse_onnx_model decodes them
// with the wire reader; fields it does not need are skipped, never guessed.
// to_json writes what was decoded (for `igscope import --dump-onnx` and the
// test that compares it with python3-onnx): tensors appear by data type,
// dims and the CRC-32 of their values' little-endian bytes.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace igscope::onnx {

// TensorProto.DataType values this code reads.
enum DataType : int32_t {
  kFloat = 1,
  kUint8 = 2,
  kInt8 = 3,
  kInt32 = 6,
  kInt64 = 7,
  kBool = 9,
  kFloat16 = 10,
  kDouble = 11,
  kUint64 = 13,
};
const char* data_type_name(int32_t type);

struct TensorProto {
  std::string name;
  std::vector<int64_t> dims;
  int32_t data_type = 0;
  std::string raw_data;  // little-endian values, when the writer used raw_data
  std::vector<float> float_data;
  std::vector<int64_t> int32_data;  // int32, int8, uint8, bool, float16 (bits) values, one per element
  std::vector<int64_t> int64_data;
  std::vector<double> double_data;
  std::vector<uint64_t> uint64_data;
  std::vector<std::pair<std::string, std::string>> external_data;  // location, offset, length, ...
  bool external = false;  // data_location EXTERNAL: the values are in a side file
  bool has_segment = false;

  int64_t element_count() const;  // product of dims (1 for a scalar); throws Error on overflow
};

struct Attribute {
  std::string name;
  int32_t type = 0;  // AttributeProto.AttributeType: FLOAT 1, INT 2, STRING 3, TENSOR 4, GRAPH 5, FLOATS 6, INTS 7, STRINGS 8, ...
  float f = 0;
  int64_t i = 0;
  std::string s;
  std::shared_ptr<TensorProto> t;
  std::vector<float> floats;
  std::vector<int64_t> ints;
  std::vector<std::string> strings;
  bool has_subgraph = false;  // a GRAPH / GRAPHS attribute (If, Loop): not decoded
};

struct Node {
  std::string name, op_type, domain;
  std::vector<std::string> inputs, outputs;
  std::vector<Attribute> attributes;
  const Attribute* attribute(const std::string& name) const;
};

struct Dimension {
  bool known = false;  // dim_value present
  int64_t value = 0;
  std::string param;  // dim_param ("batch"), if any
};

struct ValueInfo {
  std::string name;
  bool is_tensor = false;  // type is tensor_type
  int32_t elem_type = 0;
  bool has_shape = false;
  std::vector<Dimension> shape;
};

struct Graph {
  std::string name;
  std::vector<Node> nodes;
  std::vector<TensorProto> initializers;
  std::vector<ValueInfo> inputs, outputs;
  size_t sparse_initializers = 0;
};

struct ModelProto {
  int64_t ir_version = 0;
  std::vector<std::pair<std::string, int64_t>> opset_imports;  // domain ("" = ai.onnx), version
  std::string producer_name, producer_version;
  bool has_graph = false;
  Graph graph;
  size_t functions = 0;  // model-local functions (not supported by the importer)
};

// Decodes a whole .onnx file; throws protobuf::WireError on malformed bytes.
ModelProto parse_onnx_model(const uint8_t* bytes, size_t size);

// The tensor's values, converted; throws Error for a data type that cannot
// be converted, external data, or a value count that differs from the dims.
std::vector<float> tensor_floats(const TensorProto& t);
std::vector<int64_t> tensor_int64s(const TensorProto& t);
std::vector<double> tensor_doubles(const TensorProto& t);
// The CRC-32 (zlib's) of the values as little-endian bytes of the tensor's
// own data type (float32, int64, int32, double, uint8, int8, bool; float16 as
// its 16-bit patterns), as 8 hex digits; empty for types it does not cover.
std::string tensor_crc32(const TensorProto& t);

nlohmann::json to_json(const ModelProto& model);

}  // namespace igscope::onnx
