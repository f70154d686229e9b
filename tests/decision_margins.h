#pragma once
// Which ReLU and max-pool decisions of a model's pass float32 rounding can
// flip: the rule that lets the whole-model backend tests give the same
// verdict on every CPU.
//
// Two correct float32 backends sum in different orders (the reference in
// double, AVX2 and AVX-512 FMA panels, simd128, Winograd transforms). Where a
// ReLU pre-activation is within rounding of 0, or two inputs of a max-pool
// window are within rounding of each other, they may take different branches
// and the input gradient differs by a whole unit's contribution: far beyond
// any tolerance meant for rounding, and which CPU shows it depends on its
// summation order. The tests compare where no decision is fragile and bound
// the rest.
//
// The rounding scale of a conv2d / dense output z = sum_i w_i a_i + b with
// fan-in n, each float32 operation an independent rounding of at most
// u = 2^-24 of its result:
//     e(z) = u sqrt(n) sqrt(sum_i (w_i a_i)^2 + b^2)
// computed from the reference backend's own pass by running the same layer
// on a^2 in a copy of the model whose parameters are squared.
// A decision is fragile within T = kMargin scales of the other branch:
//   ReLU       |z| <= T e(z)   (e(z) > 0; e(z) == 0 means z is exactly 0 everywhere)
//   max-pool   the window's first maximum m and another input v with
//              0 < m - v <= T sqrt(e(m)^2 + e(v)^2)
// A pool input's scale is its pre-activation's after a ReLU (slope 1), 0
// where the ReLU is off beyond the margin (exactly 0 in every backend), and
// after a SmeLU how far the output moves when z moves by T e(z), over T (in
// the quadratic piece near -beta, where outputs crowd together, a small
// fraction of e(z)).
// Exact ties (m == v: identical inputs, e.g. a flat background, or ReLU
// zeros) are not fragile: every backend computes identical inputs
// identically and must send the gradient to the first maximum; the tests
// keep holding them to it (a flat region along the IG path).
// SmeLU's derivative is continuous: its pieces are no decisions.
//
// What a fragile decision can change: only the gradient along paths through
// the flipped unit (a ReLU) or the window's inputs (a max-pool), so only the
// input elements in their receptive field (`reach`: a 3x3 patch for the first
// convolution, the whole sample for a dense layer). Elsewhere the two
// backends take the same branches everywhere and must agree to rounding.
//
// T = 64. e(z) is the rounding of z's own layer only: it leaves out the
// error propagated from earlier layers (about sqrt(n_before / n) e(z) here)
// and the Winograd transforms' extra roundings. Measured on an AVX2 CPU
// (Zen 3), each backend's own full pass (simd, eigen, xnnpack) keeps every
// ReLU / max-pool input within 3.1 e(z) of the reference's (the logits,
// which take no decision, within 7). T = 64 is 20 times that, for CPUs and
// kernels that round worse (AVX-512 and simd128 blockings); it costs a few
// more fragile decisions, most in the first layers, whose reach is small. A
// wrong kernel (a sign, a tie sent to the last maximum, a forgotten element)
// changes the gradient where nothing is fragile too, which no margin covers.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include "igscope/backend/reference.h"
#include "igscope/model.h"
#include "igscope/tensor.h"

namespace igscope::testing {

constexpr double kUnitRoundoff = 1.0 / 16777216.0;  // 2^-24
constexpr double kMargin = 64.0;

// Fragile decisions per batch row, and the input elements their flips can
// reach.
struct FragileDecisions {
  std::vector<int64_t> relu, pool;  // per row
  std::vector<uint8_t> reach;       // per input element: 1 where a flip can change the input gradient
  int64_t exact_ties = 0;  // max-pool windows with an exactly tied maximum (held to the first)
  std::string per_layer;   // "layer 1 relu 3, layer 2 maxpool2d 1, ..." for messages

  int64_t rows() const { return static_cast<int64_t>(relu.size()); }
  bool fragile(int64_t row) const {
    return relu[static_cast<size_t>(row)] + pool[static_cast<size_t>(row)] > 0;
  }
  int64_t fragile_rows() const {
    int64_t n = 0;
    for (int64_t r = 0; r < rows(); ++r) n += fragile(r) ? 1 : 0;
    return n;
  }
  int64_t total_relu() const {
    int64_t n = 0;
    for (int64_t v : relu) n += v;
    return n;
  }
  int64_t total_pool() const {
    int64_t n = 0;
    for (int64_t v : pool) n += v;
    return n;
  }
  int64_t reached() const {
    int64_t n = 0;
    for (uint8_t r : reach) n += r;
    return n;
  }
};

// A copy of the model with every parameter passed through fn.
template <typename Fn>
Model with_parameters(Model& m, Fn fn) {
  Model copy(m.architecture());
  auto from = m.named_parameters();
  auto to = copy.named_parameters();
  REQUIRE(from.size() == to.size());
  for (size_t p = 0; p < from.size(); ++p) {
    REQUIRE(from[p].name == to[p].name);
    Tensor& t = to[p].param->value;
    t = from[p].param->value;
    for (int64_t i = 0; i < t.size(); ++i) t[i] = fn(to[p].param->suffix, t[i]);
  }
  return copy;
}

// The model with every parameter squared: its conv2d / dense layers map a^2
// to sum (w a)^2 + b^2.
inline Model squared_parameters(Model& m) {
  return with_parameters(m, [](const std::string&, float v) { return v * v; });
}

// Runs the model on the batch x with the reference backend, layer by layer,
// and finds every row's fragile decisions and the input elements they reach
// (see above).
inline FragileDecisions find_fragile_decisions(Model& m, const Tensor& x, double margin = kMargin) {
  ReferenceBackend ref;
  Model sq = squared_parameters(m);
  const int64_t batch = x.dim(0);
  REQUIRE(m.is_chain());  // the rounding model walks a chain of layers
  const size_t layers = m.num_layers();
  FragileDecisions d;
  d.relu.assign(static_cast<size_t>(batch), 0);
  d.pool.assign(static_cast<size_t>(batch), 0);
  // What the reach pass needs: each ReLU's input and fragile units, each
  // max-pool's first maxima and the inputs of its fragile windows.
  std::vector<Tensor> relu_input(layers);
  std::vector<std::vector<uint8_t>> flip(layers);
  std::vector<std::vector<int64_t>> argmax(layers);
  std::vector<Shape> input_shape(layers);
  std::ostringstream per_layer;

  Tensor h = x;
  Tensor e(x.shape());  // rounding scale of h: only its own layer's (the input: 0)
  for (size_t i = 0; i < layers; ++i) {
    const std::string type = m.layer(i).type();
    const int64_t per_row = h.size() / batch;
    input_shape[i] = h.shape();
    Tensor out = m.layer(i).forward(h, ref, Mode::Eval);
    int64_t found = 0;
    if (type == "conv2d" || type == "dense") {
      Tensor h2 = h;
      for (int64_t j = 0; j < h2.size(); ++j) h2[j] = h2[j] * h2[j];
      const Tensor s = sq.layer(i).forward(h2, ref, Mode::Eval);
      const Tensor& w = m.layer(i).parameters().at(0).value;
      const double fan_in = static_cast<double>(w.size() / w.dim(0));
      e = Tensor(s.shape());
      for (int64_t j = 0; j < s.size(); ++j)
        e[j] = static_cast<float>(kUnitRoundoff * std::sqrt(fan_in) * std::sqrt(std::max(0.0f, s[j])));
    } else if (type == "relu") {
      flip[i].assign(static_cast<size_t>(h.size()), 0);
      for (int64_t j = 0; j < h.size(); ++j) {
        const double z = h[j], ez = e[j];
        // e == 0: every product and the bias are 0, so z is exactly 0 everywhere.
        if (ez > 0.0 && std::abs(z) <= margin * ez) {
          flip[i][static_cast<size_t>(j)] = 1;
          ++d.relu[static_cast<size_t>(j / per_row)];
          ++found;
        }
        if (!(z > 0.0)) e[j] = 0.0f;  // exactly 0 in every backend unless fragile
      }
      relu_input[i] = h;
    } else if (type == "smelu") {
      // No decision. The output's scale: how far it moves when z moves by
      // T e(z), over T (0 on the flat piece, a fraction of e(z) on the
      // quadratic piece, where values crowd together near 0).
      const double beta = m.layer(i).to_json().at("beta").get<double>();
      auto smelu = [beta](double v) {
        return v >= beta ? v : (v <= -beta ? 0.0 : (v + beta) * (v + beta) / (4 * beta));
      };
      for (int64_t j = 0; j < h.size(); ++j) {
        const double z = h[j];
        e[j] = static_cast<float>((smelu(z + margin * e[j]) - smelu(z)) / margin);
      }
    } else if (type == "maxpool2d") {
      const nlohmann::json js = m.layer(i).to_json();
      const int64_t kh = js.at("kernel")[0].get<int64_t>(), kw = js.at("kernel")[1].get<int64_t>();
      const int64_t sh = js.at("stride")[0].get<int64_t>(), sw = js.at("stride")[1].get<int64_t>();
      const int64_t ih = h.dim(1), iw = h.dim(2), ch = h.dim(3);
      const int64_t oh = out.dim(1), ow = out.dim(2);
      Tensor e_out(out.shape());
      argmax[i].assign(static_cast<size_t>(out.size()), 0);
      flip[i].assign(static_cast<size_t>(h.size()), 0);
      for (int64_t n = 0; n < batch; ++n)
        for (int64_t oy = 0; oy < oh; ++oy)
          for (int64_t ox = 0; ox < ow; ++ox)
            for (int64_t c = 0; c < ch; ++c) {
              auto at = [&](int64_t ky, int64_t kx) { return ((n * ih + oy * sh + ky) * iw + ox * sw + kx) * ch + c; };
              int64_t best = at(0, 0);
              for (int64_t ky = 0; ky < kh; ++ky)
                for (int64_t kx = 0; kx < kw; ++kx)
                  if (h[at(ky, kx)] > h[best]) best = at(ky, kx);  // the first maximum
              bool fragile = false, tie = false;
              for (int64_t ky = 0; ky < kh; ++ky)
                for (int64_t kx = 0; kx < kw; ++kx) {
                  const int64_t j = at(ky, kx);
                  if (j == best) continue;
                  const double gap = static_cast<double>(h[best]) - h[j];
                  const double scale = std::hypot(static_cast<double>(e[best]), static_cast<double>(e[j]));
                  if (gap == 0.0) {
                    tie = true;
                  } else if (gap <= margin * scale) {
                    fragile = true;
                    flip[i][static_cast<size_t>(j)] = 1;
                  }
                }
              if (fragile) {
                flip[i][static_cast<size_t>(best)] = 1;
                ++d.pool[static_cast<size_t>(n)];
                ++found;
              }
              if (tie) ++d.exact_ties;
              const int64_t o = ((n * oh + oy) * ow + ox) * ch + c;
              e_out[o] = e[best];
              argmax[i][static_cast<size_t>(o)] = best;
            }
      e = std::move(e_out);
    } else if (type == "dropout" || type == "flatten") {
      e = m.layer(i).forward(e, ref, Mode::Eval);  // the identity (evaluation mode), a permutation
    } else {
      FAIL("decision_margins.h: no rounding model for layer type '" << type << "'");
    }
    if (found > 0) per_layer << (per_layer.tellp() > 0 ? ", " : "") << "layer " << i << " " << type << " " << found;
    h = std::move(out);
  }
  d.per_layer = per_layer.str();

  // Reach: from the output down, the elements whose gradient a flip can
  // change. Linear layers pass it along their connections (their backward
  // pass with every weight 1 is positive exactly there), a ReLU where it is
  // on or fragile, a max-pool to the first maximum, and to every input of a
  // fragile window.
  Model ones = with_parameters(m, [](const std::string& suffix, float) { return suffix == "weight" ? 1.0f : 0.0f; });
  ones.forward(Tensor(x.shape()), ref);  // each layer learns its input shape
  Tensor r(h.shape());
  for (size_t i = layers; i-- > 0;) {
    const std::string type = m.layer(i).type();
    if (type == "relu") {
      for (int64_t j = 0; j < r.size(); ++j)
        r[j] = (r[j] > 0.0f && relu_input[i][j] > 0.0f) || flip[i][static_cast<size_t>(j)] ? 1.0f : 0.0f;
    } else if (type == "smelu") {
      // passes as it is
    } else if (type == "maxpool2d") {
      Tensor below(input_shape[i]);
      for (int64_t o = 0; o < r.size(); ++o)
        if (r[o] > 0.0f) below[argmax[i][static_cast<size_t>(o)]] = 1.0f;
      for (int64_t j = 0; j < below.size(); ++j)
        if (flip[i][static_cast<size_t>(j)]) below[j] = 1.0f;
      r = std::move(below);
    } else {
      r = ones.layer(i).backward_input(r, ref);
      for (int64_t j = 0; j < r.size(); ++j) r[j] = r[j] > 0.0f ? 1.0f : 0.0f;
    }
  }
  REQUIRE(r.size() == x.size());
  d.reach.resize(static_cast<size_t>(r.size()));
  for (int64_t j = 0; j < r.size(); ++j) d.reach[static_cast<size_t>(j)] = r[j] > 0.0f ? 1 : 0;
  return d;
}

}  // namespace igscope::testing
