#pragma once
// Light data augmentation for image training: a random crop with zero
// padding (the image shifted by up to `crop_padding` pixels each way, the
// uncovered border zero) and a random horizontal flip. Each output pixel is
// an input pixel or zero, nothing is interpolated; the draws come from a
// seeded Rng, so a seed gives the same batches on every platform.
#include <cstdint>
#include <string>
#include <vector>

#include "igscope/random.h"
#include "igscope/tensor.h"

namespace igscope {

struct Augmentation {
  int64_t crop_padding = 0;  // 0: no crop; P: pad by P with zeros, crop a random H x W window
  bool flip = false;         // mirror left-right with probability 1/2
  bool enabled() const { return crop_padding > 0 || flip; }
  std::string describe() const;  // "crop (pad 2), flip", or "none"
};

// One image's transform: the crop window's offset from the centre, dy and dx
// in [-P, P], and whether to mirror.
struct ImageTransform {
  int64_t dy = 0, dx = 0;
  bool flip = false;
};

// Draws dy, then dx (each uniform in [-P, P]; none when P is 0), then the flip
// (when enabled).
ImageTransform draw_transform(const Augmentation& a, Rng& rng);

// out[y, x, c] = in[y + dy, x' + dx, c] with x' = (flip ? W - 1 - x : x), or 0
// where that falls outside the image: the crop of the zero-padded image at
// offset (P + dy, P + dx), then mirrored. `in` and `out` are H x W x C, distinct.
void transform_image(const float* in, float* out, int64_t h, int64_t w, int64_t c, const ImageTransform& t);

// Transforms every image of an [N, H, W, C] batch in place, one draw per image
// in batch order. Throws Error for a batch that is not 4-D or a padding that
// is negative or not smaller than the image.
void augment_batch(Tensor& batch, const Augmentation& a, Rng& rng);

// From the names "crop" and "flip" (each at most once); throws Error naming
// the choices otherwise. crop_padding applies when "crop" is among them.
Augmentation parse_augmentation(const std::vector<std::string>& names, int64_t crop_padding);

}  // namespace igscope
