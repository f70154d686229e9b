#pragma once
// What the backend tests share: comparison against the reference backend
// with every output element required to be written, random inputs, distinct
// ParamsKeys, an odd-shaped CNN and a depthwise-separable one.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "igscope/backend/backend.h"
#include "igscope/random.h"
#include "igscope/tensor.h"

namespace igscope::testing {

// max |got - want| <= tolerance * max(floor, max |want|), and no element left
// non-finite: outputs are pre-filled with NaN, so an element a kernel forgets
// fails here.
inline void expect_close(const std::vector<float>& got, const std::vector<float>& want, const std::string& what,
                         double tolerance = 1e-5, double floor = 1.0) {
  REQUIRE(got.size() == want.size());
  double scale = floor, worst = 0.0;
  size_t not_finite = 0;
  for (float w : want) scale = std::max(scale, static_cast<double>(std::abs(w)));
  for (size_t i = 0; i < got.size(); ++i) {
    if (!std::isfinite(got[i])) ++not_finite;
    else worst = std::max(worst, std::abs(static_cast<double>(got[i]) - want[i]));
  }
  INFO(what << ": max |difference| " << worst << ", scale " << scale);
  CHECK(not_finite == 0);  // an element left at NaN was never written
  CHECK(worst <= tolerance * scale);
}

// |got_i - want_i| <= tolerance * max |want| + allowance_i for every element
// (allowance: what decisions that rounding can flip may change there; see
// decision_margins.h), and no element left non-finite.
inline void expect_within_allowance(const std::vector<float>& got, const std::vector<float>& want,
                                    const std::vector<double>& allowance, const std::string& what,
                                    double tolerance = 1e-4) {
  REQUIRE(got.size() == want.size());
  REQUIRE(allowance.size() == want.size());
  double scale = 0.0, worst = 0.0, worst_allowed = 0.0, largest_allowance = 0.0;
  size_t not_finite = 0, over = 0, using_allowance = 0;
  for (float w : want) scale = std::max(scale, static_cast<double>(std::abs(w)));
  for (size_t i = 0; i < got.size(); ++i) {
    largest_allowance = std::max(largest_allowance, allowance[i]);
    if (!std::isfinite(got[i])) {
      ++not_finite;
      continue;
    }
    const double d = std::abs(static_cast<double>(got[i]) - want[i]), allowed = tolerance * scale + allowance[i];
    if (d > tolerance * scale) ++using_allowance;
    if (d > allowed) ++over;
    if (d - allowed > worst - worst_allowed) {
      worst = d;
      worst_allowed = allowed;
    }
  }
  INFO(what << ": " << over << " of " << got.size() << " elements beyond tolerance " << tolerance << " * " << scale
            << " + allowance (worst: |difference| " << worst << " against " << worst_allowed << "); "
            << using_allowance << " within their allowance only; largest allowance " << largest_allowance);
  CHECK(not_finite == 0);  // an element left at NaN was never written
  CHECK(over == 0);
}

inline size_t count_not_finite(const std::vector<float>& v) {
  return static_cast<size_t>(std::count_if(v.begin(), v.end(), [](float x) { return !std::isfinite(x); }));
}

inline std::vector<float> random_vector(int64_t n, Rng& rng) {
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = static_cast<float>(rng.uniform(-1, 1));
  return v;
}

inline std::vector<float> to_vector(const Tensor& t) { return std::vector<float>(t.data(), t.data() + t.size()); }

// Distinct keys for every call in the program: real keys come from
// Tensor::content_id(), which never repeats; these only need to differ
// between weight sets. Unkeyed: the default (unknown) key.
inline ParamsKey next_key(bool keyed) {
  static uint64_t counter = uint64_t{1} << 62;
  if (!keyed) return {};
  counter += 2;
  return {counter, counter + 1};
}

// A small CNN with odd sizes, a non-square kernel, stride 2 and no padding.
inline nlohmann::json odd_cnn() {
  return nlohmann::json::parse(R"({"name": "odd_cnn", "input": [11, 10, 3], "layers": [
    {"type": "conv2d", "out_channels": 17, "kernel": [3, 3], "stride": [1, 1], "padding": [1, 1]},
    {"type": "relu"},
    {"type": "maxpool2d", "kernel": [2, 2], "stride": [2, 2]},
    {"type": "conv2d", "out_channels": 33, "kernel": [3, 2], "stride": [2, 1], "padding": [1, 0]},
    {"type": "relu"},
    {"type": "flatten"},
    {"type": "dense", "out_features": 19},
    {"type": "relu"},
    {"type": "dense", "out_features": 4}]})");
}

// A MobileNet-like stack of depthwise-separable blocks: depthwise 3x3
// (stride 1 and 2, channel multiplier 1 and 2), pointwise 1x1, a grouped and
// dilated 3x3, with odd sizes.
inline nlohmann::json depthwise_cnn() {
  return nlohmann::json::parse(R"({"name": "depthwise_cnn", "input": [13, 11, 3], "layers": [
    {"type": "conv2d", "out_channels": 16, "kernel": 3, "stride": 2, "padding": 1},
    {"type": "relu"},
    {"type": "conv2d", "out_channels": 16, "kernel": 3, "padding": 1, "groups": 16},
    {"type": "relu"},
    {"type": "conv2d", "out_channels": 24, "kernel": 1},
    {"type": "relu"},
    {"type": "conv2d", "out_channels": 48, "kernel": 3, "stride": 2, "padding": 1, "groups": 24},
    {"type": "relu"},
    {"type": "conv2d", "out_channels": 32, "kernel": 3, "padding": 2, "dilation": 2, "groups": 4},
    {"type": "relu"},
    {"type": "flatten"},
    {"type": "dense", "out_features": 5}]})");
}

}  // namespace igscope::testing
