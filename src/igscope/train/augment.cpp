#include "igscope/train/augment.h"

#include <algorithm>
#include <cstring>

#include "igscope/error.h"

namespace igscope {

std::string Augmentation::describe() const {
  std::string s;
  if (crop_padding > 0) s = "crop (pad " + std::to_string(crop_padding) + ")";
  if (flip) s += std::string(s.empty() ? "" : ", ") + "flip";
  return s.empty() ? "none" : s;
}

ImageTransform draw_transform(const Augmentation& a, Rng& rng) {
  ImageTransform t;
  if (a.crop_padding > 0) {
    const uint64_t span = static_cast<uint64_t>(2 * a.crop_padding + 1);
    t.dy = static_cast<int64_t>(rng.below(span)) - a.crop_padding;
    t.dx = static_cast<int64_t>(rng.below(span)) - a.crop_padding;
  }
  if (a.flip) t.flip = (rng.next() >> 63) != 0;
  return t;
}

void transform_image(const float* in, float* out, int64_t h, int64_t w, int64_t c, const ImageTransform& t) {
  for (int64_t y = 0; y < h; ++y) {
    const int64_t sy = y + t.dy;
    float* row = out + y * w * c;
    if (sy < 0 || sy >= h) {
      std::fill(row, row + w * c, 0.0f);
      continue;
    }
    for (int64_t x = 0; x < w; ++x) {
      const int64_t sx = (t.flip ? w - 1 - x : x) + t.dx;
      float* px = row + x * c;
      if (sx < 0 || sx >= w)
        std::fill(px, px + c, 0.0f);
      else
        std::memcpy(px, in + (sy * w + sx) * c, static_cast<size_t>(c) * sizeof(float));
    }
  }
}

void augment_batch(Tensor& batch, const Augmentation& a, Rng& rng) {
  if (!a.enabled()) return;
  const Shape& s = batch.shape();
  if (s.size() != 4) throw Error("augmentation needs an [N, H, W, C] image batch, got " + shape_to_string(s));
  const int64_t n = s[0], h = s[1], w = s[2], c = s[3];
  if (a.crop_padding < 0 || a.crop_padding >= std::min(h, w))
    throw Error("crop padding must be in [0, " + std::to_string(std::min(h, w)) + ") for " + std::to_string(h) + "x" +
                std::to_string(w) + " images, got " + std::to_string(a.crop_padding));
  const int64_t per = h * w * c;
  std::vector<float> copy(static_cast<size_t>(per));
  for (int64_t i = 0; i < n; ++i) {
    const ImageTransform t = draw_transform(a, rng);
    float* img = batch.data() + i * per;
    std::memcpy(copy.data(), img, static_cast<size_t>(per) * sizeof(float));
    transform_image(copy.data(), img, h, w, c, t);
  }
}

Augmentation parse_augmentation(const std::vector<std::string>& names, int64_t crop_padding) {
  Augmentation a;
  bool crop = false;
  for (const auto& n : names) {
    bool& seen = n == "crop" ? crop : a.flip;
    if (n != "crop" && n != "flip")
      throw Error("unknown augmentation '" + n + "' (choices: crop, flip)");
    if (seen) throw Error("augmentation '" + n + "' given twice");
    seen = true;
  }
  if (crop) {
    if (crop_padding < 1) throw Error("crop padding must be >= 1, got " + std::to_string(crop_padding));
    a.crop_padding = crop_padding;
  }
  return a;
}

}  // namespace igscope
