#pragma once
// Summary statistics of a list of measurements (evaluation tables, benchmarks).
#include <vector>

namespace igscope {

// The p-th percentile (0..100), linear between the two nearest ranks; NaN for
// an empty list.
double percentile(std::vector<double> values, double p);
// The arithmetic mean; NaN for an empty list.
double mean(const std::vector<double>& values);

}  // namespace igscope
