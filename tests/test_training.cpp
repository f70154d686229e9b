// Training: Adam against its closed form, a small learnable problem, exact
// reproducibility per seed, and the classification metrics against counts
// worked out by hand.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>

#include "igscope/backend/backend.h"
#include "igscope/classifier_eval.h"
#include "igscope/model.h"
#include "igscope/random.h"
#include "igscope/train/adam.h"
#include "igscope/train/trainer.h"

using namespace igscope;
using nlohmann::json;

TEST_CASE("Adam follows its update rule with bias correction", "[train]") {
  Model m(json::parse(R"({"input": [1], "layers": [{"type": "dense", "out_features": 1}]})"));
  Parameter& w = *m.named_parameters()[0].param;
  w.value[0] = 0.5f;
  const double lr = 0.1, b1 = 0.9, b2 = 0.999, eps = 1e-8;
  Adam adam(m, lr, b1, b2, eps);
  double expected = 0.5, mom = 0.0, vel = 0.0;
  const double grads[] = {0.3, -1.2, 0.05, 2.0};
  for (int t = 1; t <= 4; ++t) {
    const double g = grads[t - 1];
    w.grad[0] = static_cast<float>(g);
    adam.step();
    mom = b1 * mom + (1 - b1) * g;
    vel = b2 * vel + (1 - b2) * g * g;
    const double m_hat = mom / (1 - std::pow(b1, t)), v_hat = vel / (1 - std::pow(b2, t));
    expected -= lr * m_hat / (std::sqrt(v_hat) + eps);
    CHECK(w.value[0] == Approx(expected).epsilon(1e-5));
  }
}

namespace {

// Two classes on 6x6 images: a bright bar on the left half or on the right
// half, with noise. A small CNN must learn it.
Dataset bars(int64_t n, uint64_t seed) {
  Rng rng(seed);
  Dataset d;
  d.images = Tensor({n, 6, 6, 1});
  d.class_names = {"left", "right"};
  for (int64_t i = 0; i < n; ++i) {
    const int label = static_cast<int>(rng.below(2));
    d.labels.push_back(label);
    const int64_t col = label == 0 ? static_cast<int64_t>(rng.below(3)) : 3 + static_cast<int64_t>(rng.below(3));
    for (int64_t y = 0; y < 6; ++y)
      for (int64_t x = 0; x < 6; ++x)
        d.images[(i * 6 + y) * 6 + x] = static_cast<float>((x == col ? 0.8 : 0.0) + rng.uniform(0, 0.3));
  }
  return d;
}

json bars_cnn() {
  return json::parse(R"({"name": "bars", "input": [6, 6, 1], "classes": ["left", "right"], "layers": [
    {"type": "conv2d", "out_channels": 4, "kernel": 3, "padding": 1}, {"type": "relu"},
    {"type": "maxpool2d", "kernel": 2}, {"type": "dropout", "p": 0.25}, {"type": "flatten"},
    {"type": "dense", "out_features": 2}]})");
}

std::vector<float> weights_of(Model& m) {
  std::vector<float> all;
  for (auto& np : m.named_parameters()) all.insert(all.end(), np.param->value.data(), np.param->value.data() + np.param->value.size());
  return all;
}

}  // namespace

TEST_CASE("training learns a small problem and is reproducible per seed", "[train]") {
  auto backend = make_backend(default_backend(BackendUse::Training), 1);
  const Dataset data = bars(600, 3);
  TrainOptions o;
  o.epochs = 4;
  o.batch_size = 16;
  o.lr = 3e-3;
  o.validation_size = 100;
  o.seed = 11;
  auto run = [&](uint64_t seed) {
    Model m(bars_cnn());
    m.init_he(seed);
    TrainOptions oo = o;
    oo.seed = seed;
    const auto history = train_classifier(m, *backend, data, oo);
    return std::make_pair(weights_of(m), history);
  };
  const auto [w1, h1] = run(11);
  const auto [w2, h2] = run(11);
  const auto [w3, h3] = run(12);
  REQUIRE(h1.size() == 4);
  CHECK(h1.back().loss < h1.front().loss);
  CHECK(h1.back().validation_accuracy >= 0.95);
  CHECK(w1 == w2);  // bit for bit
  CHECK(w1 != w3);
  CHECK(h1.back().validation_accuracy == h2.back().validation_accuracy);
}

TEST_CASE("training refuses absurd options", "[train]") {
  auto backend = make_backend("reference");
  const Dataset data = bars(20, 1);
  Model m(bars_cnn());
  TrainOptions o;
  o.validation_size = 20;
  CHECK_THROWS_WITH(train_classifier(m, *backend, data, o), Catch::Contains("validation size"));
  o.validation_size = 2;
  o.lr = -1;
  CHECK_THROWS_WITH(train_classifier(m, *backend, data, o), Catch::Contains("learning rate"));
  o.lr = 1e-3;
  o.epochs = 0;
  CHECK_THROWS_WITH(train_classifier(m, *backend, data, o), Catch::Contains("epochs"));
}

TEST_CASE("classification report: accuracy, precision, recall, confusion", "[train][eval]") {
  // A dense layer with identity weights: the prediction is the input's argmax.
  Model m(json::parse(R"({"input": [3], "classes": ["a", "b", "c"], "layers": [{"type": "dense", "out_features": 3}]})"));
  Tensor& w = m.named_parameters()[0].param->value;
  for (int i = 0; i < 3; ++i) w[i * 3 + i] = 1.0f;
  // (true, predicted): (0,0) (0,1) (1,1) (1,1) (2,0) (2,2)
  const int truth[] = {0, 0, 1, 1, 2, 2}, pred[] = {0, 1, 1, 1, 0, 2};
  Dataset d;
  d.images = Tensor({6, 3});
  for (int i = 0; i < 6; ++i) {
    d.images[i * 3 + pred[i]] = 1.0f;
    d.labels.push_back(truth[i]);
  }
  auto backend = make_backend("reference");
  const ClassificationReport r = evaluate_classifier(m, *backend, d, 4);  // two batches
  CHECK(r.accuracy == Approx(4.0 / 6.0));
  CHECK(r.confusion == std::vector<std::vector<int64_t>>{{1, 1, 0}, {0, 2, 0}, {1, 0, 1}});
  CHECK(r.precision[0] == Approx(0.5));        // predicted a: 2, right 1
  CHECK(r.precision[1] == Approx(2.0 / 3.0));  // predicted b: 3, right 2
  CHECK(r.recall[2] == Approx(0.5));
  CHECK(r.to_json()["accuracy"].get<double>() == Approx(4.0 / 6.0));
  CHECK(r.class_names[1] == "b");
}
