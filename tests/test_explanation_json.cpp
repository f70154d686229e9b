// The request/result JSON the command line and the web page share, and the
// cancellation hook the page uses to stop a computation in flight.
#include <catch2/catch.hpp>

#include <cmath>

#include "igscope/attribution/explain.h"
#include "igscope/attribution/explanation_json.h"
#include "igscope/backend/reference.h"
#include "igscope/error.h"
#include "igscope/random.h"

using namespace igscope;
using nlohmann::json;

namespace {

Model small_model(uint64_t seed) {
  Model m(json::parse(R"({
    "name": "small", "input": [6, 6, 1], "classes": ["a", "b", "c"],
    "layers": [
      {"type": "conv2d", "out_channels": 2, "kernel": [3, 3], "stride": [1, 1], "padding": [1, 1]},
      {"type": "smelu", "beta": 0.5},
      {"type": "flatten"},
      {"type": "dense", "out_features": 3}
    ]})"));
  m.init_he(seed);
  return m;
}

Tensor small_input(uint64_t seed) {
  Rng rng(seed);
  Tensor x({1, 6, 6, 1});
  for (int64_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(rng.uniform());
  return x;
}

}  // namespace

TEST_CASE("request_from_json reads every key into the request", "[json]") {
  const AttributionRequest r = request_from_json(json::parse(R"({
    "method": "smoothgrad_ig", "target": 2, "output": "probability", "baseline": "blur:2.5@7",
    "steps": 48, "quadrature": "riemann_middle", "batch_size": 8, "max_steps": 300,
    "smoothgrad": {"samples": 5, "sigma": 0.3, "statistic": "variance"}, "blur_max_sigma": 6.5, "seed": 11})"));
  CHECK(r.method == Method::SmoothGradIG);
  CHECK(r.target == 2);
  CHECK(r.output == TargetOutput::Probability);
  CHECK(r.baseline == "blur:2.5@7");
  CHECK(r.integration.steps == 48);
  CHECK(r.integration.quadrature == Quadrature::RiemannMiddle);
  CHECK(r.integration.batch_size == 8);
  CHECK(r.adaptive_options.max_evaluations == 300);
  CHECK(r.smoothgrad.samples == 5);
  CHECK(r.smoothgrad.sigma == 0.3);
  CHECK(r.smoothgrad.statistic == SmoothGradStatistic::Variance);
  CHECK(r.blur_max_sigma == 6.5);
  CHECK(r.seed == 11);
  CHECK_FALSE(r.adaptive);

  const AttributionRequest a = request_from_json(json::parse(R"({"method": "ig", "adaptive": 0.002})"));
  CHECK(a.adaptive);
  CHECK(a.adaptive_options.tolerance == 0.002);
  CHECK_FALSE(request_from_json(json::parse(R"({"adaptive": null})")).adaptive);
}

TEST_CASE("request_from_json names what is wrong", "[json]") {
  auto fails_with = [](const char* text, const char* message) {
    INFO(text);
    CHECK_THROWS_WITH(request_from_json(json::parse(text)), Catch::Contains(message));
  };
  fails_with(R"([1, 2])", "expected a JSON object");
  fails_with(R"({"stpes": 3})", "unknown key 'stpes'");
  fails_with(R"({"steps": "many"})", "'steps' must be an integer");
  fails_with(R"({"steps": 2.5})", "'steps' must be an integer");
  fails_with(R"({"method": "magic"})", "unknown method 'magic'");
  fails_with(R"({"quadrature": "simpson"})", "simpson");
  fails_with(R"({"seed": -1})", "'seed' must be a non-negative integer");
  fails_with(R"({"method": "gradient", "adaptive": 0.01})", "'adaptive' applies to the path methods");
  fails_with(R"({"smoothgrad": {"n": 3}})", "unknown key 'smoothgrad.n'");
  fails_with(R"({"smoothgrad": 3})", "'smoothgrad' must be an object");
}

TEST_CASE("explanation_json carries the attributions, the numbers and the path as computed", "[json]") {
  ReferenceBackend backend;
  Model m = small_model(3);
  const Tensor x = small_input(4);
  AttributionRequest req = request_from_json(json::parse(R"({"method": "ig", "target": 1, "steps": 12, "baseline": "white"})"));
  const Explanation e = explain(m, backend, x, req);
  const json j = explanation_json(e, req, m);

  CHECK(j["method"] == "ig");
  CHECK(j["target"] == 1);
  CHECK(j["target_name"] == "b");
  CHECK(j["predicted"] == e.predicted);
  CHECK(j["quadrature"] == "gausslegendre");
  CHECK(j["steps"] == 12);
  CHECK(j["baseline"] == "white");
  CHECK(j["f_input"].get<double>() == e.attribution.f_input);
  CHECK(j["f_baseline"].get<double>() == e.attribution.f_baseline);
  CHECK(j["gap"].get<double>() == e.attribution.gap);
  CHECK(j["shape"] == json::array({6, 6, 1}));
  REQUIRE(j["attributions"].size() == 6);
  for (int64_t y = 0; y < 6; ++y) {
    REQUIRE(j["attributions"][y].size() == 6);
    for (int64_t c = 0; c < 6; ++c) {
      CHECK(j["attributions"][y][c].get<float>() == e.attribution.values[y * 6 + c]);
      CHECK(j["baseline_image"][y][c].get<float>() == 1.0f);  // white
    }
  }
  REQUIRE(j["path"].size() == 12);
  double weighted = 0.0;
  for (const auto& s : j["path"]) weighted += s["weight"].get<double>() * s["slope"].get<double>();
  CHECK(weighted == Approx(e.attribution.sum).epsilon(1e-6));

  // A method without a baseline has no F(x') and no gap: null, not NaN.
  AttributionRequest grad;
  grad.method = Method::Gradient;
  const json g = explanation_json(explain(m, backend, x, grad), grad, m);
  CHECK(g["f_baseline"].is_null());
  CHECK(g["gap"].is_null());
  CHECK(g["relative_gap"].is_null());
  CHECK_FALSE(g.contains("path"));
  CHECK(json::parse(g.dump()) == g);  // valid JSON throughout
}

TEST_CASE("a cancelled request stops between batches; an uncancelled one is unchanged by the hook", "[json][cancel]") {
  ReferenceBackend backend;
  Model m = small_model(5);
  const Tensor x = small_input(6);
  AttributionRequest req;
  req.integration.steps = 16;
  req.integration.batch_size = 4;
  const Explanation plain = explain(m, backend, x, req);

  int polls = 0;
  req.cancelled = [&polls] {
    ++polls;
    return false;
  };
  const Explanation hooked = explain(m, backend, x, req);
  CHECK(polls >= 16 / 4);  // at least once per batch of path points
  for (int64_t i = 0; i < x.size(); ++i) CHECK(hooked.attribution.values[i] == plain.attribution.values[i]);

  int seen = 0;
  req.cancelled = [&seen] { return ++seen >= 2; };
  CHECK_THROWS_AS(explain(m, backend, x, req), Cancelled);
  CHECK(seen == 2);  // nothing ran after the poll that said stop
}
