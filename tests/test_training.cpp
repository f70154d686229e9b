// Training: Adam and AdamW against their closed forms, the learning-rate
// schedule, augmentation as a pure pixel permutation with zero fill, small
// learnable problems (a CNN, a residual network with batchnorm), exact
// reproducibility per seed, and the classification metrics against counts
// worked out by hand.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <set>
#include <tuple>

#include "igscope/architectures.h"
#include "igscope/backend/backend.h"
#include "igscope/classifier_eval.h"
#include "igscope/model.h"
#include "igscope/random.h"
#include "igscope/train/adam.h"
#include "igscope/train/augment.h"
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

TEST_CASE("AdamW decays conv and dense weights only, decoupled from the gradient", "[train]") {
  // dense 2 -> 2, batchnorm, dense 2 -> 1: weights decay; biases, batchnorm's
  // weight and bias do not; the running statistics stay as they are.
  Model m(json::parse(R"({"input": [2], "layers": [{"type": "dense", "out_features": 2}, {"type": "batchnorm"},
                                                    {"type": "dense", "out_features": 1}]})"));
  const double lr = 0.1, wd = 0.5, eps = 1e-8;
  std::vector<double> before, grads;
  int k = 0;
  for (auto& np : m.named_parameters())
    for (int64_t i = 0; i < np.param->value.size(); ++i, ++k) {
      np.param->value[i] = static_cast<float>(0.25 * (k + 1) * (k % 2 ? -1 : 1));
      np.param->grad[i] = static_cast<float>(0.01 * (k + 1) * (k % 3 ? 1 : -1));
      before.push_back(np.param->value[i]);
      grads.push_back(np.param->grad[i]);
    }
  Adam adamw(m, lr, 0.9, 0.999, eps, wd);
  CHECK(adamw.decayed() == std::vector<std::string>{"0.weight", "2.weight"});
  adamw.step();
  // First step: m_hat = g, v_hat = g^2, so the Adam step is lr g / (|g| + eps);
  // a decayed tensor is first multiplied by 1 - lr wd.
  k = 0;
  int decayed = 0, kept = 0, buffers = 0;
  for (auto& np : m.named_parameters())
    for (int64_t i = 0; i < np.param->value.size(); ++i, ++k) {
      INFO(np.name << "[" << i << "]");
      const double w0 = before[static_cast<size_t>(k)], g = grads[static_cast<size_t>(k)];
      double expected = w0;
      if (!np.param->trainable) {
        ++buffers;
      } else if (np.name == "0.weight" || np.name == "2.weight") {
        expected = w0 * (1 - lr * wd) - lr * g / (std::abs(g) + eps);
        ++decayed;
      } else {
        expected = w0 - lr * g / (std::abs(g) + eps);
        ++kept;
      }
      CHECK(np.param->value[i] == Approx(expected).epsilon(1e-5));  // float steps, as in the Adam test
    }
  CHECK(decayed == 4 + 2);
  CHECK(kept == 2 + 2 + 2 + 1);  // 0.bias, 1.weight, 1.bias, 2.bias
  CHECK(buffers == 2 + 2 + 1);   // running_mean, running_var, num_batches_tracked

  // Without weight decay, nothing is decayed and the step is plain Adam's.
  Model plain(json::parse(R"({"input": [1], "layers": [{"type": "dense", "out_features": 1}]})"));
  Adam adam(plain, lr);
  CHECK(adam.decayed().empty());
  CHECK_THROWS_WITH(Adam(plain, lr, 0.9, 0.999, eps, -1.0), Catch::Contains("weight decay"));
}

TEST_CASE("learning rate: linear warm-up, then cosine decay", "[train]") {
  TrainOptions o;
  o.lr = 2.0;
  o.epochs = 4;
  o.final_lr_fraction = 0.05;
  const int64_t per_epoch = 10, total = 40;
  // Without warm-up: the cosine from lr at step 0 to lr * 0.05 at the end.
  CHECK(learning_rate_at(o, 0, per_epoch) == Approx(2.0));
  CHECK(learning_rate_at(o, 20, per_epoch) == Approx(2.0 * (0.05 + 0.95 * 0.5)));
  // Half an epoch of warm-up: 5 steps rising by lr / 5, then the cosine over the remaining 35.
  o.warmup_epochs = 0.5;
  for (int64_t s = 0; s < 5; ++s) CHECK(learning_rate_at(o, s, per_epoch) == Approx(2.0 * static_cast<double>(s + 1) / 5.0));
  CHECK(learning_rate_at(o, 5, per_epoch) == Approx(2.0));
  const double p = 34.0 / 35.0;
  CHECK(learning_rate_at(o, total - 1, per_epoch) ==
        Approx(2.0 * (0.05 + 0.95 * 0.5 * (1 + std::cos(3.141592653589793 * p)))));
  for (int64_t s = 5; s + 1 < total; ++s) CHECK(learning_rate_at(o, s + 1, per_epoch) < learning_rate_at(o, s, per_epoch));
}

TEST_CASE("augmentation: a shifted copy with zeros, mirrored", "[train][augment]") {
  // 3 x 3 x 1: 1 2 3 / 4 5 6 / 7 8 9.
  const std::vector<float> in = {1, 2, 3, 4, 5, 6, 7, 8, 9};
  std::vector<float> out(9, -1.0f);
  auto apply = [&](int64_t dy, int64_t dx, bool flip) {
    transform_image(in.data(), out.data(), 3, 3, 1, {dy, dx, flip});
    return out;
  };
  CHECK(apply(0, 0, false) == in);
  // out(y, x) = in(y + 1, x - 1): the window moved down one row and left one column.
  CHECK(apply(1, -1, false) == std::vector<float>{0, 4, 5, 0, 7, 8, 0, 0, 0});
  CHECK(apply(-2, 2, false) == std::vector<float>{0, 0, 0, 0, 0, 0, 3, 0, 0});
  CHECK(apply(0, 0, true) == std::vector<float>{3, 2, 1, 6, 5, 4, 9, 8, 7});
  // Crop at dx = 1, then mirror: out(y, x) = in(y, 2 - x + 1).
  CHECK(apply(0, 1, true) == std::vector<float>{0, 3, 2, 0, 6, 5, 0, 9, 8});

  // Channels move together: a 1 x 2 x 3 image mirrored.
  const std::vector<float> rgb = {1, 2, 3, 4, 5, 6};
  std::vector<float> mirrored(6);
  transform_image(rgb.data(), mirrored.data(), 1, 2, 3, {0, 0, true});
  CHECK(mirrored == std::vector<float>{4, 5, 6, 1, 2, 3});
}

TEST_CASE("augmentation of a batch: one seeded draw per image, every offset and flip", "[train][augment]") {
  const int64_t n = 400, h = 5, w = 6, c = 2, per = h * w * c;
  Tensor batch({n, h, w, c});
  Rng fill(7);
  for (int64_t i = 0; i < batch.size(); ++i) batch[i] = static_cast<float>(1.0 + fill.uniform());  // never 0
  Augmentation a;
  a.crop_padding = 2;
  a.flip = true;
  Tensor x = batch, y = batch, z = batch;
  Rng r1(5), r2(5), r3(6);
  augment_batch(x, a, r1);
  augment_batch(y, a, r2);
  augment_batch(z, a, r3);
  CHECK(std::memcmp(x.data(), y.data(), sizeof(float) * static_cast<size_t>(x.size())) == 0);  // same seed
  CHECK(std::memcmp(x.data(), z.data(), sizeof(float) * static_cast<size_t>(x.size())) != 0);  // another seed

  // Each image is exactly one of the 5 x 5 x 2 transforms of its original,
  // the one draw_transform gives for that image's turn in the stream.
  Rng replay(5);
  std::set<std::tuple<int64_t, int64_t, bool>> seen;
  std::vector<float> expected(static_cast<size_t>(per));
  for (int64_t i = 0; i < n; ++i) {
    const ImageTransform t = draw_transform(a, replay);
    REQUIRE(std::abs(t.dy) <= 2);
    REQUIRE(std::abs(t.dx) <= 2);
    seen.insert({t.dy, t.dx, t.flip});
    transform_image(batch.data() + i * per, expected.data(), h, w, c, t);
    REQUIRE(std::memcmp(expected.data(), x.data() + i * per, sizeof(float) * static_cast<size_t>(per)) == 0);
    // A pure permutation with zero fill: every output pixel is 0 or a pixel of the same image and channel.
    int64_t zeros = 0;
    for (int64_t j = 0; j < per; ++j) {
      const float v = x[i * per + j];
      if (v == 0.0f) {
        ++zeros;
        continue;
      }
      bool found = false;
      for (int64_t q = j % c; q < per && !found; q += c) found = batch[i * per + q] == v;
      REQUIRE(found);
    }
    // The uncovered border: |dy| rows and |dx| columns.
    CHECK(zeros == (std::abs(t.dy) * w + std::abs(t.dx) * h - std::abs(t.dy) * std::abs(t.dx)) * c);
  }
  CHECK(seen.size() == 50);

  // Off: the batch is untouched and no numbers are drawn.
  Tensor same = batch;
  Rng r4(5);
  augment_batch(same, Augmentation{}, r4);
  CHECK(std::memcmp(same.data(), batch.data(), sizeof(float) * static_cast<size_t>(batch.size())) == 0);
  CHECK(r4.next() == Rng(5).next());

  Augmentation too_wide;
  too_wide.crop_padding = 5;
  CHECK_THROWS_WITH(augment_batch(same, too_wide, r4), Catch::Contains("crop padding"));
  Tensor flat({2, 3});
  CHECK_THROWS_WITH(augment_batch(flat, a, r4), Catch::Contains("[N, H, W, C]"));
}

TEST_CASE("augmentation names", "[train][augment]") {
  const Augmentation a = parse_augmentation({"flip", "crop"}, 3);
  CHECK(a.crop_padding == 3);
  CHECK(a.flip);
  CHECK(a.describe() == "crop (pad 3), flip");
  const Augmentation f = parse_augmentation({"flip"}, 3);
  CHECK(f.crop_padding == 0);
  CHECK(f.describe() == "flip");
  CHECK(parse_augmentation({}, 2).describe() == "none");
  CHECK_THROWS_WITH(parse_augmentation({"rotate"}, 2), Catch::Contains("choices: crop, flip"));
  CHECK_THROWS_WITH(parse_augmentation({"crop", "crop"}, 2), Catch::Contains("twice"));
  CHECK_THROWS_WITH(parse_augmentation({"crop"}, 0), Catch::Contains("crop padding"));
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

namespace {

// Two classes on 8x8 images: a bright horizontal or vertical line at a random
// place, with noise; crops and flips keep the class.
Dataset lines(int64_t n, uint64_t seed) {
  Rng rng(seed);
  Dataset d;
  d.images = Tensor({n, 8, 8, 1});
  d.class_names = {"horizontal", "vertical"};
  for (int64_t i = 0; i < n; ++i) {
    const int label = static_cast<int>(rng.below(2));
    d.labels.push_back(label);
    const int64_t at = 1 + static_cast<int64_t>(rng.below(6));
    for (int64_t y = 0; y < 8; ++y)
      for (int64_t x = 0; x < 8; ++x)
        d.images[(i * 8 + y) * 8 + x] =
            static_cast<float>(((label == 0 ? y : x) == at ? 0.8 : 0.0) + rng.uniform(0, 0.3));
  }
  return d;
}

// A residual block with batchnorm on both paths (a strided 1x1 shortcut), as in fashion_resnet.
json lines_resnet() {
  return json::parse(R"({"name": "lines", "input": [8, 8, 1], "classes": ["horizontal", "vertical"], "output": "fc",
    "nodes": [
      {"id": "conv1", "type": "conv2d", "inputs": ["input"], "out_channels": 4, "kernel": 3, "padding": 1},
      {"id": "bn1", "type": "batchnorm", "inputs": ["conv1"]},
      {"id": "relu", "type": "relu", "inputs": ["bn1"]},
      {"id": "layer1.0.conv1", "type": "conv2d", "inputs": ["relu"], "out_channels": 8, "kernel": 3, "stride": 2, "padding": 1},
      {"id": "layer1.0.bn1", "type": "batchnorm", "inputs": ["layer1.0.conv1"]},
      {"id": "layer1.0.relu1", "type": "relu", "inputs": ["layer1.0.bn1"]},
      {"id": "layer1.0.conv2", "type": "conv2d", "inputs": ["layer1.0.relu1"], "out_channels": 8, "kernel": 3, "padding": 1},
      {"id": "layer1.0.bn2", "type": "batchnorm", "inputs": ["layer1.0.conv2"]},
      {"id": "layer1.0.downsample.0", "type": "conv2d", "inputs": ["relu"], "out_channels": 8, "kernel": 1, "stride": 2},
      {"id": "layer1.0.downsample.1", "type": "batchnorm", "inputs": ["layer1.0.downsample.0"]},
      {"id": "layer1.0.add", "type": "add", "inputs": ["layer1.0.bn2", "layer1.0.downsample.1"]},
      {"id": "layer1.0.relu2", "type": "relu", "inputs": ["layer1.0.add"]},
      {"id": "flatten", "type": "flatten", "inputs": ["layer1.0.relu2"]},
      {"id": "fc", "type": "dense", "inputs": ["flatten"], "out_features": 2}]})");
}

}  // namespace

TEST_CASE("a residual network with batchnorm learns with AdamW, warm-up and augmentation, reproducibly", "[train]") {
  auto backend = make_backend(default_backend(BackendUse::Training), 1);
  const Dataset data = lines(600, 4);
  TrainOptions o;
  o.epochs = 3;
  o.batch_size = 16;
  o.lr = 3e-3;
  o.warmup_epochs = 0.5;
  o.weight_decay = 0.05;
  o.validation_size = 100;
  o.augmentation.crop_padding = 1;
  o.augmentation.flip = true;
  auto run = [&](const TrainOptions& oo) {
    Model m(lines_resnet());
    m.init_he(oo.seed);
    const auto history = train_classifier(m, *backend, data, oo);
    return std::make_pair(weights_of(m), history);
  };
  const auto [w1, h1] = run(o);
  const auto [w2, h2] = run(o);
  TrainOptions plain = o;
  plain.augmentation = Augmentation{};
  const auto [w3, h3] = run(plain);
  TrainOptions no_decay = o;
  no_decay.weight_decay = 0.0;
  const auto [w4, h4] = run(no_decay);
  REQUIRE(h1.size() == 3);
  CHECK(h1.back().loss < h1.front().loss);
  CHECK(h1.back().validation_accuracy >= 0.95);
  CHECK(w1 == w2);  // bit for bit, augmentation included
  CHECK(w1 != w3);  // the augmentation reached the batches
  CHECK(w1 != w4);  // so did the weight decay
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
  o.epochs = 2;
  o.warmup_epochs = 2;
  CHECK_THROWS_WITH(train_classifier(m, *backend, data, o), Catch::Contains("warm-up (2 epochs)"));
  o.warmup_epochs = 0;
  o.weight_decay = -0.1;
  CHECK_THROWS_WITH(train_classifier(m, *backend, data, o), Catch::Contains("weight decay"));
  o.weight_decay = 0;
  o.augmentation.flip = true;
  Dataset flat;
  flat.images = Tensor({20, 36});
  flat.labels = data.labels;
  Model mlp(json::parse(R"({"input": [36], "layers": [{"type": "dense", "out_features": 2}]})"));
  CHECK_THROWS_WITH(train_classifier(mlp, *backend, flat, o), Catch::Contains("augmentation needs image data"));
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

TEST_CASE("fashion_resnet: torchvision's module paths, batchnorm after every conv, within 4x the CNN's cost", "[train][model]") {
  Model m(named_architecture("fashion_resnet"));
  Model cnn(named_architecture("fashion_cnn_v1"));
  CHECK(m.multiply_adds() <= 4 * cnn.multiply_adds());
  CHECK(m.class_names() == cnn.class_names());
  std::set<std::string> ids;
  for (size_t i = 0; i < m.num_layers(); ++i) ids.insert(m.node_id(i));
  for (const char* id : {"conv1", "bn1", "layer1.0.conv1", "layer1.0.bn1", "layer1.0.conv2", "layer1.0.bn2",
                         "layer1.0.downsample.0", "layer1.0.downsample.1", "layer3.0.add", "avgpool", "fc"})
    CHECK(ids.count(id) == 1);
  for (size_t i = 0; i < m.num_layers(); ++i) {
    if (m.layer(i).type() != "conv2d") continue;
    INFO(m.node_id(i));
    // The node reading this conv's output is its batchnorm.
    bool normalised = false;
    for (size_t j = i + 1; j < m.num_layers(); ++j)
      if (m.node_inputs(j) == std::vector<int>{static_cast<int>(i)}) normalised = m.layer(j).type() == "batchnorm";
    CHECK(normalised);
  }
  const size_t pool = m.find_node("avgpool");
  CHECK(m.layer(pool).type() == "global_avgpool");
  CHECK(m.layer_output_shape(pool) == Shape{1, 1, 128});
  CHECK(m.layer_output_shape(m.num_layers() - 1) == Shape{10});
  CHECK_THROWS_WITH(named_architecture("fashion_resnet50"), Catch::Contains("fashion_resnet"));
}
