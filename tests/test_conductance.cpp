// Conductance against math: every layer's forward tangent against its
// backward pass (the dot-product identity <J v, u> = <v, J^T u>) and against
// central finite differences of a whole SmeLU network; layer and neuron
// conductance of a one-hidden-layer network against their closed forms;
// completeness at every hidden layer of the Fashion-MNIST CNN (the sum of a
// layer's conductances equals the IG sum computed by the full backward pass,
// and F(x) - F(x') up to the quadrature error); neuron conductance summed over
// the input against the same unit's layer conductance (backward pass against
// forward tangent).
#include <catch2/catch.hpp>

#include <cmath>
#include <fstream>

#include "gradient_check.h"
#include "igscope/architectures.h"
#include "igscope/attribution/conductance.h"
#include "igscope/attribution/explanation_json.h"
#include "igscope/attribution/ig.h"
#include "igscope/backend/reference.h"
#include "igscope/data/fashion_mnist.h"
#include "igscope/error.h"
#include "igscope/layers/conv2d.h"
#include "igscope/layers/dense.h"
#include "igscope/layers/dropout.h"
#include "igscope/layers/flatten.h"
#include "igscope/layers/maxpool2d.h"
#include "igscope/layers/relu.h"
#include "igscope/layers/smelu.h"
#include "igscope/layers/softmax.h"
#include "igscope/model.h"

using namespace igscope;
using namespace igscope::testing;

namespace {

double dot(const Tensor& a, const Tensor& b) {
  REQUIRE(a.size() == b.size());
  double s = 0.0;
  for (int64_t i = 0; i < a.size(); ++i) s += static_cast<double>(a[i]) * b[i];
  return s;
}

double sum_abs(const Tensor& a) {
  double s = 0.0;
  for (int64_t i = 0; i < a.size(); ++i) s += std::abs(static_cast<double>(a[i]));
  return s;
}

// <tangent(v), u> against <v, backward(u)>, relative to sum |v_i (J^T u)_i|.
double dot_product_mismatch(Layer& layer, const Shape& in_shape, Mode mode, uint64_t seed) {
  ReferenceBackend backend;
  Rng rng(seed);
  for (auto& p : layer.parameters())
    for (int64_t i = 0; i < p.value.size(); ++i) p.value[i] = static_cast<float>(rng.uniform(-1, 1));
  const Tensor x = random_tensor(in_shape, rng);
  const Tensor out = layer.forward(x, backend, mode);
  const Tensor v = random_tensor(in_shape, rng), u = random_tensor(out.shape(), rng);
  const Tensor jv = layer.forward_tangent(v, backend);
  REQUIRE(jv.shape() == out.shape());
  const Tensor jtu = layer.backward_input(u, backend);
  Tensor prod(v.shape());
  for (int64_t i = 0; i < v.size(); ++i) prod[i] = v[i] * jtu[i];
  return std::abs(dot(jv, u) - dot(v, jtu)) / std::max(sum_abs(prod), 1e-12);
}

// input [3] -> dense 4 -> smelu(beta) -> dense 1 with the given weights.
Model one_hidden_layer(double beta) {
  Model m(nlohmann::json::parse(R"({"name": "tiny", "input": [3], "layers": [
      {"type": "dense", "out_features": 4}, {"type": "smelu", "beta": )" + std::to_string(beta) + R"(},
      {"type": "dense", "out_features": 1}]})"));
  const float a[4][3] = {{0.8f, -0.5f, 0.3f}, {-0.4f, 0.9f, 0.2f}, {0.25f, 0.35f, -0.7f}, {0.1f, 0.05f, 0.15f}};
  const float b[4] = {0.1f, -0.2f, 0.05f, 0.4f};
  const float v[4] = {1.5f, -0.7f, 0.9f, 2.0f};
  auto& d0 = dynamic_cast<Dense&>(m.layer(0));
  auto& d2 = dynamic_cast<Dense&>(m.layer(2));
  for (int j = 0; j < 4; ++j) {
    for (int i = 0; i < 3; ++i) d0.weight()[j * 3 + i] = a[j][i];
    d0.bias()[j] = b[j];
    d2.weight()[j] = v[j];
  }
  d2.bias()[0] = 0.3f;
  return m;
}

double smelu(double x, double beta) { return x >= beta ? x : (x <= -beta ? 0.0 : (x + beta) * (x + beta) / (4 * beta)); }

std::string shipped_smelu_path() {
  std::string here = __FILE__;
  return here.substr(0, here.rfind("/tests/")) + "/model_weights/fashion_cnn_smelu.safetensors";
}

}  // namespace

TEST_CASE("forward tangent of every layer agrees with its backward pass (<J v, u> = <v, J^T u>)",
          "[conductance][tangent][layers]") {
  Conv2d conv(3, 4, 3, 2, 2, 1, 1, 0);
  CHECK(dot_product_mismatch(conv, {2, 6, 5, 3}, Mode::Eval, 1) < 1e-5);
  Dense dense(7, 5);
  CHECK(dot_product_mismatch(dense, {3, 7}, Mode::Eval, 2) < 1e-5);
  ReLU relu;
  CHECK(dot_product_mismatch(relu, {3, 11}, Mode::Eval, 3) < 1e-5);
  SmeLU sm(0.5);
  CHECK(dot_product_mismatch(sm, {2, 4, 4, 3}, Mode::Eval, 4) < 1e-5);
  MaxPool2d pool(2, 2, 2, 2);
  CHECK(dot_product_mismatch(pool, {2, 6, 4, 3}, Mode::Eval, 5) < 1e-5);
  Flatten flat;
  CHECK(dot_product_mismatch(flat, {2, 3, 4, 5}, Mode::Eval, 6) < 1e-5);
  Dropout drop(0.5, 7);
  CHECK(dot_product_mismatch(drop, {2, 9}, Mode::Train, 8) < 1e-5);
  CHECK(dot_product_mismatch(drop, {2, 9}, Mode::Eval, 9) < 1e-5);
  Softmax soft;
  CHECK(dot_product_mismatch(soft, {3, 6}, Mode::Eval, 10) < 1e-5);
  LogSoftmax logsoft;
  CHECK(dot_product_mismatch(logsoft, {3, 6}, Mode::Eval, 11) < 1e-5);
}

// Layer `node`'s output for input x, running the chain's layers one by one.
static Tensor node_output(Model& m, const Tensor& x, Backend& backend, size_t node) {
  Tensor h = x;
  for (size_t i = 0; i <= node; ++i) h = m.layer(i).forward(h, backend, Mode::Eval);
  return h;
}

TEST_CASE("the tangent through a SmeLU CNN equals the central finite difference of its forward pass",
          "[conductance][tangent]") {
  Model m(nlohmann::json::parse(R"({"name": "small", "input": [6, 6, 2], "layers": [
      {"type": "conv2d", "out_channels": 3, "kernel": [3, 3], "padding": [1, 1]}, {"type": "smelu", "beta": 0.5},
      {"type": "conv2d", "out_channels": 2, "kernel": [3, 3], "stride": [2, 2]}, {"type": "smelu", "beta": 0.5},
      {"type": "flatten"}, {"type": "dense", "out_features": 5}, {"type": "log_softmax"}]})"));
  m.init_he(3);
  ReferenceBackend backend;
  Rng rng(5);
  const Tensor x = random_tensor({2, 6, 6, 2}, rng), v = random_tensor({2, 6, 6, 2}, rng);
  for (size_t node : {size_t{1}, size_t{3}, size_t{6}}) {
    m.forward(x, backend);
    const Tensor t = m.tangent_to(v, backend, node);
    const double eps = 1e-2;
    Tensor xp = x, xm = x;
    for (int64_t i = 0; i < x.size(); ++i) {
      xp[i] = static_cast<float>(x[i] + eps * v[i]);
      xm[i] = static_cast<float>(x[i] - eps * v[i]);
    }
    const Tensor up = node_output(m, xp, backend, node), down = node_output(m, xm, backend, node);
    GradientComparison c;
    for (int64_t i = 0; i < t.size(); ++i) compare(c, t[i], (static_cast<double>(up[i]) - down[i]) / (2 * eps));
    INFO("node " << node << ": max |tangent - finite difference| / max |fd| = " << c.relative_error());
    CHECK(c.relative_error() < 2e-3);
    CHECK(c.max_abs_grad > 0.1);
  }
  CHECK_THROWS_WITH(m.tangent_to(v, backend, 7), Catch::Contains("out of range"));
  CHECK_THROWS_WITH(m.layer_output_shape(7), Catch::Contains("out of range"));
}

// F = c + sum_j v_j smelu(a_j . x + b_j). Downstream of the hidden layer F is
// linear, so dF/dy_j = v_j and Cond_j = v_j (y_j(x) - y_j(x')) exactly, for
// the smelu outputs and for the dense outputs z_j alike. Neuron conductance:
// NC_{j,i} = v_j a_ji (x_i - x'_i) (smelu(z_j(x)) - smelu(z_j(x'))) / (z_j(x) - z_j(x')).
TEST_CASE("layer and neuron conductance of a one-hidden-layer network equal their closed forms",
          "[conductance][analytic]") {
  const double beta = 0.5;
  Model m = one_hidden_layer(beta);
  ReferenceBackend backend;
  auto& d0 = dynamic_cast<Dense&>(m.layer(0));
  auto& d2 = dynamic_cast<Dense&>(m.layer(2));
  // x' = 0; x chosen so that units cross the smelu pieces along the path
  const Tensor x = [] {
    Tensor t({1, 3});
    t[0] = 1.2f; t[1] = -0.9f; t[2] = 0.6f;
    return t;
  }();
  const Tensor base({1, 3});
  double z1[4], z0[4];
  for (int j = 0; j < 4; ++j) {
    z1[j] = d0.bias()[j];
    z0[j] = d0.bias()[j];
    for (int i = 0; i < 3; ++i) z1[j] += static_cast<double>(d0.weight()[j * 3 + i]) * x[i];
  }
  const double f_x = m.forward(x, backend)[0];
  const double f_b = m.forward(base, backend)[0];

  for (size_t layer : {size_t{0}, size_t{1}}) {
    ConductanceRequest req;
    req.layer = layer;
    req.integration = {Quadrature::GaussLegendre, 2048, 300};
    const LayerConductance c = layer_conductance(m, backend, x, {base}, req);
    REQUIRE(c.unit_shape == Shape{4});
    REQUIRE(c.channels.size() == 4);
    for (int j = 0; j < 4; ++j) {
      const double exact = d2.weight()[j] * (smelu(z1[j], beta) - smelu(z0[j], beta));
      INFO("layer " << layer << " unit " << j << ": conductance " << c.units[j] << ", closed form " << exact);
      CHECK(std::abs(c.units[j] - exact) <= 2e-5 * std::max(1.0, std::abs(exact)));
      CHECK(c.channels[static_cast<size_t>(j)] == Approx(c.units[j]));
    }
    CHECK(c.f_input == Approx(f_x).epsilon(1e-6));
    CHECK(c.f_baseline == Approx(f_b).epsilon(1e-6));
    CHECK(std::abs(c.gap) <= 1e-4 * std::abs(f_x - f_b));
  }

  // Neuron conductance of each smelu unit, split over the 3 inputs.
  for (int64_t j = 0; j < 4; ++j) {
    ConductanceRequest req;
    req.layer = 1;
    req.integration = {Quadrature::GaussLegendre, 2048, 300};
    const NeuronConductance nc = neuron_conductance(m, backend, x, {base}, req, j);
    const double ratio = (smelu(z1[j], beta) - smelu(z0[j], beta)) / (z1[j] - z0[j]);
    for (int64_t i = 0; i < 3; ++i) {
      const double exact = d2.weight()[j] * d0.weight()[j * 3 + i] * (x[i] - base[i]) * ratio;
      INFO("unit " << j << " input " << i << ": " << nc.attributions[i] << " vs closed form " << exact);
      CHECK(std::abs(nc.attributions[i] - exact) <= 2e-5 * std::max(1.0, std::abs(exact)));
    }
    CHECK(nc.conductance == Approx(d2.weight()[j] * (smelu(z1[j], beta) - smelu(z0[j], beta))).margin(2e-5));
  }
}

// On the Fashion-MNIST CNN with SmeLU (the shipped file when it is there,
// else a random one): at every hidden layer, the conductances sum to the IG
// sum of the same quadrature (two different computations: forward tangent
// against the full backward pass) and so to F(x) - F(x') up to IG's gap; a
// unit's neuron conductance sums to its layer conductance.
TEST_CASE("CNN: completeness at every hidden layer, and neuron conductance sums to the unit's conductance",
          "[conductance][cnn]") {
  const std::string path = shipped_smelu_path();
  Model m = [&] {
    if (std::ifstream(path).good()) return load_model(path);
    WARN(path << " is not there: a random fashion_cnn_smelu instead");
    Model r(named_architecture("fashion_cnn_smelu"));
    r.init_he(21);
    return r;
  }();
  auto backend = make_backend(default_backend(), 1);
  const Dataset test = load_fashion_mnist("test");
  for (int64_t k : {int64_t{0}, int64_t{7}}) {
    Tensor x({1, 28, 28, 1});
    std::copy(test.images.data() + k * 784, test.images.data() + (k + 1) * 784, x.data());
    const Tensor base(x.shape());
    const int64_t target = predicted_class(m, *backend, x);
    const IGOptions opts{Quadrature::GaussLegendre, 32, 16};
    ModelTarget f(m, *backend, target);
    const Attribution ig = integrated_gradients(f, x, base, opts);
    const double delta = ig.f_input - ig.f_baseline;
    // conv1 smelu, pool1, conv2 smelu, conv3 smelu, dense smelu
    for (size_t layer : {size_t{1}, size_t{2}, size_t{4}, size_t{7}, size_t{11}}) {
      ConductanceRequest req;
      req.layer = layer;
      req.target = target;
      req.integration = opts;
      const LayerConductance c = layer_conductance(m, *backend, x, {base}, req);
      INFO("test:" << k << " layer " << layer << ": sum of conductances " << c.sum << ", IG sum " << ig.sum
                   << ", F(x) - F(x') " << delta << ", layer gap " << c.gap << ", IG gap " << ig.gap);
      CHECK(std::abs(c.sum - ig.sum) <= 1e-4 * std::abs(delta));
      CHECK(std::abs(c.gap) <= std::abs(ig.gap) + 1e-4 * std::abs(delta));
      CHECK(std::abs(c.gap) <= 0.02 * std::abs(delta));
      CHECK(c.f_input == Approx(ig.f_input).epsilon(1e-5));
      double channel_sum = 0.0;
      for (double v : c.channels) channel_sum += v;
      CHECK(channel_sum == Approx(c.sum).epsilon(1e-9));
      if (layer == 2 || layer == 11) {
        // the unit with the largest |conductance|
        int64_t best = 0;
        for (int64_t j = 1; j < c.units.size(); ++j)
          if (std::abs(c.units[j]) > std::abs(c.units[best])) best = j;
        const NeuronConductance nc = neuron_conductance(m, *backend, x, {base}, req, best);
        INFO("unit " << best << ": neuron conductance sum " << nc.conductance << ", layer conductance "
                     << c.units[best]);
        CHECK(std::abs(nc.conductance - c.units[best]) <= 1e-4 * std::abs(c.units[best]) + 1e-6 * std::abs(delta));
        CHECK(std::abs(c.units[best]) > 0.0);
      }
    }
  }
}

TEST_CASE("conductance: chunk size and several baselines", "[conductance]") {
  Model m = one_hidden_layer(0.5);
  ReferenceBackend backend;
  Tensor x({1, 3});
  x[0] = 0.4f; x[1] = 1.1f; x[2] = -0.8f;
  Tensor b1({1, 3}), b2({1, 3}, 0.3f);
  ConductanceRequest req;
  req.layer = 1;
  req.integration = {Quadrature::RiemannTrapezoid, 40, 7};
  const LayerConductance both = layer_conductance(m, backend, x, {b1, b2}, req);
  req.integration.batch_size = 100;
  const LayerConductance one = layer_conductance(m, backend, x, {b1}, req);
  const LayerConductance two = layer_conductance(m, backend, x, {b2}, req);
  for (int64_t j = 0; j < 4; ++j) CHECK(both.units[j] == Approx((one.units[j] + two.units[j]) / 2).margin(1e-6));
  CHECK(both.f_baseline == Approx((one.f_baseline + two.f_baseline) / 2));
  const NeuronConductance n2 = neuron_conductance(m, backend, x, {b1, b2}, req, 2);
  CHECK(n2.conductance == Approx(both.units[2]).margin(1e-5));
}

// The one conductance JSON (igscope conductance --json and the page's layer
// view): every field the page (web/src/layer-view.js) and the PyTorch oracle
// (tests/oracle/check_conductance_against_torch.py) read, with the values
// computed.
TEST_CASE("conductance_json carries every field its readers use with the values computed", "[conductance][json]") {
  Model m = one_hidden_layer(0.5);
  ReferenceBackend backend;
  Tensor x({1, 3});
  x[0] = 0.4f; x[1] = 1.1f; x[2] = -0.8f;
  const Tensor base({1, 3});
  ConductanceRequest req;
  req.layer = 1;
  req.target = 0;
  req.integration = {Quadrature::RiemannMiddle, 24, 5};
  const LayerConductance c = layer_conductance(m, backend, x, {base}, req);
  const nlohmann::json j = conductance_json(c, req, "black", m);
  for (const char* key : {"kind", "layer", "layer_description", "unit_shape", "target", "target_name", "output",
                          "baseline", "quadrature", "steps", "batch_size", "channels", "units", "f_input",
                          "f_baseline", "sum", "gap", "relative_gap", "evaluations"}) {
    INFO("layer conductance JSON key " << key);
    REQUIRE(j.contains(key));
  }
  CHECK(j["kind"] == "layer");
  CHECK(j["layer"] == 1);
  CHECK(j["layer_description"] == m.layer_costs().at(1).description);
  CHECK(j["unit_shape"] == nlohmann::json(Shape{4}));
  CHECK(j["target"] == 0);
  CHECK(j["target_name"] == "0");  // the model names no classes
  CHECK(j["output"] == "logit");
  CHECK(j["baseline"] == "black");
  CHECK(j["quadrature"] == "riemann_middle");
  CHECK(j["steps"] == 24);
  CHECK(j["batch_size"] == 5);
  CHECK(j["channels"].get<std::vector<double>>() == c.channels);
  REQUIRE(j["units"].size() == 4);
  for (size_t k = 0; k < 4; ++k) CHECK(j["units"][k].get<float>() == c.units[static_cast<int64_t>(k)]);
  CHECK(j["f_input"].get<double>() == c.f_input);
  CHECK(j["f_baseline"].get<double>() == c.f_baseline);
  CHECK(j["sum"].get<double>() == c.sum);
  CHECK(j["gap"].get<double>() == c.gap);
  CHECK(j["relative_gap"].get<double>() == c.relative_gap());
  CHECK(j["evaluations"] == c.evaluations);

  const NeuronConductance n = neuron_conductance(m, backend, x, {base}, req, 2);
  const nlohmann::json jn = conductance_json(n, req, "black", m);
  for (const char* key : {"kind", "layer", "layer_description", "unit_shape", "target", "target_name", "baseline",
                          "steps", "unit", "attributions", "conductance", "f_input", "f_baseline", "evaluations"}) {
    INFO("neuron conductance JSON key " << key);
    REQUIRE(jn.contains(key));
  }
  CHECK(jn["kind"] == "neuron");
  CHECK(jn["unit"] == 2);
  REQUIRE(jn["attributions"].size() == 3);
  for (size_t i = 0; i < 3; ++i) CHECK(jn["attributions"][i].get<float>() == n.attributions[static_cast<int64_t>(i)]);
  CHECK(jn["conductance"].get<double>() == n.conductance);
  CHECK(jn["f_input"].get<double>() == n.f_input);
  CHECK(jn["evaluations"] == n.evaluations);

  // class names, when the model has them
  Model named(nlohmann::json::parse(R"({"name": "named", "input": [3], "classes": ["cat", "dog"], "layers": [
      {"type": "dense", "out_features": 4}, {"type": "relu"}, {"type": "dense", "out_features": 2}]})"));
  named.init_he(3);
  req.target = 1;
  CHECK(conductance_json(layer_conductance(named, backend, x, {base}, req), req, "uniform@2", named)["target_name"] ==
        "dog");
}

TEST_CASE("a cancelled conductance request stops between chunks; an uncancelled one is unchanged by the hook",
          "[conductance][cancel]") {
  Model m = one_hidden_layer(0.5);
  ReferenceBackend backend;
  Tensor x({1, 3});
  x[0] = 0.4f; x[1] = 1.1f; x[2] = -0.8f;
  const Tensor b({1, 3});
  ConductanceRequest req;
  req.layer = 1;
  req.integration = {Quadrature::GaussLegendre, 12, 4};
  const LayerConductance plain = layer_conductance(m, backend, x, {b}, req);
  const NeuronConductance plain_unit = neuron_conductance(m, backend, x, {b}, req, 2);

  int polls = 0;
  req.cancelled = [&polls] {
    ++polls;
    return false;
  };
  const LayerConductance hooked = layer_conductance(m, backend, x, {b}, req);
  CHECK(polls >= 12 / 4);  // at least once per chunk of path points
  for (int64_t j = 0; j < hooked.units.size(); ++j) CHECK(hooked.units[j] == plain.units[j]);
  polls = 0;
  const NeuronConductance hooked_unit = neuron_conductance(m, backend, x, {b}, req, 2);
  CHECK(polls >= 12 / 4);
  for (int64_t j = 0; j < x.size(); ++j) CHECK(hooked_unit.attributions[j] == plain_unit.attributions[j]);

  for (int stop_at : {1, 2, 4}) {
    int seen = 0;
    req.cancelled = [&seen, stop_at] { return ++seen >= stop_at; };
    CHECK_THROWS_AS(layer_conductance(m, backend, x, {b}, req), Cancelled);
    CHECK(seen == stop_at);  // nothing ran after the poll that said stop
    seen = 0;
    CHECK_THROWS_AS(neuron_conductance(m, backend, x, {b}, req, 2), Cancelled);
    CHECK(seen == stop_at);
  }
}

TEST_CASE("conductance refuses bad requests with clear messages", "[conductance][errors]") {
  Model m = one_hidden_layer(0.5);
  ReferenceBackend backend;
  const Tensor x({1, 3}, 0.5f), base({1, 3});
  ConductanceRequest req;
  req.layer = 3;
  CHECK_THROWS_WITH(layer_conductance(m, backend, x, {base}, req), Catch::Contains("layer 3 is out of range"));
  req.layer = 1;
  CHECK_THROWS_WITH(neuron_conductance(m, backend, x, {base}, req, 4), Catch::Contains("unit 4 is out of range"));
  CHECK_THROWS_WITH(layer_conductance(m, backend, x, {}, req), Catch::Contains("at least one baseline"));
  CHECK_THROWS_WITH(layer_conductance(m, backend, Tensor({1, 4}), {base}, req), Catch::Contains("the input has shape"));
  req.target = 1;
  CHECK_THROWS_WITH(layer_conductance(m, backend, x, {base}, req), Catch::Contains("target class 1 is out of range"));
  req.target = 0;
  req.integration.steps = 0;
  CHECK_THROWS_WITH(layer_conductance(m, backend, x, {base}, req), Catch::Contains("number of steps"));

  CHECK(parse_unit("3,4,5", {7, 7, 64}) == (3 * 7 + 4) * 64 + 5);
  CHECK(parse_unit("100", {7, 7, 64}) == 100);
  CHECK_THROWS_WITH(parse_unit("7,0,0", {7, 7, 64}), Catch::Contains("coordinate 0 is 7"));
  CHECK_THROWS_WITH(parse_unit("1,2", {7, 7, 64}), Catch::Contains("wrong number of coordinates"));
  CHECK_THROWS_WITH(parse_unit("x", {128}), Catch::Contains("not a non-negative integer"));
  CHECK_THROWS_WITH(parse_unit("128", {128}), Catch::Contains("out of range"));
}
