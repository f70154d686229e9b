// The sequential model: costs, whole-model gradients, architecture checks.
#include <catch2/catch.hpp>

#include "gradient_check.h"
#include "igscope/architectures.h"
#include "igscope/backend/reference.h"
#include "igscope/model.h"
#include "igscope/safetensors.h"

using namespace igscope;
using namespace igscope::testing;
using nlohmann::json;

TEST_CASE("fashion_cnn_v1 has the documented parameters and multiply-adds", "[model]") {
  Model m(named_architecture("fashion_cnn_v1"));
  // conv k*k*cin*cout per output pixel; dense in*out.
  const int64_t conv1 = 28 * 28 * 32 * (3 * 3 * 1);
  const int64_t conv2 = 14 * 14 * 64 * (3 * 3 * 32);
  const int64_t conv3 = 7 * 7 * 128 * (3 * 3 * 64);
  const int64_t fc1 = 6272 * 128, fc2 = 128 * 10;
  CHECK(m.multiply_adds() == conv1 + conv2 + conv3 + fc1 + fc2);
  CHECK(static_cast<double>(m.multiply_adds()) / 1e6 == Approx(8.2).margin(0.1));
  const int64_t params = (32 * 9 + 32) + (64 * 32 * 9 + 64) + (128 * 64 * 9 + 128) + (6272 * 128 + 128) +
                         (128 * 10 + 10);
  CHECK(m.parameter_count() == params);
  const auto costs = m.layer_costs();
  REQUIRE(costs.size() == 14);
  CHECK(costs[0].multiply_adds == conv1);
  CHECK(costs[9].output_shape == Shape{6272});
  CHECK(costs[13].output_shape == Shape{10});
  CHECK(m.class_names().at(6) == "Shirt");
}

namespace {
json small_cnn() {
  return json::parse(R"({"name": "small_cnn", "input": [9, 8, 2], "layers": [
    {"type": "conv2d", "out_channels": 3, "kernel": [3, 2], "stride": [2, 1], "padding": [1, 0]},
    {"type": "relu"},
    {"type": "maxpool2d", "kernel": [2, 2], "stride": [2, 2]},
    {"type": "conv2d", "out_channels": 4, "kernel": 2, "padding": 1},
    {"type": "relu"},
    {"type": "dropout", "p": 0.3},
    {"type": "flatten"},
    {"type": "dense", "out_features": 5},
    {"type": "relu"},
    {"type": "dense", "out_features": 3}]})");
}

// Adapts a whole model to the Layer interface the gradient checker takes.
class ModelAsLayer final : public Layer {
 public:
  explicit ModelAsLayer(Model& m) : m_(m) {
    for (auto& np : m_.named_parameters()) params_.push_back({np.name, Tensor(), Tensor()});
  }
  std::string type() const override { return "model"; }
  json to_json() const override { return {}; }
  Shape output_shape(const Shape& in) const override { return in; }
  Tensor forward(Tensor in, Backend& b, Mode mode) override { return m_.forward(in, b, mode); }
  Tensor backward_input(Tensor dout, Backend& b) override { return m_.backward(dout, b); }

 private:
  Model& m_;
};
}  // namespace

TEST_CASE("whole-model input gradient matches finite differences", "[model][gradient]") {
  ReferenceBackend backend;
  Model m(small_cnn());
  m.init_he(4);
  Rng rng(8);
  const Tensor x = random_tensor(m.batch_input_shape(3), rng, 0, 1);
  ModelAsLayer as_layer(m);
  SECTION("evaluation mode") {
    // eps 1e-3: small enough that no ReLU or max-pool switches on this input.
    const auto c = check_input_gradient(as_layer, x, backend, Mode::Eval, 1e-3);
    CHECK(c.relative_error() <= 5e-3);
  }
  SECTION("training mode, dropout mask held fixed") {
    const auto c = check_input_gradient(as_layer, x, backend, Mode::Train, 1e-3, 1, [&] { m.seed_dropout(3); });
    CHECK(c.relative_error() <= 5e-3);
  }
}

TEST_CASE("whole-model parameter gradients match finite differences", "[model][gradient]") {
  ReferenceBackend backend;
  Model m(small_cnn());
  m.init_he(5);
  Rng rng(9);
  const Tensor x = random_tensor(m.batch_input_shape(2), rng, 0, 1);
  m.zero_grad();
  m.seed_dropout(1);
  const Tensor out = m.forward(x, backend, Mode::Train);
  const Tensor r = random_tensor(out.shape(), rng);
  m.backward(r, backend, /*accumulate_params=*/true);
  const double eps = 1e-3;
  double worst = 0.0, largest = 0.0;
  for (auto& np : m.named_parameters()) {
    Tensor& v = np.param->value;
    for (int64_t i = 0; i < v.size(); ++i) {
      const float orig = v[i];
      const float hi = static_cast<float>(orig + eps), lo = static_cast<float>(orig - eps);
      v[i] = hi;
      m.seed_dropout(1);
      const double up = weighted_sum(m.forward(x, backend, Mode::Train), r);
      v[i] = lo;
      m.seed_dropout(1);
      const double down = weighted_sum(m.forward(x, backend, Mode::Train), r);
      v[i] = orig;
      const double numerical = (up - down) / (static_cast<double>(hi) - lo);
      worst = std::max(worst, std::abs(numerical - np.param->grad[i]));
      largest = std::max(largest, std::abs(numerical));
    }
  }
  CHECK(worst <= 5e-3 * largest);
}

TEST_CASE("model input of the wrong shape is refused", "[model]") {
  ReferenceBackend backend;
  Model m(named_architecture("fashion_cnn_v1"));
  CHECK_THROWS_WITH(m.forward(Tensor({1, 28, 27, 1}), backend),
                    Catch::Contains("model input") && Catch::Contains("[1, 28, 28, 1]"));
  CHECK(m.forward(Tensor({2, 28, 28, 1}), backend).shape() == Shape{2, 10});
}

TEST_CASE("bad architectures are refused with a clear message", "[model]") {
  auto refuse = [](const char* text, const char* expected) {
    INFO(text);
    try {
      Model m(json::parse(text));
      FAIL("accepted");
    } catch (const ModelFileError& e) {
      CHECK(e.kind() == ModelFileErrorKind::Architecture);
      CHECK_THAT(e.what(), Catch::Contains(expected));
    }
  };
  refuse(R"({"input": [4, 4, 1], "layers": [{"type": "dense", "out_features": 2}]})", "add a flatten");
  refuse(R"({"input": [4], "layers": [{"type": "conv2d", "out_channels": 2, "kernel": 3}]})", "needs image input");
  refuse(R"({"input": [4, 4, 1], "layers": [{"type": "conv2d", "out_channels": 2, "kernel": 7}]})",
         "smaller than the kernel");
  refuse(R"({"input": [4, 4, 1], "layers": [{"type": "conv2d", "kernel": 3}]})", "missing 'out_channels'");
  refuse(R"({"input": [4, 4, 1], "layers": [{"type": "dropout", "p": 1.5}]})", "p must be in [0, 1)");
  refuse(R"({"input": [4, 4, 1], "layers": []})", "'layers' must be a non-empty array");
  refuse(R"({"input": [4, 4], "layers": [{"type": "relu"}]})", "'input' must be");
  refuse(R"({"input": [4], "classes": ["a"], "layers": [{"type": "dense", "out_features": 2}]})",
         "1 class names");
  refuse(R"({"input": [4], "name": 3, "layers": [{"type": "relu"}]})", "'name' must be a string");
  refuse(R"({"input": [4], "layers": [{"type": "relu"}, {"kind": "relu"}]})", "layer 1: needs a \"type\"");
}
