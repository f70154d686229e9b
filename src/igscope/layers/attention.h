#pragma once
#include "igscope/layers/layer.h"

namespace igscope {

// Multi-head self-attention over tokens [N, T, D] (PyTorch's
// nn.MultiheadAttention(D, heads, batch_first=True) called as
// attn(x, x, x, need_weights=False)), with its tensors and names:
//   in_proj_weight [3D, D], in_proj_bias [3D]   the query, key and value projections, stacked
//   out_proj.weight [D, D], out_proj.bias [D]   the output projection
// With d = D / heads features per head and q, k, v the three projections of
// x, for each sample and head h:
//   S = q_h k_h^T / sqrt(d)   [T, T]     scores
//   P = softmax(S) by rows               attention
//   O_h = P v_h               [T, d]     heads, joined back to [T, D]
//   y = O W_out^T + b_out.
// Backward, with dO from the output projection:
//   dP = dO_h v_h^T, dv_h = P^T dO_h, dS = P (dP - rowsum(P dP)),
//   dq_h = dS k_h / sqrt(d), dk_h = dS^T q_h / sqrt(d),
// then through the input projection. The tangent along dx follows the same
// product rule forwards: dS = (dq k^T + q dk^T) / sqrt(d),
// dP = P (dS - rowsum(P dS)), dO = dP v + P dv. The projections run on the
// backend's dense ops, the score and mix products on batched_matmul.
class Attention final : public Layer {
 public:
  Attention(int64_t dim, int64_t heads);

  std::string type() const override { return "attention"; }
  nlohmann::json to_json() const override { return {{"type", type()}, {"heads", heads_}}; }
  Shape output_shape(const Shape& in) const override;
  int64_t multiply_adds(const Shape& in) const override;

  Tensor forward(Tensor in, Backend& backend, Mode mode) override;
  Tensor backward_input(Tensor dout, Backend& backend) override;
  Tensor forward_tangent(const Tensor& din, Backend& backend) override;
  void backward_params(const Tensor& dout, Backend& backend) override;
  // As PyTorch: in_proj_weight Xavier-uniform, out_proj.weight uniform in
  // +-1/sqrt(D), both biases 0.
  bool initialise(Rng& rng) override;

  // The attention P of the last forward pass: [N, heads, T, T].
  const Tensor& attention() const { return p_; }

 private:
  // dqkv [N T, 3D] from the output gradient (the chain up to the input projection).
  Tensor projections_gradient(const Tensor& dout, Backend& backend);
  void check_pass(const Tensor& t, const Shape& expected, const char* what) const;

  int64_t dim_, heads_, head_dim_;
  int64_t n_ = 0, t_ = 0;  // the last forward pass's batch and token count
  Tensor input_;            // training: x, for the input projection's weight gradient
  Tensor joined_;           // training: O joined [N T, D], for the output projection's
  Tensor q_, k_, v_;        // [N, heads, T, d]; q scaled by 1 / sqrt(d)
  Tensor p_;                // [N, heads, T, T]
  Tensor dqkv_;             // backward_params' dqkv, reused by backward_input for the same dout
  uint64_t dqkv_for_ = 0;   // content_id() of that dout
  Tensor zero_bias_;
};

}  // namespace igscope
