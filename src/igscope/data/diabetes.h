#pragma once
// scikit-learn's diabetes data (Efron, Hastie, Johnstone & Tibshirani 2004,
// "Least Angle Regression") as Debian's python3-sklearn package ships it:
// 442 patients, 10 baseline features in their original units (age, sex, body
// mass index, mean blood pressure, six blood serum measurements) and the
// response, a measure of disease progression one year after baseline.
// Two gzip-compressed text files of whitespace-separated numbers:
// diabetes_data_raw.csv.gz (442 rows of 10) and diabetes_target.csv.gz (442).
#include <cstdint>
#include <string>
#include <vector>

#include "igscope/tensor.h"

namespace igscope {

struct TabularData {
  Tensor features;             // [N, F], raw units
  std::vector<double> targets; // N
  std::vector<std::string> feature_names;
  int64_t size() const { return static_cast<int64_t>(targets.size()); }
};

// age, sex, bmi, bp, s1, s2, s3, s4, s5, s6.
const std::vector<std::string>& diabetes_feature_names();

// The folder holding the two files: $IGSCOPE_DIABETES_DIR if set, else
// python3-sklearn's datasets/data folder. Throws an Error naming the Debian
// package when the files are not there.
std::string diabetes_dir();

// All 442 samples, in the files' order. dir: as diabetes_dir() if empty.
TabularData load_diabetes(const std::string& dir = "");

// Reads the two files (gzip or plain); validates that every row has 10
// finite numbers and that the counts agree; throws Error otherwise.
TabularData read_diabetes(const std::string& data_path, const std::string& target_path);

}  // namespace igscope
