#pragma once
// ONNX to igscope: converts an ONNX model (default-domain opsets 11 to 18)
// into igscope's graph form, weights and all. It converts, it does not
// interpret: every ONNX node becomes one igscope node (or folds into one:
// an asymmetric Conv padding adds a pad2d, the Div-Erf-Add-Mul-Mul pattern
// PyTorch exports for GELU becomes one gelu, MatMul + Add one dense,
// Identity and Dropout disappear), and anything else is refused with a
// message naming the operator, the node and what is supported. ONNX's NCHW
// becomes igscope's NHWC: weights keep PyTorch's layouts (which ONNX shares),
// concat joins channels, flatten keeps the C, H, W order.
//
// What ONNX does not record comes from the options: the input range and the
// per-channel normalisation the model expects become the model's first node
// (an affine map from pixels in [0, 1]), so attributions are in the pixel
// space the user sees.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "igscope/error.h"
#include "igscope/model.h"

namespace igscope {

struct OnnxImportOptions {
  // What the model's input units are per pixel in [0, 1]: 1 for a model
  // that takes [0, 1], 255 for one that takes [0, 255].
  double input_scale = 1.0;
  // The normalisation the model expects, in its input units: (x - mean) / std
  // per channel (one value, or one per channel); empty means none.
  std::vector<double> mean, std;
  std::vector<std::string> classes;  // empty, or one name per output
  std::string name;                  // empty: the ONNX graph's name
  // Reads `length` bytes at `offset` of an external-data side file (its
  // "location", relative to the model file); length -1 means to the end. Null
  // where side files cannot be read (the web page): such models are refused.
  std::function<std::string(const std::string& location, uint64_t offset, int64_t length)> read_external;
};

// Throws Error (protobuf::WireError for malformed bytes) with a message that
// says what is wrong; nothing is returned half-built.
Model import_onnx(const uint8_t* bytes, size_t size, const OnnxImportOptions& options);

// The options as a user writes them (the command's flags, the page's fields):
// range "0:1" or "0:255", mean and std as comma-separated numbers, one per
// channel or one for all ("" for none). Throws Error naming the bad field.
OnnxImportOptions parse_onnx_import_options(const std::string& range, const std::string& mean, const std::string& std);

// The ONNX operators the importer converts, in the order the docs list them.
const std::vector<std::string>& supported_onnx_operators();

}  // namespace igscope
