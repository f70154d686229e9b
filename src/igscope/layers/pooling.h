#pragma once
// What the pooling layers share: the window hyper-parameters of maxpool2d and
// avgpool2d (PyTorch's kernel_size, stride, padding, ceil_mode), and the
// reading of the three pooling kinds from architecture JSON.
//
//   {"type": "maxpool2d", "kernel": 3, "stride": 2, "padding": 1, "ceil_mode": true}
//   {"type": "avgpool2d", "kernel": [2, 2], "count_include_pad": false}
//   {"type": "global_avgpool"}
//
// kernel is required; stride defaults to the kernel, padding to 0, ceil_mode
// to false, count_include_pad (avgpool2d only) to true, as in PyTorch. Each
// of kernel, stride and padding is an integer or [h, w].
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "igscope/backend/backend.h"
#include "igscope/layers/layer.h"
#include "igscope/tensor.h"

namespace igscope {

struct PoolWindow {
  int64_t kernel_h = 1, kernel_w = 1;
  int64_t stride_h = 1, stride_w = 1;
  int64_t pad_h = 0, pad_w = 0;
  bool ceil_mode = false;

  // Throws igscope::Error, naming `type`, unless kernel and stride are >= 1
  // and 0 <= padding <= kernel / 2 (PyTorch's rule).
  void check(const std::string& type) const;
  // The geometry for an input [N, H, W, C]; throws igscope::Error, naming
  // `type`, when the input is not an image or the padded input is smaller
  // than the window.
  Pool2dGeometry geometry(const Shape& in, const std::string& type) const;
  // Adds "kernel" and "stride", and "padding" and "ceil_mode" when
  // `always` or when they differ from the defaults.
  void write(nlohmann::json& j, bool always) const;
  // Reads "kernel", "stride", "padding" and "ceil_mode" (see above).
  static PoolWindow read(const nlohmann::json& spec, const std::string& type);
};

// The architecture type names handled here.
bool is_pooling_type(const std::string& type);
// The layer for an architecture entry whose "type" is maxpool2d, avgpool2d or
// global_avgpool, for input `in` (batch included). Throws igscope::Error on
// a bad hyper-parameter, a key the type does not take, or non-image input.
std::unique_ptr<Layer> make_pooling_layer(const nlohmann::json& spec, const Shape& in);

}  // namespace igscope
