// Class-mean attribution maps against a hand-computed average: a linear
// model's gradient x input is W[label] * x, so each class's mean signed and
// mean absolute map are known in closed form.
#include <catch2/catch.hpp>

#include <cmath>

#include "igscope/attribution/class_maps.h"
#include "igscope/backend/reference.h"
#include "igscope/error.h"
#include "igscope/layers/dense.h"
#include "igscope/model.h"

using namespace igscope;

TEST_CASE("class maps: per-class mean signed and absolute attribution of a linear model", "[classmaps]") {
  Model m(nlohmann::json::parse(R"({"name": "linear", "input": [2], "layers": [{"type": "dense", "out_features": 3}]})"));
  auto& d = dynamic_cast<Dense&>(m.layer(0));
  const float w[3][2] = {{1.0f, -2.0f}, {0.5f, 3.0f}, {-1.0f, 1.0f}};
  for (int c = 0; c < 3; ++c)
    for (int i = 0; i < 2; ++i) d.weight()[c * 2 + i] = w[c][i];
  Tensor images({4, 2});
  const float x[4][2] = {{1.0f, 2.0f}, {-3.0f, 1.0f}, {2.0f, -1.0f}, {0.5f, 0.5f}};
  for (int k = 0; k < 4; ++k)
    for (int i = 0; i < 2; ++i) images[k * 2 + i] = x[k][i];
  const std::vector<int> labels{0, 0, 1, 0};
  ReferenceBackend backend;
  AttributionRequest req;
  req.method = Method::GradientTimesInput;
  const ClassMaps maps = class_mean_maps(m, backend, images, labels, 3, req);
  REQUIRE(maps.counts == std::vector<int64_t>{3, 1, 0});
  for (int i = 0; i < 2; ++i) {
    double s = 0.0, a = 0.0;
    for (int k : {0, 1, 3}) {
      s += w[0][i] * x[k][i];
      a += std::abs(w[0][i] * x[k][i]);
    }
    CHECK(maps.mean_signed[0][i] == Approx(s / 3));
    CHECK(maps.mean_abs[0][i] == Approx(a / 3));
    CHECK(maps.mean_signed[1][i] == Approx(w[1][i] * x[2][i]));
    CHECK(maps.mean_signed[2][i] == 0.0f);
  }
  CHECK(std::isnan(maps.mean_relative_gap[0]));  // gradient x input has no path, so no gap

  req.method = Method::IG;
  req.baseline = "constant:0";
  req.range = {-5, 5};
  const ClassMaps ig = class_mean_maps(m, backend, images, labels, 3, req);
  for (int i = 0; i < 2; ++i) CHECK(ig.mean_signed[0][i] == Approx(maps.mean_signed[0][i]).epsilon(1e-6));
  CHECK(ig.mean_relative_gap[0] < 1e-6);

  CHECK_THROWS_WITH(class_mean_maps(m, backend, images, {0, 1, 3, 0}, 3, req), Catch::Contains("has label 3, outside 0..2"));
  CHECK_THROWS_WITH(class_mean_maps(m, backend, images, {0, 1}, 3, req), Catch::Contains("2 labels for images"));
}
