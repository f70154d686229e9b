#pragma once
// Raw feature rows of a tabular model and the standardised inputs it takes,
// both ways, for callers that hold raw values (the web page's tabular view).
#include <vector>

#include "igscope/attribution/baselines.h"
#include "igscope/tabular.h"
#include "igscope/tensor.h"

namespace igscope {

// Standardised rows [N, F] -> raw rows [N, F] (raw = mean + std * x); throws
// Error on a shape mismatch.
Tensor unstandardize(const TabularInfo& info, const Tensor& rows);

// Raw values, flat: a whole number of rows of the info's features -> raw rows
// [N, F]. Throws Error for a count that is not a whole number of rows, no
// rows, or a value that is not finite.
Tensor raw_rows(const TabularInfo& info, const std::vector<float>& values);

// The smallest and largest value of standardised rows: the input range that
// random baselines draw from (what `igscope attribute` takes over the data
// set). Throws Error for empty or constant rows.
ValueRange standardized_range(const Tensor& rows);

}  // namespace igscope
