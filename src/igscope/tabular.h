#pragma once
// Tabular models: what a model file says about its input features, so that
// inference and evaluation need nothing beyond the file. The model takes
// standardised features x = (raw - mean) / std, with the mean and standard
// deviation of the training split; the file also names the features, the
// data set, and the seeded split it was trained on.
//
// In architecture JSON (see model.h), next to "layers":
//   "tabular": {"dataset": "diabetes", "target": "...", "features": ["age", ...],
//               "mean": [...], "std": [...], "split_seed": 1, "test_fraction": 0.2}
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "igscope/tensor.h"

namespace igscope {

struct TabularInfo {
  std::string dataset;  // the data set's name ("diabetes")
  std::string target;   // what the model's output measures
  std::vector<std::string> features;
  std::vector<double> mean, std;  // training-split statistics, per feature
  uint64_t split_seed = 0;
  double test_fraction = 0.2;

  nlohmann::json to_json() const;
  // Throws Error unless every field is present and consistent with
  // `features_expected` input features (std > 0, finite values, a fraction in (0, 1)).
  static TabularInfo from_json(const nlohmann::json& j, int64_t features_expected);
  // Raw rows [N, F] -> standardised rows [N, F]; throws Error on a shape mismatch.
  Tensor standardize(const Tensor& raw) const;
};

// A seeded random split of n samples: `test` holds round(n * test_fraction)
// indices, `train` the rest, each in increasing order. The same on every platform.
struct SplitIndices {
  std::vector<int64_t> train, test;
};
SplitIndices seeded_split(int64_t n, double test_fraction, uint64_t seed);

// Per-feature mean and (population) standard deviation of rows [N, F].
void column_statistics(const Tensor& rows, std::vector<double>& mean, std::vector<double>& std);

// The rows [indices] of [N, F] as a new [indices.size(), F] tensor.
Tensor gather_rows(const Tensor& rows, const std::vector<int64_t>& indices);

// Coefficient of determination 1 - sum (y - p)^2 / sum (y - mean y)^2.
// Throws Error for empty or mismatched inputs or constant targets.
double r_squared(const std::vector<double>& predictions, const std::vector<double>& targets);

}  // namespace igscope
