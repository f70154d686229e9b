#include "igscope/attribution/blur.h"

#include <cmath>
#include <string>

#include "igscope/error.h"

namespace igscope {

namespace {

// Index into [0, n) with reflected borders, for any integer i.
int64_t reflect(int64_t i, int64_t n) {
  const int64_t period = 2 * n;
  i %= period;
  if (i < 0) i += period;
  return i < n ? i : period - 1 - i;
}

void check_sigma(double sigma) {
  if (!(sigma >= 0.0) || !std::isfinite(sigma))
    throw Error("the blur sigma must be a finite number >= 0, got " + std::to_string(sigma));
}

struct Dims {
  int64_t n, h, w, c;
};

Dims image_dims(const Tensor& t) {
  if (t.rank() == 4) return {t.dim(0), t.dim(1), t.dim(2), t.dim(3)};
  if (t.rank() == 3) return {1, t.dim(0), t.dim(1), t.dim(2)};
  throw Error("blurring needs image input [N, H, W, C] or [H, W, C], got shape " + shape_to_string(t.shape()));
}

// out = (column filter kc) o (row filter kr) applied to in, both 1-D kernels
// of 2r+1 taps, reflected borders; accumulation in double.
Tensor separable_filter(const Tensor& in, const std::vector<double>& kr, const std::vector<double>& kc) {
  const Dims d = image_dims(in);
  const int64_t r = static_cast<int64_t>(kr.size() / 2);
  Tensor out(in.shape());
  std::vector<double> tmp(static_cast<size_t>(d.h * d.w * d.c));
  for (int64_t n = 0; n < d.n; ++n) {
    const float* src = in.data() + n * d.h * d.w * d.c;
    // Along x (within each row).
    for (int64_t y = 0; y < d.h; ++y)
      for (int64_t x = 0; x < d.w; ++x)
        for (int64_t ch = 0; ch < d.c; ++ch) {
          double s = 0.0;
          for (int64_t j = -r; j <= r; ++j)
            s += kr[static_cast<size_t>(j + r)] * src[(y * d.w + reflect(x + j, d.w)) * d.c + ch];
          tmp[static_cast<size_t>((y * d.w + x) * d.c + ch)] = s;
        }
    // Along y.
    float* dst = out.data() + n * d.h * d.w * d.c;
    for (int64_t y = 0; y < d.h; ++y)
      for (int64_t x = 0; x < d.w; ++x)
        for (int64_t ch = 0; ch < d.c; ++ch) {
          double s = 0.0;
          for (int64_t j = -r; j <= r; ++j)
            s += kc[static_cast<size_t>(j + r)] * tmp[static_cast<size_t>((reflect(y + j, d.h) * d.w + x) * d.c + ch)];
          dst[(y * d.w + x) * d.c + ch] = static_cast<float>(s);
        }
  }
  return out;
}

}  // namespace

int64_t default_blur_radius(double sigma) {
  check_sigma(sigma);
  return std::max<int64_t>(1, static_cast<int64_t>(std::ceil(4.0 * sigma)));
}

std::vector<double> gaussian_kernel(double sigma, int64_t radius, std::vector<double>* d_dsigma) {
  check_sigma(sigma);
  if (radius < 0) radius = default_blur_radius(sigma);
  const size_t taps = static_cast<size_t>(2 * radius + 1);
  std::vector<double> k(taps, 0.0);
  if (d_dsigma) d_dsigma->assign(taps, 0.0);
  if (sigma == 0.0) {
    k[static_cast<size_t>(radius)] = 1.0;
    return k;
  }
  double z = 0.0;
  for (int64_t j = -radius; j <= radius; ++j) {
    const double v = std::exp(-static_cast<double>(j * j) / (2.0 * sigma * sigma));
    k[static_cast<size_t>(j + radius)] = v;
    z += v;
  }
  for (auto& v : k) v /= z;
  // Below sigma = 0.02 every off-centre tap is under 1e-300: the kernel is
  // the identity and its derivative is zero to double precision.
  if (d_dsigma && sigma >= 0.02) {
    // k_j = e_j / Z with de_j/dsigma = e_j j^2 / sigma^3, so
    // dk_j/dsigma = k_j (j^2 - sum_l k_l l^2) / sigma^3.
    double mean_sq = 0.0;
    for (int64_t j = -radius; j <= radius; ++j) mean_sq += k[static_cast<size_t>(j + radius)] * static_cast<double>(j * j);
    const double s3 = sigma * sigma * sigma;
    for (int64_t j = -radius; j <= radius; ++j)
      (*d_dsigma)[static_cast<size_t>(j + radius)] =
          k[static_cast<size_t>(j + radius)] * (static_cast<double>(j * j) - mean_sq) / s3;
  }
  return k;
}

Tensor gaussian_blur(const Tensor& images, double sigma, int64_t radius) {
  image_dims(images);
  check_sigma(sigma);
  if (sigma == 0.0) return images;
  const std::vector<double> k = gaussian_kernel(sigma, radius);
  return separable_filter(images, k, k);
}

Tensor gaussian_blur_dsigma(const Tensor& images, double sigma, int64_t radius) {
  image_dims(images);
  std::vector<double> dk;
  const std::vector<double> k = gaussian_kernel(sigma, radius, &dk);
  if (sigma == 0.0) return Tensor(images.shape());  // every tap's derivative vanishes as sigma -> 0
  Tensor a = separable_filter(images, dk, k);
  const Tensor b = separable_filter(images, k, dk);
  for (int64_t i = 0; i < a.size(); ++i) a[i] += b[i];
  return a;
}

}  // namespace igscope
