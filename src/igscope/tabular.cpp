#include "igscope/tabular.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "igscope/error.h"
#include "igscope/random.h"

namespace igscope {

nlohmann::json TabularInfo::to_json() const {
  return {{"dataset", dataset}, {"target", target},         {"features", features},
          {"mean", mean},       {"std", std},               {"split_seed", split_seed},
          {"test_fraction", test_fraction}};
}

TabularInfo TabularInfo::from_json(const nlohmann::json& j, int64_t features_expected) {
  const auto fail = [](const std::string& why) { return Error("'tabular': " + why); };
  if (!j.is_object()) throw fail("must be an object");
  TabularInfo t;
  try {
    t.dataset = j.at("dataset").get<std::string>();
    t.target = j.value("target", std::string());
    t.features = j.at("features").get<std::vector<std::string>>();
    t.mean = j.at("mean").get<std::vector<double>>();
    t.std = j.at("std").get<std::vector<double>>();
    t.split_seed = j.at("split_seed").get<uint64_t>();
    t.test_fraction = j.at("test_fraction").get<double>();
  } catch (const nlohmann::json::exception& e) {
    throw fail(std::string("needs dataset, features, mean, std, split_seed and test_fraction (") + e.what() + ")");
  }
  const size_t n = static_cast<size_t>(features_expected);
  if (t.features.size() != n || t.mean.size() != n || t.std.size() != n)
    throw fail("features, mean and std must each have " + std::to_string(n) + " entries (the model's input), got " +
               std::to_string(t.features.size()) + ", " + std::to_string(t.mean.size()) + ", " +
               std::to_string(t.std.size()));
  for (size_t i = 0; i < n; ++i)
    if (!std::isfinite(t.mean[i]) || !(t.std[i] > 0.0) || !std::isfinite(t.std[i]))
      throw fail("feature '" + t.features[i] + "' needs a finite mean and a finite std > 0");
  if (!(t.test_fraction > 0.0 && t.test_fraction < 1.0)) throw fail("test_fraction must be in (0, 1)");
  return t;
}

Tensor TabularInfo::standardize(const Tensor& raw) const {
  const int64_t f = static_cast<int64_t>(features.size());
  if (raw.rank() != 2 || raw.dim(1) != f)
    throw Error("standardising needs rows [N, " + std::to_string(f) + "], got " + shape_to_string(raw.shape()));
  Tensor out(raw.shape());
  for (int64_t n = 0; n < raw.dim(0); ++n)
    for (int64_t i = 0; i < f; ++i)
      out[n * f + i] = static_cast<float>((static_cast<double>(raw[n * f + i]) - mean[static_cast<size_t>(i)]) /
                                          std[static_cast<size_t>(i)]);
  return out;
}

SplitIndices seeded_split(int64_t n, double test_fraction, uint64_t seed) {
  if (n < 2) throw Error("a split needs at least 2 samples, got " + std::to_string(n));
  if (!(test_fraction > 0.0 && test_fraction < 1.0))
    throw Error("the held-out fraction must be in (0, 1), got " + std::to_string(test_fraction));
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  Rng rng(seed);
  for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[static_cast<size_t>(rng.below(i))]);
  const int64_t n_test = std::clamp<int64_t>(std::llround(static_cast<double>(n) * test_fraction), 1, n - 1);
  SplitIndices s;
  const auto cut = order.begin() + static_cast<std::ptrdiff_t>(n_test);
  s.test.assign(order.begin(), cut);
  s.train.assign(cut, order.end());
  std::sort(s.test.begin(), s.test.end());
  std::sort(s.train.begin(), s.train.end());
  return s;
}

void column_statistics(const Tensor& rows, std::vector<double>& mean, std::vector<double>& std) {
  if (rows.rank() != 2 || rows.dim(0) < 1) throw Error("column statistics need rows [N, F], got " + shape_to_string(rows.shape()));
  const int64_t n = rows.dim(0), f = rows.dim(1);
  mean.assign(static_cast<size_t>(f), 0.0);
  std.assign(static_cast<size_t>(f), 0.0);
  for (int64_t k = 0; k < n; ++k)
    for (int64_t i = 0; i < f; ++i) mean[static_cast<size_t>(i)] += rows[k * f + i];
  for (auto& m : mean) m /= static_cast<double>(n);
  for (int64_t k = 0; k < n; ++k)
    for (int64_t i = 0; i < f; ++i) {
      const double d = rows[k * f + i] - mean[static_cast<size_t>(i)];
      std[static_cast<size_t>(i)] += d * d;
    }
  for (auto& s : std) s = std::sqrt(s / static_cast<double>(n));
}

Tensor gather_rows(const Tensor& rows, const std::vector<int64_t>& indices) {
  const int64_t f = rows.dim(1);
  Tensor out({static_cast<int64_t>(indices.size()), f});
  for (size_t k = 0; k < indices.size(); ++k) {
    if (indices[k] < 0 || indices[k] >= rows.dim(0)) throw Error("row index " + std::to_string(indices[k]) + " out of range");
    std::copy(rows.data() + indices[k] * f, rows.data() + (indices[k] + 1) * f, out.data() + static_cast<int64_t>(k) * f);
  }
  return out;
}

double r_squared(const std::vector<double>& p, const std::vector<double>& y) {
  if (p.empty() || p.size() != y.size())
    throw Error("R^2 needs as many predictions as targets (got " + std::to_string(p.size()) + " and " +
                std::to_string(y.size()) + ")");
  const double mean = std::accumulate(y.begin(), y.end(), 0.0) / static_cast<double>(y.size());
  double ss_res = 0.0, ss_tot = 0.0;
  for (size_t i = 0; i < y.size(); ++i) {
    ss_res += (y[i] - p[i]) * (y[i] - p[i]);
    ss_tot += (y[i] - mean) * (y[i] - mean);
  }
  if (!(ss_tot > 0.0)) throw Error("R^2 is undefined for constant targets");
  return 1.0 - ss_res / ss_tot;
}

}  // namespace igscope
