// conv2d with groups (depthwise included) and dilation: the layer's input
// and weight gradients against central finite differences (as
// test_layers_gradients.cpp, tolerance 1e-3 of the largest numerical
// gradient), its tangent against its backward pass, and the hyper-parameters
// in architecture JSON: parsed, written back only when not 1, refused with a
// clear message when they make no sense; weight shapes, multiply-adds and He
// initialisation follow in_channels / groups.
#include <catch2/catch.hpp>

#include <cmath>
#include <memory>
#include <sstream>

#include <nlohmann/json.hpp>

#include "gradient_check.h"
#include "igscope/backend/reference.h"
#include "igscope/backend/simd.h"
#include "igscope/error.h"
#include "igscope/layers/conv2d.h"
#include "igscope/model.h"
#include "igscope/safetensors.h"

using namespace igscope;
using namespace igscope::testing;
using nlohmann::json;

namespace {

constexpr double kTolerance = 1e-3;

struct Case {
  int64_t n, h, w, cin, cout, kh, kw, sh, sw, ph, pw, groups, dh, dw;
};

std::string describe(const Case& c) {
  std::ostringstream os;
  os << "input " << c.n << "x" << c.h << "x" << c.w << "x" << c.cin << " -> " << c.cout << " kernel " << c.kh << "x"
     << c.kw << " stride " << c.sh << "," << c.sw << " pad " << c.ph << "," << c.pw << " groups " << c.groups
     << " dilation " << c.dh << "," << c.dw;
  return os.str();
}

// Hand-picked: groups 2 and 3, depthwise (multiplier 1, 2 and 3), dilation 2
// and (2, 1), with stride 1, 2 and mixed, padding 0 to 2, non-square kernels.
const std::vector<Case> kCases = {
    {2, 6, 7, 4, 6, 3, 3, 1, 1, 1, 1, 2, 1, 1},  // groups 2
    {2, 7, 5, 6, 3, 3, 2, 2, 1, 1, 0, 3, 1, 1},  // groups 3, one output per group, stride (2, 1)
    {2, 7, 6, 3, 3, 3, 3, 2, 2, 1, 1, 3, 1, 1},  // depthwise, stride 2
    {2, 6, 6, 3, 6, 3, 2, 1, 2, 1, 0, 3, 1, 1},  // depthwise, multiplier 2
    {1, 8, 7, 2, 6, 3, 3, 1, 1, 2, 2, 2, 2, 2},  // depthwise, multiplier 3, dilation 2
    {2, 9, 8, 2, 3, 3, 3, 1, 1, 2, 2, 1, 2, 2},  // dilation 2, same padding
    {2, 8, 7, 4, 4, 3, 2, 2, 1, 1, 1, 2, 2, 1},  // dilation (2, 1), groups 2, stride (2, 1)
    {1, 9, 9, 4, 8, 3, 3, 2, 2, 2, 2, 4, 2, 2},  // depthwise, multiplier 2, dilation 2, stride 2
};

// Random geometries: groups 1 to 3, kernel 1 to 3, stride and dilation 1 to
// 2 per axis, padding 0 to 2, sizes that fit the dilated kernel.
std::vector<Case> random_cases(Rng& rng, int count) {
  std::vector<Case> cases;
  while (static_cast<int>(cases.size()) < count) {
    Case c{};
    c.n = 1 + static_cast<int64_t>(rng.below(2));
    c.groups = 1 + static_cast<int64_t>(rng.below(3));
    c.cin = c.groups * (1 + static_cast<int64_t>(rng.below(2)));
    c.cout = c.groups * (1 + static_cast<int64_t>(rng.below(2)));
    c.kh = 1 + static_cast<int64_t>(rng.below(3));
    c.kw = 1 + static_cast<int64_t>(rng.below(3));
    c.sh = 1 + static_cast<int64_t>(rng.below(2));
    c.sw = 1 + static_cast<int64_t>(rng.below(2));
    c.dh = 1 + static_cast<int64_t>(rng.below(2));
    c.dw = 1 + static_cast<int64_t>(rng.below(2));
    c.ph = static_cast<int64_t>(rng.below(3));
    c.pw = static_cast<int64_t>(rng.below(3));
    c.h = 3 + static_cast<int64_t>(rng.below(5));
    c.w = 3 + static_cast<int64_t>(rng.below(5));
    if (c.h + 2 * c.ph < c.dh * (c.kh - 1) + 1 || c.w + 2 * c.pw < c.dw * (c.kw - 1) + 1) continue;
    if (c.groups == 1 && c.dh == 1 && c.dw == 1) continue;  // test_layers_gradients.cpp has those
    cases.push_back(c);
  }
  return cases;
}

std::unique_ptr<Conv2d> make_conv(const Case& c, Rng& rng) {
  auto conv = std::make_unique<Conv2d>(c.cin, c.cout, c.kh, c.kw, c.sh, c.sw, c.ph, c.pw, c.groups, c.dh, c.dw);
  for (auto& p : conv->parameters())
    for (int64_t i = 0; i < p.value.size(); ++i) p.value[i] = static_cast<float>(rng.uniform(-1, 1));
  return conv;
}

double dot(const Tensor& a, const Tensor& b) {
  double s = 0.0;
  for (int64_t i = 0; i < a.size(); ++i) s += static_cast<double>(a[i]) * b[i];
  return s;
}

Model one_conv(const std::string& conv_fields, const std::string& input = "[8, 8, 4]") {
  return Model(json::parse(R"({"name": "c", "input": )" + input + R"(, "layers": [{"type": "conv2d", )" + conv_fields +
                           R"(}, {"type": "flatten"}, {"type": "dense", "out_features": 2}]})"));
}

}  // namespace

TEST_CASE("grouped and dilated conv2d gradients match finite differences", "[layers][conv2d][gradient][groups]") {
  Rng rng(2024);
  std::vector<Case> cases = kCases;
  for (const Case& c : random_cases(rng, 12)) cases.push_back(c);
  ReferenceBackend reference;
  SimdBackend simd(2);
  for (Backend* backend : std::vector<Backend*>{&reference, &simd})
    for (const Case& c : cases) {
      INFO(backend->name() << " " << describe(c));
      auto conv = make_conv(c, rng);
      REQUIRE(conv->weight().shape() == Shape{c.cout, c.cin / c.groups, c.kh, c.kw});
      const Tensor x = random_tensor({c.n, c.h, c.w, c.cin}, rng);
      const auto in = check_input_gradient(*conv, x, *backend, Mode::Train, 1e-2);
      CHECK(in.relative_error() <= kTolerance);
      CHECK(in.checked == x.size());
      const auto par = check_param_gradient(*conv, x, *backend, Mode::Train, 1e-2);
      CHECK(par.relative_error() <= kTolerance);
      CHECK(par.checked == conv->weight().size() + c.cout);
    }
}

TEST_CASE("grouped and dilated conv2d: the tangent is the transpose of the input gradient",
          "[layers][conv2d][groups]") {
  ReferenceBackend backend;
  Rng rng(77);
  for (const Case& c : kCases) {
    INFO(describe(c));
    auto conv = make_conv(c, rng);
    const Shape in_shape{c.n, c.h, c.w, c.cin};
    const Tensor x = random_tensor(in_shape, rng);
    const Tensor out = conv->forward(x, backend, Mode::Eval);
    const Tensor v = random_tensor(in_shape, rng), u = random_tensor(out.shape(), rng);
    const Tensor jv = conv->forward_tangent(v, backend);
    REQUIRE(jv.shape() == out.shape());
    const Tensor jtu = conv->backward_input(u, backend);
    // <J v, u> = <v, J^T u>; and J v is linear in v with no bias.
    CHECK(dot(jv, u) == Approx(dot(v, jtu)).epsilon(1e-5));
    const Tensor j0 = conv->forward_tangent(Tensor(in_shape), backend);
    for (int64_t i = 0; i < j0.size(); ++i) REQUIRE(j0[i] == 0.0f);
  }
}

TEST_CASE("conv2d groups and dilation in architecture JSON", "[model][conv2d][groups]") {
  SECTION("parsed as an integer or [h, w], written back only when not 1") {
    Model m = one_conv(R"("out_channels": 8, "kernel": 3, "padding": [2, 1], "groups": 4, "dilation": [2, 1])");
    const json conv = m.architecture()["layers"][0];
    CHECK(conv["groups"] == 4);
    CHECK(conv["dilation"] == json::array({2, 1}));
    CHECK(m.layer(0).parameters().at(0).value.shape() == Shape{8, 1, 3, 3});
    CHECK(m.layer_output_shape(0) == Shape{8, 8, 8});  // (8 + 4 - 5) + 1, (8 + 2 - 3) + 1
    // groups 4: each output reads 1 of the 4 input channels.
    CHECK(m.layer_costs()[0].multiply_adds == 8 * 8 * 8 * 1 * 9);
    CHECK(m.layer_costs()[0].parameters == 8 * 9 + 8);
    CHECK_THAT(m.layer_costs()[0].description, Catch::Contains("groups=4") && Catch::Contains("dilation=2x1"));
    Model again(m.architecture());
    CHECK(again.architecture() == m.architecture());

    Model d = one_conv(R"("out_channels": 4, "kernel": 3, "dilation": 2)");
    CHECK(d.architecture()["layers"][0]["dilation"] == json::array({2, 2}));
    CHECK_FALSE(d.architecture()["layers"][0].contains("groups"));
    CHECK(d.layer_output_shape(0) == Shape{4, 4, 4});  // 8 - 5 + 1
  }
  SECTION("the defaults leave the JSON as it was") {
    const json plain = one_conv(R"("out_channels": 4, "kernel": 3)").architecture()["layers"][0];
    const json explicit_ones =
        one_conv(R"("out_channels": 4, "kernel": 3, "groups": 1, "dilation": [1, 1])").architecture()["layers"][0];
    CHECK(plain == explicit_ones);
    CHECK(plain == json::parse(R"({"type": "conv2d", "out_channels": 4, "kernel": [3, 3], "stride": [1, 1],
                                   "padding": [0, 0]})"));
  }
  SECTION("He initialisation takes the fan-in of one group") {
    // Depthwise 3x3 over 64 channels: fan-in 9, so weights of std sqrt(2 / 9)
    // and biases within 1 / 3 (fan-in 576 would give 0.059 and 0.042).
    Model m = one_conv(R"("out_channels": 64, "kernel": 3, "groups": 64)", "[6, 6, 64]");
    m.init_he(5);
    const Tensor& w = m.layer(0).parameters().at(0).value;
    const Tensor& b = m.layer(0).parameters().at(1).value;
    double sq = 0.0, largest_bias = 0.0;
    for (int64_t i = 0; i < w.size(); ++i) sq += static_cast<double>(w[i]) * w[i];
    for (int64_t i = 0; i < b.size(); ++i) largest_bias = std::max(largest_bias, std::abs(static_cast<double>(b[i])));
    CHECK(std::sqrt(sq / static_cast<double>(w.size())) == Approx(std::sqrt(2.0 / 9.0)).epsilon(0.1));
    CHECK(largest_bias <= 1.0 / 3.0);
    CHECK(largest_bias > 0.2);
  }
}

TEST_CASE("bad conv2d groups and dilation are refused with a clear message", "[model][conv2d][groups]") {
  auto refuse = [](const std::string& fields, const std::string& expected, const std::string& input = "[8, 8, 4]") {
    INFO(fields);
    try {
      one_conv(fields, input);
      FAIL("accepted");
    } catch (const ModelFileError& e) {
      CHECK(e.kind() == ModelFileErrorKind::Architecture);
      CHECK_THAT(e.what(), Catch::Contains(expected) && Catch::Contains("layer 0"));
    }
  };
  refuse(R"("out_channels": 6, "kernel": 3, "groups": 3)", "groups (3) must be >= 1 and divide the input channels (4)");
  refuse(R"("out_channels": 6, "kernel": 3, "groups": 4)", "out_channels (6)");
  refuse(R"("out_channels": 4, "kernel": 3, "groups": 0)", "groups (0) must be >= 1");
  refuse(R"("out_channels": 4, "kernel": 3, "groups": -2)", "groups must be a non-negative integer");
  refuse(R"("out_channels": 4, "kernel": 3, "groups": 1.5)", "groups must be a non-negative integer");
  refuse(R"("out_channels": 4, "kernel": 3, "dilation": 0)", "dilation must be >= 1");
  refuse(R"("out_channels": 4, "kernel": 3, "dilation": [1, 2, 3])", "'dilation' must be an integer or [h, w]");
  refuse(R"("out_channels": 4, "kernel": 3, "dilation": 4)", "smaller than the kernel (dilated: 9x9)");

  CHECK_THROWS_WITH(Conv2d(4, 6, 3, 3, 1, 1, 0, 0, 4), Catch::Contains("divide"));
  CHECK_THROWS_WITH(Conv2d(4, 4, 3, 3, 1, 1, 0, 0, 1, 1, 0), Catch::Contains("dilation must be >= 1"));
  // The backends' own check (every backend calls it; test_backends.cpp runs it on each).
  Conv2dGeometry g{1, 4, 4, 4, 6, 3, 3, 1, 1, 1, 1, 4, 1, 1};
  CHECK_THROWS_WITH(check_conv2d_geometry(g, "op"), Catch::Contains("op: groups (4)"));
  g.groups = 2;
  CHECK_NOTHROW(check_conv2d_geometry(g, "op"));
  g.dilation_w = 0;
  CHECK_THROWS_WITH(check_conv2d_geometry(g, "op"), Catch::Contains("dilation must be >= 1"));
  g.dilation_w = 3;  // extent 7 > 4 + 2
  CHECK_THROWS_WITH(check_conv2d_geometry(g, "op"), Catch::Contains("smaller than the kernel (dilated)"));
}
