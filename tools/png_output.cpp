#include "png_output.h"

#include <algorithm>
#include <cmath>
#include <vector>

#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb/stb_image_write.h>

#include "igscope/error.h"

namespace igscope::tools {

namespace {

void write(const std::string& path, int64_t w, int64_t h, int64_t c, const uint8_t* pixels) {
  if (!stbi_write_png(path.c_str(), static_cast<int>(w), static_cast<int>(h), static_cast<int>(c), pixels,
                      static_cast<int>(w * c)))
    throw Error("cannot write '" + path + "'");
}

}  // namespace

void write_png(const std::string& path, const RgbImage& image) {
  write(path, image.width, image.height, 3, image.pixels.data());
}

void write_image_png(const std::string& path, const Tensor& image) {
  if (image.rank() != 4 || image.dim(0) != 1)
    throw Error("a PNG holds one image [1, H, W, C], not " + shape_to_string(image.shape()));
  const int64_t c = image.dim(3);
  if (c != 1 && c != 3) throw Error("a PNG here is grey or RGB; this image has " + std::to_string(c) + " channels");
  std::vector<uint8_t> bytes(static_cast<size_t>(image.size()));
  for (int64_t i = 0; i < image.size(); ++i)
    bytes[static_cast<size_t>(i)] = static_cast<uint8_t>(std::lround(std::clamp(image[i], 0.0f, 1.0f) * 255.0f));
  write(path, image.dim(2), image.dim(1), c, bytes.data());
}

}  // namespace igscope::tools
