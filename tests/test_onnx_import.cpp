// The ONNX importer (import/): the protobuf wire reader against bytes built
// by hand, the operator mapping on small models built by tests/onnx_builder.h
// (what each ONNX construct becomes, checked against the same graph written
// directly in igscope's form, and against values computed here by hand), and
// every kind of bad input refused with its own message. The PyTorch oracle
// (tests/oracle/check_onnx_import_against_torch.py) checks exported
// torchvision models end to end.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>

#include "igscope/backend/reference.h"
#include "igscope/error.h"
#include "igscope/import/onnx_import.h"
#include "igscope/import/onnx_proto.h"
#include "igscope/import/protobuf_wire.h"
#include "igscope/model.h"
#include "onnx_builder.h"

using namespace igscope;
using namespace igscope::testing;
using nlohmann::json;

namespace {

Model import_bytes(const Pb& model, OnnxImportOptions options = {}) {
  const std::vector<uint8_t> b = model.data();
  return import_onnx(b.data(), b.size(), options);
}

std::vector<float> iota(size_t n, float start, float step) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = start + step * static_cast<float>(i);
  return v;
}

// Input [N, 1, 4, 4] -> Conv 2x2 (1 -> 2, pads [0, 1, 1, 0]: asymmetric) ->
// Relu -> Sub(0.5 - x) -> Flatten -> MatMul [2*4*4, 3] + Add bias [3].
Pb small_model(const std::vector<float>& conv_w) {
  const std::vector<Pb> nodes = {
      onnx_node("Conv", {"x", "w", "b"}, {"c"}, "conv", {onnx_attr_ints("pads", {0, 1, 1, 0})}),
      onnx_node("Relu", {"c"}, {"r"}, "relu"),
      onnx_node("Sub", {"half", "r"}, {"s"}, "sub"),
      onnx_node("Flatten", {"s"}, {"f"}, "flatten", {onnx_attr_int("axis", 1)}),
      onnx_node("MatMul", {"f", "m"}, {"mm"}, "matmul"),
      onnx_node("Add", {"mm", "bias"}, {"y"}, "add"),
  };
  const std::vector<Pb> inits = {
      onnx_tensor("w", {2, 1, 2, 2}, conv_w),
      onnx_tensor("b", {2}, {0.1f, -0.2f}),
      onnx_tensor("half", {}, {0.5f}),
      onnx_tensor("m", {32, 3}, iota(96, -1.0f, 0.02f)),
      onnx_tensor("bias", {3}, {1.0f, 2.0f, 3.0f}),
  };
  return onnx_model(onnx_graph(nodes, inits, {onnx_value_info("x", {-1, 1, 4, 4})}, {onnx_value_info("y", {-1, 3})}));
}

const std::vector<float> kConvW = {0.5f, -1.0f, 0.25f, 2.0f, -0.5f, 1.5f, 1.0f, -0.75f};

}  // namespace

TEST_CASE("the wire reader decodes varints, strings and packed numbers", "[onnx][protobuf]") {
  Pb p;
  p.varint(1, 300).varint(2, static_cast<uint64_t>(-5)).bytes(3, "abc").packed_ints(4, {1, 200, 70000}).f32(5, 1.5f);
  const std::vector<uint8_t> b = p.data();
  REQUIRE(b[0] == 0x08);  // field 1, varint
  REQUIRE(b[1] == 0xac);  // 300 = 0b10_0101100
  REQUIRE(b[2] == 0x02);
  protobuf::Reader r(b.data(), b.size(), "test");
  REQUIRE(r.next());
  CHECK(r.field() == 1);
  CHECK(r.varint() == 300);
  REQUIRE(r.next());
  CHECK(r.int64() == -5);
  REQUIRE(r.next());
  CHECK(r.string() == "abc");
  REQUIRE(r.next());
  std::vector<int64_t> ints;
  r.append(ints);
  CHECK(ints == std::vector<int64_t>{1, 200, 70000});
  REQUIRE(r.next());
  CHECK(r.fixed32_float() == 1.5f);
  CHECK_FALSE(r.next());
}

TEST_CASE("the wire reader refuses malformed bytes with the offset", "[onnx][protobuf]") {
  auto read_all = [](const std::vector<uint8_t>& b) {
    protobuf::Reader r(b.data(), b.size(), "M");
    while (r.next()) r.skip();
  };
  // A string that declares 10 bytes and has 2.
  CHECK_THROWS_WITH(read_all({0x0a, 0x0a, 'a', 'b'}), Catch::Contains("declares 10 bytes, 2 left") &&
                                                          Catch::Contains("at byte 0"));
  // A varint whose continuation bit never ends.
  CHECK_THROWS_WITH(read_all({0x08, 0xff, 0xff}), Catch::Contains("truncated varint"));
  CHECK_THROWS_WITH(read_all({0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}),
                    Catch::Contains("varint"));
  // Wire type 3 (a group) and 7 (no such type).
  CHECK_THROWS_WITH(read_all({0x0b}), Catch::Contains("group"));
  CHECK_THROWS_WITH(read_all({0x0f}), Catch::Contains("invalid wire type 7"));
  // Field number 0.
  CHECK_THROWS_WITH(read_all({0x00, 0x01}), Catch::Contains("invalid field number 0"));
  // A fixed32 cut short.
  CHECK_THROWS_WITH(read_all({0x0d, 0x00, 0x00}), Catch::Contains("needs 4 bytes"));
  // A varint field read as a string.
  const std::vector<uint8_t> b = {0x08, 0x01};
  protobuf::Reader r(b.data(), b.size(), "M");
  REQUIRE(r.next());
  CHECK_THROWS_WITH(r.string(), Catch::Contains("field 1 has wire type varint, expected length-delimited"));
}

TEST_CASE("decoded ONNX tensors keep their values, and their CRC-32 is zlib's", "[onnx][protobuf]") {
  const Pb m = onnx_model(onnx_graph({}, {onnx_tensor("w", {2, 2}, {1, 2, 3, 4}), onnx_int64_tensor("s", {2}, {0, -1})},
                                     {onnx_value_info("x", {-1, 4})}, {}));
  const std::vector<uint8_t> b = m.data();
  const onnx::ModelProto p = onnx::parse_onnx_model(b.data(), b.size());
  REQUIRE(p.graph.initializers.size() == 2);
  CHECK(onnx::tensor_floats(p.graph.initializers[0]) == std::vector<float>{1, 2, 3, 4});
  CHECK(onnx::tensor_int64s(p.graph.initializers[1]) == std::vector<int64_t>{0, -1});
  CHECK(p.opset_imports.at(0).second == 13);
  // zlib.crc32(struct.pack("<4f", 1, 2, 3, 4)) in Python.
  CHECK(onnx::tensor_crc32(p.graph.initializers[0]) == "8ba71454");
  CHECK(onnx::to_json(p)["graph"]["initializers"][1]["dims"] == json::array({2}));
}

TEST_CASE("an imported model is the igscope graph ONNX describes", "[onnx][import]") {
  Model imported = import_bytes(small_model(kConvW));
  const json arch = imported.architecture();
  INFO(arch.dump());
  // The asymmetric Conv padding became a pad2d in front of an unpadded conv;
  // 0.5 - x an affine of scale -1; MatMul + Add one dense.
  std::vector<std::string> types;
  for (size_t i = 0; i < imported.num_layers(); ++i) types.push_back(imported.layer(i).type());
  CHECK(types == std::vector<std::string>{"pad2d", "conv2d", "relu", "affine", "flatten", "dense"});
  CHECK(imported.layer(0).to_json()["padding"] == json({0, 1, 1, 0}));
  CHECK(imported.layer(1).to_json()["padding"] == json({0, 0}));
  CHECK(imported.layer(3).to_json()["scale"] == json({-1.0}));
  CHECK(imported.layer(3).to_json()["shift"] == json({0.5}));
  CHECK(imported.input_shape() == Shape({4, 4, 1}));

  // The same graph written by hand in igscope's form, with the MatMul's
  // [K, M] weight transposed into dense's [M, K].
  const json hand = {{"name", "hand"},
                     {"input", {4, 4, 1}},
                     {"layers",
                      {{{"type", "pad2d"}, {"padding", {0, 1, 1, 0}}},
                       {{"type", "conv2d"}, {"out_channels", 2}, {"kernel", {2, 2}}},
                       {{"type", "relu"}},
                       {{"type", "affine"}, {"scale", -1.0}, {"shift", 0.5}},
                       {{"type", "flatten"}},
                       {{"type", "dense"}, {"out_features", 3}}}}};
  Model reference(hand);
  for (auto& np : reference.named_parameters()) {
    Tensor& v = np.param->value;
    if (np.name == "1.weight") std::copy(kConvW.begin(), kConvW.end(), v.data());
    if (np.name == "1.bias") v[0] = 0.1f, v[1] = -0.2f;
    if (np.name == "5.weight") {
      const std::vector<float> m = iota(96, -1.0f, 0.02f);
      for (int64_t o = 0; o < 3; ++o)
        for (int64_t k = 0; k < 32; ++k) v[o * 32 + k] = m[static_cast<size_t>(k * 3 + o)];
    }
    if (np.name == "5.bias") v[0] = 1, v[1] = 2, v[2] = 3;
  }
  ReferenceBackend backend;
  Tensor x({2, 4, 4, 1});
  for (int64_t i = 0; i < x.size(); ++i) x[i] = std::sin(0.7f * static_cast<float>(i));
  const Tensor a = imported.forward(x, backend), b = reference.forward(x, backend);
  REQUIRE(a.shape() == b.shape());
  for (int64_t i = 0; i < a.size(); ++i) CHECK(a[i] == b[i]);

  // One output by hand: x = 0 everywhere, so conv = bias, relu(0.1) = 0.1 and
  // relu(-0.2) = 0 in every pixel; then 0.5 - r is 0.4 (channel 0) and 0.5
  // (channel 1); flatten is C, H, W: 16 values of 0.4, then 16 of 0.5.
  Tensor zero({1, 4, 4, 1});
  const Tensor z = imported.forward(zero, backend);
  const std::vector<float> m = iota(96, -1.0f, 0.02f);
  for (int64_t o = 0; o < 3; ++o) {
    double want = 1.0 + static_cast<double>(o);
    for (int64_t k = 0; k < 32; ++k) want += (k < 16 ? 0.4 : 0.5) * m[static_cast<size_t>(k * 3 + o)];
    CHECK(z[o] == Approx(want).epsilon(1e-6));
  }
}

TEST_CASE("import puts the input range and normalisation in front", "[onnx][import]") {
  OnnxImportOptions o;
  o.input_scale = 255.0;
  o.mean = {100.0};
  o.std = {50.0};
  o.classes = {"a", "b", "c"};
  o.name = "norm";
  Model m = import_bytes(small_model(kConvW), o);
  CHECK(m.name() == "norm");
  CHECK(m.class_names() == std::vector<std::string>{"a", "b", "c"});
  REQUIRE(m.layer(0).type() == "affine");
  CHECK(m.node_id(0) == "preprocess");
  // (255 p - 100) / 50 = 5.1 p - 2.
  CHECK(m.layer(0).to_json()["scale"][0].get<double>() == Approx(5.1));
  CHECK(m.layer(0).to_json()["shift"][0].get<double>() == Approx(-2.0));
  o.mean = {1, 2};
  CHECK_THROWS_WITH(import_bytes(small_model(kConvW), o), Catch::Contains("the mean has 2 values") &&
                                                              Catch::Contains("1 channel (give one value)"));
  o.mean = {0};
  o.classes = {"a"};
  CHECK_THROWS_WITH(import_bytes(small_model(kConvW), o), Catch::Contains("1 class names for a model of 3 outputs"));
}

TEST_CASE("the GELU pattern PyTorch exports becomes one gelu node", "[onnx][import]") {
  // y = (x * (erf(x / sqrt2) + 1)) * 0.5, then Flatten and Gemm.
  const std::vector<Pb> nodes = {
      onnx_node("Div", {"x", "sqrt2"}, {"d"}, "div"),   onnx_node("Erf", {"d"}, {"e"}, "erf"),
      onnx_node("Add", {"e", "one"}, {"a"}, "add"),     onnx_node("Mul", {"x", "a"}, {"m"}, "mul1"),
      onnx_node("Mul", {"m", "half"}, {"g"}, "mul2"),   onnx_node("Flatten", {"g"}, {"f"}, "flat"),
      onnx_node("Gemm", {"f", "w", "b"}, {"y"}, "fc", {onnx_attr_int("transB", 1), onnx_attr_float("alpha", 2.0f)}),
  };
  const std::vector<Pb> inits = {onnx_tensor("sqrt2", {}, {1.4142135f}), onnx_tensor("one", {}, {1.0f}),
                                 onnx_tensor("half", {}, {0.5f}), onnx_tensor("w", {2, 4}, iota(8, -0.5f, 0.25f)),
                                 onnx_tensor("b", {2}, {0.0f, 1.0f})};
  Model m = import_bytes(onnx_model(
      onnx_graph(nodes, inits, {onnx_value_info("x", {-1, 1, 2, 2})}, {onnx_value_info("y", {-1, 2})}), 17));
  REQUIRE(m.num_layers() == 3);
  CHECK(m.layer(0).type() == "gelu");
  CHECK(m.layer(0).to_json()["approximate"] == "none");
  ReferenceBackend backend;
  Tensor x({1, 2, 2, 1});
  x[0] = -1, x[1] = 0.5f, x[2] = 2, x[3] = 0;
  const Tensor y = m.forward(x, backend);
  auto gelu = [](double v) { return 0.5 * v * (1 + std::erf(v / std::sqrt(2.0))); };
  const std::vector<float> w = iota(8, -0.5f, 0.25f);
  for (int o = 0; o < 2; ++o) {
    double want = o;  // bias
    for (int k = 0; k < 4; ++k) want += 2.0 * w[static_cast<size_t>(o * 4 + k)] * gelu(x[k]);
    CHECK(y[o] == Approx(want).epsilon(1e-6));
  }
}

TEST_CASE("x.view(x.size(0), -1) as PyTorch exports it becomes a flatten", "[onnx][import]") {
  // Shape -> Gather(0) -> Unsqueeze(axes [0]) -> Concat with [-1] -> Reshape, then Gemm.
  const std::vector<Pb> nodes = {
      onnx_node("Relu", {"x"}, {"r"}, "relu"),
      onnx_node("Shape", {"r"}, {"s"}, "shape"),
      onnx_node("Gather", {"s", "zero"}, {"g"}, "gather", {onnx_attr_int("axis", 0)}),
      onnx_node("Unsqueeze", {"g", "axes"}, {"u"}, "unsqueeze"),
      onnx_node("Concat", {"u", "minus_one"}, {"target"}, "concat", {onnx_attr_int("axis", 0)}),
      onnx_node("Reshape", {"r", "target"}, {"f"}, "reshape"),
      onnx_node("Gemm", {"f", "w"}, {"y"}, "fc", {onnx_attr_int("transB", 1)}),
  };
  const std::vector<Pb> inits = {onnx_int64_tensor("zero", {}, {0}), onnx_int64_tensor("axes", {1}, {0}),
                                 onnx_int64_tensor("minus_one", {1}, {-1}), onnx_tensor("w", {2, 12}, iota(24, -1, 0.1f))};
  auto model = [&](std::vector<Pb> ns) {
    return onnx_model(onnx_graph(ns, inits, {onnx_value_info("x", {-1, 3, 2, 2})}, {onnx_value_info("y", {-1, 2})}));
  };
  Model m = import_bytes(model(nodes));
  std::vector<std::string> types;
  for (size_t i = 0; i < m.num_layers(); ++i) types.push_back(m.layer(i).type());
  CHECK(types == std::vector<std::string>{"relu", "flatten", "dense"});
  // The batch entry anywhere but first, or a shape used as a tensor, is refused.
  std::vector<Pb> swapped = nodes;
  swapped[4] = onnx_node("Concat", {"minus_one", "u"}, {"target"}, "concat", {onnx_attr_int("axis", 0)});
  CHECK_THROWS_WITH(import_bytes(model(swapped)), Catch::Contains("batch size may only be the target's first entry"));
  std::vector<Pb> misuse = nodes;
  misuse[5] = onnx_node("Relu", {"target"}, {"f"}, "relu_of_shape");
  CHECK_THROWS_WITH(import_bytes(model(misuse)), Catch::Contains("is a tensor's shape"));
  std::vector<Pb> gather_tensor = nodes;
  gather_tensor[2] = onnx_node("Gather", {"r", "zero"}, {"g"}, "gather", {onnx_attr_int("axis", 0)});
  CHECK_THROWS_WITH(import_bytes(model(gather_tensor)), Catch::Contains("Gather is supported only on a tensor's shape"));
}

TEST_CASE("bad ONNX models are refused with a message that says why", "[onnx][import][errors]") {
  const Pb good = small_model(kConvW);
  const std::vector<uint8_t> bytes = good.data();
  // Truncated: every cut inside the file is an error, never a crash or a model.
  for (size_t cut : {size_t{1}, size_t{7}, bytes.size() / 2, bytes.size() - 3}) {
    INFO("cut at " << cut);
    CHECK_THROWS_AS(import_onnx(bytes.data(), cut, {}), Error);
  }
  CHECK_THROWS_WITH(import_onnx(bytes.data(), 0, {}), Catch::Contains("empty"));
  // Not ONNX at all: a PNG signature.
  const std::vector<uint8_t> png = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  CHECK_THROWS_AS(import_onnx(png.data(), png.size(), {}), Error);

  auto graph_with = [](std::vector<Pb> nodes, std::vector<Pb> inits, int64_t opset = 13,
                       std::vector<int64_t> in_dims = {-1, 1, 2, 2}) {
    return onnx_model(onnx_graph(nodes, inits, {onnx_value_info("x", in_dims)}, {onnx_value_info("y", {-1, 2})}),
                      opset);
  };
  const Pb w = onnx_tensor("w", {2, 4}, iota(8, 0, 1));
  const std::vector<Pb> head = {onnx_node("Flatten", {"r"}, {"f"}, "flat"),
                                onnx_node("Gemm", {"f", "w"}, {"y"}, "fc", {onnx_attr_int("transB", 1)})};
  auto with_head = [&](std::vector<Pb> body) {
    body.insert(body.end(), head.begin(), head.end());
    return body;
  };
  // An operator the importer does not know: named, with its node and the list.
  CHECK_THROWS_WITH(import_bytes(graph_with(with_head({onnx_node("LSTM", {"x"}, {"r"}, "/rnn/LSTM")}), {w})),
                    Catch::Contains("operators not supported: LSTM (node '/rnn/LSTM')") &&
                        Catch::Contains("The importer converts: Conv, BatchNormalization"));
  CHECK_THROWS_WITH(import_bytes(graph_with(with_head({onnx_node("Relu", {"x"}, {"r"}, "relu")}), {w}, 9)),
                    Catch::Contains("opset 9") && Catch::Contains("11 to 18"));
  // A cycle: relu reads what a later node writes.
  CHECK_THROWS_WITH(import_bytes(graph_with({onnx_node("Relu", {"t"}, {"r"}, "relu"),
                                             onnx_node("Flatten", {"r"}, {"f"}, "flat"),
                                             onnx_node("Relu", {"f"}, {"t"}, "loop"),
                                             onnx_node("Gemm", {"f", "w"}, {"y"}, "fc", {onnx_attr_int("transB", 1)})},
                                            {w})),
                    Catch::Contains("before the node that produces it ('loop')") && Catch::Contains("cycle"));
  CHECK_THROWS_WITH(import_bytes(graph_with(with_head({onnx_node("Relu", {"nowhere"}, {"r"}, "relu")}), {w})),
                    Catch::Contains("dangling input"));
  // NaN weights.
  const Pb nan_w = onnx_tensor("w", {2, 4}, {0, 1, 2, std::numeric_limits<float>::quiet_NaN(), 4, 5, 6, 7});
  CHECK_THROWS_WITH(import_bytes(graph_with(with_head({onnx_node("Relu", {"x"}, {"r"}, "relu")}), {nan_w})),
                    Catch::Contains("'w' holds a NaN"));
  // An input that is neither an image nor flat features.
  CHECK_THROWS_WITH(
      import_bytes(graph_with(with_head({onnx_node("Relu", {"x"}, {"r"}, "relu")}), {w}, 13, {-1, 4, 2})),
      Catch::Contains("has shape [batch, 4, 2]") && Catch::Contains("image [N, C, H, W]"));
  // Supported operators used in ways that are not.
  CHECK_THROWS_WITH(
      import_bytes(graph_with(with_head({onnx_node("Clip", {"x", "lo", "hi"}, {"r"}, "clip")}),
                              {w, onnx_tensor("lo", {}, {-1.0f}), onnx_tensor("hi", {}, {1.0f})})),
      Catch::Contains("ONNX node 'clip' (Clip)") && Catch::Contains("only [0, 6] (ReLU6) and [0, +inf) (ReLU)"));
  CHECK_THROWS_WITH(import_bytes(graph_with(with_head({onnx_node("Sub", {"x", "x"}, {"r"}, "sub")}), {w})),
                    Catch::Contains("Sub of two computed tensors"));
  CHECK_THROWS_WITH(import_bytes(graph_with(with_head({onnx_node("Erf", {"x"}, {"r"}, "erf")}), {w})),
                    Catch::Contains("only inside the GELU pattern"));
  CHECK_THROWS_WITH(import_bytes(graph_with(with_head({onnx_node("Softmax", {"x"}, {"r"}, "sm")}), {w})),
                    Catch::Contains("softmax over the classes"));
  // Weights in a side file, where none can be read (the page).
  Pb external;
  Pb location;
  location.bytes(1, "location").bytes(2, "weights.bin");
  external.packed_ints(1, {2, 4}).varint(2, 1).bytes(8, "w").message(13, location).varint(14, 1);
  CHECK_THROWS_WITH(import_bytes(graph_with(with_head({onnx_node("Relu", {"x"}, {"r"}, "relu")}), {external})),
                    Catch::Contains("side file (ONNX external data)"));
  // ... and read through the callback where it can (the command).
  OnnxImportOptions o;
  o.read_external = [](const std::string& where, uint64_t offset, int64_t length) {
    CHECK(where == "weights.bin");
    CHECK(offset == 0);
    CHECK(length == -1);
    std::string s(32, '\0');
    const std::vector<float> v = iota(8, 0, 1);
    std::memcpy(s.data(), v.data(), 32);
    return s;
  };
  CHECK_NOTHROW(import_bytes(graph_with(with_head({onnx_node("Relu", {"x"}, {"r"}, "relu")}), {external}), o));
}

TEST_CASE("inputs the fuzzer found are refused with a message", "[onnx][import][errors]") {
  auto model = [](std::vector<Pb> nodes, std::vector<Pb> inits) {
    return onnx_model(
        onnx_graph(nodes, inits, {onnx_value_info("x", {-1, 1, 2, 2})}, {onnx_value_info("y", {-1, 2})}), 17);
  };
  const Pb w = onnx_tensor("w", {2, 4}, iota(8, -0.5f, 0.25f));
  const Pb fc = onnx_node("Gemm", {"f", "w"}, {"y"}, "fc", {onnx_attr_int("transB", 1)});
  // A Reshape without its target shape (was an unchecked input 1).
  CHECK_THROWS_WITH(import_bytes(model({onnx_node("Reshape", {"x"}, {"f"}, "reshape"), fc}, {w})),
                    Catch::Contains("'reshape'") && Catch::Contains("target shape"));
  // The GELU pattern around a value no node produces (was an unchecked lookup).
  const std::vector<Pb> gelu_inits = {onnx_tensor("sqrt2", {}, {1.4142135f}), onnx_tensor("one", {}, {1.0f}),
                                      onnx_tensor("half", {}, {0.5f}), w};
  CHECK_THROWS_WITH(import_bytes(model({onnx_node("Div", {"nowhere", "sqrt2"}, {"d"}, "div"),
                                        onnx_node("Erf", {"d"}, {"e"}, "erf"), onnx_node("Add", {"e", "one"}, {"a"}, "add"),
                                        onnx_node("Mul", {"nowhere", "a"}, {"m"}, "mul1"),
                                        onnx_node("Mul", {"m", "half"}, {"g"}, "mul2"),
                                        onnx_node("Flatten", {"g"}, {"f"}, "flat"), fc},
                                       gelu_inits)),
                    Catch::Contains("'nowhere'") && Catch::Contains("dangling input"));
  // A weight whose packed values are empty (an empty copy; UBSan's null-pointer finding).
  CHECK_THROWS_WITH(import_bytes(model({onnx_node("Flatten", {"x"}, {"f"}, "flat"), fc}, {onnx_tensor("w", {2, 4}, {})})),
                    Catch::Contains("holds 0 values, the dims need 8"));
}

TEST_CASE("import options as the command's flags and the page's fields write them", "[onnx][import]") {
  const OnnxImportOptions o = parse_onnx_import_options("0:255", "123.675, 116.28,103.53", "58.395");
  CHECK(o.input_scale == 255.0);
  CHECK(o.mean == std::vector<double>{123.675, 116.28, 103.53});
  CHECK(o.std == std::vector<double>{58.395});
  const OnnxImportOptions none = parse_onnx_import_options("0:1", "", " ");
  CHECK(none.input_scale == 1.0);
  CHECK(none.mean.empty());
  CHECK(none.std.empty());
  CHECK_THROWS_WITH(parse_onnx_import_options("0:100", "", ""), Catch::Contains("0:1 or 0:255, not '0:100'"));
  CHECK_THROWS_WITH(parse_onnx_import_options("0:1", "0.5,x", ""), Catch::Contains("the mean: 'x' is not a number"));
  CHECK_THROWS_WITH(parse_onnx_import_options("0:1", "", "0.2,,0.3"), Catch::Contains("the std: '' is not a number"));
  CHECK_THROWS_WITH(parse_onnx_import_options("0:1", "nan", ""), Catch::Contains("'nan' is not a number"));
  CHECK_THROWS_WITH(parse_onnx_import_options("0:1", "0.5 0.4", ""), Catch::Contains("'0.5 0.4' is not a number"));
}
