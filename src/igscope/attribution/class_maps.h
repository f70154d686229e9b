#pragma once
// Data-set-level attribution maps: per class, the mean signed and the mean
// absolute attribution over the images of that class, each image explained
// for its own (labelled) class. A skew such as "the model looks at the
// border" shows in the class means where single maps hide it.
#include <cstdint>
#include <functional>
#include <vector>

#include "igscope/attribution/explain.h"

namespace igscope {

struct ClassMaps {
  std::vector<int64_t> counts;            // images per class
  std::vector<Tensor> mean_signed;        // per class, [1, input shape...]; zero for a class without images
  std::vector<Tensor> mean_abs;           // per class, the mean of |attribution|
  std::vector<double> mean_relative_gap;  // per class, the mean |gap| / |F(x) - F(x')| (NaN without a gap)
  int64_t evaluations = 0;
};

// images: [N, input shape...]; labels: N classes in [0, classes). Every image
// is explained by `request` with its label as the target (request.target is
// ignored). progress(done, total) is called after every image when set.
// Throws Error for mismatched counts or a label out of range.
ClassMaps class_mean_maps(Model& model, Backend& backend, const Tensor& images, const std::vector<int>& labels,
                          int64_t classes, const AttributionRequest& request, const BaselineSources& sources = {},
                          const std::function<void(int64_t, int64_t)>& progress = {});

}  // namespace igscope
