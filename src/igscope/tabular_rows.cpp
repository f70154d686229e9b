#include "igscope/tabular_rows.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "igscope/error.h"

namespace igscope {

Tensor unstandardize(const TabularInfo& info, const Tensor& rows) {
  const int64_t f = static_cast<int64_t>(info.features.size());
  if (rows.rank() != 2 || rows.dim(1) != f)
    throw Error("unstandardising needs rows [N, " + std::to_string(f) + "], got " + shape_to_string(rows.shape()));
  Tensor out(rows.shape());
  for (int64_t n = 0; n < rows.dim(0); ++n)
    for (int64_t i = 0; i < f; ++i)
      out[n * f + i] = static_cast<float>(info.mean[static_cast<size_t>(i)] +
                                          info.std[static_cast<size_t>(i)] * static_cast<double>(rows[n * f + i]));
  return out;
}

Tensor raw_rows(const TabularInfo& info, const std::vector<float>& values) {
  const int64_t f = static_cast<int64_t>(info.features.size());
  const int64_t count = static_cast<int64_t>(values.size());
  if (f == 0 || count == 0 || count % f != 0)
    throw Error("raw rows must hold a whole number of " + std::to_string(f) + "-feature rows, got " +
                std::to_string(count) + " values");
  for (int64_t i = 0; i < count; ++i)
    if (!std::isfinite(values[static_cast<size_t>(i)]))
      throw Error("feature '" + info.features[static_cast<size_t>(i % f)] + "' of row " + std::to_string(i / f) +
                  " is not a finite number");
  Tensor out({count / f, f});
  std::copy(values.begin(), values.end(), out.data());
  return out;
}

ValueRange standardized_range(const Tensor& rows) {
  if (rows.size() == 0) throw Error("no rows to take the value range from");
  const auto [lo, hi] = std::minmax_element(rows.data(), rows.data() + rows.size());
  if (!(*lo < *hi)) throw Error("the rows are constant: no value range");
  return {static_cast<double>(*lo), static_cast<double>(*hi)};
}

}  // namespace igscope
