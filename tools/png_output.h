#pragma once
// Writing PNG files (stb_image_write), for the subcommands that draw.
#include <cstdint>
#include <string>

#include "igscope/attribution/heatmap.h"
#include "igscope/tensor.h"

namespace igscope::tools {

// Throws Error when the file cannot be written.
void write_png(const std::string& path, const RgbImage& image);
// An image [1, H, W, C] of 1 or 3 channels in [0, 1] as 8-bit grey or RGB
// (values clamped to [0, 1], then rounded).
void write_image_png(const std::string& path, const Tensor& image);

}  // namespace igscope::tools
