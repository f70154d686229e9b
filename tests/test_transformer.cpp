// The vision-transformer node kinds (layers/layernorm.h, attention.h,
// tokens.h) and Backend::batched_matmul: every kind's backward_input and
// backward_params against central finite differences on random shapes, its
// forward_tangent against finite differences and against backward
// (<J v, u> = <v, J^T u>), the simd and eigen batched products against the
// plain loops, and a small ViT as a graph (input and parameter gradients,
// tangents at a block's output, save and load, refusals).
//
// Tolerance, as in test_layers_gradients.cpp: max |analytic - numerical| <=
// 1e-3 * max |numerical|. Every kind here is smooth (softmax, the layer
// norm's square root) or linear, so with eps = 1e-2 the truncation error is
// O(eps^2) relative to curvature, well below 1e-3 for inputs in [-1, 1]; a
// missed term or a transposed index is off by O(1).
#include <catch2/catch.hpp>

#include <array>
#include <cmath>
#include <limits>
#include <map>
#include <set>

#include "backend_compare.h"
#include "gradient_check.h"
#include "igscope/architectures.h"
#include "igscope/backend/reference.h"
#include "igscope/backend/simd.h"
#include "igscope/error.h"
#include "igscope/layers/attention.h"
#include "igscope/layers/dense.h"
#include "igscope/layers/layernorm.h"
#include "igscope/layers/tokens.h"
#include "igscope/model.h"
#include "igscope/safetensors.h"
#ifndef __EMSCRIPTEN__
#include "igscope/backend/eigen.h"
#endif

using namespace igscope;
using namespace igscope::testing;
using nlohmann::json;

namespace {

constexpr double kTolerance = 1e-3;
constexpr double kEps = 1e-2;

void randomize_params(Layer& layer, Rng& rng, double scale = 1.0) {
  for (auto& p : layer.parameters())
    for (int64_t i = 0; i < p.value.size(); ++i) p.value[i] = static_cast<float>(scale * rng.uniform(-1, 1));
}

double dot(const Tensor& a, const Tensor& b) {
  double s = 0.0;
  for (int64_t i = 0; i < a.size(); ++i) s += static_cast<double>(a[i]) * b[i];
  return s;
}

// The tangent along a random v against the directional finite difference,
// and against the backward pass through <J v, u> = <v, J^T u>.
void check_tangent(Layer& layer, const Tensor& x, Backend& backend, Rng& rng) {
  const Tensor v = random_tensor(x.shape(), rng);
  Tensor xp = x, xm = x;
  for (int64_t i = 0; i < x.size(); ++i) {
    xp[i] = static_cast<float>(x[i] + kEps * v[i]);
    xm[i] = static_cast<float>(x[i] - kEps * v[i]);
  }
  const Tensor fp = layer.forward(xp, backend, Mode::Eval);
  const Tensor fm = layer.forward(xm, backend, Mode::Eval);
  layer.forward(x, backend, Mode::Eval);
  const Tensor jv = layer.forward_tangent(v, backend);
  REQUIRE(jv.shape() == fp.shape());
  GradientComparison c;
  for (int64_t i = 0; i < jv.size(); ++i) compare(c, jv[i], (static_cast<double>(fp[i]) - fm[i]) / (2 * kEps));
  INFO("tangent: relative error " << c.relative_error() << " of " << c.max_abs_grad);
  CHECK(c.relative_error() <= kTolerance);
  CHECK(c.max_abs_grad > 1e-3);
  const Tensor u = random_tensor(jv.shape(), rng);
  const double lhs = dot(jv, u), rhs = dot(v, layer.backward_input(u, backend));
  CHECK(std::abs(lhs - rhs) <= 1e-5 * std::max(1.0, std::abs(lhs)));
}

void check_layer(Layer& layer, const Tensor& x, Backend& backend, uint64_t seed) {
  Rng rng(seed);
  const auto in = check_input_gradient(layer, x, backend, Mode::Train, kEps, seed);
  INFO("input gradient: relative error " << in.relative_error() << " of " << in.max_abs_grad);
  CHECK(in.relative_error() <= kTolerance);
  CHECK(in.max_abs_grad > 1e-3);
  if (!layer.parameters().empty()) {
    const auto par = check_param_gradient(layer, x, backend, Mode::Train, kEps, seed + 1);
    INFO("parameter gradient: relative error " << par.relative_error() << " of " << par.max_abs_grad);
    CHECK(par.relative_error() <= kTolerance);
    CHECK(par.max_abs_grad > 1e-3);
  }
  check_tangent(layer, x, backend, rng);
}

std::vector<std::unique_ptr<Backend>> cpu_backends() {
  std::vector<std::unique_ptr<Backend>> b;
  b.push_back(std::make_unique<ReferenceBackend>());
  b.push_back(std::make_unique<SimdBackend>(2));
#ifndef __EMSCRIPTEN__
  b.push_back(std::make_unique<EigenBackend>(2));
#endif
  return b;
}

// A small ViT: 8x8x2 images, 4x4 patches (4 tokens and the class token), 6
// features, two blocks of 2 and 3 heads.
json small_vit() {
  json arch = named_architecture("fashion_vit");
  json nodes = json::array();
  for (json n : arch["nodes"]) {
    const std::string id = n["id"];
    if (id.rfind("blocks.", 0) == 0 && id.substr(7, 1) >= "2") continue;  // keep blocks 0 and 1
    if (n["type"] == "patch_embed") n["dim"] = 6;
    if (n["type"] == "attention") n["heads"] = id.rfind("blocks.0.", 0) == 0 ? 2 : 3;
    if (id == "norm") n["inputs"] = {"blocks.1.add2"};
    if (id.find("mlp.0") != std::string::npos) n["out_features"] = 10;
    if (id.find("mlp.2") != std::string::npos) n["out_features"] = 6;
    if (id == "head") n["out_features"] = 3;
    nodes.push_back(n);
  }
  return {{"input", {8, 8, 2}}, {"output", "head"}, {"nodes", nodes}};
}

}  // namespace

TEST_CASE("batched_matmul: simd and eigen against the plain loops, every transposition", "[transformer][backends]") {
  ReferenceBackend ref;
  Rng rng(3);
  for (auto& backend : cpu_backends()) {
    for (const auto& [batch, m, n, k] : std::vector<std::array<int64_t, 4>>{
             {1, 1, 1, 1}, {3, 5, 7, 2}, {2, 50, 50, 16}, {4, 9, 16, 50}, {1, 6, 19, 3}, {2, 0, 4, 3}, {2, 3, 4, 0}}) {
      for (int form = 0; form < 8; ++form) {
        const bool ta = form & 1, tb = form & 2, acc = form & 4;
        const std::vector<float> a = random_vector(batch * m * k, rng), b = random_vector(batch * k * n, rng);
        const std::vector<float> c0 = random_vector(batch * m * n, rng);
        std::vector<float> want = c0, got = c0;
        if (!acc) std::fill(got.begin(), got.end(), std::numeric_limits<float>::quiet_NaN());
        ref.batched_matmul(batch, m, n, k, ta, tb, a.data(), b.data(), want.data(), acc);
        backend->batched_matmul(batch, m, n, k, ta, tb, a.data(), b.data(), got.data(), acc);
        INFO(backend->name() << " batch " << batch << " m " << m << " n " << n << " k " << k << " trans_a " << ta
                             << " trans_b " << tb << " accumulate " << acc);
        expect_close(got, want, "batched_matmul", 1e-5);
      }
    }
  }
  // The plain loops against a sum written out: C = A^T B for one 2x2 pair.
  const float a[] = {1, 2, 3, 4}, b[] = {5, 6, 7, 8};
  float c[4];
  ref.batched_matmul(1, 2, 2, 2, true, false, a, b, c, false);
  CHECK(c[0] == 1 * 5 + 3 * 7);
  CHECK(c[1] == 1 * 6 + 3 * 8);
  CHECK(c[2] == 2 * 5 + 4 * 7);
  CHECK(c[3] == 2 * 6 + 4 * 8);
}

TEST_CASE("layernorm gradients and tangents against finite differences", "[transformer][layernorm]") {
  Rng rng(5);
  for (auto& backend : cpu_backends()) {
    for (const Shape& s : std::vector<Shape>{{3, 7}, {2, 5, 6}, {1, 1, 4}}) {
      LayerNorm ln(s.back());
      randomize_params(ln, rng);
      const Tensor x = random_tensor(s, rng);
      INFO(backend->name() << " input " << shape_to_string(s));
      check_layer(ln, x, *backend, 11);
    }
  }
}

TEST_CASE("layernorm normalises each row: mean 0, variance 1 before the affine map", "[transformer][layernorm]") {
  ReferenceBackend backend;
  LayerNorm ln(4, 1e-5);
  ln.parameters()[0].value.fill(2.0f);
  ln.parameters()[1].value.fill(0.5f);
  Tensor x({1, 4});
  for (int i = 0; i < 4; ++i) x[i] = static_cast<float>(i + 1);  // mean 2.5, biased variance 1.25
  const Tensor y = ln.forward(x, backend, Mode::Eval);
  for (int i = 0; i < 4; ++i) CHECK(y[i] == Approx(2.0 * (i + 1 - 2.5) / std::sqrt(1.25 + 1e-5) + 0.5).epsilon(1e-6));
}

TEST_CASE("attention gradients and tangents against finite differences", "[transformer][attention]") {
  Rng rng(7);
  struct Case {
    int64_t n, t, d, heads;
  };
  for (auto& backend : cpu_backends()) {
    for (const Case& c : {Case{2, 5, 6, 2}, Case{1, 4, 6, 3}, Case{3, 1, 4, 1}, Case{2, 7, 8, 4}}) {
      Attention attn(c.d, c.heads);
      randomize_params(attn, rng);
      const Tensor x = random_tensor({c.n, c.t, c.d}, rng);
      INFO(backend->name() << " tokens " << c.n << "x" << c.t << "x" << c.d << " heads " << c.heads);
      check_layer(attn, x, *backend, 13);
      // backward_params then backward_input (the model's order, reusing the
      // projections' gradient) equals backward_input alone.
      attn.forward(x, *backend, Mode::Train);
      const Tensor r = random_tensor(x.shape(), rng);
      const Tensor alone = attn.backward_input(r, *backend);
      attn.backward_params(r, *backend);
      const Tensor after = attn.backward_input(r, *backend);
      expect_close(to_vector(after), to_vector(alone), "backward_input after backward_params", 1e-6);
    }
  }
}

TEST_CASE("attention with one token passes the value projection through", "[transformer][attention]") {
  // One token: softmax of one score is 1, so y = W_out (W_v x + b_v) + b_out.
  ReferenceBackend backend;
  Rng rng(17);
  Attention attn(4, 2);
  randomize_params(attn, rng);
  const Tensor x = random_tensor({1, 1, 4}, rng);
  const Tensor y = attn.forward(x, backend, Mode::Eval);
  const auto& ps = attn.parameters();
  for (int o = 0; o < 4; ++o) {
    double want = ps[3].value[o];
    for (int j = 0; j < 4; ++j) {
      double v = ps[1].value[8 + j];
      for (int i = 0; i < 4; ++i) v += ps[0].value[(8 + j) * 4 + i] * x[i];
      want += ps[2].value[o * 4 + j] * v;
    }
    CHECK(y[o] == Approx(want).epsilon(1e-5));
  }
  CHECK(attn.attention()[0] == 1.0f);
}

TEST_CASE("token nodes and dense on tokens: gradients and tangents", "[transformer][tokens]") {
  Rng rng(19);
  for (auto& backend : cpu_backends()) {
    INFO(backend->name());
    {
      PatchEmbed pe(2, 5, 3);
      randomize_params(pe, rng);
      check_layer(pe, random_tensor({2, 7, 6, 2}, rng), *backend, 21);  // 7 rows: the last is dropped
    }
    {
      ClassToken ct(4);
      randomize_params(ct, rng);
      check_layer(ct, random_tensor({2, 3, 4}, rng), *backend, 23);
    }
    {
      PositionEmbedding pos(3, 4);
      randomize_params(pos, rng);
      check_layer(pos, random_tensor({2, 3, 4}, rng), *backend, 25);
    }
    {
      SelectToken sel(2);
      check_layer(sel, random_tensor({2, 3, 4}, rng), *backend, 27);
    }
    {
      MeanTokens mean;
      check_layer(mean, random_tensor({2, 3, 4}, rng), *backend, 29);
    }
    {
      Dense fc(4, 3);
      randomize_params(fc, rng);
      check_layer(fc, random_tensor({2, 5, 4}, rng), *backend, 31);
    }
  }
}

TEST_CASE("patch_embed's tokens are the patches in row-major order", "[transformer][tokens]") {
  // One channel, 1x1 output features of weight 1: token i is the sum of patch i.
  ReferenceBackend backend;
  PatchEmbed pe(1, 1, 2);
  pe.parameters()[0].value.fill(1.0f);
  Tensor x({1, 4, 6, 1});
  for (int64_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i);
  const Tensor t = pe.forward(x, backend, Mode::Eval);
  REQUIRE(t.shape() == Shape{1, 6, 1});
  for (int py = 0; py < 2; ++py)
    for (int px = 0; px < 3; ++px) {
      double s = 0;
      for (int y = 0; y < 2; ++y)
        for (int xx = 0; xx < 2; ++xx) s += (2 * py + y) * 6 + 2 * px + xx;
      CHECK(t[py * 3 + px] == Approx(s));
    }
}

TEST_CASE("a small ViT graph: input and parameter gradients, tangents at the blocks", "[transformer][graph]") {
  Model m(small_vit());
  m.init_he(3);
  // Nonzero class token and nonzero biases, so that their gradients are checked for real.
  Rng rng(37);
  for (auto& np : m.named_parameters())
    if (np.name.find("bias") != std::string::npos || np.name == "class_token.token")
      for (int64_t i = 0; i < np.param->value.size(); ++i) np.param->value[i] = static_cast<float>(rng.uniform(-0.5, 0.5));
  ReferenceBackend backend;
  const Tensor x = random_tensor({2, 8, 8, 2}, rng);
  const Tensor out = m.forward(x, backend, Mode::Train);
  REQUIRE(out.shape() == Shape{2, 3});
  const Tensor r = random_tensor(out.shape(), rng);
  m.zero_grad();
  const Tensor g = m.backward(r, backend, true);
  GradientComparison gi;
  Tensor xp = x;
  for (int64_t i = 0; i < x.size(); ++i) {
    xp[i] = static_cast<float>(x[i] + kEps);
    const double up = weighted_sum(m.forward(xp, backend, Mode::Train), r);
    xp[i] = static_cast<float>(x[i] - kEps);
    const double down = weighted_sum(m.forward(xp, backend, Mode::Train), r);
    xp[i] = x[i];
    compare(gi, g[i], (up - down) / (2 * kEps));
  }
  INFO("input gradient: relative error " << gi.relative_error() << " of " << gi.max_abs_grad);
  CHECK(gi.relative_error() < kTolerance);
  for (auto& np : m.named_parameters()) {
    GradientComparison c;
    for (int64_t i = 0; i < np.param->value.size(); i += 5) {
      const float original = np.param->value[i];
      np.param->value[i] = original + static_cast<float>(kEps);
      const double up = weighted_sum(m.forward(x, backend, Mode::Train), r);
      np.param->value[i] = original - static_cast<float>(kEps);
      const double down = weighted_sum(m.forward(x, backend, Mode::Train), r);
      np.param->value[i] = original;
      compare(c, np.param->grad[i], (up - down) / (2 * kEps));
    }
    INFO(np.name << ": relative error " << c.relative_error() << " of " << c.max_abs_grad);
    CHECK(c.relative_error() < kTolerance);
    CHECK(c.max_abs_grad > 1e-4);
  }
  // Each block's output is a cut; attention and the MLP are bypassed by the residual.
  CHECK(m.is_cut(m.find_node("blocks.0.add2")));
  CHECK(m.is_cut(m.find_node("blocks.1.add1")));
  CHECK_FALSE(m.is_cut(m.find_node("blocks.0.attn")));
  CHECK_FALSE(m.is_cut(m.find_node("blocks.1.mlp.1")));
  // The tangent at blocks.0.add2 against the finite difference of that node's output.
  const Tensor v = random_tensor(x.shape(), rng);
  Tensor xv = x, xw = x;
  for (int64_t i = 0; i < x.size(); ++i) {
    xv[i] = static_cast<float>(x[i] + kEps * v[i]);
    xw[i] = static_cast<float>(x[i] - kEps * v[i]);
  }
  json arch = m.architecture();
  arch["output"] = "blocks.0.add2";
  json kept = json::array();
  for (const auto& n : arch["nodes"]) {
    kept.push_back(n);
    if (n["id"] == "blocks.0.add2") break;
  }
  arch["nodes"] = kept;
  Model t(arch);
  auto src = m.named_parameters();
  for (auto& p : t.named_parameters())
    for (auto& q : src)
      if (q.name == p.name) p.param->value = q.param->value;
  const Tensor up = t.forward(xv, backend), down = t.forward(xw, backend);
  m.forward(x, backend);
  const Tensor tangent = m.tangent_to(v, backend, m.find_node("blocks.0.add2"));
  REQUIRE(tangent.shape() == up.shape());
  GradientComparison ct;
  for (int64_t i = 0; i < tangent.size(); ++i) compare(ct, tangent[i], (static_cast<double>(up[i]) - down[i]) / (2 * kEps));
  INFO("tangent: relative error " << ct.relative_error() << " of " << ct.max_abs_grad);
  CHECK(ct.relative_error() < kTolerance);
}

TEST_CASE("a ViT model file: PyTorch's names, the same outputs after loading, AdamW's decay", "[transformer][file]") {
  Model m(small_vit());
  m.init_he(9);
  std::set<std::string> names;
  for (auto& np : m.named_parameters()) names.insert(np.name);
  for (const char* want : {"patch_embed.weight", "class_token.token", "pos_embed.embedding", "blocks.0.norm1.weight",
                           "blocks.0.attn.in_proj_weight", "blocks.0.attn.in_proj_bias", "blocks.0.attn.out_proj.weight",
                           "blocks.1.attn.out_proj.bias", "blocks.1.mlp.0.weight", "norm.bias", "head.weight"})
    CHECK(names.count(want) == 1);
  const std::vector<uint8_t> bytes = model_to_bytes(m);
  Model back = load_model_bytes(bytes.data(), bytes.size());
  ReferenceBackend backend;
  Rng rng(41);
  const Tensor x = random_tensor({2, 8, 8, 2}, rng);
  const Tensor a = m.forward(x, backend), b = back.forward(x, backend);
  for (int64_t i = 0; i < a.size(); ++i) CHECK(a[i] == b[i]);
  // Initialisation as PyTorch's: layernorm 1 and 0, attention biases 0, class token 0.
  for (auto& np : m.named_parameters()) {
    if (np.name == "blocks.0.norm1.weight") CHECK(np.param->value[0] == 1.0f);
    if (np.name == "blocks.0.attn.in_proj_bias" || np.name == "class_token.token") CHECK(np.param->value[1] == 0.0f);
    if (np.name == "pos_embed.embedding" || np.name == "class_token.token") CHECK_FALSE(np.param->decay);
  }
}

TEST_CASE("transformer nodes refuse what does not fit, with clear messages", "[transformer][errors]") {
  auto refuse = [](json arch, const std::string& expected) {
    INFO(arch.dump());
    try {
      Model m(arch);
      FAIL("built");
    } catch (const Error& e) {
      INFO(e.what());
      CHECK(std::string(e.what()).find(expected) != std::string::npos);
    }
  };
  auto graph = [](json nodes, json input = {8, 8, 1}) {
    return json{{"input", input}, {"output", nodes.back()["id"]}, {"nodes", nodes}};
  };
  json pe = {{"id", "pe"}, {"type", "patch_embed"}, {"inputs", {"input"}}, {"dim", 6}, {"patch", 4}};
  refuse(graph({pe, {{"id", "a"}, {"type", "attention"}, {"inputs", {"pe"}}, {"heads", 4}}}), "not a multiple of heads");
  refuse(graph({{{"id", "a"}, {"type", "attention"}, {"inputs", {"input"}}, {"heads", 1}}}), "expected tokens");
  refuse(graph({pe, {{"id", "a"}, {"type", "attention"}, {"inputs", {"pe"}}}}), "missing 'heads'");
  refuse(graph({{{"id", "p"}, {"type", "patch_embed"}, {"inputs", {"input"}}, {"dim", 6}, {"patch", 9}}}),
         "smaller than one patch");
  refuse(graph({pe, {{"id", "s"}, {"type", "select_token"}, {"inputs", {"pe"}}, {"index", 4}}}), "not one of the 4 tokens");
  refuse(graph({{{"id", "l"}, {"type", "layernorm"}, {"inputs", {"input"}}}}), "layernorm");
  // A position embedding of another token count in the file is refused at load.
  Model m(small_vit());
  json arch = m.architecture();
  std::map<std::string, Tensor> tensors;
  for (auto& np : m.named_parameters()) tensors[np.name] = np.param->value;
  tensors["pos_embed.embedding"] = Tensor({1, 4, 6});
  std::vector<std::pair<std::string, const Tensor*>> list;
  for (auto& [k, v] : tensors) list.push_back({k, &v});
  const std::vector<uint8_t> bytes = serialize_safetensors(list, {{"architecture", arch.dump()}});
  CHECK_THROWS_WITH(load_model_bytes(bytes.data(), bytes.size()), Catch::Contains("pos_embed.embedding"));
}
