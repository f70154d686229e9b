#include "igscope/attribution/class_maps.h"

#include <cmath>
#include <limits>

#include "igscope/error.h"

namespace igscope {

ClassMaps class_mean_maps(Model& model, Backend& backend, const Tensor& images, const std::vector<int>& labels,
                          int64_t classes, const AttributionRequest& request, const BaselineSources& sources,
                          const std::function<void(int64_t, int64_t)>& progress) {
  if (classes < 1) throw Error("class maps need at least one class");
  const int64_t n = static_cast<int64_t>(labels.size());
  const int64_t per = shape_numel(model.input_shape());
  if (images.rank() < 2 || images.dim(0) != n || images.size() != n * per)
    throw Error("class maps: " + std::to_string(n) + " labels for images of shape " + shape_to_string(images.shape()) +
                " (the model takes " + shape_to_string(model.input_shape()) + ")");
  std::vector<std::vector<double>> sum_signed(static_cast<size_t>(classes), std::vector<double>(static_cast<size_t>(per))),
      sum_abs = sum_signed;
  std::vector<double> gap_sum(static_cast<size_t>(classes), 0.0);
  ClassMaps maps;
  maps.counts.assign(static_cast<size_t>(classes), 0);
  bool has_gap = true;
  for (int64_t k = 0; k < n; ++k) {
    const int label = labels[static_cast<size_t>(k)];
    if (label < 0 || label >= classes)
      throw Error("class maps: image " + std::to_string(k) + " has label " + std::to_string(label) + ", outside 0.." +
                  std::to_string(classes - 1));
    Tensor x(model.batch_input_shape(1));
    std::copy(images.data() + k * per, images.data() + (k + 1) * per, x.data());
    AttributionRequest req = request;
    req.target = label;
    const Explanation e = explain(model, backend, x, req, sources);
    const size_t c = static_cast<size_t>(label);
    for (int64_t i = 0; i < per; ++i) {
      const double v = e.attribution.values[i];
      sum_signed[c][static_cast<size_t>(i)] += v;
      sum_abs[c][static_cast<size_t>(i)] += std::abs(v);
    }
    has_gap = has_gap && std::isfinite(e.attribution.gap);
    gap_sum[c] += e.attribution.relative_gap();
    ++maps.counts[c];
    maps.evaluations += e.attribution.evaluations;
    if (progress) progress(k + 1, n);
  }
  for (int64_t c = 0; c < classes; ++c) {
    const size_t cc = static_cast<size_t>(c);
    const double count = static_cast<double>(maps.counts[cc]);
    Tensor s(model.batch_input_shape(1)), a(model.batch_input_shape(1));
    for (int64_t i = 0; i < per; ++i) {
      s[i] = count > 0 ? static_cast<float>(sum_signed[cc][static_cast<size_t>(i)] / count) : 0.0f;
      a[i] = count > 0 ? static_cast<float>(sum_abs[cc][static_cast<size_t>(i)] / count) : 0.0f;
    }
    maps.mean_signed.push_back(std::move(s));
    maps.mean_abs.push_back(std::move(a));
    maps.mean_relative_gap.push_back(has_gap && count > 0 ? gap_sum[cc] / count
                                                          : std::numeric_limits<double>::quiet_NaN());
  }
  return maps;
}

}  // namespace igscope
