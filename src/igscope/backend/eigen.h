#pragma once
#include <vector>

#include "igscope/backend/backend.h"
#include "igscope/backend/reference.h"

namespace igscope {

// Native backend on Eigen's GEMM: convolutions as im2col + GEMM (columns in
// (in_channel, ky, kx) order, so PyTorch's [out, in / groups, kh, kw] weights
// are used as they are; grouped convolutions as one GEMM per group on its
// slice of the columns), dense layers as GEMMs. Threads through OpenMP (Eigen's
// parallel GEMM and the im2col loops); the result for a given thread count is
// deterministic. Pooling and ReLU are the reference loops (memory-bound).
class EigenBackend final : public Backend {
 public:
  explicit EigenBackend(int threads = 0);  // 0: all cores
  std::string name() const override { return "eigen"; }
  int threads() const { return threads_; }

  void conv2d_forward(const Conv2dGeometry& g, const float* in, const float* weight, const float* bias,
                      float* out, const ParamsKey& key = {}) override;
  void conv2d_backward_input(const Conv2dGeometry& g, const float* dout, const float* weight, float* din,
                             const ParamsKey& key = {}) override;
  void conv2d_backward_params(const Conv2dGeometry& g, const float* in, const float* dout, float* dweight,
                              float* dbias) override;
  void dense_forward(int64_t batch, int64_t in_f, int64_t out_f, const float* x, const float* weight,
                     const float* bias, float* y, const ParamsKey& key = {}) override;
  void dense_backward_input(int64_t batch, int64_t in_f, int64_t out_f, const float* dy, const float* weight,
                            float* dx, const ParamsKey& key = {}) override;
  void dense_backward_params(int64_t batch, int64_t in_f, int64_t out_f, const float* x, const float* dy,
                             float* dweight, float* dbias) override;
  void batched_matmul(int64_t batch, int64_t m, int64_t n, int64_t k, bool trans_a, bool trans_b, const float* a,
                      const float* b, float* c, bool accumulate) override;
  void maxpool2d_forward(const Pool2dGeometry& g, const float* in, float* out, int64_t* argmax) override {
    reference_.maxpool2d_forward(g, in, out, argmax);
  }
  void maxpool2d_backward(const Pool2dGeometry& g, const float* dout, const int64_t* argmax, float* din) override {
    reference_.maxpool2d_backward(g, dout, argmax, din);
  }
  void relu_forward(int64_t count, const float* in, float* out) override { reference_.relu_forward(count, in, out); }
  void relu_backward(int64_t count, const float* out, const float* dout, float* din) override {
    reference_.relu_backward(count, out, dout, din);
  }

 private:
  // Fills columns_ with the [N*OH*OW, Cin*KH*KW] patch matrix of `in`.
  void im2col(const Conv2dGeometry& g, const float* in);
  int threads_;
  std::vector<float> columns_;  // scratch, reused across calls
  ReferenceBackend reference_;
};

}  // namespace igscope
