#include "igscope/safetensors.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>

#include <nlohmann/json.hpp>

namespace igscope {

const char* to_string(ModelFileErrorKind kind) {
  switch (kind) {
    case ModelFileErrorKind::Io: return "io";
    case ModelFileErrorKind::Truncated: return "truncated";
    case ModelFileErrorKind::HeaderLength: return "header length";
    case ModelFileErrorKind::HeaderJson: return "header json";
    case ModelFileErrorKind::Dtype: return "dtype";
    case ModelFileErrorKind::Offsets: return "offsets";
    case ModelFileErrorKind::Overlap: return "overlap";
    case ModelFileErrorKind::NoArchitecture: return "no architecture";
    case ModelFileErrorKind::Architecture: return "architecture";
    case ModelFileErrorKind::MissingTensor: return "missing tensor";
    case ModelFileErrorKind::UnexpectedTensor: return "unexpected tensor";
    case ModelFileErrorKind::ShapeMismatch: return "shape mismatch";
    case ModelFileErrorKind::NonFinite: return "non-finite value";
  }
  return "unknown";
}

namespace {

using K = ModelFileErrorKind;
constexpr uint64_t kMaxHeaderBytes = 100ull << 20;

uint64_t read_u64_le(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

struct Span {
  std::string name;
  uint64_t begin, end;
};

}  // namespace

SafetensorsContents parse_safetensors(const uint8_t* bytes, size_t size) {
  if (size < 8)
    throw ModelFileError(K::Truncated, "the file has " + std::to_string(size) +
                                           " bytes, fewer than the 8-byte header length");
  const uint64_t header_len = read_u64_le(bytes);
  if (header_len > size - 8 || header_len > kMaxHeaderBytes)
    throw ModelFileError(K::HeaderLength, "header length " + std::to_string(header_len) +
                                              " runs past the end of the file (" +
                                              std::to_string(size) + " bytes)");
  const char* header_begin = reinterpret_cast<const char*>(bytes + 8);
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(header_begin, header_begin + header_len);
  } catch (const nlohmann::json::exception& e) {
    throw ModelFileError(K::HeaderJson, std::string("header is not valid JSON: ") + e.what());
  }
  if (!header.is_object()) throw ModelFileError(K::HeaderJson, "header is not a JSON object");

  const uint8_t* data = bytes + 8 + header_len;
  const uint64_t data_size = size - 8 - header_len;
  SafetensorsContents out;
  std::vector<Span> spans;
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") {
      if (!entry.is_object()) throw ModelFileError(K::HeaderJson, "__metadata__ is not an object");
      for (const auto& [key, value] : entry.items()) {
        if (!value.is_string())
          throw ModelFileError(K::HeaderJson, "__metadata__ value '" + key + "' is not a string");
        out.metadata[key] = value.get<std::string>();
      }
      continue;
    }
    if (!entry.is_object() || !entry.contains("dtype") || !entry.contains("shape") ||
        !entry.contains("data_offsets") || !entry["dtype"].is_string() ||
        !entry["shape"].is_array() || !entry["data_offsets"].is_array() ||
        entry["data_offsets"].size() != 2)
      throw ModelFileError(K::HeaderJson, "tensor '" + name +
                                              "' needs dtype (string), shape (array) and "
                                              "data_offsets ([begin, end])");
    const std::string dtype = entry["dtype"].get<std::string>();
    const bool is_i64 = dtype == "I64";
    if (dtype != "F32" && !is_i64)
      throw ModelFileError(K::Dtype, "tensor '" + name + "' has dtype " + dtype +
                                         "; igscope reads only F32 (float32), and I64 for batchnorm's "
                                         "num_batches_tracked");
    Shape shape;
    for (const auto& d : entry["shape"]) {
      if (!d.is_number_unsigned() || d.get<uint64_t>() > (1ull << 40))
        throw ModelFileError(K::HeaderJson, "tensor '" + name + "' has an invalid shape " + entry["shape"].dump());
      shape.push_back(d.get<int64_t>());
    }
    const auto& off = entry["data_offsets"];
    if (!off[0].is_number_unsigned() || !off[1].is_number_unsigned())
      throw ModelFileError(K::Offsets, "tensor '" + name + "' has non-integer data_offsets " + off.dump());
    const uint64_t begin = off[0].get<uint64_t>(), end = off[1].get<uint64_t>();
    uint64_t expected = is_i64 ? sizeof(int64_t) : sizeof(float);
    for (int64_t d : shape) {
      expected *= static_cast<uint64_t>(d);
      if (expected > data_size) break;  // also keeps the product from overflowing
    }
    if (begin > end || end > data_size)
      throw ModelFileError(K::Offsets, "tensor '" + name + "' has data_offsets [" +
                                           std::to_string(begin) + ", " + std::to_string(end) +
                                           "] outside the " + std::to_string(data_size) +
                                           "-byte data section (is the file truncated?)");
    if (end - begin != expected)
      throw ModelFileError(K::Offsets, "tensor '" + name + "' of shape " + shape_to_string(shape) +
                                           " needs " + std::to_string(expected) + " bytes but its data_offsets span " +
                                           std::to_string(end - begin));
    spans.push_back({name, begin, end});
    Tensor t(shape);
    if (is_i64) {
      // Exact in float up to 2^24; a counter beyond that is refused rather than rounded.
      for (int64_t i = 0; i < t.size(); ++i) {
        int64_t v = 0;
        std::memcpy(&v, data + begin + static_cast<uint64_t>(i) * sizeof(int64_t), sizeof(int64_t));
        if (v < -(int64_t{1} << 24) || v > (int64_t{1} << 24))
          throw ModelFileError(K::Dtype, "I64 tensor '" + name + "' holds " + std::to_string(v) +
                                             ", beyond the 2^24 igscope holds exactly");
        t[i] = static_cast<float>(v);
      }
      out.int64_tensors.insert(name);
    } else if (expected) {
      std::memcpy(t.data(), data + begin, static_cast<size_t>(expected));
    }
    out.tensors.emplace(name, std::move(t));
  }
  std::sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) { return a.begin < b.begin; });
  for (size_t i = 1; i < spans.size(); ++i)
    if (spans[i].begin < spans[i - 1].end)
      throw ModelFileError(K::Overlap, "tensors '" + spans[i - 1].name + "' and '" + spans[i].name +
                                           "' overlap in the data section");
  return out;
}

std::vector<uint8_t> serialize_safetensors(const std::vector<std::pair<std::string, const Tensor*>>& tensors,
                                           const std::map<std::string, std::string>& metadata,
                                           const std::set<std::string>& int64_names) {
  nlohmann::json header = nlohmann::json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    const bool i64 = int64_names.count(name) > 0;
    const uint64_t bytes = static_cast<uint64_t>(t->size()) * (i64 ? sizeof(int64_t) : sizeof(float));
    header[name] = {{"dtype", i64 ? "I64" : "F32"}, {"shape", t->shape()}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string text = header.dump();
  while ((8 + text.size()) % 8 != 0) text.push_back(' ');
  std::vector<uint8_t> out(8 + text.size() + static_cast<size_t>(offset));
  const uint64_t n = text.size();
  for (int i = 0; i < 8; ++i) out[static_cast<size_t>(i)] = static_cast<uint8_t>(n >> (8 * i));
  std::memcpy(out.data() + 8, text.data(), text.size());
  uint8_t* data = out.data() + 8 + text.size();
  for (const auto& [name, t] : tensors) {
    if (int64_names.count(name)) {
      for (int64_t i = 0; i < t->size(); ++i) {
        const int64_t v = std::llround((*t)[i]);
        std::memcpy(data, &v, sizeof(v));
        data += sizeof(v);
      }
      continue;
    }
    const size_t bytes = static_cast<size_t>(t->size()) * sizeof(float);
    if (bytes) std::memcpy(data, t->data(), bytes);
    data += bytes;
  }
  return out;
}

std::vector<uint8_t> read_file_bytes(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::exists(path, ec) && !std::filesystem::is_regular_file(path, ec))
    throw ModelFileError(K::Io, "'" + path + "' is not a regular file");
  std::ifstream f(path, std::ios::binary | std::ios::ate);
  if (!f) throw ModelFileError(K::Io, "cannot open '" + path + "'");
  const std::streamsize size = static_cast<std::streamsize>(f.tellg());
  if (size < 0) throw ModelFileError(K::Io, "cannot read '" + path + "'");
  std::vector<uint8_t> bytes(static_cast<size_t>(size));
  f.seekg(0);
  if (size > 0 && !f.read(reinterpret_cast<char*>(bytes.data()), size))
    throw ModelFileError(K::Io, "cannot read '" + path + "'");
  return bytes;
}

void write_file_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (!f) throw Error("cannot open '" + path + "' for writing");
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  if (!f) throw Error("cannot write '" + path + "'");
}

}  // namespace igscope
