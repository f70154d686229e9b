#pragma once
// The nodes that turn an image into tokens and tokens into one vector (a
// vision transformer's ends). Tokens are [N, T, D]: T tokens of D features.
//
//   patch_embed         [N, H, W, C] -> [N, T, D]: a convolution with kernel =
//                       stride = patch (weight [D, C, p, p], bias [D], as
//                       nn.Conv2d), its output cells in row-major order as
//                       tokens (PyTorch's conv(x).flatten(2).transpose(1, 2));
//                       T = (H / p) (W / p), rounded down as the convolution does
//   class_token         [N, T, D] -> [N, T + 1, D]: a learned token [1, 1, D]
//                       ("token") put first
//   position_embedding  [N, T, D] -> [N, T, D]: adds a learned [1, T, D]
//                       ("embedding")
//   select_token        [N, T, D] -> [N, D]: token "index" (default 0, the
//                       class token)
//   mean_tokens         [N, T, D] -> [N, D]: the mean over the tokens
//
// All are linear in their input: the tangent is the forward pass without
// the learned terms. Initialisation as torchvision's VisionTransformer: the
// class token 0, the position embedding normal with std 0.02; the embedding
// tensors take no weight decay.
#include "igscope/layers/layer.h"

namespace igscope {

class PatchEmbed final : public Layer {
 public:
  PatchEmbed(int64_t in_channels, int64_t dim, int64_t patch);

  std::string type() const override { return "patch_embed"; }
  nlohmann::json to_json() const override;
  Shape output_shape(const Shape& in) const override;
  int64_t multiply_adds(const Shape& in) const override;

  Tensor forward(Tensor in, Backend& backend, Mode mode) override;
  Tensor backward_input(Tensor dout, Backend& backend) override;
  Tensor forward_tangent(const Tensor& din, Backend& backend) override;
  void backward_params(const Tensor& dout, Backend& backend) override;

 private:
  Conv2dGeometry geometry(const Shape& in) const;
  int64_t in_c_, dim_, patch_;
  Shape input_shape_;
  Tensor input_;  // training: for backward_params
  Tensor zero_bias_;
};

class ClassToken final : public Layer {
 public:
  explicit ClassToken(int64_t dim);
  std::string type() const override { return "class_token"; }
  nlohmann::json to_json() const override { return {{"type", type()}}; }
  Shape output_shape(const Shape& in) const override;
  Tensor forward(Tensor in, Backend& backend, Mode mode) override;
  Tensor backward_input(Tensor dout, Backend& backend) override;
  Tensor forward_tangent(const Tensor& din, Backend& backend) override;
  void backward_params(const Tensor& dout, Backend& backend) override;
  bool initialise(Rng& rng) override;

 private:
  Tensor prepend(const Tensor& in, const float* token) const;
  int64_t dim_;
  Shape input_shape_;
};

class PositionEmbedding final : public Layer {
 public:
  PositionEmbedding(int64_t tokens, int64_t dim);
  std::string type() const override { return "position_embedding"; }
  nlohmann::json to_json() const override { return {{"type", type()}}; }
  Shape output_shape(const Shape& in) const override;
  Tensor forward(Tensor in, Backend& backend, Mode mode) override;
  Tensor backward_input(Tensor dout, Backend& backend) override;
  Tensor forward_tangent(const Tensor& din, Backend& backend) override;
  void backward_params(const Tensor& dout, Backend& backend) override;
  bool initialise(Rng& rng) override;

 private:
  int64_t tokens_, dim_;
  Shape input_shape_;
};

class SelectToken final : public Layer {
 public:
  explicit SelectToken(int64_t index) : index_(index) {}
  std::string type() const override { return "select_token"; }
  nlohmann::json to_json() const override { return {{"type", type()}, {"index", index_}}; }
  Shape output_shape(const Shape& in) const override;
  Tensor forward(Tensor in, Backend& backend, Mode mode) override;
  Tensor backward_input(Tensor dout, Backend& backend) override;
  Tensor forward_tangent(const Tensor& din, Backend& backend) override;

 private:
  int64_t index_;
  Shape input_shape_;
};

class MeanTokens final : public Layer {
 public:
  std::string type() const override { return "mean_tokens"; }
  nlohmann::json to_json() const override { return {{"type", type()}}; }
  Shape output_shape(const Shape& in) const override;
  Tensor forward(Tensor in, Backend& backend, Mode mode) override;
  Tensor backward_input(Tensor dout, Backend& backend) override;
  Tensor forward_tangent(const Tensor& din, Backend& backend) override;

 private:
  Shape input_shape_;
};

// Throws igscope::Error unless `in` is tokens [N, T, D] (with D = dim when dim > 0).
void check_tokens(const Shape& in, int64_t dim, const std::string& what);

}  // namespace igscope
