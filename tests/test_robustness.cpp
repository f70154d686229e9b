// The robustness perturbations. Frequency filters against functions whose
// blur is known (a linear ramp passes a symmetric blur unchanged away from
// the borders; a checkerboard is damped by the square of the kernel's
// response at the highest frequency); the
// cross-entropy's input gradient against central differences of the loss
// computed from the logits here; FGSM against the sign of a gradient worked
// out by hand for a linear model (a zero weight column gives sign 0 and no
// step); PGD inside the epsilon ball and the pixel range, ascending the loss,
// and equal to FGSM for one step of size epsilon; accuracy under a
// perturbation against a count done here; and the errors.
#include <catch2/catch.hpp>

#include <cmath>
#include <string>
#include <vector>

#include "gradient_check.h"
#include "igscope/backend/reference.h"
#include "igscope/classifier_eval.h"
#include "igscope/error.h"
#include "igscope/model.h"
#include "igscope/robustness/robustness_eval.h"

using namespace igscope;
using namespace igscope::testing;
using nlohmann::json;

namespace {

// A small graph with a residual add and smooth activations: 6x6x2 in, 5 classes.
Model small_graph(uint64_t seed) {
  Model m(json::parse(R"({"input": [6, 6, 2], "output": "fc", "nodes": [
    {"id": "c1", "type": "conv2d", "inputs": ["input"], "out_channels": 4, "kernel": 3, "padding": 1},
    {"id": "a1", "type": "tanh", "inputs": ["c1"]},
    {"id": "c2", "type": "conv2d", "inputs": ["a1"], "out_channels": 4, "kernel": 3, "padding": 1},
    {"id": "s", "type": "add", "inputs": ["a1", "c2"]},
    {"id": "a2", "type": "sigmoid", "inputs": ["s"]},
    {"id": "flat", "type": "flatten", "inputs": ["a2"]},
    {"id": "fc", "type": "dense", "inputs": ["flat"], "out_features": 5}]})"));
  m.init_he(seed);
  // Larger output weights, so that the loss is far from flat.
  for (auto& p : m.named_parameters())
    if (p.name == "fc.weight")
      for (int64_t i = 0; i < p.param->value.size(); ++i) p.param->value[i] *= 4.0f;
  return m;
}

// Mean cross-entropy of the logits [B, K] at the labels, in double.
double mean_cross_entropy(const Tensor& logits, const std::vector<int>& labels) {
  const int64_t b = logits.dim(0), k = logits.dim(1);
  double total = 0.0;
  for (int64_t n = 0; n < b; ++n) {
    double mx = -1e300, z = 0.0;
    for (int64_t j = 0; j < k; ++j) mx = std::max(mx, static_cast<double>(logits[n * k + j]));
    for (int64_t j = 0; j < k; ++j) z += std::exp(logits[n * k + j] - mx);
    total += mx + std::log(z) - logits[n * k + labels[static_cast<size_t>(n)]];
  }
  return total / static_cast<double>(b);
}

Tensor random_images(int64_t n, uint64_t seed) {
  Rng rng(seed);
  Tensor x = random_tensor({n, 6, 6, 2}, rng, 0.0, 1.0);
  // Pixels on the range's edges, where the clamp acts.
  for (int64_t i = 0; i < x.size(); i += 7) x[i] = (i / 7) % 2 ? 1.0f : 0.0f;
  return x;
}

double loss_at(Model& m, const Tensor& x, const std::vector<int>& labels) {
  ReferenceBackend backend;
  return mean_cross_entropy(m.forward(x, backend), labels);
}

}  // namespace

TEST_CASE("low-pass and high-pass filters on functions with a known blur", "[robustness]") {
  const int64_t h = 32, w = 32;
  Tensor ramp({1, h, w, 1}), checker({1, h, w, 1});
  for (int64_t y = 0; y < h; ++y)
    for (int64_t x = 0; x < w; ++x) {
      ramp[y * w + x] = static_cast<float>(0.01 * static_cast<double>(x) + 0.02 * static_cast<double>(y));
      checker[y * w + x] = static_cast<float>((x + y) % 2);
    }
  const double sigma = 1.0;
  const int64_t margin = 5;  // the blur's radius, ceil(4 sigma), plus one
  auto mean_of = [](const Tensor& t) {
    double s = 0.0;
    for (int64_t i = 0; i < t.size(); ++i) s += t[i];
    return s / static_cast<double>(t.size());
  };
  const Tensor lr = frequency_filter(ramp, FrequencyFilter::LowPass, sigma);
  const Tensor hr = frequency_filter(ramp, FrequencyFilter::HighPass, sigma);
  const Tensor lc = frequency_filter(checker, FrequencyFilter::LowPass, sigma);
  const Tensor hc = frequency_filter(checker, FrequencyFilter::HighPass, sigma);
  // The blur's response at the highest frequency, from its definition (taps
  // exp(-j^2 / (2 sigma^2)), |j| <= 4 sigma, normalised): H = sum_j k_j (-1)^j.
  // The checkerboard (-1)^(x + y) is that frequency along both axes.
  double z = 0.0, alternating = 0.0;
  for (int j = -4; j <= 4; ++j) {
    const double k = std::exp(-j * j / (2 * sigma * sigma));
    z += k;
    alternating += (j % 2 ? -k : k);
  }
  const double response = alternating / z;
  const double ramp_mean = mean_of(ramp), damped = 0.5 * response * response;
  for (int64_t y = margin; y < h - margin; ++y)
    for (int64_t x = margin; x < w - margin; ++x) {
      const int64_t i = y * w + x;
      INFO("pixel " << y << ", " << x);
      CHECK(lr[i] == Approx(ramp[i]).margin(1e-5));        // linear: unchanged by a symmetric blur
      CHECK(hr[i] == Approx(ramp_mean).margin(1e-5));      // nothing but the mean is left
      CHECK(std::abs(lc[i] - 0.5) == Approx(damped).margin(1e-6));  // the highest frequency, damped
      CHECK(std::abs(hc[i] - checker[i]) == Approx(damped).margin(1e-6));
    }
  // The reflected-border blur keeps each image's mean, so the high-pass image
  // keeps it too; low-pass plus high-pass is the image plus its mean.
  CHECK(mean_of(hc) == Approx(mean_of(checker)).margin(1e-6));
  for (int64_t i = 0; i < checker.size(); ++i)
    REQUIRE(lc[i] + hc[i] == Approx(checker[i] + mean_of(checker)).margin(1e-5));
  // sigma 0: the low-pass filter is the identity; the high-pass leaves the mean.
  const Tensor l0 = frequency_filter(checker, FrequencyFilter::LowPass, 0.0);
  const Tensor h0 = frequency_filter(checker, FrequencyFilter::HighPass, 0.0);
  for (int64_t i = 0; i < checker.size(); ++i) {
    REQUIRE(l0[i] == checker[i]);
    REQUIRE(h0[i] == Approx(0.5).margin(1e-6));
  }
  // Channels and images are filtered on their own: the mean is per image and channel.
  Tensor two({2, 4, 4, 2});
  for (int64_t i = 0; i < two.size(); ++i) two[i] = static_cast<float>(i % 2 ? 3.0 : (i < 32 ? 1.0 : 2.0));
  const Tensor h2 = frequency_filter(two, FrequencyFilter::HighPass, 1.5);
  for (int64_t i = 0; i < two.size(); ++i) REQUIRE(h2[i] == Approx(two[i]).margin(1e-6));

  CHECK_THROWS_AS(frequency_filter(ramp, FrequencyFilter::LowPass, -1.0), Error);
  CHECK_THROWS_AS(frequency_filter(ramp, FrequencyFilter::LowPass, NAN), Error);
  CHECK_THROWS_AS(frequency_filter(ramp, FrequencyFilter::HighPass, 1e6), Error);
  CHECK_THROWS_AS(frequency_filter(Tensor({4, 4}), FrequencyFilter::LowPass, 1.0), Error);
  CHECK_THROWS_AS(parse_frequency_filter("bandpass"), Error);
  CHECK(parse_frequency_filter("highpass") == FrequencyFilter::HighPass);
}

TEST_CASE("the cross-entropy's input gradient against central differences", "[robustness]") {
  Model m = small_graph(11);
  ReferenceBackend backend;
  const Tensor x = random_images(3, 5);
  const std::vector<int> labels{0, 4, 2};
  double loss = 0.0;
  std::vector<int> predicted;
  const Tensor g = loss_input_gradient(m, backend, x, labels, &loss, &predicted);
  REQUIRE(g.shape() == x.shape());
  CHECK(loss == Approx(loss_at(m, x, labels)).epsilon(1e-6));
  CHECK(predicted == argmax_rows(m.forward(x, backend)));
  GradientComparison c;
  const double eps = 1e-2;
  Tensor xp = x;
  for (int64_t i = 0; i < x.size(); ++i) {
    xp[i] = static_cast<float>(x[i] + eps);
    const double up = loss_at(m, xp, labels);
    xp[i] = static_cast<float>(x[i] - eps);
    const double down = loss_at(m, xp, labels);
    xp[i] = x[i];
    compare(c, g[i], (up - down) / (2 * eps));
  }
  INFO("max error " << c.max_abs_error << " of max gradient " << c.max_abs_grad);
  CHECK(c.relative_error() < 2e-3);
  CHECK(c.max_abs_grad > 1e-3);
}

TEST_CASE("models ending in softmax or log_softmax are attacked on the same loss", "[robustness]") {
  const std::string body = R"({"type": "dense", "out_features": 6}, {"type": "tanh"}, {"type": "dense", "out_features": 4})";
  Model plain(json::parse("{\"input\": [5], \"layers\": [" + body + "]}"));
  Model logsm(json::parse("{\"input\": [5], \"layers\": [" + body + ", {\"type\": \"log_softmax\"}]}"));
  Model sm(json::parse("{\"input\": [5], \"layers\": [" + body + ", {\"type\": \"softmax\"}]}"));
  plain.init_he(3);
  for (Model* other : {&logsm, &sm}) {
    auto from = plain.named_parameters(), to = other->named_parameters();
    REQUIRE(from.size() == to.size());
    for (size_t i = 0; i < from.size(); ++i) to[i].param->value = from[i].param->value;
  }
  ReferenceBackend backend;
  Rng rng(2);
  const Tensor x = random_tensor({4, 5}, rng);
  const std::vector<int> labels{3, 0, 1, 3};
  double l_plain = 0, l_log = 0, l_sm = 0;
  const Tensor g = loss_input_gradient(plain, backend, x, labels, &l_plain);
  const Tensor gl = loss_input_gradient(logsm, backend, x, labels, &l_log);
  const Tensor gs = loss_input_gradient(sm, backend, x, labels, &l_sm);
  CHECK(l_log == Approx(l_plain).epsilon(1e-5));
  CHECK(l_sm == Approx(l_plain).epsilon(1e-5));
  for (int64_t i = 0; i < g.size(); ++i) {
    REQUIRE(gl[i] == Approx(g[i]).margin(1e-6));
    REQUIRE(gs[i] == Approx(g[i]).margin(1e-5));
  }
}

TEST_CASE("FGSM steps by epsilon along the sign of a gradient worked out by hand", "[robustness]") {
  // logits = W x + b for x in R^4; dCE/dx = W^T (softmax(Wx + b) - onehot) / B.
  Model m(json::parse(R"({"input": [4], "layers": [{"type": "dense", "out_features": 3}]})"));
  const std::vector<float> w{0.5f, -1.0f, 0.0f, 2.0f, -0.3f, 0.8f, 0.0f, -0.1f, 1.2f, 0.4f, 0.0f, -0.7f};
  const std::vector<float> b{0.1f, -0.2f, 0.05f};
  for (auto& p : m.named_parameters()) {
    const auto& src = p.name.find("weight") != std::string::npos ? w : b;
    for (int64_t i = 0; i < p.param->value.size(); ++i) p.param->value[i] = src[static_cast<size_t>(i)];
  }
  const Tensor x({2, 4});
  Tensor xs = x;
  const std::vector<float> values{0.2f, 0.0f, 0.6f, 1.0f, 0.9f, 0.5f, 0.3f, 0.0f};
  for (int64_t i = 0; i < 8; ++i) xs[i] = values[static_cast<size_t>(i)];
  const std::vector<int> labels{1, 2};
  ReferenceBackend backend;
  AttackOptions o;
  o.kind = AttackKind::FGSM;
  o.epsilon = 0.25;
  const Tensor adv = adversarial_example(m, backend, xs, labels, o);
  for (int64_t n = 0; n < 2; ++n) {
    double z[3], p[3], zsum = 0.0;
    for (int k = 0; k < 3; ++k) {
      z[k] = b[static_cast<size_t>(k)];
      for (int j = 0; j < 4; ++j) z[k] += w[static_cast<size_t>(k * 4 + j)] * xs[n * 4 + j];
      zsum += p[k] = std::exp(z[k]);
    }
    for (int j = 0; j < 4; ++j) {
      double grad = 0.0;
      for (int k = 0; k < 3; ++k) grad += w[static_cast<size_t>(k * 4 + j)] * (p[k] / zsum - (k == labels[static_cast<size_t>(n)]));
      const double sign = j == 2 ? 0.0 : (grad > 0 ? 1.0 : -1.0);  // column 2 of W is zero
      const double expected = std::clamp(xs[n * 4 + j] + 0.25 * sign, 0.0, 1.0);
      INFO("row " << n << " feature " << j << " gradient " << grad);
      CHECK(adv[n * 4 + j] == Approx(expected).margin(1e-7));
    }
    CHECK(adv[n * 4 + 2] == xs[n * 4 + 2]);  // sign(0) = 0: no step
  }
  // epsilon 0 leaves the input as it is.
  o.epsilon = 0.0;
  const Tensor same = adversarial_example(m, backend, xs, labels, o);
  for (int64_t i = 0; i < xs.size(); ++i) CHECK(same[i] == xs[i]);
}

TEST_CASE("PGD stays in the epsilon ball and the pixel range and ascends the loss", "[robustness]") {
  Model m = small_graph(21);
  ReferenceBackend backend;
  const Tensor x = random_images(4, 9);
  const std::vector<int> labels{1, 3, 0, 2};
  AttackOptions o;
  o.kind = AttackKind::PGD;
  o.epsilon = 0.1;
  o.steps = 12;
  o.step_size = 0.06;  // larger than needed: the projection must act
  const Tensor adv = adversarial_example(m, backend, x, labels, o);
  const float eps = 0.1f;
  int64_t on_ball = 0;
  for (int64_t i = 0; i < x.size(); ++i) {
    INFO("element " << i << ": x " << x[i] << ", adversarial " << adv[i]);
    REQUIRE(adv[i] >= 0.0f);
    REQUIRE(adv[i] <= 1.0f);
    REQUIRE(adv[i] >= x[i] - eps);
    REQUIRE(adv[i] <= x[i] + eps);
    on_ball += adv[i] == x[i] - eps || adv[i] == x[i] + eps;
  }
  CHECK(on_ball > x.size() / 4);
  const double clean = loss_at(m, x, labels), attacked = loss_at(m, adv, labels);
  INFO("loss " << clean << " -> " << attacked);
  CHECK(attacked > clean + 0.05);
  AttackOptions f = o;
  f.kind = AttackKind::FGSM;
  CHECK(attacked >= loss_at(m, adversarial_example(m, backend, x, labels, f), labels) - 1e-6);
  // The default step size is 2.5 epsilon / steps.
  o.step_size = -1;
  CHECK(pgd_step_size(o) == Approx(2.5 * 0.1 / 12));
}

TEST_CASE("PGD of one step of size epsilon is FGSM", "[robustness]") {
  Model m = small_graph(4);
  ReferenceBackend backend;
  const Tensor x = random_images(3, 1);
  const std::vector<int> labels{4, 4, 1};
  AttackOptions p;
  p.kind = AttackKind::PGD;
  p.epsilon = 0.05;
  p.steps = 1;
  p.step_size = 0.05;
  AttackOptions f = p;
  f.kind = AttackKind::FGSM;
  const Tensor a = adversarial_example(m, backend, x, labels, p), b = adversarial_example(m, backend, x, labels, f);
  int64_t moved = 0;
  for (int64_t i = 0; i < x.size(); ++i) {
    REQUIRE(a[i] == b[i]);
    moved += a[i] != x[i];
  }
  CHECK(moved > x.size() / 2);
}

TEST_CASE("accuracy under a perturbation counts the perturbed batch's predictions", "[robustness]") {
  Model m = small_graph(8);
  ReferenceBackend backend;
  Dataset data;
  data.images = random_images(20, 3);
  const std::vector<int> clean = argmax_rows(m.forward(data.images, backend));
  Rng rng(6);
  for (int i = 0; i < 20; ++i)  // about half the labels agree with the model
    data.labels.push_back(i % 2 ? clean[static_cast<size_t>(i)] : static_cast<int>(rng.uniform(0, 5)) % 5);
  auto count = [&](const std::vector<int>& predicted) {
    int64_t c = 0;
    for (size_t i = 0; i < predicted.size(); ++i) c += predicted[i] == data.labels[i];
    return static_cast<double>(c) / 20.0;
  };
  const double clean_accuracy = count(clean);
  CHECK(accuracy_under(m, backend, data, parse_perturbation("lowpass"), 0.0, 7) == clean_accuracy);
  CHECK(accuracy_under(m, backend, data, parse_perturbation("fgsm"), 0.0, 7) == clean_accuracy);
  // Batches of 7 (a last one of 6) against the same attack done here, batch by batch.
  const Perturbation pgd = parse_perturbation("pgd");
  std::vector<int> attacked;
  for (int64_t begin = 0; begin < 20; begin += 7) {
    const int64_t n = std::min<int64_t>(7, 20 - begin);
    Tensor xb({n, 6, 6, 2});
    std::copy(data.images.data() + begin * 72, data.images.data() + (begin + n) * 72, xb.data());
    const std::vector<int> lb(data.labels.begin() + begin, data.labels.begin() + begin + n);
    for (int p : argmax_rows(m.forward(perturb(m, backend, xb, lb, pgd, 0.2), backend))) attacked.push_back(p);
  }
  const double under_attack = accuracy_under(m, backend, data, pgd, 0.2, 7);
  CHECK(under_attack == count(attacked));
  CHECK(under_attack < clean_accuracy);
  const double blurred = accuracy_under(m, backend, data, parse_perturbation("highpass"), 0.5, 7);
  CHECK(blurred == count(argmax_rows(m.forward(frequency_filter(data.images, FrequencyFilter::HighPass, 0.5), backend))));
}

TEST_CASE("attacks refuse what they cannot do", "[robustness]") {
  Model m = small_graph(1);
  ReferenceBackend backend;
  const Tensor x = random_images(2, 2);
  AttackOptions o;
  CHECK_THROWS_AS(adversarial_example(m, backend, x, {1}, o), Error);      // one label for two rows
  CHECK_THROWS_AS(adversarial_example(m, backend, x, {1, 5}, o), Error);   // class 5 of 0..4
  CHECK_THROWS_AS(adversarial_example(m, backend, x, {1, -1}, o), Error);
  Tensor bad = x;
  bad[3] = NAN;
  CHECK_THROWS_AS(adversarial_example(m, backend, bad, {1, 2}, o), Error);
  o.epsilon = -0.1;
  CHECK_THROWS_AS(adversarial_example(m, backend, x, {1, 2}, o), Error);
  o.epsilon = INFINITY;
  CHECK_THROWS_AS(adversarial_example(m, backend, x, {1, 2}, o), Error);
  o.epsilon = 0.1;
  o.kind = AttackKind::PGD;
  o.steps = 0;
  CHECK_THROWS_AS(adversarial_example(m, backend, x, {1, 2}, o), Error);
  o.steps = 3;
  o.range = {1.0, 0.0};
  CHECK_THROWS_AS(adversarial_example(m, backend, x, {1, 2}, o), Error);
  CHECK_THROWS_AS(parse_attack("cw"), Error);
  CHECK_THROWS_AS(parse_perturbation("jpeg"), Error);
  CHECK(parse_perturbation("pgd").name() == "pgd");
}
