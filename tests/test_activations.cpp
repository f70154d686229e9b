// The elementwise activations (layers/activations.h): every kind's
// backward_input against central finite differences on a random 4-D shape,
// forward_tangent against finite differences and against backward
// (<J v, u> = <v, J^T u>), forward against closed forms at hand-picked points,
// PyTorch's derivative at the kinks, bad parameters refused, and a model with
// all of them through save and load.
//
// Finite-difference tolerance: max |analytic - numerical| <= 1e-3 * max
// |numerical|, as in test_layers_gradients.cpp. With eps = 1e-2 the truncation
// error of the smooth kinds is eps^2 |f'''| / 6 < 1e-4 and float32 rounding of
// the outputs adds ~1e-5; the kinked kinds are exact up to rounding because
// every sample lies more than 2 eps from a kink. A wrong derivative is off by
// O(0.1) or more.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

#include "gradient_check.h"
#include "igscope/backend/reference.h"
#include "igscope/error.h"
#include "igscope/layers/activations.h"
#include "igscope/model.h"
#include "igscope/safetensors.h"

using namespace igscope;
using namespace igscope::testing;
using nlohmann::json;

namespace {

constexpr double kTolerance = 1e-3;
constexpr double kEps = 1e-2;

struct Kind {
  json spec;
  std::vector<double> kinks;  // points where the derivative jumps
};

const std::vector<Kind>& kinds() {
  static const std::vector<Kind> k = {
      {{{"type", "sigmoid"}}, {}},
      {{{"type", "tanh"}}, {}},
      {{{"type", "gelu"}}, {}},
      {{{"type", "gelu"}, {"approximate", "tanh"}}, {}},
      {{{"type", "silu"}}, {}},
      {{{"type", "leaky_relu"}}, {0.0}},
      {{{"type", "leaky_relu"}, {"negative_slope", 0.2}}, {0.0}},
      {{{"type", "leaky_relu"}, {"negative_slope", -1.5}}, {0.0}},
      {{{"type", "relu6"}}, {0.0, 6.0}},
      {{{"type", "hardswish"}}, {-3.0, 3.0}},
      {{{"type", "hardsigmoid"}}, {-3.0, 3.0}},
  };
  return k;
}

std::unique_ptr<Layer> make(const json& spec) { return make_activation(spec); }

// Uniform in [-8, 8] (beyond every kink, into the saturated tails), each
// sample redrawn until it is more than 2 eps from every kink.
Tensor inputs_away_from_kinks(const Shape& shape, const std::vector<double>& kinks, Rng& rng) {
  Tensor t(shape);
  for (int64_t i = 0; i < t.size(); ++i) {
    for (;;) {
      const float v = static_cast<float>(rng.uniform(-8.0, 8.0));
      bool near = false;
      for (double k : kinks) near = near || std::abs(static_cast<double>(v) - k) <= 2 * kEps;
      if (!near) {
        t[i] = v;
        break;
      }
    }
  }
  return t;
}

Shape random_shape(Rng& rng) {
  return {static_cast<int64_t>(1 + rng.below(3)), static_cast<int64_t>(1 + rng.below(5)),
          static_cast<int64_t>(1 + rng.below(5)), static_cast<int64_t>(1 + rng.below(4))};
}

double dot(const Tensor& a, const Tensor& b) {
  double s = 0.0;
  for (int64_t i = 0; i < a.size(); ++i) s += static_cast<double>(a[i]) * b[i];
  return s;
}

}  // namespace

TEST_CASE("activation gradients match finite differences", "[activations][gradient]") {
  ReferenceBackend backend;
  Rng rng(2024);
  for (const Kind& k : kinds()) {
    for (int trial = 0; trial < 3; ++trial) {
      auto layer = make(k.spec);
      const Tensor x = inputs_away_from_kinks(random_shape(rng), k.kinks, rng);
      INFO(k.spec.dump() << " input " << shape_to_string(x.shape()));
      const auto c = check_input_gradient(*layer, x, backend, Mode::Eval, kEps, 7 + static_cast<uint64_t>(trial));
      CHECK(c.checked == x.size());
      CHECK(c.relative_error() <= kTolerance);
    }
  }
}

TEST_CASE("activation tangents match finite differences and the backward pass", "[activations][tangent]") {
  ReferenceBackend backend;
  Rng rng(77);
  for (const Kind& k : kinds()) {
    auto layer = make(k.spec);
    const Tensor x = inputs_away_from_kinks(random_shape(rng), k.kinks, rng);
    const Tensor v = random_tensor(x.shape(), rng);
    const Tensor u = random_tensor(x.shape(), rng);
    INFO(k.spec.dump() << " input " << shape_to_string(x.shape()));
    // Directional finite difference along v: (f(x + eps v) - f(x - eps v)) / 2 eps.
    Tensor xp = x, xm = x;
    for (int64_t i = 0; i < x.size(); ++i) {
      xp[i] = static_cast<float>(x[i] + kEps * v[i]);
      xm[i] = static_cast<float>(x[i] - kEps * v[i]);
    }
    const Tensor fp = layer->forward(xp, backend, Mode::Eval);
    const Tensor fm = layer->forward(xm, backend, Mode::Eval);
    layer->forward(x, backend, Mode::Eval);
    const Tensor jv = layer->forward_tangent(v, backend);
    GradientComparison c;
    for (int64_t i = 0; i < x.size(); ++i)
      compare(c, jv[i], (static_cast<double>(fp[i]) - fm[i]) / (static_cast<double>(xp[i]) - xm[i]) * v[i]);
    CHECK(c.relative_error() <= kTolerance);
    // <J v, u> = <v, J^T u>
    const Tensor jtu = layer->backward_input(u, backend);
    const double lhs = dot(jv, u), rhs = dot(v, jtu);
    CHECK(std::abs(lhs - rhs) <= 1e-5 * std::max(1.0, std::abs(lhs)));
  }
}

TEST_CASE("activations equal their closed forms at hand-picked points", "[activations]") {
  ReferenceBackend backend;
  struct Point {
    json spec;
    double x, y;
  };
  const std::vector<Point> points = {
      {{{"type", "sigmoid"}}, 0.0, 0.5},
      {{{"type", "sigmoid"}}, 2.0, 0.8807970779778823},
      {{{"type", "sigmoid"}}, -2.0, 1.0 - 0.8807970779778823},
      {{{"type", "tanh"}}, 1.0, 0.7615941559557649},
      {{{"type", "tanh"}}, -1.0, -0.7615941559557649},
      {{{"type", "gelu"}}, 1.0, 0.8413447460685429},
      {{{"type", "gelu"}}, -1.0, -0.15865525393145707},
      {{{"type", "gelu"}, {"approximate", "none"}}, 0.0, 0.0},
      {{{"type", "gelu"}, {"approximate", "tanh"}}, 1.0, 0.8411919906082768},
      {{{"type", "silu"}}, 1.0, 0.7310585786300049},
      {{{"type", "silu"}}, -2.0, -0.2384058440442351},
      {{{"type", "leaky_relu"}}, -2.0, -0.02},
      {{{"type", "leaky_relu"}}, 3.0, 3.0},
      {{{"type", "leaky_relu"}, {"negative_slope", 0.2}}, -2.0, -0.4},
      {{{"type", "relu6"}}, -1.0, 0.0},
      {{{"type", "relu6"}}, 2.5, 2.5},
      {{{"type", "relu6"}}, 7.0, 6.0},
      {{{"type", "hardswish"}}, 1.0, 2.0 / 3.0},
      {{{"type", "hardswish"}}, -1.0, -1.0 / 3.0},
      {{{"type", "hardswish"}}, -4.0, 0.0},
      {{{"type", "hardswish"}}, 4.0, 4.0},
      {{{"type", "hardsigmoid"}}, 0.0, 0.5},
      {{{"type", "hardsigmoid"}}, 1.0, 4.0 / 6.0},
      {{{"type", "hardsigmoid"}}, -4.0, 0.0},
      {{{"type", "hardsigmoid"}}, 4.0, 1.0},
  };
  for (const Point& p : points) {
    INFO(p.spec.dump() << " at " << p.x);
    auto layer = make(p.spec);
    Tensor x({1, 1}, static_cast<float>(p.x));
    const Tensor y = layer->forward(x, backend, Mode::Eval);
    CHECK(std::abs(static_cast<double>(y[0]) - p.y) <= 1e-7 * std::max(1.0, std::abs(p.y)));
  }
}

TEST_CASE("activation derivatives at the kinks are PyTorch's", "[activations]") {
  // Values from PyTorch 1.13's autograd (float32 and float64 agree).
  ReferenceBackend backend;
  struct Point {
    json spec;
    double x, d;
  };
  const std::vector<Point> points = {
      {{{"type", "leaky_relu"}, {"negative_slope", 0.1}}, 0.0, 0.1},
      {{{"type", "relu6"}}, 0.0, 0.0},
      {{{"type", "relu6"}}, 6.0, 0.0},
      {{{"type", "hardswish"}}, -3.0, -0.5},
      {{{"type", "hardswish"}}, 3.0, 1.5},
      {{{"type", "hardsigmoid"}}, -3.0, 0.0},
      {{{"type", "hardsigmoid"}}, 3.0, 0.0},
      {{{"type", "hardsigmoid"}}, 0.0, 1.0 / 6.0},
  };
  for (const Point& p : points) {
    INFO(p.spec.dump() << " at " << p.x);
    auto layer = make(p.spec);
    layer->forward(Tensor({1, 1}, static_cast<float>(p.x)), backend, Mode::Eval);
    const Tensor d = layer->backward_input(Tensor({1, 1}, 1.0f), backend);
    CHECK(std::abs(static_cast<double>(d[0]) - p.d) <= 1e-7);
  }
}

TEST_CASE("bad activation parameters are refused with a clear message", "[activations]") {
  const auto arch_with = [](const json& layer) {
    return json{{"input", json::array({4})}, {"layers", json::array({layer, {{"type", "dense"}, {"out_features", 2}}})}};
  };
  struct Bad {
    json layer;
    std::string says;
  };
  const std::vector<Bad> bad = {
      {{{"type", "leaky_relu"}, {"negative_slope", "small"}}, "'negative_slope' must be a finite number"},
      {{{"type", "leaky_relu"}, {"negative_slope", nullptr}}, "'negative_slope' must be a finite number"},
      {{{"type", "leaky_relu"}, {"negative_slope", std::numeric_limits<double>::infinity()}},
       "'negative_slope' must be a finite number"},
      {{{"type", "leaky_relu"}, {"negative_slope", std::numeric_limits<double>::quiet_NaN()}},
       "'negative_slope' must be a finite number"},
      {{{"type", "gelu"}, {"approximate", "erf"}}, "'approximate' must be \"none\" (erf) or \"tanh\""},
      {{{"type", "gelu"}, {"approximate", true}}, "'approximate' must be"},
      {{{"type", "relu6"}, {"negative_slope", 0.1}}, "relu6 takes no parameters, got 'negative_slope'"},
      {{{"type", "leaky_relu"}, {"negativ_slope", 0.1}}, "leaky_relu takes only 'negative_slope', got 'negativ_slope'"},
  };
  for (const Bad& b : bad) {
    INFO(b.layer.dump());
    try {
      Model m(arch_with(b.layer));
      FAIL("accepted");
    } catch (const ModelFileError& e) {
      CHECK(e.kind() == ModelFileErrorKind::Architecture);
      const std::string msg = e.what();
      INFO(msg);
      CHECK(msg.find("layer 0") != std::string::npos);
      CHECK(msg.find(b.says) != std::string::npos);
    }
  }
  CHECK_THROWS_AS(Activation(ActivationKind::LeakyRelu, std::nan("")), Error);
  // The defaults: gelu is the erf form, leaky_relu's slope 0.01.
  CHECK(Model(arch_with({{"type", "gelu"}})).layer(0).to_json() == json{{"type", "gelu"}, {"approximate", "none"}});
  CHECK(Model(arch_with({{"type", "leaky_relu"}})).layer(0).to_json() ==
        json{{"type", "leaky_relu"}, {"negative_slope", 0.01}});
  // The unknown-type message lists them.
  try {
    Model m(arch_with({{"type", "swish"}}));
    FAIL("accepted");
  } catch (const ModelFileError& e) {
    CHECK(std::string(e.what()).find("hardsigmoid") != std::string::npos);
  }
}

TEST_CASE("a model with every activation round-trips through save and load", "[activations][model_file]") {
  json layers = json::array({{{"type", "conv2d"}, {"out_channels", 3}, {"kernel", 3}, {"padding", 1}}});
  for (const Kind& k : kinds()) layers.push_back(k.spec);
  layers.push_back({{"type", "flatten"}});
  layers.push_back({{"type", "dense"}, {"out_features", 4}});
  Model m(json{{"name", "activations"}, {"input", {5, 4, 2}}, {"layers", layers}});
  m.init_he(5);
  const std::vector<uint8_t> bytes = model_to_bytes(m);
  Model back = load_model_bytes(bytes.data(), bytes.size());
  CHECK(back.architecture() == m.architecture());
  for (size_t i = 0; i < kinds().size(); ++i) {
    const json written = back.layer(i + 1).to_json();
    for (const auto& [key, value] : kinds()[i].spec.items()) CHECK(written.at(key) == value);
  }
  ReferenceBackend backend;
  Rng rng(9);
  const Tensor x = random_tensor(m.batch_input_shape(2), rng, 0.0, 1.0);
  const Tensor a = m.forward(x, backend), b = back.forward(x, backend);
  REQUIRE(a.size() == b.size());
  for (int64_t i = 0; i < a.size(); ++i) CHECK(a[i] == b[i]);
  // igscope info's description of each layer: type and parameters.
  const auto costs = back.layer_costs();
  CHECK(costs[3].description == "gelu approximate=\"none\"");
  CHECK(costs[4].description == "gelu approximate=\"tanh\"");
  CHECK(costs[7].description == "leaky_relu negative_slope=0.2");
  CHECK(costs[9].description == "relu6");
  CHECK(costs[9].multiply_adds == 0);
  CHECK(costs[9].output_shape == Shape{5, 4, 3});
}
