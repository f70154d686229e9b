#pragma once
// The .safetensors container: an 8-byte little-endian header length N, N
// bytes of JSON ({name: {dtype, shape, data_offsets}, "__metadata__": {...}}),
// then the raw little-endian tensor bytes. igscope stores float32, except
// batchnorm's num_batches_tracked, which PyTorch stores as int64 (I64): the
// container reads I64 tensors into float tensors and names them in
// int64_tensors; the model refuses I64 anywhere else.
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "igscope/error.h"
#include "igscope/tensor.h"

namespace igscope {

// Why a model file was refused; each has its own message.
enum class ModelFileErrorKind {
  Io,                // cannot open or read the file
  Truncated,         // shorter than the 8-byte header length
  HeaderLength,      // header length past the end of the file (or absurd)
  HeaderJson,        // header is not valid JSON or not the expected structure
  Dtype,             // a tensor is not F32 (or I64 where the model allows it)
  Offsets,           // data_offsets out of range or inconsistent with the shape
  Overlap,           // two tensors share bytes
  NoArchitecture,    // no architecture in __metadata__
  Architecture,      // architecture JSON invalid (unknown layer type, bad field)
  MissingTensor,     // the architecture needs a tensor the file lacks
  UnexpectedTensor,  // the file has a tensor the architecture does not use
  ShapeMismatch,     // a tensor's shape differs from what the architecture needs
  NonFinite,         // a NaN or infinity among the values
};

const char* to_string(ModelFileErrorKind kind);

class ModelFileError : public Error {
 public:
  ModelFileError(ModelFileErrorKind kind, const std::string& message)
      : Error(std::string("invalid model file (") + to_string(kind) + "): " + message),
        kind_(kind),
        detail_(message) {}
  ModelFileErrorKind kind() const { return kind_; }
  const std::string& detail() const { return detail_; }

 private:
  ModelFileErrorKind kind_;
  std::string detail_;
};

struct SafetensorsContents {
  std::map<std::string, std::string> metadata;
  std::map<std::string, Tensor> tensors;
  std::set<std::string> int64_tensors;  // the tensors stored as I64 (values converted to float)
};

// Parses and validates the container (header length, JSON, dtypes, offsets,
// overlaps). Does not check values or names: that is the model's job.
SafetensorsContents parse_safetensors(const uint8_t* bytes, size_t size);

// Serialises tensors in the given order; the header is padded to 8 bytes.
// Tensors named in int64_names are written as I64 (their values rounded).
std::vector<uint8_t> serialize_safetensors(const std::vector<std::pair<std::string, const Tensor*>>& tensors,
                                           const std::map<std::string, std::string>& metadata,
                                           const std::set<std::string>& int64_names = {});

std::vector<uint8_t> read_file_bytes(const std::string& path);
void write_file_bytes(const std::string& path, const std::vector<uint8_t>& bytes);

}  // namespace igscope
