// The node kinds an imported model's preprocessing and constant arithmetic
// become (layers/affine.h, layers/pad2d.h): their outputs against the
// formulas at hand-picked points, their input gradients and tangents against
// central finite differences (both are exact linear maps, so the tolerance
// is float rounding: 1e-4 of the largest gradient), and bad descriptions
// refused with a message.
#include <catch2/catch.hpp>

#include "gradient_check.h"
#include "igscope/backend/reference.h"
#include "igscope/error.h"
#include "igscope/layers/affine.h"
#include "igscope/layers/pad2d.h"
#include "igscope/model.h"

using namespace igscope;
using namespace igscope::testing;
using nlohmann::json;

namespace {

constexpr double kEps = 1e-2;
constexpr double kTolerance = 1e-4;

// <J v, u> over a directional finite difference of f along v, and
// <J v, u> = <v, J^T u>.
void check_tangent(Layer& layer, const Tensor& x, Backend& backend) {
  Rng rng(5);
  const Tensor v = random_tensor(x.shape(), rng), u0 = random_tensor(layer.output_shape(x.shape()), rng);
  Tensor xp = x, xm = x;
  for (int64_t i = 0; i < x.size(); ++i) {
    xp[i] = static_cast<float>(x[i] + kEps * v[i]);
    xm[i] = static_cast<float>(x[i] - kEps * v[i]);
  }
  const Tensor fp = layer.forward(xp, backend, Mode::Eval), fm = layer.forward(xm, backend, Mode::Eval);
  layer.forward(x, backend, Mode::Eval);
  const Tensor jv = layer.forward_tangent(v, backend);
  GradientComparison c;
  for (int64_t i = 0; i < jv.size(); ++i) compare(c, jv[i], (static_cast<double>(fp[i]) - fm[i]) / (2 * kEps));
  CHECK(c.relative_error() <= 1e-3);  // the inputs xp, xm are rounded to float
  const Tensor jtu = layer.backward_input(u0, backend);
  double lhs = 0, rhs = 0;
  for (int64_t i = 0; i < jv.size(); ++i) lhs += static_cast<double>(jv[i]) * u0[i];
  for (int64_t i = 0; i < v.size(); ++i) rhs += static_cast<double>(v[i]) * jtu[i];
  CHECK(std::abs(lhs - rhs) <= 1e-5 * std::max(1.0, std::abs(lhs)));
}

}  // namespace

TEST_CASE("affine applies scale and shift per channel", "[affine]") {
  ReferenceBackend backend;
  Affine per_channel({2.0, -1.0, 0.5}, {1.0, 0.0, -3.0});
  Tensor x({1, 1, 2, 3});
  const float in[6] = {1, 2, 3, 4, 5, 6};
  std::copy(in, in + 6, x.data());
  const Tensor y = per_channel.forward(x, backend, Mode::Eval);
  const float expected[6] = {3, -2, -1.5f, 9, -5, 0};
  for (int i = 0; i < 6; ++i) CHECK(y[i] == Approx(expected[i]));
  // One value for every channel; flat input [N, F].
  Affine same({4.0}, {0.25});
  Tensor f({2, 2});
  f[0] = 1, f[1] = -1, f[2] = 0, f[3] = 0.5f;
  const Tensor g = same.forward(f, backend, Mode::Eval);
  CHECK(g[0] == Approx(4.25));
  CHECK(g[1] == Approx(-3.75));
  CHECK(g[2] == Approx(0.25));
  CHECK(g[3] == Approx(2.25));
}

TEST_CASE("affine gradient and tangent match finite differences", "[affine][gradient][tangent]") {
  ReferenceBackend backend;
  Rng rng(11);
  Affine layer({1.5, -0.25, 3.0, 0.1}, {0.3});
  const Tensor x = random_tensor({2, 3, 2, 4}, rng);
  const auto c = check_input_gradient(layer, x, backend, Mode::Eval, kEps);
  CHECK(c.checked == x.size());
  CHECK(c.relative_error() <= kTolerance);
  check_tangent(layer, x, backend);
}

TEST_CASE("pad2d pads with its value and crops the gradient", "[pad2d]") {
  ReferenceBackend backend;
  Pad2d layer({1, 0, 2, 3}, -0.5);  // top, left, bottom, right
  Tensor x({1, 2, 2, 1});
  x[0] = 1, x[1] = 2, x[2] = 3, x[3] = 4;
  const Tensor y = layer.forward(x, backend, Mode::Eval);
  REQUIRE(y.shape() == Shape({1, 5, 5, 1}));
  // Row 0 is padding; rows 1-2 hold the image in columns 0-1; rows 3-4 padding.
  for (int64_t i = 0; i < 5; ++i)
    for (int64_t j = 0; j < 5; ++j) {
      const bool inside = i >= 1 && i <= 2 && j <= 1;
      const float want = inside ? x[(i - 1) * 2 + j] : -0.5f;
      CHECK(y[i * 5 + j] == want);
    }
  Rng rng(3);
  Pad2d wide({2, 1, 0, 2}, 0.75);
  const Tensor xr = random_tensor({2, 3, 4, 3}, rng);
  const auto c = check_input_gradient(wide, xr, backend, Mode::Eval, kEps);
  CHECK(c.checked == xr.size());
  CHECK(c.relative_error() <= kTolerance);
  check_tangent(wide, xr, backend);
}

TEST_CASE("affine and pad2d descriptions are checked", "[affine][pad2d][model_file]") {
  auto model_with = [](json node) {
    node["id"] = "n";
    node["inputs"] = {"input"};
    return json{{"name", "t"}, {"input", {4, 4, 3}}, {"output", "f"},
                {"nodes", {node, {{"id", "f"}, {"type", "flatten"}, {"inputs", {"n"}}}}}};
  };
  CHECK_NOTHROW(Model(model_with({{"type", "affine"}, {"scale", {1, 2, 3}}, {"shift", 0.5}})));
  CHECK_NOTHROW(Model(model_with({{"type", "pad2d"}, {"padding", {1, 1, 0, 0}}})));
  CHECK_THROWS_WITH(Model(model_with({{"type", "affine"}, {"scale", {1, 2}}, {"shift", 0}})),
                    Catch::Contains("2 constants for 3 channels"));
  CHECK_THROWS_WITH(Model(model_with({{"type", "affine"}, {"scale", {1}}})), Catch::Contains("missing 'shift'"));
  CHECK_THROWS_WITH(Model(model_with({{"type", "affine"}, {"scale", 1}, {"shift", 0}, {"bias", 1}})),
                    Catch::Contains("only 'scale' and 'shift'"));
  CHECK_THROWS_WITH(Model(model_with({{"type", "pad2d"}, {"padding", {1, -1, 0, 0}}})),
                    Catch::Contains("0..4096"));
  CHECK_THROWS_WITH(Model(model_with({{"type", "pad2d"}, {"padding", {1, 1}}})),
                    Catch::Contains("[top, left, bottom, right]"));
}
