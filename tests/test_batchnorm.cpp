// batchnorm: its gradients against central finite differences (training and
// evaluation, 4-D and 2-D input), the tangent against the backward pass, the
// running statistics against their closed form, the optimiser leaving the
// buffers alone, and the model file's I64 counter.
//
// Tolerance: training mode is not piecewise linear, so the central difference
// carries an O(eps^2) truncation error on top of float32 rounding; with
// eps = 2e-3 both stay near 1e-4 relative, and 3e-3 leaves a margin while a
// missing term of the batch-statistics gradient is off by O(1).
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>

#include "gradient_check.h"
#include "igscope/backend/reference.h"
#include "igscope/layers/batchnorm.h"
#include "igscope/model.h"
#include "igscope/safetensors.h"
#include "igscope/train/adam.h"

using namespace igscope;
using namespace igscope::testing;
using nlohmann::json;
using K = ModelFileErrorKind;

namespace {

constexpr double kTolerance = 3e-3;

void randomize(BatchNorm& bn, Rng& rng) {
  for (int64_t k = 0; k < bn.num_features(); ++k) {
    bn.weight()[k] = static_cast<float>(rng.uniform(0.5, 1.5) * (rng.uniform(0, 1) < 0.3 ? -1 : 1));
    bn.bias()[k] = static_cast<float>(rng.uniform(-1, 1));
    bn.running_mean()[k] = static_cast<float>(rng.uniform(-0.5, 0.5));
    bn.running_var()[k] = static_cast<float>(rng.uniform(0.3, 2.0));
  }
}

double dot(const Tensor& a, const Tensor& b) {
  double s = 0.0;
  for (int64_t i = 0; i < a.size(); ++i) s += static_cast<double>(a[i]) * b[i];
  return s;
}

// Random shapes: [N, H, W, C] and [N, F], N > 1, at least 4 values per
// channel (with 2, xhat is +-1 whatever the input and the gradient all but 0).
std::vector<Shape> random_shapes(Rng& rng) {
  auto pick = [&](int64_t lo, int64_t hi) { return lo + static_cast<int64_t>(rng.uniform(0, 1) * double(hi - lo + 1)); };
  std::vector<Shape> shapes;
  for (int i = 0; i < 3; ++i) shapes.push_back({pick(2, 3), pick(2, 4), pick(1, 4), pick(1, 4)});
  for (int i = 0; i < 3; ++i) shapes.push_back({pick(4, 7), pick(1, 5)});
  return shapes;
}

json bn_architecture() {
  return json::parse(R"({"name": "bn", "input": [4, 4, 2], "layers": [
    {"type": "conv2d", "out_channels": 3, "kernel": 3, "padding": 1},
    {"type": "batchnorm"}, {"type": "relu"}, {"type": "flatten"},
    {"type": "dense", "out_features": 5}, {"type": "batchnorm", "eps": 0.001, "momentum": 0.25},
    {"type": "dense", "out_features": 3}]})");
}

}  // namespace

TEST_CASE("batchnorm gradients against finite differences", "[batchnorm]") {
  ReferenceBackend backend;
  Rng rng(14);
  for (const Shape& shape : random_shapes(rng)) {
    CAPTURE(shape_to_string(shape));
    BatchNorm bn(shape.back(), 1e-5, 0.1);
    randomize(bn, rng);
    const Tensor x = random_tensor(shape, rng, -1.0, 2.0);
    for (Mode mode : {Mode::Train, Mode::Eval}) {
      CAPTURE(mode == Mode::Train ? "train" : "eval");
      const GradientComparison in = check_input_gradient(bn, x, backend, mode, 2e-3, 3);
      CHECK(in.relative_error() <= kTolerance);
      CHECK(in.max_abs_grad > 0.0);
    }
    // backward_params: weight and bias (the buffers' entries are 0 on both
    // sides: training output does not depend on them).
    const GradientComparison par = check_param_gradient(bn, x, backend, Mode::Train, 2e-3, 5);
    CHECK(par.relative_error() <= kTolerance);
    CHECK(par.max_abs_grad > 0.0);
  }
}

TEST_CASE("batchnorm tangent is the transpose of its backward pass", "[batchnorm]") {
  ReferenceBackend backend;
  Rng rng(7);
  for (const Shape& shape : random_shapes(rng)) {
    for (Mode mode : {Mode::Eval, Mode::Train}) {
      CAPTURE(shape_to_string(shape), mode == Mode::Train ? "train" : "eval");
      BatchNorm bn(shape.back());
      randomize(bn, rng);
      const Tensor x = random_tensor(shape, rng);
      bn.forward(x, backend, mode);
      const Tensor v = random_tensor(shape, rng), r = random_tensor(shape, rng);
      const double lhs = dot(bn.forward_tangent(v, backend), r);
      const double rhs = dot(v, bn.backward_input(r, backend));
      CHECK(std::abs(lhs - rhs) <= 1e-5 * (1.0 + std::abs(rhs)));
    }
  }
  // Evaluation is affine: its tangent is the output difference over the difference of inputs.
  BatchNorm bn(3);
  randomize(bn, rng);
  const Tensor a = random_tensor({4, 2, 2, 3}, rng), b = random_tensor({4, 2, 2, 3}, rng);
  Tensor d = b;
  for (int64_t i = 0; i < d.size(); ++i) d[i] = b[i] - a[i];
  const Tensor ya = bn.forward(a, backend, Mode::Eval), yb = bn.forward(b, backend, Mode::Eval);
  const Tensor t = bn.forward_tangent(d, backend);
  for (int64_t i = 0; i < t.size(); ++i) CHECK(t[i] == Approx(yb[i] - ya[i]).margin(1e-5));
}

TEST_CASE("batchnorm running statistics after two training steps", "[batchnorm]") {
  ReferenceBackend backend;
  Rng rng(3);
  const double momentum = 0.3;
  BatchNorm bn(2, 1e-5, momentum);
  const Tensor x1 = random_tensor({3, 2, 2, 2}, rng, -1, 3), x2 = random_tensor({3, 2, 2, 2}, rng, -2, 1);
  // Closed form per channel: mean and unbiased variance of each batch, then
  // running = (1 - m)^2 initial + (1 - m) m batch1 + m batch2.
  auto stats = [](const Tensor& x, int64_t k) {
    const int64_t m = x.size() / 2;
    double s = 0, ss = 0;
    for (int64_t i = 0; i < m; ++i) s += x[i * 2 + k];
    const double mean = s / double(m);
    for (int64_t i = 0; i < m; ++i) ss += (x[i * 2 + k] - mean) * (x[i * 2 + k] - mean);
    return std::pair<double, double>{mean, ss / double(m - 1)};
  };
  bn.forward(x1, backend, Mode::Train);
  const Tensor y2 = bn.forward(x2, backend, Mode::Train);
  const double m = momentum;
  for (int64_t k = 0; k < 2; ++k) {
    const auto [mean1, var1] = stats(x1, k);
    const auto [mean2, var2] = stats(x2, k);
    CHECK(bn.running_mean()[k] == Approx((1 - m) * m * mean1 + m * mean2).epsilon(1e-6).margin(1e-7));
    CHECK(bn.running_var()[k] == Approx((1 - m) * (1 - m) * 1.0 + (1 - m) * m * var1 + m * var2).epsilon(1e-6).margin(1e-7));
    // The output is normalised with the biased variance.
    const double biased = var2 * double(x2.size() / 2 - 1) / double(x2.size() / 2);
    CHECK(y2[k] == Approx((x2[k] - mean2) / std::sqrt(biased + 1e-5)).epsilon(1e-5));
  }
  CHECK(bn.num_batches_tracked()[0] == 2.0f);
  // Evaluation does not touch them.
  const float rm = bn.running_mean()[0];
  bn.forward(x1, backend, Mode::Eval);
  CHECK(bn.running_mean()[0] == rm);
  CHECK(bn.num_batches_tracked()[0] == 2.0f);
  // Training needs more than one value per channel, as in PyTorch.
  CHECK_THROWS_WITH(bn.forward(Tensor({1, 2}), backend, Mode::Train), Catch::Contains("more than one value"));
}

TEST_CASE("batchnorm in a model: He init, Adam, info", "[batchnorm]") {
  ReferenceBackend backend;
  Model model(bn_architecture());
  model.init_he(5);
  auto& bn = dynamic_cast<BatchNorm&>(model.layer(1));
  for (int64_t k = 0; k < 3; ++k) {
    CHECK(bn.weight()[k] == 1.0f);
    CHECK(bn.bias()[k] == 0.0f);
    CHECK(bn.running_mean()[k] == 0.0f);
    CHECK(bn.running_var()[k] == 1.0f);
  }
  CHECK(bn.num_batches_tracked()[0] == 0.0f);
  CHECK(dynamic_cast<BatchNorm&>(model.layer(5)).eps() == 1e-3);
  CHECK(dynamic_cast<BatchNorm&>(model.layer(5)).momentum() == 0.25);
  // Trainable parameters only (PyTorch's parameters(), not its buffers).
  CHECK(model.parameter_count() == (3 * 2 * 9 + 3) + 2 * 3 + (48 * 5 + 5) + 2 * 5 + (5 * 3 + 3));
  CHECK(model.layer_costs()[1].description == "batchnorm eps=1e-05 momentum=0.1");

  Rng rng(2);
  Adam adam(model, 0.01);
  model.zero_grad();
  const Tensor out = model.forward(random_tensor(model.batch_input_shape(4), rng), backend, Mode::Train);
  model.backward(random_tensor(out.shape(), rng), backend, true);
  const Tensor mean = bn.running_mean(), var = bn.running_var(), w = bn.weight(), b = bn.bias();
  CHECK(bn.num_batches_tracked()[0] == 1.0f);
  adam.step();
  for (int64_t k = 0; k < 3; ++k) {
    CHECK(bn.running_mean()[k] == mean[k]);
    CHECK(bn.running_var()[k] == var[k]);
    CHECK(bn.weight()[k] != w[k]);
    CHECK(bn.bias()[k] != b[k]);
  }
  CHECK(bn.num_batches_tracked()[0] == 1.0f);
}

TEST_CASE("batchnorm model file: I64 counter round trip and refusals", "[batchnorm]") {
  Model model(bn_architecture());
  model.init_he(9);
  Rng rng(4);
  for (size_t i : {size_t(1), size_t(5)}) {
    auto& bn = dynamic_cast<BatchNorm&>(model.layer(i));
    randomize(bn, rng);
    bn.num_batches_tracked()[0] = 1234.0f;
  }
  const std::vector<uint8_t> bytes = model_to_bytes(model);
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  const json header = json::parse(bytes.begin() + 8, bytes.begin() + 8 + static_cast<std::ptrdiff_t>(n));
  CHECK(header["1.num_batches_tracked"]["dtype"] == "I64");
  CHECK(header["1.num_batches_tracked"]["shape"] == json::array());
  CHECK(header["5.running_var"]["dtype"] == "F32");
  CHECK(header["1.num_batches_tracked"]["data_offsets"][1].get<uint64_t>() -
            header["1.num_batches_tracked"]["data_offsets"][0].get<uint64_t>() ==
        8);

  Model back = load_model_bytes(bytes.data(), bytes.size());
  auto a = model.named_parameters(), b = back.named_parameters();
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    CAPTURE(a[i].name);
    CHECK(a[i].name == b[i].name);
    REQUIRE(a[i].param->value.shape() == b[i].param->value.shape());
    for (int64_t j = 0; j < a[i].param->value.size(); ++j) CHECK(a[i].param->value[j] == b[i].param->value[j]);
  }
  CHECK(dynamic_cast<BatchNorm&>(back.layer(5)).num_batches_tracked()[0] == 1234.0f);

  const std::map<std::string, std::string> meta{{"architecture", model.architecture().dump()}};
  std::vector<std::pair<std::string, const Tensor*>> tensors;
  std::set<std::string> i64;
  for (auto& np : model.named_parameters()) {
    tensors.emplace_back(np.name, &np.param->value);
    if (np.param->int64) i64.insert(np.name);
  }
  auto refused = [&](const std::vector<std::pair<std::string, const Tensor*>>& ts, const std::set<std::string>& ints,
                     K kind, const std::string& words) {
    const std::vector<uint8_t> file = serialize_safetensors(ts, meta, ints);
    try {
      load_model_bytes(file.data(), file.size());
      FAIL("loaded a file that should be refused: " + words);
    } catch (const ModelFileError& e) {
      CHECK(e.kind() == kind);
      CHECK_THAT(e.what(), Catch::Contains(words));
    }
  };
  SECTION("I64 under another name is refused") {
    std::set<std::string> ints = i64;
    ints.insert("1.running_mean");
    refused(tensors, ints, K::Dtype, "'1.running_mean' has dtype I64 but must be F32");
    ints = i64;
    ints.insert("4.weight");
    refused(tensors, ints, K::Dtype, "'4.weight' has dtype I64");
  }
  SECTION("an extra I64 tensor is refused") {
    Tensor extra(Shape{});
    auto ts = tensors;
    ts.emplace_back("3.num_batches_tracked", &extra);
    std::set<std::string> ints = i64;
    ints.insert("3.num_batches_tracked");
    refused(ts, ints, K::Dtype, "only for batchnorm's num_batches_tracked");
  }
  SECTION("the counter as F32 is refused") {
    std::set<std::string> ints = i64;
    ints.erase("5.num_batches_tracked");
    refused(tensors, ints, K::Dtype, "'5.num_batches_tracked' has dtype F32 but must be I64");
  }
  SECTION("a wrong-shaped running_var is refused") {
    Tensor wrong({4});
    auto ts = tensors;
    for (auto& [name, t] : ts)
      if (name == "1.running_var") t = &wrong;
    refused(ts, i64, K::ShapeMismatch, "'1.running_var' has shape [4] but the architecture needs [3]");
  }
  SECTION("a missing running_mean is refused") {
    auto ts = tensors;
    ts.erase(std::remove_if(ts.begin(), ts.end(), [](const auto& p) { return p.first == "5.running_mean"; }), ts.end());
    refused(ts, i64, K::MissingTensor, "5.running_mean");
  }
}
