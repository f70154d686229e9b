// Faithfulness metrics against functions whose answers are known in closed form.
#include <catch2/catch.hpp>

#include <cmath>

#include "igscope/attribution/metrics.h"
#include "igscope/error.h"

using namespace igscope;

namespace {

constexpr int64_t kN = 10;
const double kW[kN] = {0.5, -1.0, 2.0, 0.25, -0.75, 1.5, 0.0, 3.0, -2.0, 1.0};

FunctionTarget linear() {
  return FunctionTarget({kN}, [](const float* x, float* g) {
    double v = 0.0;
    for (int64_t i = 0; i < kN; ++i) {
      v += kW[i] * x[i];
      g[i] = static_cast<float>(kW[i]);
    }
    return v;
  });
}

Tensor vec(std::initializer_list<double> v) {
  Tensor t({1, static_cast<int64_t>(v.size())});
  int64_t i = 0;
  for (double e : v) t[i++] = static_cast<float>(e);
  return t;
}

}  // namespace

TEST_CASE("deletion and insertion curves of a linear function follow the sorted attributions", "[metrics]") {
  FunctionTarget f = linear();
  const Tensor x = vec({0.9, 0.1, 0.8, 0.3, 0.6, 0.5, 0.7, 0.2, 0.4, 1.0});
  const Tensor r = vec({0.1, 0.2, 0.0, 0.3, 0.1, 0.0, 0.5, 0.1, 0.2, 0.0});
  // Exact IG of a linear function: w * (x - r); the curves then drop (rise)
  // by exactly the k largest attributions after k moves.
  Tensor a({1, kN});
  double fx = 0.0, fr = 0.0;
  for (int64_t i = 0; i < kN; ++i) {
    a[i] = static_cast<float>(kW[i] * (x[i] - r[i]));
    fx += kW[i] * x[i];
    fr += kW[i] * r[i];
  }
  std::vector<double> sorted(a.data(), a.data() + kN);
  std::sort(sorted.rbegin(), sorted.rend());
  const PerturbationCurve del = deletion_curve(f, x, r, a, kN);
  const PerturbationCurve ins = insertion_curve(f, x, r, a, kN);
  REQUIRE(del.values.size() == kN + 1);
  double removed = 0.0, del_auc = 0.0, ins_auc = 0.0;
  for (int64_t k = 0; k <= kN; ++k) {
    if (k > 0) removed += sorted[static_cast<size_t>(k - 1)];
    CHECK(del.fractions[static_cast<size_t>(k)] == Approx(static_cast<double>(k) / kN));
    CHECK(del.values[static_cast<size_t>(k)] == Approx(fx - removed).margin(1e-5));
    CHECK(ins.values[static_cast<size_t>(k)] == Approx(fr + removed).margin(1e-5));
    const double w = (k == 0 || k == kN) ? 0.5 : 1.0;
    del_auc += w * (fx - removed) / kN;
    ins_auc += w * (fr + removed) / kN;
  }
  CHECK(del.auc == Approx(del_auc).margin(1e-5));
  CHECK(ins.auc == Approx(ins_auc).margin(1e-5));
  // A worse ranking (reversed) deletes more slowly: larger deletion area.
  Tensor reversed = a;
  for (int64_t i = 0; i < kN; ++i) reversed[i] = -a[i];
  CHECK(deletion_curve(f, x, r, reversed, kN).auc > del.auc);
  // Fewer steps than features: still from F(x) to F(reference).
  const PerturbationCurve coarse = deletion_curve(f, x, r, a, 4);
  CHECK(coarse.values.front() == Approx(fx));
  CHECK(coarse.values.back() == Approx(fr).margin(1e-5));
}

TEST_CASE("infidelity: zero for the gradient of a linear function, sigma^2 |w|^2 for twice it", "[metrics]") {
  FunctionTarget f = linear();
  const Tensor x = vec({0.9, 0.1, 0.8, 0.3, 0.6, 0.5, 0.7, 0.2, 0.4, 1.0});
  Tensor grad({1, kN}), twice({1, kN});
  double w2 = 0.0;
  for (int64_t i = 0; i < kN; ++i) {
    grad[i] = static_cast<float>(kW[i]);
    twice[i] = static_cast<float>(2 * kW[i]);
    w2 += kW[i] * kW[i];
  }
  InfidelityOptions o;
  o.sigma = 0.1;
  o.samples = 4000;
  CHECK(infidelity(f, x, grad, o) == Approx(0.0).margin(1e-8));
  // (2w.I - w.I)^2 = (w.I)^2, whose mean is sigma^2 |w|^2; 4000 draws: ~2% standard error.
  CHECK(infidelity(f, x, twice, o) == Approx(0.01 * w2).epsilon(0.08));
}

TEST_CASE("max-sensitivity: zero for a constant explanation, bounded for a linear one", "[metrics]") {
  const Tensor x = vec({0.9, 0.1, 0.8, 0.3, 0.6, 0.5, 0.7, 0.2, 0.4, 1.0});
  const Tensor w = vec({0.5, -1.0, 2.0, 0.25, -0.75, 1.5, 0.0, 3.0, -2.0, 1.0});
  SensitivityOptions o;
  o.radius = 0.05;
  o.samples = 20;
  CHECK(max_sensitivity([&](const Tensor&) { return w; }, x, w, o) == 0.0);
  // The gradient of sum x^2 is 2x: ||2d|| / ||2x|| <= radius sqrt(n) / ||x||.
  auto twice_x = [](const Tensor& in) {
    Tensor g = in;
    for (int64_t i = 0; i < g.size(); ++i) g[i] = 2 * in[i];
    return g;
  };
  double norm_x = 0.0;
  for (int64_t i = 0; i < kN; ++i) norm_x += static_cast<double>(x[i]) * x[i];
  const double s = max_sensitivity(twice_x, x, twice_x(x), o);
  CHECK(s > 0.0);
  CHECK(s <= 0.05 * std::sqrt(static_cast<double>(kN)) / std::sqrt(norm_x) + 1e-6);
}

TEST_CASE("metrics refuse bad parameters", "[metrics]") {
  FunctionTarget f = linear();
  const Tensor x({1, kN}), short_one({1, 3});
  CHECK_THROWS_WITH(deletion_curve(f, x, x, x, 0), Catch::Contains("steps >= 1"));
  CHECK_THROWS_WITH(deletion_curve(f, x, short_one, x), Catch::Contains("reference"));
  CHECK_THROWS_WITH(insertion_curve(f, x, x, short_one), Catch::Contains("attributions"));
  InfidelityOptions o;
  o.sigma = 0.0;
  CHECK_THROWS_WITH(infidelity(f, x, x, o), Catch::Contains("sigma > 0"));
  SensitivityOptions s;
  s.samples = 0;
  CHECK_THROWS_WITH(max_sensitivity([&](const Tensor& t) { return t; }, x, x, s), Catch::Contains("samples >= 1"));
}
