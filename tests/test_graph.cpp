// Models as graphs: the merge nodes (add, concat, mul) and the graph
// machinery (a node feeding several others, a three-input add, a concat of
// unequal channel counts, a broadcast mul) against central finite
// differences; tangents at inner nodes against the finite difference of the
// node's own output; which nodes are cuts, worked out by hand; conductance
// complete at a cut, and over a set of nodes that together cut the graph;
// the file round trip under the nodes' ids; and the architecture's errors.
//
// Tolerance: the graphs use smooth activations (tanh, sigmoid), so central
// differences of float32 forward passes with eps = 1e-2 agree to about 1e-4
// of the largest gradient; 2e-3 leaves a margin while a lost or doubled
// branch is off by O(1).
#include <catch2/catch.hpp>

#include <cmath>
#include <fstream>
#include <iterator>
#include <map>
#include <set>
#include <string>

#include "gradient_check.h"
#include "igscope/attribution/conductance.h"
#include "igscope/attribution/ig.h"
#include "igscope/attribution/target.h"
#include "igscope/backend/reference.h"
#include "igscope/error.h"
#include "igscope/layers/merge.h"
#include "igscope/model.h"
#include "igscope/safetensors.h"

using namespace igscope;
using namespace igscope::testing;
using nlohmann::json;

namespace {

constexpr double kTolerance = 2e-3;

// L = sum_k sum(in_k-independent R * out): the merge node's input gradients
// against central differences, input by input.
GradientComparison check_merge(MergeLayer& layer, std::vector<Tensor> xs, uint64_t seed) {
  ReferenceBackend backend;
  Rng rng(seed);
  const Tensor out = layer.forward(xs, backend, Mode::Eval);
  const Tensor r = random_tensor(out.shape(), rng);
  const std::vector<Tensor> analytic = layer.backward_inputs(r, backend);
  REQUIRE(analytic.size() == xs.size());
  GradientComparison c;
  const double eps = 1e-2;
  for (size_t k = 0; k < xs.size(); ++k) {
    REQUIRE(analytic[k].shape() == xs[k].shape());
    for (int64_t i = 0; i < xs[k].size(); ++i) {
      std::vector<Tensor> up = xs, down = xs;
      up[k][i] = static_cast<float>(xs[k][i] + eps);
      down[k][i] = static_cast<float>(xs[k][i] - eps);
      const double fu = weighted_sum(layer.forward(up, backend, Mode::Eval), r);
      const double fd = weighted_sum(layer.forward(down, backend, Mode::Eval), r);
      compare(c, analytic[k][i], (fu - fd) / (static_cast<double>(up[k][i]) - down[k][i]));
    }
  }
  return c;
}

// The merge node's tangent along random directions against the central
// difference of its forward pass.
GradientComparison check_merge_tangent(MergeLayer& layer, const std::vector<Tensor>& xs, uint64_t seed) {
  ReferenceBackend backend;
  Rng rng(seed);
  std::vector<Tensor> v, up, down;
  const double eps = 1e-2;
  for (const Tensor& x : xs) {
    v.push_back(random_tensor(x.shape(), rng));
    up.push_back(x);
    down.push_back(x);
    for (int64_t i = 0; i < x.size(); ++i) {
      up.back()[i] = static_cast<float>(x[i] + eps * v.back()[i]);
      down.back()[i] = static_cast<float>(x[i] - eps * v.back()[i]);
    }
  }
  const Tensor fu = layer.forward(up, backend, Mode::Eval), fd = layer.forward(down, backend, Mode::Eval);
  layer.forward(xs, backend, Mode::Eval);
  std::vector<const Tensor*> pv;
  for (const Tensor& t : v) pv.push_back(&t);
  const Tensor t = layer.forward_tangent(pv, backend);
  REQUIRE(t.shape() == fu.shape());
  GradientComparison c;
  for (int64_t i = 0; i < t.size(); ++i) compare(c, t[i], (static_cast<double>(fu[i]) - fd[i]) / (2 * eps));
  return c;
}

std::vector<Tensor> random_inputs(const std::vector<Shape>& shapes, Rng& rng) {
  std::vector<Tensor> xs;
  for (const Shape& s : shapes) xs.push_back(random_tensor(s, rng));
  return xs;
}

// A graph with every piece of the machinery (input [6, 6, 2]):
//   c1 = conv(input), a1 = tanh(c1), c2 = conv(a1), c3 = conv1x1(input)
//   s = add(a1, c2, c3)          three inputs; a1 also feeds c2
//   d1 = conv1x1(s), cat = concat(s, d1)   4 + 3 channels; s feeds both
//   gate = sigmoid(conv6x6(cat)) [N, 1, 1, 7], m = mul(cat, gate)
//   fc = dense(flatten(m))
json graph_architecture() {
  return json::parse(R"({"name": "graph", "input": [6, 6, 2], "output": "fc", "nodes": [
    {"id": "c1", "type": "conv2d", "inputs": ["input"], "out_channels": 4, "kernel": 3, "padding": 1},
    {"id": "a1", "type": "tanh", "inputs": ["c1"]},
    {"id": "c2", "type": "conv2d", "inputs": ["a1"], "out_channels": 4, "kernel": 3, "padding": 1},
    {"id": "c3", "type": "conv2d", "inputs": ["input"], "out_channels": 4, "kernel": 1},
    {"id": "s", "type": "add", "inputs": ["a1", "c2", "c3"]},
    {"id": "d1", "type": "conv2d", "inputs": ["s"], "out_channels": 3, "kernel": 1},
    {"id": "cat", "type": "concat", "inputs": ["s", "d1"]},
    {"id": "se.squeeze", "type": "conv2d", "inputs": ["cat"], "out_channels": 7, "kernel": 6},
    {"id": "se.gate", "type": "sigmoid", "inputs": ["se.squeeze"]},
    {"id": "m", "type": "mul", "inputs": ["cat", "se.gate"]},
    {"id": "flat", "type": "flatten", "inputs": ["m"]},
    {"id": "fc", "type": "dense", "inputs": ["flat"], "out_features": 5}]})");
}

Model graph_model(uint64_t seed) {
  Model m(graph_architecture());
  m.init_he(seed);
  return m;
}

// The model's input gradient of L = sum(out * R) against central differences.
GradientComparison check_model_input_gradient(Model& m, const Tensor& x, uint64_t seed) {
  ReferenceBackend backend;
  Rng rng(seed);
  const Tensor out = m.forward(x, backend);
  const Tensor r = random_tensor(out.shape(), rng);
  const Tensor g = m.backward(r, backend);
  REQUIRE(g.shape() == x.shape());
  GradientComparison c;
  const double eps = 1e-2;
  Tensor xp = x;
  for (int64_t i = 0; i < x.size(); ++i) {
    xp[i] = static_cast<float>(x[i] + eps);
    const double up = weighted_sum(m.forward(xp, backend), r);
    xp[i] = static_cast<float>(x[i] - eps);
    const double down = weighted_sum(m.forward(xp, backend), r);
    xp[i] = x[i];
    compare(c, g[i], (up - down) / (2 * eps));
  }
  return c;
}

// The model with `node` as its output: the nodes that lead to it, with the
// same parameters (by name). Its forward pass is node's output, computed
// without the tangent or backward code under test.
Model truncated(Model& m, const std::string& node) {
  json arch = m.architecture();
  std::set<std::string> keep{node};
  json nodes = json::array();
  for (auto it = arch["nodes"].rbegin(); it != arch["nodes"].rend(); ++it)
    if (keep.count((*it)["id"].get<std::string>()))
      for (const auto& in : (*it)["inputs"]) keep.insert(in.get<std::string>());
  for (const auto& n : arch["nodes"])
    if (keep.count(n["id"].get<std::string>())) nodes.push_back(n);
  arch["nodes"] = nodes;
  arch["output"] = node;
  arch.erase("classes");
  Model t(arch);
  std::map<std::string, Parameter*> params;
  for (auto& p : m.named_parameters()) params[p.name] = p.param;
  for (auto& p : t.named_parameters()) p.param->value = params.at(p.name)->value;
  return t;
}

}  // namespace

TEST_CASE("add, concat and mul: input gradients and tangents against finite differences", "[graph][merge]") {
  Rng rng(11);
  Add add;
  Concat concat;
  Mul mul;
  struct Case {
    MergeLayer* layer;
    std::vector<Shape> shapes;
  };
  const std::vector<Case> cases = {
      {&add, {{2, 3, 4, 5}, {2, 3, 4, 5}}},
      {&add, {{3, 7}, {3, 7}, {3, 7}}},
      {&concat, {{2, 3, 2, 2}, {2, 3, 2, 5}, {2, 3, 2, 1}}},
      {&concat, {{3, 4}, {3, 1}}},
      {&mul, {{2, 3, 4, 5}, {2, 3, 4, 5}}},
      {&mul, {{2, 3, 4, 5}, {2, 1, 1, 5}}},  // squeeze-and-excitation: the gate broadcasts
      {&mul, {{2, 1, 1, 3}, {2, 4, 2, 3}}},  // either input may be the broadcast one
      {&mul, {{4, 6}, {4, 6}}},
  };
  uint64_t seed = 1;
  for (const Case& c : cases) {
    std::string shapes;
    for (const Shape& s : c.shapes) shapes += shape_to_string(s) + " ";
    INFO(c.layer->type() << " of " << shapes);
    const std::vector<Tensor> xs = random_inputs(c.shapes, rng);
    const GradientComparison g = check_merge(*c.layer, xs, ++seed);
    INFO("gradient: relative error " << g.relative_error() << " of " << g.max_abs_grad);
    CHECK(g.relative_error() < kTolerance);
    CHECK(g.max_abs_grad > 0.1);
    const GradientComparison t = check_merge_tangent(*c.layer, xs, ++seed);
    INFO("tangent: relative error " << t.relative_error() << " of " << t.max_abs_grad);
    CHECK(t.relative_error() < kTolerance);
    CHECK(t.max_abs_grad > 0.1);
  }
}

TEST_CASE("merge nodes refuse inputs that do not fit", "[graph][merge][errors]") {
  CHECK_THROWS_WITH(Add().output_shape(std::vector<Shape>{{1, 3}}), Catch::Contains("at least 2 inputs, got 1"));
  CHECK_THROWS_WITH(Add().output_shape(std::vector<Shape>{{1, 3}, {1, 4}}), Catch::Contains("one shape"));
  CHECK_THROWS_WITH(Concat().output_shape(std::vector<Shape>{{1, 2, 2, 3}, {1, 2, 3, 3}}),
                    Catch::Contains("every axis but the last"));
  CHECK_THROWS_WITH(Mul().output_shape(std::vector<Shape>{{1, 2, 2, 3}, {1, 1, 1, 4}}), Catch::Contains("[N, 1, 1, C]"));
  CHECK_THROWS_WITH(Mul().output_shape(std::vector<Shape>{{1, 3}, {1, 3}, {1, 3}}), Catch::Contains("exactly 2"));
  Add add;
  ReferenceBackend backend;
  Layer& as_layer = add;
  CHECK_THROWS_WITH(as_layer.forward(Tensor({1, 3}), backend, Mode::Eval), Catch::Contains("list of inputs"));
}

TEST_CASE("a graph's input and parameter gradients against finite differences", "[graph]") {
  Model m = graph_model(3);
  Rng rng(7);
  for (int trial = 0; trial < 2; ++trial) {
    const Tensor x = random_tensor({2, 6, 6, 2}, rng);
    const GradientComparison g = check_model_input_gradient(m, x, 20 + trial);
    INFO("input gradient: relative error " << g.relative_error() << " of " << g.max_abs_grad);
    CHECK(g.relative_error() < kTolerance);
    CHECK(g.max_abs_grad > 0.05);
  }
  // Parameter gradients: every node's, through fan-out and merges.
  ReferenceBackend backend;
  const Tensor x = random_tensor({2, 6, 6, 2}, rng);
  const Tensor out = m.forward(x, backend, Mode::Train);
  const Tensor r = random_tensor(out.shape(), rng);
  m.zero_grad();
  m.backward(r, backend, true);
  for (auto& np : m.named_parameters()) {
    GradientComparison c;
    for (int64_t i = 0; i < np.param->value.size(); i += 3) {
      const float original = np.param->value[i];
      np.param->value[i] = original + 1e-2f;
      const double up = weighted_sum(m.forward(x, backend, Mode::Train), r);
      np.param->value[i] = original - 1e-2f;
      const double down = weighted_sum(m.forward(x, backend, Mode::Train), r);
      np.param->value[i] = original;
      compare(c, np.param->grad[i], (up - down) / 2e-2);
    }
    INFO(np.name << ": relative error " << c.relative_error() << " of " << c.max_abs_grad);
    CHECK(c.relative_error() < kTolerance);
    CHECK(c.max_abs_grad > 1e-3);
  }
}

TEST_CASE("a node read twice by one add, and the input read by several nodes", "[graph]") {
  // out = dense(flatten(add(t, t, input))) with t = tanh(input): d/dinput = dense^T (2 (1 - t^2) + 1).
  Model m(json::parse(R"({"input": [3, 2, 2], "output": "fc", "nodes": [
    {"id": "t", "type": "tanh", "inputs": ["input"]},
    {"id": "s", "type": "add", "inputs": ["t", "t", "input"]},
    {"id": "f", "type": "flatten", "inputs": ["s"]},
    {"id": "fc", "type": "dense", "inputs": ["f"], "out_features": 3}]})"));
  m.init_he(5);
  Rng rng(9);
  const Tensor x = random_tensor({2, 3, 2, 2}, rng);
  const GradientComparison g = check_model_input_gradient(m, x, 4);
  INFO("relative error " << g.relative_error());
  CHECK(g.relative_error() < kTolerance);
  CHECK(g.max_abs_grad > 0.1);
}

TEST_CASE("tangents at inner graph nodes equal the finite difference of the node's output", "[graph][tangent]") {
  Model m = graph_model(4);
  ReferenceBackend backend;
  Rng rng(13);
  const Tensor x = random_tensor({2, 6, 6, 2}, rng), v = random_tensor({2, 6, 6, 2}, rng);
  const double eps = 1e-2;
  Tensor xp = x, xm = x;
  for (int64_t i = 0; i < x.size(); ++i) {
    xp[i] = static_cast<float>(x[i] + eps * v[i]);
    xm[i] = static_cast<float>(x[i] - eps * v[i]);
  }
  for (const std::string id : {"a1", "s", "cat", "se.gate", "m", "fc"}) {
    Model t = truncated(m, id);
    const Tensor up = t.forward(xp, backend), down = t.forward(xm, backend);
    m.forward(x, backend);
    const Tensor tangent = m.tangent_to(v, backend, m.find_node(id));
    REQUIRE(tangent.shape() == up.shape());
    GradientComparison c;
    for (int64_t i = 0; i < tangent.size(); ++i)
      compare(c, tangent[i], (static_cast<double>(up[i]) - down[i]) / (2 * eps));
    INFO("node " << id << ": relative error " << c.relative_error() << " of " << c.max_abs_grad);
    CHECK(c.relative_error() < kTolerance);
    CHECK(c.max_abs_grad > 0.05);
  }
}

TEST_CASE("cuts: the nodes every path from the input to the output crosses", "[graph][cut]") {
  const Model m = graph_model(1);
  // By hand: c3 bypasses c1 and a1 (and c2); d1 is bypassed by s -> cat;
  // the squeeze branch is bypassed by cat -> m.
  const std::set<std::string> cuts{"s", "cat", "m", "flat", "fc"};
  for (size_t i = 0; i < m.num_layers(); ++i) {
    INFO("node " << m.node_id(i));
    CHECK(m.is_cut(i) == (cuts.count(m.node_id(i)) > 0));
  }
  Model chain(json::parse(R"({"input": [4], "layers": [{"type": "dense", "out_features": 3}, {"type": "tanh"},
      {"type": "dense", "out_features": 2}]})"));
  for (size_t i = 0; i < chain.num_layers(); ++i) CHECK(chain.is_cut(i));
  CHECK(chain.is_chain());
  CHECK_FALSE(m.is_chain());
}

TEST_CASE("conductance at a cut is complete; over nodes that together cut the graph it adds up", "[graph][conductance]") {
  Model m = graph_model(8);
  ReferenceBackend backend;
  Rng rng(17);
  Tensor x = random_tensor({1, 6, 6, 2}, rng, 0.0, 1.0);
  const Tensor base({1, 6, 6, 2});
  auto cond = [&](const std::string& id) {
    ConductanceRequest req;
    req.layer = m.find_node(id);
    req.target = 2;
    req.integration = {Quadrature::GaussLegendre, 64, 16};
    return layer_conductance(m, backend, x, {base}, req);
  };
  const LayerConductance at_s = cond("s"), at_m = cond("m");
  const double delta = at_s.f_input - at_s.f_baseline;
  INFO("F(x) - F(x') = " << delta << "; sum at s " << at_s.sum << ", at m " << at_m.sum);
  REQUIRE(std::abs(delta) > 0.05);
  CHECK(at_s.cut);
  CHECK(std::abs(at_s.gap) < 1e-4 * std::abs(delta) + 1e-6);
  CHECK(std::abs(at_m.gap) < 1e-4 * std::abs(delta) + 1e-6);
  // {a1, c3} cut the graph together (F is a function of the two), so their
  // conductances add up to F(x) - F(x'), while each alone does not.
  const LayerConductance at_a1 = cond("a1"), at_c3 = cond("c3");
  INFO("sum at a1 " << at_a1.sum << ", at c3 " << at_c3.sum);
  CHECK_FALSE(at_a1.cut);
  CHECK_FALSE(at_c3.cut);
  CHECK(std::abs(at_a1.sum + at_c3.sum - delta) < 1e-4 * std::abs(delta) + 1e-6);
  CHECK(std::abs(at_c3.sum) > 0.01 * std::abs(delta));
  CHECK(std::abs(at_a1.sum) > 0.01 * std::abs(delta));
  // Neuron conductance at a non-cut node still splits that unit's conductance.
  ConductanceRequest req;
  req.layer = m.find_node("c3");
  req.target = 2;
  req.integration = {Quadrature::GaussLegendre, 64, 16};
  int64_t best = 0;
  for (int64_t j = 1; j < at_c3.units.size(); ++j)
    if (std::abs(at_c3.units[j]) > std::abs(at_c3.units[best])) best = j;
  const NeuronConductance nc = neuron_conductance(m, backend, x, {base}, req, best);
  CHECK(nc.conductance == Approx(at_c3.units[best]).epsilon(1e-4));
}

TEST_CASE("a graph model's file: tensors under the node ids, the same outputs after loading", "[graph][file]") {
  Model m = graph_model(2);
  const std::vector<uint8_t> bytes = model_to_bytes(m);
  Model back = load_model_bytes(bytes.data(), bytes.size());
  CHECK(back.architecture() == m.architecture());
  std::set<std::string> names;
  for (auto& p : back.named_parameters()) names.insert(p.name);
  CHECK(names == std::set<std::string>{"c1.weight", "c1.bias", "c2.weight", "c2.bias", "c3.weight", "c3.bias",
                                       "d1.weight", "d1.bias", "se.squeeze.weight", "se.squeeze.bias", "fc.weight",
                                       "fc.bias"});
  ReferenceBackend backend;
  Rng rng(3);
  const Tensor x = random_tensor({3, 6, 6, 2}, rng);
  const Tensor a = m.forward(x, backend), b = back.forward(x, backend);
  for (int64_t i = 0; i < a.size(); ++i) CHECK(a[i] == b[i]);
  // Nodes listed out of order are run in a topological order.
  json shuffled = graph_architecture();
  std::swap(shuffled["nodes"][0], shuffled["nodes"][4]);
  std::swap(shuffled["nodes"][1], shuffled["nodes"][9]);
  Model s(shuffled);
  for (auto& p : s.named_parameters())
    for (auto& q : m.named_parameters())
      if (p.name == q.name) p.param->value = q.param->value;
  const Tensor c = s.forward(x, backend);
  for (int64_t i = 0; i < a.size(); ++i) CHECK(a[i] == c[i]);
}

TEST_CASE("graph architectures: clear errors for what cannot be built", "[graph][errors]") {
  auto with_nodes = [](const std::string& nodes, const std::string& output) {
    return json::parse(R"({"input": [4, 4, 2], "output": ")" + output + R"(", "nodes": [)" + nodes + "]}");
  };
  const std::string fc = R"({"id": "f", "type": "flatten", "inputs": ["a"]})";
  struct Case {
    json arch;
    std::string message;
  };
  const std::vector<Case> cases = {
      {with_nodes(R"({"id": "a", "type": "relu", "inputs": ["b"]}, {"id": "b", "type": "relu", "inputs": ["a"]},
                     {"id": "f", "type": "flatten", "inputs": ["b"]})",
                  "f"),
       "cycle through nodes 'a', 'b'"},
      {with_nodes(R"({"id": "a", "type": "relu", "inputs": ["nowhere"]}, )" + fc, "f"), "reads 'nowhere'"},
      {with_nodes(R"({"id": "a", "type": "relu", "inputs": ["input"]}, {"id": "a", "type": "tanh", "inputs": ["input"]}, )" + fc,
                  "f"),
       "'a' appears twice"},
      {with_nodes(R"({"id": "a", "type": "relu", "inputs": ["input"]}, {"id": "b", "type": "tanh", "inputs": ["input"]}, )" + fc,
                  "f"),
       "node 'b' does not lead to the output"},
      {with_nodes(R"({"id": "a", "type": "relu", "inputs": ["input", "input"]}, )" + fc, "f"), "takes one input, got 2"},
      {with_nodes(R"({"id": "a", "type": "add", "inputs": ["input"]}, )" + fc, "f"), "at least 2 inputs"},
      {with_nodes(R"({"id": "a", "type": "add", "inputs": ["input", "input"], "axis": 1}, )" + fc, "f"),
       "unexpected key 'axis'"},
      {with_nodes(R"({"id": "a", "type": "relu", "inputs": ["input"]}, )" + fc, "g"), "'output' is 'g'"},
      {with_nodes(R"({"id": "input", "type": "relu", "inputs": ["input"]})", "input"), "not 'input'"},
      {with_nodes(R"({"id": "a b", "type": "relu", "inputs": ["input"]})", "a b"), "PyTorch module path"},
      {with_nodes(R"({"type": "relu", "inputs": ["input"]})", "a"), "needs an \"id\""},
      {with_nodes(R"({"id": "a", "type": "relu"})", "a"), "needs \"inputs\""},
      {with_nodes(R"({"id": "c", "type": "conv2d", "inputs": ["input"], "out_channels": 2, "kernel": 9})", "c"),
       "node 'c'"},
      {with_nodes(R"({"id": "a", "type": "swish", "inputs": ["input"]})", "a"), "node 'a': unknown layer type 'swish'"},
      {json::parse(R"({"input": [4], "layers": [{"type": "add"}]})"), "use the graph form"},
      {json::parse(R"({"input": [4]})"), "either 'layers'"},
      {json::parse(R"({"input": [4], "nodes": [{"id": "a", "type": "relu", "inputs": ["input"]}]})"), "needs 'output'"},
  };
  for (const Case& c : cases) {
    INFO(c.arch.dump());
    CHECK_THROWS_AS(Model(c.arch), ModelFileError);
    CHECK_THROWS_WITH(Model(c.arch), Catch::Contains(c.message));
  }
}

TEST_CASE("the graph example of docs/model-file.md builds, and PyTorch's names are its tensors' names",
          "[graph][docs]") {
  std::ifstream in(std::string(IGSCOPE_SOURCE_DIR) + "/docs/model-file.md");
  REQUIRE(in.good());
  const std::string doc((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t section = doc.find("### Graphs");
  REQUIRE(section != std::string::npos);
  const size_t begin = doc.find("```json\n", section), end = doc.find("```", begin + 8);
  REQUIRE(begin != std::string::npos);
  Model m(json::parse(doc.substr(begin + 8, end - begin - 8)));
  std::set<std::string> names;
  for (auto& p : m.named_parameters()) names.insert(p.name);
  CHECK(names.count("layer1.0.conv1.weight") == 1);
  CHECK(names.count("bn1.num_batches_tracked") == 1);
  CHECK(m.is_cut(m.find_node("relu")));
  CHECK_FALSE(m.is_cut(m.find_node("layer1.0.conv1")));
  CHECK(m.num_outputs() == 10);
}
