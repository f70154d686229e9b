#pragma once
// Frequency filters of NHWC images, for the question of which models lean on
// fine texture: a low-pass filter keeps the coarse structure of an image, a
// high-pass filter keeps its edges and texture.
//
//   lowpass(x, sigma)  = G_sigma * x                   (a Gaussian blur)
//   highpass(x, sigma) = x - G_sigma * x + mean(x)
//
// G_sigma is igscope's Gaussian blur (reflected borders, radius ceil(4 sigma),
// each channel on its own); mean(x) is the mean of each image's channel, so
// the high-pass image keeps the original's mean brightness (its zero
// frequency) as an ideal Fourier high-pass filter does. sigma is in pixels.
// The low-pass filter removes more as sigma grows (sigma = 0 is the
// identity); the high-pass filter removes more as sigma shrinks (it removes
// structure coarser than about sigma pixels; sigma = 0 leaves only the mean).
// The results are not clamped: a high-pass image can leave the pixel range.
#include <string>

#include "igscope/tensor.h"

namespace igscope {

enum class FrequencyFilter { LowPass, HighPass };
std::string frequency_filter_name(FrequencyFilter filter);   // "lowpass", "highpass"
FrequencyFilter parse_frequency_filter(const std::string&);  // throws Error

// Throws Error for a sigma that is negative, not finite, or over 100.
void check_filter_sigma(double sigma);

// images: [N, H, W, C] or [H, W, C]; throws Error for other ranks or a bad sigma.
Tensor frequency_filter(const Tensor& images, FrequencyFilter filter, double sigma);

}  // namespace igscope
