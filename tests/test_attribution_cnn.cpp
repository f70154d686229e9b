// The IG axioms on the CNN: completeness (on the shipped model, over 100 test
// images), sensitivity, implementation invariance, linearity, dummy; and the
// engine's independence from its chunk size.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <numeric>
#include <sstream>

#include "igscope/architectures.h"
#include "igscope/attribution/explain.h"
#include "igscope/attribution/ig.h"
#include "igscope/data/fashion_mnist.h"
#include "igscope/error.h"
#include "igscope/model.h"
#include "igscope/random.h"

using namespace igscope;

namespace {

// One thread: CTest runs tests side by side, and OpenMP teams that outnumber
// the cores slow everything down many times over.
std::unique_ptr<Backend> fast_backend() { return make_backend(default_backend(), 1); }

Model random_cnn(uint64_t seed) {
  Model m(named_architecture("fashion_cnn_v1"));
  m.init_he(seed);
  return m;
}

// A Fashion-MNIST-like image: an object of random intensities on a flat black background.
Tensor object_image(uint64_t seed) {
  Rng rng(seed);
  Tensor x({1, 28, 28, 1});
  const int64_t top = 4 + static_cast<int64_t>(rng.below(6)), left = 5 + static_cast<int64_t>(rng.below(6));
  for (int64_t y = top; y < top + 16; ++y)
    for (int64_t c = left; c < left + 12; ++c) x[y * 28 + c] = static_cast<float>(rng.uniform(0.2, 1.0));
  return x;
}

double max_abs(const Tensor& t) {
  double m = 0;
  for (int64_t i = 0; i < t.size(); ++i) m = std::max(m, std::abs(static_cast<double>(t[i])));
  return m;
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  REQUIRE(a.size() == b.size());
  double m = 0;
  for (int64_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(static_cast<double>(a[i]) - b[i]));
  return m;
}

// Copies every parameter of `from` into `to` (same architecture).
void copy_parameters(Model& from, Model& to) {
  auto a = from.named_parameters(), b = to.named_parameters();
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) b[i].param->value = a[i].param->value;
}

std::string shipped_model_path(const std::string& name) {
  std::string here = __FILE__;
  return here.substr(0, here.rfind("/tests/")) + "/model_weights/" + name + ".safetensors";
}

// a F + b G for two target functions of the same input shape.
class LinearCombination final : public TargetFunction {
 public:
  LinearCombination(TargetFunction& f, double a, TargetFunction& g, double b) : f_(f), g_(g), a_(a), b_(b) {}
  Shape input_shape() const override { return f_.input_shape(); }
  void evaluate(const Tensor& x, std::vector<double>& values, Tensor& grads) override {
    std::vector<double> vf, vg;
    Tensor gf, gg;
    f_.evaluate(x, vf, gf);
    g_.evaluate(x, vg, gg);
    values.resize(vf.size());
    for (size_t i = 0; i < vf.size(); ++i) values[i] = a_ * vf[i] + b_ * vg[i];
    grads = Tensor(x.shape());
    for (int64_t i = 0; i < grads.size(); ++i) grads[i] = static_cast<float>(a_ * gf[i] + b_ * gg[i]);
  }

 private:
  TargetFunction &f_, &g_;
  double a_, b_;
};

}  // namespace

TEST_CASE("CNN: the probability target's gradient is the chain rule over the logits' gradients", "[ig][cnn]") {
  auto backend = fast_backend();
  Model m = random_cnn(3);
  Tensor x = object_image(1);
  Tensor batch({2, 28, 28, 1});
  std::copy(x.data(), x.data() + x.size(), batch.data());
  const Tensor x2 = object_image(2);
  std::copy(x2.data(), x2.data() + x2.size(), batch.data() + x.size());
  ModelTarget prob(m, *backend, 4, TargetOutput::Probability);
  std::vector<double> p;
  Tensor gp;
  prob.evaluate(batch, p, gp);
  // Independently: logits and each logit's gradient, combined by dp4/dz_j = p4 (delta_4j - p_j).
  std::vector<std::vector<double>> z(10);
  std::vector<Tensor> gz(10);
  for (int64_t j = 0; j < 10; ++j) {
    ModelTarget logit(m, *backend, j);
    logit.evaluate(batch, z[static_cast<size_t>(j)], gz[static_cast<size_t>(j)]);
  }
  for (int64_t n = 0; n < 2; ++n) {
    double zmax = -1e300, sum = 0;
    for (int64_t j = 0; j < 10; ++j) zmax = std::max(zmax, z[static_cast<size_t>(j)][static_cast<size_t>(n)]);
    std::vector<double> q(10);
    for (int64_t j = 0; j < 10; ++j) sum += (q[static_cast<size_t>(j)] = std::exp(z[static_cast<size_t>(j)][static_cast<size_t>(n)] - zmax));
    for (auto& v : q) v /= sum;
    CHECK(p[static_cast<size_t>(n)] == Approx(q[4]).epsilon(1e-6));
    double worst = 0, scale = 0;
    for (int64_t i = 0; i < 784; ++i) {
      double want = 0;
      for (int64_t j = 0; j < 10; ++j)
        want += q[4] * ((j == 4) - q[static_cast<size_t>(j)]) * gz[static_cast<size_t>(j)][n * 784 + i];
      worst = std::max(worst, std::abs(want - gp[n * 784 + i]));
      scale = std::max(scale, std::abs(want));
    }
    CHECK(worst <= 1e-5 * scale);
  }
}

TEST_CASE("CNN: completeness on a random model, logit and probability", "[ig][cnn][axioms]") {
  auto backend = fast_backend();
  Model m = random_cnn(5);
  for (uint64_t s = 0; s < 3; ++s) {
    const Tensor x = object_image(10 + s);
    for (TargetOutput out : {TargetOutput::Logit, TargetOutput::Probability}) {
      ModelTarget f(m, *backend, predicted_class(m, *backend, x), out);
      const Attribution a = integrated_gradients(f, x, Tensor(x.shape()), {Quadrature::GaussLegendre, 64, 32});
      INFO("image " << s << " " << target_output_name(out) << ": gap " << a.gap << ", F(x) - F(x') "
                    << a.f_input - a.f_baseline);
      CHECK(a.relative_gap() < 0.01);
      CHECK(a.sum == Approx(a.f_input - a.f_baseline + a.gap).margin(1e-9));
    }
  }
}

TEST_CASE("CNN: attributions do not depend on the chunk size", "[ig][cnn]") {
  auto backend = fast_backend();
  Model m = random_cnn(6);
  const Tensor x = object_image(4);
  ModelTarget f(m, *backend, 2);
  const Tensor b(x.shape(), 0.3f);
  const Attribution whole = integrated_gradients(f, x, b, {Quadrature::GaussLegendre, 24, 24});
  for (int64_t batch : {1, 5, 7}) {
    const Attribution chunked = integrated_gradients(f, x, b, {Quadrature::GaussLegendre, 24, batch});
    INFO("batch " << batch);
    CHECK(max_abs_diff(whole.values, chunked.values) <= 1e-5 * max_abs(whole.values));
    CHECK(chunked.gap == Approx(whole.gap).margin(1e-5 * std::abs(whole.f_input - whole.f_baseline)));
  }
}

TEST_CASE("CNN: sensitivity, a pixel that alone changes the output gets it all", "[ig][cnn][axioms]") {
  auto backend = fast_backend();
  Model m = random_cnn(7);
  const Tensor x = object_image(5);
  Tensor b = x;
  const int64_t pixel = 14 * 28 + 14;
  b[pixel] = 1.0f - x[pixel] > 0.5f ? 1.0f : 0.0f;  // only this pixel differs
  ModelTarget f(m, *backend, predicted_class(m, *backend, x));
  const Attribution a = integrated_gradients(f, x, b, {Quadrature::GaussLegendre, 256, 64});
  const double delta = a.f_input - a.f_baseline;
  REQUIRE(std::abs(delta) > 1e-4);
  CHECK(a.values[pixel] != 0.0f);
  CHECK(a.values[pixel] == Approx(delta).epsilon(0.01));
  CHECK(a.values[pixel] == Approx(a.sum).epsilon(1e-6));
  int64_t nonzero_elsewhere = 0;
  for (int64_t i = 0; i < 784; ++i) nonzero_elsewhere += (i != pixel && a.values[i] != 0.0f);
  CHECK(nonzero_elsewhere == 0);
}

TEST_CASE("CNN: implementation invariance under a channel permutation and an identity 1x1 conv", "[ig][cnn][axioms]") {
  auto backend = fast_backend();
  Model m = random_cnn(8);
  const Tensor x = object_image(6);
  const int64_t target = 7;
  const IGOptions opt{Quadrature::GaussLegendre, 32, 32};
  ModelTarget f(m, *backend, target);
  const Attribution want = integrated_gradients(f, x, Tensor(x.shape()), opt);
  REQUIRE(max_abs(want.values) > 0);

  SECTION("conv2's channels and dense1's units permuted, the next layers' inputs permuted to match") {
    Model p = random_cnn(99);
    copy_parameters(m, p);
    Rng rng(1);
    auto permutation = [&](int64_t n) {
      std::vector<int64_t> perm(static_cast<size_t>(n));
      std::iota(perm.begin(), perm.end(), 0);
      for (int64_t i = n - 1; i > 0; --i)
        std::swap(perm[static_cast<size_t>(i)], perm[rng.below(static_cast<uint64_t>(i + 1))]);
      return perm;
    };
    // Conv layer 3 (32 -> 64): output channel o takes old channel perm[o];
    // conv layer 6 (64 -> 128): input channel i takes old input perm[i].
    const auto pc = permutation(64);
    Tensor &w3 = p.layer(3).parameters()[0].value, &b3 = p.layer(3).parameters()[1].value;
    const Tensor &ow3 = m.layer(3).parameters()[0].value, &ob3 = m.layer(3).parameters()[1].value;
    const int64_t per3 = 32 * 9;
    for (int64_t o = 0; o < 64; ++o) {
      const int64_t from = pc[static_cast<size_t>(o)];
      std::copy(ow3.data() + from * per3, ow3.data() + (from + 1) * per3, w3.data() + o * per3);
      b3[o] = ob3[from];
    }
    Tensor& w6 = p.layer(6).parameters()[0].value;
    const Tensor& ow6 = m.layer(6).parameters()[0].value;
    for (int64_t o = 0; o < 128; ++o)
      for (int64_t i = 0; i < 64; ++i)
        for (int64_t k = 0; k < 9; ++k) w6[(o * 64 + i) * 9 + k] = ow6[(o * 64 + pc[static_cast<size_t>(i)]) * 9 + k];
    // Dense layer 10 (6272 -> 128) units, and dense layer 13's inputs.
    const auto pd = permutation(128);
    Tensor &w10 = p.layer(10).parameters()[0].value, &b10 = p.layer(10).parameters()[1].value;
    const Tensor &ow10 = m.layer(10).parameters()[0].value, &ob10 = m.layer(10).parameters()[1].value;
    for (int64_t o = 0; o < 128; ++o) {
      const int64_t from = pd[static_cast<size_t>(o)];
      std::copy(ow10.data() + from * 6272, ow10.data() + (from + 1) * 6272, w10.data() + o * 6272);
      b10[o] = ob10[from];
    }
    Tensor& w13 = p.layer(13).parameters()[0].value;
    const Tensor& ow13 = m.layer(13).parameters()[0].value;
    for (int64_t o = 0; o < 10; ++o)
      for (int64_t i = 0; i < 128; ++i) w13[o * 128 + i] = ow13[o * 128 + pd[static_cast<size_t>(i)]];
    // The weights really differ; the function does not.
    CHECK(max_abs_diff(w3, ow3) > 0.1);
    ModelTarget g(p, *backend, target);
    const Attribution got = integrated_gradients(g, x, Tensor(x.shape()), opt);
    CHECK(max_abs_diff(got.values, want.values) <= 1e-5 * max_abs(want.values));
    CHECK(got.f_input == Approx(want.f_input).epsilon(1e-5));
  }
  SECTION("an identity 1x1 convolution inserted after the second pooling layer") {
    nlohmann::json arch = named_architecture("fashion_cnn_v1");
    auto& layers = arch["layers"];
    layers.insert(layers.begin() + 6, nlohmann::json{{"type", "conv2d"}, {"out_channels", 64}, {"kernel", 1}});
    Model q(arch);
    REQUIRE(q.num_layers() == m.num_layers() + 1);
    for (size_t i = 0; i < m.num_layers(); ++i) {
      const size_t j = i < 6 ? i : i + 1;
      for (size_t k = 0; k < m.layer(i).parameters().size(); ++k)
        q.layer(j).parameters()[k].value = m.layer(i).parameters()[k].value;
    }
    Tensor& eye = q.layer(6).parameters()[0].value;
    eye.fill(0.0f);
    for (int64_t c = 0; c < 64; ++c) eye[c * 64 + c] = 1.0f;
    q.layer(6).parameters()[1].value.fill(0.0f);
    ModelTarget g(q, *backend, target);
    const Attribution got = integrated_gradients(g, x, Tensor(x.shape()), opt);
    CHECK(max_abs_diff(got.values, want.values) <= 1e-5 * max_abs(want.values));
  }
}

TEST_CASE("CNN: linearity, IG of a f + b g is a IG(f) + b IG(g) for two networks", "[ig][cnn][axioms]") {
  auto backend = fast_backend();
  Model m1 = random_cnn(11), m2 = random_cnn(12);
  const Tensor x = object_image(7);
  ModelTarget f(m1, *backend, 3), g(m2, *backend, 5, TargetOutput::Probability);
  LinearCombination h(f, 2.0, g, -3.5);
  const IGOptions opt{Quadrature::RiemannTrapezoid, 20, 32};
  const Tensor b(x.shape(), 0.5f);
  const Attribution ah = integrated_gradients(h, x, b, opt);
  const Attribution af = integrated_gradients(f, x, b, opt);
  const Attribution ag = integrated_gradients(g, x, b, opt);
  Tensor combined(x.shape());
  for (int64_t i = 0; i < combined.size(); ++i) combined[i] = static_cast<float>(2.0 * af.values[i] - 3.5 * ag.values[i]);
  CHECK(max_abs_diff(ah.values, combined) <= 1e-5 * max_abs(combined));
  CHECK(ah.f_input == Approx(2.0 * af.f_input - 3.5 * ag.f_input).epsilon(1e-6));
}

TEST_CASE("CNN: dummy, pixels a network never reads get exactly zero", "[ig][cnn][axioms]") {
  // A 1x1 convolution with stride 2 reads only pixels at even rows and columns.
  Model m(nlohmann::json::parse(R"({"name": "strided", "input": [28, 28, 1], "layers": [
    {"type": "conv2d", "out_channels": 8, "kernel": 1, "stride": 2}, {"type": "relu"},
    {"type": "flatten"}, {"type": "dense", "out_features": 10}]})"));
  m.init_he(13);
  auto backend = fast_backend();
  Tensor x = object_image(8);
  for (int64_t i = 0; i < x.size(); ++i) x[i] = std::max(x[i], 0.1f);  // differs from the black baseline everywhere
  ModelTarget f(m, *backend, 1);
  const Attribution a = integrated_gradients(f, x, Tensor(x.shape()), {Quadrature::GaussLegendre, 16, 16});
  int64_t read_nonzero = 0, unread_nonzero = 0;
  for (int64_t y = 0; y < 28; ++y)
    for (int64_t c = 0; c < 28; ++c) {
      const bool read = y % 2 == 0 && c % 2 == 0;
      (read ? read_nonzero : unread_nonzero) += a.values[y * 28 + c] != 0.0f;
    }
  CHECK(unread_nonzero == 0);
  CHECK(read_nonzero > 50);
}

TEST_CASE("CNN: bad requests give clear errors", "[ig][cnn][errors]") {
  auto backend = fast_backend();
  Model m = random_cnn(14);
  const Tensor x = object_image(9);
  CHECK_THROWS_WITH(ModelTarget(m, *backend, 10), Catch::Contains("target class 10 is out of range: the model has 10 outputs (classes 0..9)"));
  CHECK_THROWS_WITH(ModelTarget(m, *backend, -1), Catch::Contains("target class -1 is out of range"));
  AttributionRequest req;
  req.target = 12;
  CHECK_THROWS_WITH(explain(m, *backend, x, req), Catch::Contains("target class 12 is out of range"));
  req.target = -1;
  req.integration.steps = 0;
  CHECK_THROWS_WITH(explain(m, *backend, x, req), Catch::Contains("number of steps must be between 1 and 16384, got 0"));
  req.integration.steps = 8;
  req.baseline = "gaussian:-1";
  CHECK_THROWS_WITH(explain(m, *backend, x, req), Catch::Contains("sigma must be >= 0"));
  req.baseline = "image:small.png";
  Tensor small({1, 14, 14, 1});
  CHECK_THROWS_WITH(explain(m, *backend, x, req, {&small, nullptr}),
                    Catch::Contains("the image has shape [1, 14, 14, 1] but the input has shape [1, 28, 28, 1]"));
  req.baseline = "black";
  Tensor nan = x;
  nan[100] = std::nanf("");
  CHECK_THROWS_WITH(explain(m, *backend, nan, req), Catch::Contains("the input holds a non-finite value (nan) at flat index 100"));
  CHECK_THROWS_WITH(explain(m, *backend, small, req), Catch::Contains("the input has shape [1, 14, 14, 1]"));
  req.method = Method::SmoothGrad;
  req.smoothgrad.sigma = -0.2;
  CHECK_THROWS_WITH(explain(m, *backend, x, req), Catch::Contains("noise sigma must be a finite number >= 0"));
  req.method = Method::BlurIG;
  req.blur_max_sigma = -3;
  CHECK_THROWS_WITH(explain(m, *backend, x, req), Catch::Contains("Blur IG needs a finite maximum sigma > 0"));
  Model soft(nlohmann::json::parse(R"({"input": [4], "layers": [{"type": "dense", "out_features": 3}, {"type": "softmax"}]})"));
  CHECK_THROWS_WITH(ModelTarget(soft, *backend, 0, TargetOutput::Probability), Catch::Contains("already ends in softmax"));
  CHECK_THROWS_WITH(parse_method("lime"), Catch::Contains("unknown method 'lime'"));
}

TEST_CASE("CNN: every method runs through explain() and reports its numbers", "[ig][cnn]") {
  auto backend = fast_backend();
  Model m = random_cnn(15);
  const Tensor x = object_image(10);
  for (const auto& name : method_names()) {
    AttributionRequest req;
    req.method = parse_method(name);
    req.integration.steps = 8;
    req.smoothgrad.samples = 4;
    req.baseline = "avg:2:uniform";
    const Explanation e = explain(m, *backend, x, req);
    INFO(name);
    CHECK(e.target == e.predicted);
    CHECK(e.attribution.values.shape() == Shape{1, 28, 28, 1});
    CHECK(std::isfinite(e.attribution.f_input));
    CHECK(e.attribution.f_input == Approx(e.outputs[static_cast<size_t>(e.target)]).epsilon(1e-5));
    CHECK(std::isfinite(e.attribution.gap) == is_path_method(req.method));
    if (uses_baseline(req.method)) CHECK(e.baselines.size() == 2);
  }
}

// The relative completeness gap |gap| / |F(x) - F(x')| at 64 Gauss-Legendre
// steps over the first 100 test images (black baseline, predicted-class
// logit), sorted.
namespace {
std::vector<double> shipped_model_gaps(const std::string& name) {
  Model m = load_model(shipped_model_path(name));
  const Dataset test = load_fashion_mnist("test");
  auto backend = fast_backend();
  std::vector<double> rel;
  for (int64_t k = 0; k < 100; ++k) {
    Tensor x({1, 28, 28, 1});
    std::copy(test.images.data() + k * 784, test.images.data() + (k + 1) * 784, x.data());
    ModelTarget f(m, *backend, predicted_class(m, *backend, x));
    const Attribution a = integrated_gradients(f, x, Tensor(x.shape()), {Quadrature::GaussLegendre, 64, 32});
    rel.push_back(a.relative_gap());
  }
  std::sort(rel.begin(), rel.end());
  std::ostringstream dist;
  dist << name << ": relative gap |gap| / |F(x) - F(x')| over 100 test images, black baseline, predicted-class "
       << "logit, 64 Gauss-Legendre steps: min " << rel.front() << ", median " << rel[50] << ", 90th percentile "
       << rel[90] << ", max " << rel.back() << "; under 1%: "
       << std::count_if(rel.begin(), rel.end(), [](double r) { return r < 0.01; }) << "/100";
  WARN(dist.str());
  return rel;
}
}  // namespace

// Completeness at 64 Gauss-Legendre steps on at least 95 of 100 test images,
// on the default shipped model. Its SmeLU activation has a continuous
// derivative, so F's slope along the path is continuous except at max-pool
// switches and the quadrature converges fast.
TEST_CASE("completeness on the shipped SmeLU model: gap under 1% at 64 Gauss-Legendre steps for >= 95 of 100 images",
          "[ig][cnn][axioms][shipped]") {
  const std::vector<double> rel = shipped_model_gaps("fashion_cnn_smelu");
  CHECK(std::count_if(rel.begin(), rel.end(), [](double r) { return r < 0.01; }) >= 95);
}

// The ReLU model (fashion_cnn_v1): its logit is piecewise linear along the
// path, so the slope jumps wherever a unit changes sign and Gauss-Legendre
// converges only like 1/n. Measured: 89/100 under 1% at 64 steps (PyTorch in
// float64 finds the same 89), median 4.4e-3; 95/100 at 128 steps, 100/100 at
// 256. The test holds that distribution so a regression shows.
TEST_CASE("completeness on the shipped ReLU model at 64 Gauss-Legendre steps: the measured distribution holds",
          "[ig][cnn][axioms][shipped]") {
  const std::vector<double> rel = shipped_model_gaps("fashion_cnn_v1");
  CHECK(std::count_if(rel.begin(), rel.end(), [](double r) { return r < 0.01; }) >= 88);
  CHECK(rel[50] < 0.006);
  CHECK(rel.back() < 0.05);
}
