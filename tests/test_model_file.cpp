// The model file: round trip, and every kind of bad file refused with its own
// clear error (never a crash).
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <limits>

#include "igscope/model.h"
#include "igscope/safetensors.h"

using namespace igscope;
using nlohmann::json;
using K = ModelFileErrorKind;

namespace {

// A small model: conv 2x2 1->2, relu, flatten, dense 3.
json small_architecture() {
  return json::parse(R"({"name": "small", "input": [3, 3, 1], "layers": [
    {"type": "conv2d", "out_channels": 2, "kernel": [2, 2]},
    {"type": "relu"}, {"type": "flatten"}, {"type": "dense", "out_features": 3}]})");
}

std::vector<uint8_t> valid_file() {
  Model m(small_architecture());
  m.init_he(1);
  return model_to_bytes(m);
}

// Assembles a file from a header and a data section.
std::vector<uint8_t> assemble(const json& header, const std::vector<uint8_t>& data) {
  const std::string text = header.dump();
  std::vector<uint8_t> out(8 + text.size() + data.size());
  const uint64_t n = text.size();
  std::memcpy(out.data(), &n, 8);
  std::memcpy(out.data() + 8, text.data(), text.size());
  if (!data.empty()) std::memcpy(out.data() + 8 + text.size(), data.data(), data.size());
  return out;
}

// Splits a file into its header and data section.
std::pair<json, std::vector<uint8_t>> split(const std::vector<uint8_t>& file) {
  uint64_t n = 0;
  std::memcpy(&n, file.data(), 8);
  json header = json::parse(file.begin() + 8, file.begin() + 8 + static_cast<long>(n));
  return {header, std::vector<uint8_t>(file.begin() + 8 + static_cast<long>(n), file.end())};
}

uint64_t h_offset(const json& header, const std::string& name) {
  return header.at(name).at("data_offsets").at(0).get<uint64_t>();
}

K load_error_kind(const std::vector<uint8_t>& bytes, std::string* message = nullptr) {
  try {
    load_model_bytes(bytes.data(), bytes.size());
  } catch (const ModelFileError& e) {
    if (message) *message = e.what();
    return e.kind();
  }
  FAIL("the file was accepted");
  return K::Io;
}

}  // namespace

TEST_CASE("a saved model loads back with the same architecture and values", "[model_file]") {
  Model m(small_architecture());
  m.init_he(3);
  const std::vector<uint8_t> bytes = model_to_bytes(m);
  Model back = load_model_bytes(bytes.data(), bytes.size());
  CHECK(back.architecture() == m.architecture());
  auto a = m.named_parameters(), b = back.named_parameters();
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    CHECK(a[i].name == b[i].name);
    REQUIRE(a[i].param->value.shape() == b[i].param->value.shape());
    CHECK(std::memcmp(a[i].param->value.data(), b[i].param->value.data(),
                      static_cast<size_t>(a[i].param->value.size()) * 4) == 0);
  }
  // PyTorch nn.Sequential names: layer index, then weight / bias.
  CHECK(a[0].name == "0.weight");
  CHECK(a[3].name == "3.bias");
  // The header is padded so the data section starts 8-byte aligned.
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  CHECK((8 + n) % 8 == 0);
}

TEST_CASE("bad model files are refused with distinct, clear errors", "[model_file]") {
  const std::vector<uint8_t> good = valid_file();
  REQUIRE_NOTHROW(load_model_bytes(good.data(), good.size()));
  auto [header, data] = split(good);
  std::string msg;

  SECTION("shorter than the header length") {
    CHECK(load_error_kind(std::vector<uint8_t>(good.begin(), good.begin() + 5), &msg) == K::Truncated);
    CHECK_THAT(msg, Catch::Contains("fewer than the 8-byte header length"));
  }
  SECTION("truncated inside the data section") {
    CHECK(load_error_kind(std::vector<uint8_t>(good.begin(), good.end() - 10), &msg) == K::Offsets);
    CHECK_THAT(msg, Catch::Contains("truncated"));
  }
  SECTION("header length past the end of the file") {
    std::vector<uint8_t> bad = good;
    const uint64_t huge = good.size() + 1;
    std::memcpy(bad.data(), &huge, 8);
    CHECK(load_error_kind(bad, &msg) == K::HeaderLength);
    CHECK_THAT(msg, Catch::Contains("runs past the end"));
    const uint64_t absurd = std::numeric_limits<uint64_t>::max();
    std::memcpy(bad.data(), &absurd, 8);
    CHECK(load_error_kind(bad) == K::HeaderLength);
  }
  SECTION("invalid JSON header") {
    std::vector<uint8_t> bad = good;
    bad[8] = 'x';  // the opening brace
    CHECK(load_error_kind(bad, &msg) == K::HeaderJson);
    CHECK_THAT(msg, Catch::Contains("not valid JSON"));
    CHECK(load_error_kind(assemble(json::array({1, 2}), data)) == K::HeaderJson);
    json h = header;
    h["0.weight"].erase("shape");
    CHECK(load_error_kind(assemble(h, data)) == K::HeaderJson);
  }
  SECTION("wrong dtype") {
    json h = header;
    h["0.weight"]["dtype"] = "F16";
    CHECK(load_error_kind(assemble(h, data), &msg) == K::Dtype);
    CHECK_THAT(msg, Catch::Contains("0.weight") && Catch::Contains("F16"));
  }
  SECTION("shape that does not match the architecture") {
    json h = header;
    h["0.weight"]["shape"] = {2, 1, 1, 4};  // same byte count, wrong shape
    CHECK(load_error_kind(assemble(h, data), &msg) == K::ShapeMismatch);
    CHECK_THAT(msg, Catch::Contains("[2, 1, 2, 2]"));
  }
  SECTION("shape inconsistent with its own offsets") {
    json h = header;
    h["0.weight"]["shape"] = {2, 1, 2, 3};
    CHECK(load_error_kind(assemble(h, data)) == K::Offsets);
  }
  SECTION("out-of-range offsets") {
    json h = header;
    h["3.bias"]["data_offsets"] = {data.size() - 4, data.size() + 8};
    CHECK(load_error_kind(assemble(h, data)) == K::Offsets);
    h["3.bias"]["data_offsets"] = {12, 0};
    CHECK(load_error_kind(assemble(h, data)) == K::Offsets);
    h["3.bias"]["data_offsets"] = {-4, 8};
    CHECK(load_error_kind(assemble(h, data)) == K::Offsets);
  }
  SECTION("overlapping offsets") {
    json h = header;
    h["0.bias"]["data_offsets"] = h["3.bias"]["data_offsets"];
    h["0.bias"]["shape"] = h["3.bias"]["shape"];
    CHECK(load_error_kind(assemble(h, data), &msg) == K::Overlap);
    CHECK_THAT(msg, Catch::Contains("overlap"));
  }
  SECTION("NaN and infinite weights") {
    for (float bad_value : {std::nanf(""), std::numeric_limits<float>::infinity()}) {
      std::vector<uint8_t> d = data;
      const uint64_t at = h_offset(header, "3.weight");
      std::memcpy(d.data() + at + 4, &bad_value, 4);
      CHECK(load_error_kind(assemble(header, d), &msg) == K::NonFinite);
      CHECK_THAT(msg, Catch::Contains("3.weight") && Catch::Contains("index 1"));
    }
  }
  SECTION("unknown layer type") {
    json h = header;
    json arch = json::parse(h["__metadata__"]["architecture"].get<std::string>());
    arch["layers"][1]["type"] = "mish";
    h["__metadata__"]["architecture"] = arch.dump();
    CHECK(load_error_kind(assemble(h, data), &msg) == K::Architecture);
    CHECK_THAT(msg, Catch::Contains("unknown layer type 'mish'"));
  }
  SECTION("architecture that is not JSON, or missing") {
    json h = header;
    h["__metadata__"]["architecture"] = "{not json";
    CHECK(load_error_kind(assemble(h, data)) == K::Architecture);
    h["__metadata__"].erase("architecture");
    CHECK(load_error_kind(assemble(h, data)) == K::NoArchitecture);
  }
  SECTION("a tensor missing, or one too many") {
    json h = header;
    h.erase("3.bias");
    CHECK(load_error_kind(assemble(h, data), &msg) == K::MissingTensor);
    CHECK_THAT(msg, Catch::Contains("3.bias"));
    json extra = header;
    extra["9.weight"] = {{"dtype", "F32"}, {"shape", json::array()}, {"data_offsets", {data.size(), data.size() + 4}}};
    std::vector<uint8_t> d = data;
    d.resize(d.size() + 4);
    CHECK(load_error_kind(assemble(extra, d)) == K::UnexpectedTensor);
  }
  SECTION("a missing file, or a directory") {
    CHECK_THROWS_WITH(load_model("/nonexistent/igscope/model.safetensors"), Catch::Contains("cannot open"));
    CHECK_THROWS_WITH(load_model("."), Catch::Contains("not a regular file"));
  }
}

TEST_CASE("every prefix and every single-byte corruption of a file is refused or loaded, never a crash",
          "[model_file]") {
  const std::vector<uint8_t> good = valid_file();
  for (size_t len = 0; len < good.size(); ++len) {
    std::vector<uint8_t> prefix(good.begin(), good.begin() + static_cast<long>(len));
    CHECK_THROWS_AS(load_model_bytes(prefix.data(), prefix.size()), ModelFileError);
  }
  for (size_t i = 0; i < good.size(); ++i) {
    std::vector<uint8_t> bad = good;
    bad[i] ^= 0xA5;
    try {
      load_model_bytes(bad.data(), bad.size());
    } catch (const ModelFileError&) {
      // refused with a clear error: fine
    }
  }
}
