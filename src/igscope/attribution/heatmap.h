#pragma once
// Heatmaps of attributions as RGB pixels (the command line writes them as
// PNG; the web page draws the same on canvases).
//
//   signed     red for positive attribution (for the target), blue for
//              negative (against), white at zero
//   magnitude  |attribution| from black through red and yellow to white
//   positive   only the positive part, white to red
//
// Values are divided by a clip level: the given percentile of |attribution|
// over all pixels (100: the largest), and clipped to [-1, 1]. With overlay
// > 0, the heat is laid over the grey-scale input, with opacity
// overlay * |value|, so that unattributed pixels show the input.
#include <cstdint>
#include <string>
#include <vector>

#include "igscope/tensor.h"

namespace igscope {

enum class HeatmapStyle { Signed, Magnitude, Positive };
HeatmapStyle parse_heatmap_style(const std::string& name);  // throws Error

struct HeatmapOptions {
  HeatmapStyle style = HeatmapStyle::Signed;
  double clip_percentile = 99.0;  // in (0, 100]
  double overlay = 0.0;           // in [0, 1]; 0: no overlay
  int64_t scale = 1;              // each pixel becomes scale x scale pixels
  double input_lo = 0.0, input_hi = 1.0;  // the input's range, for the grey-scale overlay
};

struct RgbImage {
  int64_t width = 0, height = 0;
  std::vector<uint8_t> pixels;  // row-major, 3 bytes per pixel
};

// The percentile p (in (0, 100]) of |values|, by the nearest-rank method.
double abs_percentile(const std::vector<float>& values, double p);

// attributions: [1, H, W, C] or [H, W, C] (channels summed). input (optional,
// same shape) is needed for overlay > 0. Throws Error on bad options.
RgbImage render_heatmap(const Tensor& attributions, const Tensor* input, const HeatmapOptions& options);

}  // namespace igscope
