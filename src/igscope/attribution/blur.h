#pragma once
// Gaussian blur of NHWC images (each channel on its own), with borders
// reflected (d c b a | a b c d | d c b a, as scipy.ndimage's "reflect" mode),
// and its exact derivative with respect to sigma (for the Blur IG path).
//
// The kernel is exp(-j^2 / (2 sigma^2)) for |j| <= radius, normalised to sum
// to 1; radius defaults to ceil(4 sigma). sigma = 0 is the identity.
#include <cstdint>
#include <vector>

#include "igscope/tensor.h"

namespace igscope {

int64_t default_blur_radius(double sigma);
// The normalised 1-D kernel (2 radius + 1 taps) and, when wanted, its
// derivative with respect to sigma.
std::vector<double> gaussian_kernel(double sigma, int64_t radius, std::vector<double>* d_dsigma = nullptr);

// images: [N, H, W, C] or [H, W, C]; throws Error for other ranks or sigma < 0.
Tensor gaussian_blur(const Tensor& images, double sigma, int64_t radius = -1);
// d gaussian_blur(images, sigma, radius) / d sigma, with the radius held fixed.
Tensor gaussian_blur_dsigma(const Tensor& images, double sigma, int64_t radius);

}  // namespace igscope
