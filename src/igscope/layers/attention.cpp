#include "igscope/layers/attention.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "igscope/error.h"

namespace igscope {

namespace {

// [N T, 3D] projections -> three [N, H, T, d] tensors (q scaled), and back.
void split_heads(const float* qkv, int64_t n, int64_t t, int64_t heads, int64_t d, float scale, float* q, float* k,
                 float* v) {
  const int64_t D = heads * d;
  for (int64_t b = 0; b < n; ++b)
    for (int64_t i = 0; i < t; ++i) {
      const float* row = qkv + (b * t + i) * 3 * D;
      for (int64_t h = 0; h < heads; ++h) {
        const int64_t o = ((b * heads + h) * t + i) * d;
        for (int64_t j = 0; j < d; ++j) {
          q[o + j] = row[h * d + j] * scale;
          k[o + j] = row[D + h * d + j];
          v[o + j] = row[2 * D + h * d + j];
        }
      }
    }
}

void join_qkv(const float* q, const float* k, const float* v, int64_t n, int64_t t, int64_t heads, int64_t d,
              float q_scale, float* qkv) {
  const int64_t D = heads * d;
  for (int64_t b = 0; b < n; ++b)
    for (int64_t i = 0; i < t; ++i) {
      float* row = qkv + (b * t + i) * 3 * D;
      for (int64_t h = 0; h < heads; ++h) {
        const int64_t o = ((b * heads + h) * t + i) * d;
        for (int64_t j = 0; j < d; ++j) {
          row[h * d + j] = q[o + j] * q_scale;
          row[D + h * d + j] = k[o + j];
          row[2 * D + h * d + j] = v[o + j];
        }
      }
    }
}

// [N, H, T, d] <-> [N T, D]
void join_heads(const float* o, int64_t n, int64_t t, int64_t heads, int64_t d, float* joined) {
  for (int64_t b = 0; b < n; ++b)
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t i = 0; i < t; ++i)
        std::memcpy(joined + (b * t + i) * heads * d + h * d, o + ((b * heads + h) * t + i) * d,
                    static_cast<size_t>(d) * sizeof(float));
}

void split_heads_of(const float* joined, int64_t n, int64_t t, int64_t heads, int64_t d, float* o) {
  for (int64_t b = 0; b < n; ++b)
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t i = 0; i < t; ++i)
        std::memcpy(o + ((b * heads + h) * t + i) * d, joined + (b * t + i) * heads * d + h * d,
                    static_cast<size_t>(d) * sizeof(float));
}

// In place, row by row: g <- P (g - rowsum(P g)), the softmax's Jacobian
// (symmetric) applied to g.
void softmax_jacobian(const float* p, float* g, int64_t rows, int64_t t) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* pr = p + r * t;
    float* gr = g + r * t;
    double dot = 0.0;
    for (int64_t j = 0; j < t; ++j) dot += static_cast<double>(pr[j]) * gr[j];
    const float s = static_cast<float>(dot);
    for (int64_t j = 0; j < t; ++j) gr[j] = pr[j] * (gr[j] - s);
  }
}

}  // namespace

Attention::Attention(int64_t dim, int64_t heads) : dim_(dim), heads_(heads) {
  if (dim_ < 1 || heads_ < 1) throw Error("attention: the token size and 'heads' must be >= 1");
  if (dim_ % heads_ != 0)
    throw Error("attention: the token size " + std::to_string(dim_) + " is not a multiple of heads = " +
                std::to_string(heads_));
  head_dim_ = dim_ / heads_;
  params_.push_back({"in_proj_weight", Tensor({3 * dim_, dim_}), Tensor({3 * dim_, dim_})});
  params_.push_back({"in_proj_bias", Tensor({3 * dim_}), Tensor({3 * dim_})});
  params_.push_back({"out_proj.weight", Tensor({dim_, dim_}), Tensor({dim_, dim_})});
  params_.push_back({"out_proj.bias", Tensor({dim_}), Tensor({dim_})});
}

Shape Attention::output_shape(const Shape& in) const {
  if (in.size() != 3 || in[1] < 1 || in[2] != dim_)
    throw Error("attention: expected tokens [N, T, " + std::to_string(dim_) + "], got " + shape_to_string(in));
  return in;
}

int64_t Attention::multiply_adds(const Shape& in) const {
  output_shape(in);
  const int64_t t = in[1];
  return t * dim_ * 3 * dim_ + 2 * t * t * dim_ + t * dim_ * dim_;
}

bool Attention::initialise(Rng& rng) {
  const double xavier = std::sqrt(6.0 / static_cast<double>(dim_ + 3 * dim_));
  const double out_bound = 1.0 / std::sqrt(static_cast<double>(dim_));
  Tensor& w_in = params_[0].value;
  for (int64_t i = 0; i < w_in.size(); ++i) w_in[i] = static_cast<float>(rng.uniform(-xavier, xavier));
  Tensor& w_out = params_[2].value;
  for (int64_t i = 0; i < w_out.size(); ++i) w_out[i] = static_cast<float>(rng.uniform(-out_bound, out_bound));
  params_[1].value.fill(0.0f);
  params_[3].value.fill(0.0f);
  return true;
}

void Attention::check_pass(const Tensor& t, const Shape& expected, const char* what) const {
  if (n_ == 0) throw Error(std::string("attention: ") + what + " needs a forward pass first");
  check_shape(t, expected, std::string("attention ") + what);
}

Tensor Attention::forward(Tensor in, Backend& backend, Mode mode) {
  output_shape(in.shape());
  n_ = in.dim(0);
  t_ = in.dim(1);
  const int64_t rows = n_ * t_, D = dim_, H = heads_, d = head_dim_;
  const Tensor& w_in = params_[0].value;
  const Tensor& b_in = params_[1].value;
  Tensor qkv = Tensor::uninitialized({rows, 3 * D});
  backend.dense_forward(rows, D, 3 * D, in.data(), w_in.data(), b_in.data(), qkv.data(),
                        {w_in.content_id(), b_in.content_id()});
  q_ = Tensor::uninitialized({n_, H, t_, d});
  k_ = Tensor::uninitialized({n_, H, t_, d});
  v_ = Tensor::uninitialized({n_, H, t_, d});
  split_heads(qkv.data(), n_, t_, H, d, static_cast<float>(1.0 / std::sqrt(static_cast<double>(d))), q_.data(),
              k_.data(), v_.data());
  qkv = Tensor();
  // S = q k^T, then softmax by rows.
  p_ = Tensor::uninitialized({n_, H, t_, t_});
  backend.batched_matmul(n_ * H, t_, t_, d, false, true, q_.data(), k_.data(), p_.data(), false);
  float* p = p_.data();
  for (int64_t r = 0; r < n_ * H * t_; ++r) {
    float* row = p + r * t_;
    const float mx = *std::max_element(row, row + t_);
    double sum = 0.0;
    for (int64_t j = 0; j < t_; ++j) {
      row[j] = std::exp(row[j] - mx);
      sum += row[j];
    }
    const float inv = static_cast<float>(1.0 / sum);
    for (int64_t j = 0; j < t_; ++j) row[j] *= inv;
  }
  Tensor o = Tensor::uninitialized({n_, H, t_, d});
  backend.batched_matmul(n_ * H, t_, d, t_, false, false, p_.data(), v_.data(), o.data(), false);
  Tensor joined = Tensor::uninitialized({rows, D});
  join_heads(o.data(), n_, t_, H, d, joined.data());
  Tensor out = Tensor::uninitialized(in.shape());
  const Tensor& w_out = params_[2].value;
  const Tensor& b_out = params_[3].value;
  backend.dense_forward(rows, D, D, joined.data(), w_out.data(), b_out.data(), out.data(),
                        {w_out.content_id(), b_out.content_id()});
  input_ = mode == Mode::Train ? std::move(in) : Tensor();
  joined_ = mode == Mode::Train ? std::move(joined) : Tensor();
  dqkv_ = Tensor();
  dqkv_for_ = 0;
  return out;
}

Tensor Attention::projections_gradient(const Tensor& dout, Backend& backend) {
  const int64_t rows = n_ * t_, D = dim_, H = heads_, d = head_dim_, B = n_ * H;
  const Tensor& w_out = params_[2].value;
  Tensor djoined = Tensor::uninitialized({rows, D});
  backend.dense_backward_input(rows, D, D, dout.data(), w_out.data(), djoined.data(), {w_out.content_id(), 0});
  Tensor dO = Tensor::uninitialized({n_, H, t_, d});
  split_heads_of(djoined.data(), n_, t_, H, d, dO.data());
  djoined = Tensor();
  Tensor dv = Tensor::uninitialized({n_, H, t_, d});
  backend.batched_matmul(B, t_, d, t_, true, false, p_.data(), dO.data(), dv.data(), false);  // P^T dO
  Tensor ds = Tensor::uninitialized({n_, H, t_, t_});
  backend.batched_matmul(B, t_, t_, d, false, true, dO.data(), v_.data(), ds.data(), false);  // dO v^T
  softmax_jacobian(p_.data(), ds.data(), B * t_, t_);
  // q_ holds q / sqrt(d): dq = dS k / sqrt(d), dk = dS^T (q / sqrt(d)).
  Tensor dq = std::move(dO);
  backend.batched_matmul(B, t_, d, t_, false, false, ds.data(), k_.data(), dq.data(), false);
  Tensor dk = Tensor::uninitialized({n_, H, t_, d});
  backend.batched_matmul(B, t_, d, t_, true, false, ds.data(), q_.data(), dk.data(), false);
  Tensor dqkv = Tensor::uninitialized({rows, 3 * D});
  join_qkv(dq.data(), dk.data(), dv.data(), n_, t_, H, d, static_cast<float>(1.0 / std::sqrt(static_cast<double>(d))),
           dqkv.data());
  return dqkv;
}

Tensor Attention::backward_input(Tensor dout, Backend& backend) {
  check_pass(dout, {n_, t_, dim_}, "backward");
  const int64_t rows = n_ * t_, D = dim_;
  Tensor dqkv = dqkv_for_ != 0 && dqkv_for_ == dout.content_id() ? std::move(dqkv_) : projections_gradient(dout, backend);
  dqkv_ = Tensor();
  dqkv_for_ = 0;
  Tensor din = Tensor::uninitialized({n_, t_, D});
  const Tensor& w_in = params_[0].value;
  backend.dense_backward_input(rows, D, 3 * D, dqkv.data(), w_in.data(), din.data(), {w_in.content_id(), 0});
  return din;
}

void Attention::backward_params(const Tensor& dout, Backend& backend) {
  check_pass(dout, {n_, t_, dim_}, "backward");
  if (input_.shape() != Shape{n_, t_, dim_})
    throw Error("attention: backward_params needs a forward pass in training mode first");
  const int64_t rows = n_ * t_, D = dim_;
  backend.dense_backward_params(rows, D, D, joined_.data(), dout.data(), params_[2].grad.data(),
                                params_[3].grad.data());
  dqkv_ = projections_gradient(dout, backend);
  backend.dense_backward_params(rows, D, 3 * D, input_.data(), dqkv_.data(), params_[0].grad.data(),
                                params_[1].grad.data());
  dqkv_for_ = dout.content_id();
}

Tensor Attention::forward_tangent(const Tensor& din, Backend& backend) {
  check_pass(din, {n_, t_, dim_}, "tangent");
  const int64_t rows = n_ * t_, D = dim_, H = heads_, d = head_dim_, B = n_ * H;
  if (zero_bias_.size() != 3 * D) zero_bias_ = Tensor({3 * D});
  const Tensor& w_in = params_[0].value;
  Tensor dqkv = Tensor::uninitialized({rows, 3 * D});
  backend.dense_forward(rows, D, 3 * D, din.data(), w_in.data(), zero_bias_.data(), dqkv.data(),
                        {w_in.content_id(), zero_bias_.content_id()});
  Tensor dq = Tensor::uninitialized({n_, H, t_, d}), dk = Tensor::uninitialized({n_, H, t_, d}),
         dv = Tensor::uninitialized({n_, H, t_, d});
  split_heads(dqkv.data(), n_, t_, H, d, static_cast<float>(1.0 / std::sqrt(static_cast<double>(d))), dq.data(),
              dk.data(), dv.data());
  dqkv = Tensor();
  Tensor ds = Tensor::uninitialized({n_, H, t_, t_});
  backend.batched_matmul(B, t_, t_, d, false, true, dq.data(), k_.data(), ds.data(), false);
  backend.batched_matmul(B, t_, t_, d, false, true, q_.data(), dk.data(), ds.data(), true);
  softmax_jacobian(p_.data(), ds.data(), B * t_, t_);
  Tensor dO = std::move(dq);
  backend.batched_matmul(B, t_, d, t_, false, false, ds.data(), v_.data(), dO.data(), false);
  backend.batched_matmul(B, t_, d, t_, false, false, p_.data(), dv.data(), dO.data(), true);
  Tensor djoined = Tensor::uninitialized({rows, D});
  join_heads(dO.data(), n_, t_, H, d, djoined.data());
  Tensor dout = Tensor::uninitialized({n_, t_, D});
  const Tensor& w_out = params_[2].value;
  // zero_bias_'s first D entries: the output projection's bias, 0 in the tangent.
  backend.dense_forward(rows, D, D, djoined.data(), w_out.data(), zero_bias_.data(), dout.data(),
                        {w_out.content_id(), zero_bias_.content_id()});
  return dout;
}

}  // namespace igscope
