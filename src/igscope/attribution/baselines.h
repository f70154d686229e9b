#pragma once
// Baselines for Integrated Gradients: the point x' the path starts from.
// Every random kind is seeded (igscope::Rng, the same numbers on every
// platform); every kind is parameterised. Input values live in a valid
// range [lo, hi] ([0, 1] for Fashion-MNIST).
//
// Spec strings (the command line's --baseline, the page's controls): the
// kinds baseline_grammar() lists, each optionally followed by @SEED to fix
// its random seed (otherwise the caller's seed). That table is the one list
// of the grammar: the parser's errors and every command's help print it.
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

// One row of the grammar: the syntax (upper-case words are parameters), what
// it means, and an example that parses to `kind`.
struct BaselineSyntax {
  const char* syntax;   // "gaussian:SIGMA"
  const char* meaning;  // for help texts
  const char* example;  // "gaussian:0.1"
  BaselineKind kind;
};
// Every spec kind, in the order help texts list them.
const std::vector<BaselineSyntax>& baseline_grammar();
// The syntaxes on one line: "black, white, constant:V, ...; any may end in @SEED".
std::string baseline_kinds();
// The table, one kind per line ("  syntax  meaning"), and the @SEED suffix, for --help.
std::string baseline_help();

// Throws Error with baseline_kinds() for anything it cannot read.
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
