#include "igscope/robustness/filters.h"

#include <cmath>
#include <vector>

#include "igscope/attribution/blur.h"
#include "igscope/error.h"

namespace igscope {

std::string frequency_filter_name(FrequencyFilter filter) {
  return filter == FrequencyFilter::LowPass ? "lowpass" : "highpass";
}

FrequencyFilter parse_frequency_filter(const std::string& name) {
  if (name == "lowpass") return FrequencyFilter::LowPass;
  if (name == "highpass") return FrequencyFilter::HighPass;
  throw Error("unknown frequency filter '" + name + "' (known: lowpass, highpass)");
}

void check_filter_sigma(double sigma) {
  if (!std::isfinite(sigma) || sigma < 0.0 || sigma > 100.0)
    throw Error("the filter's sigma must be a number of pixels in [0, 100], got " + std::to_string(sigma));
}

Tensor frequency_filter(const Tensor& images, FrequencyFilter filter, double sigma) {
  check_filter_sigma(sigma);
  if (images.rank() != 4 && images.rank() != 3)
    throw Error("frequency filters need image input [N, H, W, C] or [H, W, C], got shape " +
                shape_to_string(images.shape()));
  const Tensor low = gaussian_blur(images, sigma);
  if (filter == FrequencyFilter::LowPass) return low;
  const bool batched = images.rank() == 4;
  const int64_t n = batched ? images.dim(0) : 1, c = images.dim(images.rank() - 1);
  const int64_t pixels = n > 0 ? images.size() / (n * c) : 0;
  Tensor out(images.shape());
  std::vector<double> mean(static_cast<size_t>(c));
  for (int64_t i = 0; i < n; ++i) {
    const float* x = images.data() + i * pixels * c;
    const float* l = low.data() + i * pixels * c;
    float* o = out.data() + i * pixels * c;
    std::fill(mean.begin(), mean.end(), 0.0);
    for (int64_t p = 0; p < pixels; ++p)
      for (int64_t ch = 0; ch < c; ++ch) mean[static_cast<size_t>(ch)] += x[p * c + ch];
    for (auto& m : mean) m /= static_cast<double>(pixels);
    for (int64_t p = 0; p < pixels; ++p)
      for (int64_t ch = 0; ch < c; ++ch) {
        const int64_t k = p * c + ch;
        o[k] = static_cast<float>(static_cast<double>(x[k]) - l[k] + mean[static_cast<size_t>(ch)]);
      }
  }
  return out;
}

}  // namespace igscope
