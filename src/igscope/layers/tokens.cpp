#include "igscope/layers/tokens.h"

#include <algorithm>
#include <cstring>

#include "igscope/error.h"

namespace igscope {

void check_tokens(const Shape& in, int64_t dim, const std::string& what) {
  if (in.size() != 3 || in[1] < 1 || (dim > 0 && in[2] != dim))
    throw Error(what + ": expected tokens [N, T, " + (dim > 0 ? std::to_string(dim) : std::string("D")) +
                "], got " + shape_to_string(in));
}

// ---- patch_embed ----

PatchEmbed::PatchEmbed(int64_t in_channels, int64_t dim, int64_t patch)
    : in_c_(in_channels), dim_(dim), patch_(patch) {
  if (in_c_ < 1 || dim_ < 1 || patch_ < 1) throw Error("patch_embed: channels, 'dim' and 'patch' must be >= 1");
  params_.push_back({"weight", Tensor({dim_, in_c_, patch_, patch_}), Tensor({dim_, in_c_, patch_, patch_})});
  params_.push_back({"bias", Tensor({dim_}), Tensor({dim_})});
}

nlohmann::json PatchEmbed::to_json() const { return {{"type", type()}, {"dim", dim_}, {"patch", patch_}}; }

Conv2dGeometry PatchEmbed::geometry(const Shape& in) const {
  Conv2dGeometry g;
  g.batch = in[0];
  g.in_h = in[1];
  g.in_w = in[2];
  g.in_c = in_c_;
  g.out_c = dim_;
  g.kernel_h = g.kernel_w = g.stride_h = g.stride_w = patch_;
  return g;
}

Shape PatchEmbed::output_shape(const Shape& in) const {
  if (in.size() != 4 || in[3] != in_c_)
    throw Error("patch_embed: expected input [N, H, W, " + std::to_string(in_c_) + "], got " + shape_to_string(in));
  if (in[1] < patch_ || in[2] < patch_)
    throw Error("patch_embed: the image " + std::to_string(in[1]) + "x" + std::to_string(in[2]) +
                " is smaller than one patch of " + std::to_string(patch_));
  return {in[0], (in[1] / patch_) * (in[2] / patch_), dim_};
}

int64_t PatchEmbed::multiply_adds(const Shape& in) const {
  return output_shape(in)[1] * dim_ * in_c_ * patch_ * patch_;
}

Tensor PatchEmbed::forward(Tensor in, Backend& backend, Mode mode) {
  Tensor out = Tensor::uninitialized(output_shape(in.shape()));
  input_shape_ = in.shape();
  const Tensor& w = params_[0].value;
  const Tensor& b = params_[1].value;
  // The convolution's NHWC output [N, H/p, W/p, D] is the tokens' layout.
  backend.conv2d_forward(geometry(input_shape_), in.data(), w.data(), b.data(), out.data(),
                         {w.content_id(), b.content_id()});
  input_ = mode == Mode::Train ? std::move(in) : Tensor();
  return out;
}

Tensor PatchEmbed::backward_input(Tensor dout, Backend& backend) {
  if (input_shape_.empty()) throw Error("patch_embed: backward needs a forward pass first");
  check_shape(dout, output_shape(input_shape_), "patch_embed backward");
  Tensor din = Tensor::uninitialized(input_shape_);
  const Tensor& w = params_[0].value;
  backend.conv2d_backward_input(geometry(input_shape_), dout.data(), w.data(), din.data(), {w.content_id(), 0});
  return din;
}

Tensor PatchEmbed::forward_tangent(const Tensor& din, Backend& backend) {
  if (input_shape_.empty()) throw Error("patch_embed: tangent needs a forward pass first");
  check_shape(din, input_shape_, "patch_embed tangent");
  if (zero_bias_.size() != dim_) zero_bias_ = Tensor({dim_});
  Tensor dout = Tensor::uninitialized(output_shape(input_shape_));
  const Tensor& w = params_[0].value;
  backend.conv2d_forward(geometry(input_shape_), din.data(), w.data(), zero_bias_.data(), dout.data(),
                         {w.content_id(), zero_bias_.content_id()});
  return dout;
}

void PatchEmbed::backward_params(const Tensor& dout, Backend& backend) {
  if (input_.shape() != input_shape_ || input_shape_.empty())
    throw Error("patch_embed: backward_params needs a forward pass in training mode first");
  check_shape(dout, output_shape(input_shape_), "patch_embed backward");
  backend.conv2d_backward_params(geometry(input_shape_), input_.data(), dout.data(), params_[0].grad.data(),
                                 params_[1].grad.data());
}

// ---- class_token ----

ClassToken::ClassToken(int64_t dim) : dim_(dim) {
  if (dim_ < 1) throw Error("class_token: the token size must be >= 1");
  params_.push_back({"token", Tensor({1, 1, dim_}), Tensor({1, 1, dim_})});
  params_[0].decay = false;
}

Shape ClassToken::output_shape(const Shape& in) const {
  check_tokens(in, dim_, "class_token");
  return {in[0], in[1] + 1, dim_};
}

bool ClassToken::initialise(Rng& /*rng*/) {
  params_[0].value.fill(0.0f);
  return true;
}

Tensor ClassToken::prepend(const Tensor& in, const float* token) const {
  const int64_t n = in.dim(0), t = in.dim(1);
  Tensor out = Tensor::uninitialized(output_shape(in.shape()));
  for (int64_t b = 0; b < n; ++b) {
    float* o = out.data() + b * (t + 1) * dim_;
    if (token)
      std::memcpy(o, token, static_cast<size_t>(dim_) * sizeof(float));
    else
      std::fill(o, o + dim_, 0.0f);
    std::memcpy(o + dim_, in.data() + b * t * dim_, static_cast<size_t>(t * dim_) * sizeof(float));
  }
  return out;
}

Tensor ClassToken::forward(Tensor in, Backend& /*backend*/, Mode /*mode*/) {
  input_shape_ = in.shape();
  return prepend(in, params_[0].value.data());
}

Tensor ClassToken::backward_input(Tensor dout, Backend& /*backend*/) {
  if (input_shape_.empty()) throw Error("class_token: backward needs a forward pass first");
  check_shape(dout, output_shape(input_shape_), "class_token backward");
  const int64_t n = input_shape_[0], t = input_shape_[1];
  Tensor din = Tensor::uninitialized(input_shape_);
  for (int64_t b = 0; b < n; ++b)
    std::memcpy(din.data() + b * t * dim_, dout.data() + (b * (t + 1) + 1) * dim_,
                static_cast<size_t>(t * dim_) * sizeof(float));
  return din;
}

Tensor ClassToken::forward_tangent(const Tensor& din, Backend& /*backend*/) {
  if (input_shape_.empty()) throw Error("class_token: tangent needs a forward pass first");
  check_shape(din, input_shape_, "class_token tangent");
  return prepend(din, nullptr);
}

void ClassToken::backward_params(const Tensor& dout, Backend& /*backend*/) {
  if (input_shape_.empty()) throw Error("class_token: backward needs a forward pass first");
  check_shape(dout, output_shape(input_shape_), "class_token backward");
  const int64_t n = input_shape_[0], t = input_shape_[1];
  float* g = params_[0].grad.data();
  for (int64_t b = 0; b < n; ++b)
    for (int64_t k = 0; k < dim_; ++k) g[k] += dout[b * (t + 1) * dim_ + k];
}

// ---- position_embedding ----

PositionEmbedding::PositionEmbedding(int64_t tokens, int64_t dim) : tokens_(tokens), dim_(dim) {
  if (tokens_ < 1 || dim_ < 1) throw Error("position_embedding: token count and size must be >= 1");
  params_.push_back({"embedding", Tensor({1, tokens_, dim_}), Tensor({1, tokens_, dim_})});
  params_[0].decay = false;
}

Shape PositionEmbedding::output_shape(const Shape& in) const {
  check_tokens(in, dim_, "position_embedding");
  if (in[1] != tokens_)
    throw Error("position_embedding: expected " + std::to_string(tokens_) + " tokens, got " + shape_to_string(in));
  return in;
}

bool PositionEmbedding::initialise(Rng& rng) {
  Tensor& e = params_[0].value;
  for (int64_t i = 0; i < e.size(); ++i) e[i] = static_cast<float>(0.02 * rng.normal());
  return true;
}

Tensor PositionEmbedding::forward(Tensor in, Backend& /*backend*/, Mode /*mode*/) {
  output_shape(in.shape());
  input_shape_ = in.shape();
  const int64_t per = tokens_ * dim_;
  const float* e = params_[0].value.data();
  float* x = in.data();
  for (int64_t i = 0; i < in.size(); ++i) x[i] += e[i % per];
  return in;
}

Tensor PositionEmbedding::backward_input(Tensor dout, Backend& /*backend*/) {
  if (input_shape_.empty()) throw Error("position_embedding: backward needs a forward pass first");
  check_shape(dout, input_shape_, "position_embedding backward");
  return dout;
}

Tensor PositionEmbedding::forward_tangent(const Tensor& din, Backend& /*backend*/) {
  if (input_shape_.empty()) throw Error("position_embedding: tangent needs a forward pass first");
  check_shape(din, input_shape_, "position_embedding tangent");
  return din;
}

void PositionEmbedding::backward_params(const Tensor& dout, Backend& /*backend*/) {
  if (input_shape_.empty()) throw Error("position_embedding: backward needs a forward pass first");
  check_shape(dout, input_shape_, "position_embedding backward");
  const int64_t per = tokens_ * dim_;
  float* g = params_[0].grad.data();
  for (int64_t i = 0; i < dout.size(); ++i) g[i % per] += dout[i];
}

// ---- select_token ----

Shape SelectToken::output_shape(const Shape& in) const {
  check_tokens(in, 0, "select_token");
  if (index_ < 0 || index_ >= in[1])
    throw Error("select_token: index " + std::to_string(index_) + " is not one of the " + std::to_string(in[1]) +
                " tokens");
  return {in[0], in[2]};
}

Tensor SelectToken::forward(Tensor in, Backend& /*backend*/, Mode /*mode*/) {
  Tensor out = Tensor::uninitialized(output_shape(in.shape()));
  input_shape_ = in.shape();
  const int64_t n = in.dim(0), t = in.dim(1), d = in.dim(2);
  for (int64_t b = 0; b < n; ++b)
    std::memcpy(out.data() + b * d, in.data() + (b * t + index_) * d, static_cast<size_t>(d) * sizeof(float));
  return out;
}

Tensor SelectToken::backward_input(Tensor dout, Backend& /*backend*/) {
  if (input_shape_.empty()) throw Error("select_token: backward needs a forward pass first");
  check_shape(dout, output_shape(input_shape_), "select_token backward");
  const int64_t n = input_shape_[0], t = input_shape_[1], d = input_shape_[2];
  Tensor din(input_shape_);
  for (int64_t b = 0; b < n; ++b)
    std::memcpy(din.data() + (b * t + index_) * d, dout.data() + b * d, static_cast<size_t>(d) * sizeof(float));
  return din;
}

Tensor SelectToken::forward_tangent(const Tensor& din, Backend& backend) {
  if (input_shape_.empty()) throw Error("select_token: tangent needs a forward pass first");
  check_shape(din, input_shape_, "select_token tangent");
  return forward(din, backend, Mode::Eval);
}

// ---- mean_tokens ----

Shape MeanTokens::output_shape(const Shape& in) const {
  check_tokens(in, 0, "mean_tokens");
  return {in[0], in[2]};
}

Tensor MeanTokens::forward(Tensor in, Backend& /*backend*/, Mode /*mode*/) {
  Tensor out = Tensor::uninitialized(output_shape(in.shape()));
  input_shape_ = in.shape();
  const int64_t n = in.dim(0), t = in.dim(1), d = in.dim(2);
  std::vector<double> acc(static_cast<size_t>(d));
  for (int64_t b = 0; b < n; ++b) {
    std::fill(acc.begin(), acc.end(), 0.0);
    for (int64_t i = 0; i < t; ++i)
      for (int64_t k = 0; k < d; ++k) acc[static_cast<size_t>(k)] += in[(b * t + i) * d + k];
    for (int64_t k = 0; k < d; ++k) out[b * d + k] = static_cast<float>(acc[static_cast<size_t>(k)] / static_cast<double>(t));
  }
  return out;
}

Tensor MeanTokens::backward_input(Tensor dout, Backend& /*backend*/) {
  if (input_shape_.empty()) throw Error("mean_tokens: backward needs a forward pass first");
  check_shape(dout, output_shape(input_shape_), "mean_tokens backward");
  const int64_t n = input_shape_[0], t = input_shape_[1], d = input_shape_[2];
  Tensor din = Tensor::uninitialized(input_shape_);
  const float inv = 1.0f / static_cast<float>(t);
  for (int64_t b = 0; b < n; ++b)
    for (int64_t i = 0; i < t; ++i)
      for (int64_t k = 0; k < d; ++k) din[(b * t + i) * d + k] = dout[b * d + k] * inv;
  return din;
}

Tensor MeanTokens::forward_tangent(const Tensor& din, Backend& backend) {
  if (input_shape_.empty()) throw Error("mean_tokens: tangent needs a forward pass first");
  check_shape(din, input_shape_, "mean_tokens tangent");
  return forward(din, backend, Mode::Eval);
}

}  // namespace igscope
