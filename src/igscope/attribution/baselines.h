#pragma once
// Baselines for Integrated Gradients: the point x' the path starts from.
// Every random kind is seeded (igscope::Rng, the same numbers on every
// platform); every kind is parameterised. Input values live in a valid
// range [lo, hi] ([0, 1] for Fashion-MNIST).
//
// Spec strings (the command line's --baseline, the page's controls):
//   black            every value at lo
//   white            every value at hi
//   constant:V       every value at V (inside the range)
//   uniform          uniform noise over [lo, hi]
//   gaussian:SIGMA   the input plus Gaussian noise of std SIGMA * (hi - lo), clipped to the range
//   blur:SIGMA       the input blurred by a Gaussian of std SIGMA pixels (reflected borders)
//   maxdist          each value at the end of the range farthest from the input's value
//   image:PATH       a custom image of the input's shape (read by the caller)
//   mean             the data-set mean image (the caller supplies the data set)
//   median           the data set's per-feature median (for tables; the mean of the two
//                    middle values when the count is even)
//   train:N          N training images drawn without replacement: averaged, this is
//                    expected gradients
//   avg:N:KIND       N draws of a random kind (uniform, gaussian:SIGMA), averaged
// Any spec may end in @SEED to fix its random seed (otherwise the caller's seed).
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "igscope/random.h"
#include "igscope/tensor.h"

namespace igscope {

struct ValueRange {
  double lo = 0.0;
  double hi = 1.0;
};
void check_range(const ValueRange& range);  // throws Error unless finite with lo < hi

enum class BaselineKind { Black, White, Constant, Uniform, Gaussian, Blur, MaxDistance, Image, DatasetMean, DatasetMedian, Training };

struct BaselineSpec {
  BaselineKind kind = BaselineKind::Black;
  double parameter = 0.0;  // the constant's value, or sigma
  int64_t samples = 1;     // more than 1: that many baselines, averaged
  std::optional<uint64_t> seed;
  std::string image_path;  // for Image
  bool is_random() const;
  std::string to_string() const;  // the spec string, parseable again
};

// Throws Error with the grammar above for anything it cannot read.
BaselineSpec parse_baseline_spec(const std::string& spec);

// What some kinds need from the caller.
struct BaselineSources {
  const Tensor* image = nullptr;    // Image: the custom image
  const Tensor* dataset = nullptr;  // DatasetMean, DatasetMedian and Training: samples [N, ...input shape]
};

// The baselines (one, or spec.samples) for one input sample [1, ...].
// Validates every parameter (sigma >= 0, the constant inside the range, the
// image's shape, finite values) and throws Error with a clear message.
std::vector<Tensor> make_baselines(const BaselineSpec& spec, const Tensor& input, const ValueRange& range,
                                   const BaselineSources& sources = {}, uint64_t default_seed = 0);

// The building blocks, on one input sample [1, ...].
Tensor constant_baseline(const Tensor& input, double value);
Tensor uniform_noise_baseline(const Tensor& input, const ValueRange& range, Rng& rng);
Tensor gaussian_noise_baseline(const Tensor& input, double sigma, const ValueRange& range, Rng& rng);
Tensor max_distance_baseline(const Tensor& input, const ValueRange& range);
Tensor dataset_mean_image(const Tensor& images);    // [N, ...] -> [1, ...]
Tensor dataset_median_image(const Tensor& images);  // [N, ...] -> [1, ...], per feature

}  // namespace igscope
