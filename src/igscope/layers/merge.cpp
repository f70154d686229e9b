#include "igscope/layers/merge.h"

#include <algorithm>

#include "igscope/error.h"

namespace igscope {

namespace {

std::string shapes_to_string(const std::vector<Shape>& in) {
  std::string s;
  for (size_t i = 0; i < in.size(); ++i) s += (i ? ", " : "") + shape_to_string(in[i]);
  return s;
}

std::vector<Shape> shapes_of(const std::vector<const Tensor*>& in) {
  std::vector<Shape> s;
  for (const Tensor* t : in) s.push_back(t->shape());
  return s;
}

// [N, 1, 1, C] against [N, H, W, C] (H * W > 1): the first broadcasts over the second.
bool broadcasts_over(const Shape& small, const Shape& big) {
  return small.size() == 4 && big.size() == 4 && small[0] == big[0] && small[1] == 1 && small[2] == 1 &&
         small[3] == big[3] && big[1] * big[2] > 1;
}

void check_tangents(const std::vector<const Tensor*>& din, const std::vector<Shape>& expected, const std::string& op) {
  if (din.size() != expected.size())
    throw Error(op + " tangent: " + std::to_string(din.size()) + " tangents for " + std::to_string(expected.size()) +
                " inputs");
  for (size_t i = 0; i < din.size(); ++i) check_shape(*din[i], expected[i], op + " tangent " + std::to_string(i));
}

}  // namespace

Shape MergeLayer::output_shape(const Shape& /*in*/) const {
  throw Error(type() + " takes a list of inputs (a graph node with \"inputs\")");
}
Tensor MergeLayer::forward(Tensor /*in*/, Backend& /*backend*/, Mode /*mode*/) {
  throw Error(type() + " takes a list of inputs (a graph node with \"inputs\")");
}
Tensor MergeLayer::backward_input(Tensor /*dout*/, Backend& /*backend*/) {
  throw Error(type() + " returns one gradient per input (backward_inputs)");
}
Tensor MergeLayer::forward_tangent(const Tensor& /*din*/, Backend& /*backend*/) {
  throw Error(type() + " takes one tangent per input");
}

void MergeLayer::check_count(size_t n) const {
  if (exact_inputs() ? n != min_inputs() : n < min_inputs())
    throw Error(type() + " takes " + (exact_inputs() ? "exactly " : "at least ") + std::to_string(min_inputs()) +
                " inputs, got " + std::to_string(n));
}

// ---- add

Shape Add::output_shape(const std::vector<Shape>& in) const {
  check_count(in.size());
  for (const Shape& s : in)
    if (s != in[0]) throw Error("add: the inputs must have one shape, got " + shapes_to_string(in));
  return in[0];
}

int64_t Add::multiply_adds(const std::vector<Shape>& in) const {
  return in.empty() ? 0 : static_cast<int64_t>(in.size() - 1) * shape_numel(in[0]) / std::max<int64_t>(1, in[0][0]);
}

Tensor Add::forward(std::vector<Tensor> in, Backend& /*backend*/, Mode /*mode*/) {
  input_shapes_.clear();
  for (const Tensor& t : in) input_shapes_.push_back(t.shape());
  output_shape(input_shapes_);
  Tensor out = std::move(in[0]);
  float* o = out.data();
  for (size_t k = 1; k < in.size(); ++k) {
    const float* x = in[k].data();
    for (int64_t i = 0; i < out.size(); ++i) o[i] += x[i];
  }
  return out;
}

std::vector<Tensor> Add::backward_inputs(Tensor dout, Backend& /*backend*/) {
  if (input_shapes_.empty()) throw Error("add backward before forward");
  check_shape(dout, input_shapes_[0], "add backward");
  std::vector<Tensor> grads(input_shapes_.size() - 1, dout);
  grads.push_back(std::move(dout));
  return grads;
}

Tensor Add::forward_tangent(const std::vector<const Tensor*>& din, Backend& /*backend*/) {
  check_tangents(din, input_shapes_, "add");
  Tensor out = *din[0];
  float* o = out.data();
  for (size_t k = 1; k < din.size(); ++k) {
    const float* x = din[k]->data();
    for (int64_t i = 0; i < out.size(); ++i) o[i] += x[i];
  }
  return out;
}

// ---- concat

Shape Concat::output_shape(const std::vector<Shape>& in) const {
  check_count(in.size());
  Shape out = in[0];
  if (out.size() != 4 && out.size() != 2)
    throw Error("concat: expected inputs [N, H, W, C] or [N, F], got " + shapes_to_string(in));
  out.back() = 0;
  for (const Shape& s : in) {
    if (s.size() != out.size() || !std::equal(s.begin(), s.end() - 1, out.begin()))
      throw Error("concat: the inputs must agree on every axis but the last (channels or features), got " +
                  shapes_to_string(in));
    out.back() += s.back();
  }
  return out;
}

Tensor Concat::join(const std::vector<const Tensor*>& in) const {
  const std::vector<Shape> shapes = shapes_of(in);
  Tensor out = Tensor::uninitialized(output_shape(shapes));
  const int64_t width = out.shape().back(), rows = out.size() / std::max<int64_t>(1, width);
  float* o = out.data();
  int64_t offset = 0;
  for (const Tensor* t : in) {
    const int64_t c = t->shape().back();
    const float* x = t->data();
    for (int64_t r = 0; r < rows; ++r) std::copy(x + r * c, x + (r + 1) * c, o + r * width + offset);
    offset += c;
  }
  return out;
}

Tensor Concat::forward(std::vector<Tensor> in, Backend& /*backend*/, Mode /*mode*/) {
  std::vector<const Tensor*> p;
  for (const Tensor& t : in) p.push_back(&t);
  input_shapes_ = shapes_of(p);
  return join(p);
}

std::vector<Tensor> Concat::backward_inputs(Tensor dout, Backend& /*backend*/) {
  if (input_shapes_.empty()) throw Error("concat backward before forward");
  check_shape(dout, output_shape(input_shapes_), "concat backward");
  const int64_t width = dout.shape().back(), rows = dout.size() / std::max<int64_t>(1, width);
  std::vector<Tensor> grads;
  const float* g = dout.data();
  int64_t offset = 0;
  for (const Shape& s : input_shapes_) {
    Tensor d = Tensor::uninitialized(s);
    const int64_t c = s.back();
    float* o = d.data();
    for (int64_t r = 0; r < rows; ++r) std::copy(g + r * width + offset, g + r * width + offset + c, o + r * c);
    offset += c;
    grads.push_back(std::move(d));
  }
  return grads;
}

Tensor Concat::forward_tangent(const std::vector<const Tensor*>& din, Backend& /*backend*/) {
  check_tangents(din, input_shapes_, "concat");
  return join(din);
}

// ---- mul

Shape Mul::output_shape(const std::vector<Shape>& in) const {
  check_count(in.size());
  if (in[0] == in[1]) return in[0];
  if (broadcasts_over(in[1], in[0])) return in[0];
  if (broadcasts_over(in[0], in[1])) return in[1];
  throw Error("mul: the inputs must have one shape, or one must be [N, 1, 1, C] against the other's [N, H, W, C]; got " +
              shapes_to_string(in));
}

int64_t Mul::multiply_adds(const std::vector<Shape>& in) const {
  const Shape out = output_shape(in);
  return shape_numel(out) / std::max<int64_t>(1, out[0]);
}

Tensor Mul::product(const Tensor& a, const Tensor& b) {
  const Shape out_shape = Mul().output_shape({a.shape(), b.shape()});
  Tensor out = Tensor::uninitialized(out_shape);
  float* o = out.data();
  if (a.shape() == b.shape()) {
    const float *x = a.data(), *y = b.data();
    for (int64_t i = 0; i < out.size(); ++i) o[i] = x[i] * y[i];
    return out;
  }
  const bool a_small = a.size() < b.size();
  const Tensor& big = a_small ? b : a;
  const Tensor& small = a_small ? a : b;
  const int64_t n = big.dim(0), hw = big.dim(1) * big.dim(2), c = big.dim(3);
  const float *x = big.data(), *s = small.data();
  for (int64_t i = 0; i < n; ++i)
    for (int64_t p = 0; p < hw; ++p) {
      const int64_t at = (i * hw + p) * c;
      for (int64_t k = 0; k < c; ++k) o[at + k] = x[at + k] * s[i * c + k];
    }
  return out;
}

Tensor Mul::forward(std::vector<Tensor> in, Backend& /*backend*/, Mode /*mode*/) {
  check_count(in.size());
  Tensor out = product(in[0], in[1]);
  a_ = std::move(in[0]);
  b_ = std::move(in[1]);
  return out;
}

std::vector<Tensor> Mul::backward_inputs(Tensor dout, Backend& /*backend*/) {
  if (a_.shape().empty()) throw Error("mul backward before forward");
  check_shape(dout, output_shape({a_.shape(), b_.shape()}), "mul backward");
  // d/da (dout * a * b) = dout * b, summed over the broadcast axes when a is the small one.
  auto grad = [&](const Tensor& mine, const Tensor& other) {
    const Tensor full = product(dout, other);
    if (mine.shape() == full.shape()) return full;
    Tensor g(mine.shape());
    const int64_t n = full.dim(0), hw = full.dim(1) * full.dim(2), c = full.dim(3);
    const float* f = full.data();
    float* o = g.data();
    for (int64_t i = 0; i < n; ++i)
      for (int64_t p = 0; p < hw; ++p)
        for (int64_t k = 0; k < c; ++k) o[i * c + k] += f[(i * hw + p) * c + k];
    return g;
  };
  std::vector<Tensor> grads;
  grads.push_back(grad(a_, b_));
  grads.push_back(grad(b_, a_));
  return grads;
}

// Product rule: d(a b) = da b + a db.
Tensor Mul::forward_tangent(const std::vector<const Tensor*>& din, Backend& /*backend*/) {
  check_tangents(din, {a_.shape(), b_.shape()}, "mul");
  Tensor out = product(*din[0], b_);
  const Tensor second = product(a_, *din[1]);
  float* o = out.data();
  const float* s = second.data();
  for (int64_t i = 0; i < out.size(); ++i) o[i] += s[i];
  return out;
}

}  // namespace igscope
