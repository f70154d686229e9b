#pragma once
// TimedBackend: forwards every op to another backend and adds up the wall
// time each kind of op takes, so a benchmark can say how much of a run is
// kernels and how much is the work between them (layers' copies,
// allocation, attribution bookkeeping).
#include <array>
#include <string>

#include "igscope/backend/backend.h"

namespace igscope {

class TimedBackend final : public Backend {
 public:
  enum Op {
    ConvForward,
    ConvBackwardInput,
    ConvBackwardParams,
    DenseForward,
    DenseBackwardInput,
    DenseBackwardParams,
    MaxPoolForward,
    MaxPoolBackward,
    ReluForward,
    ReluBackward,
    SmeluForward,
    SmeluBackward,
    AvgPoolForward,
    AvgPoolBackward,
    ChannelAffine,
    BatchedMatmul,
    kOps
  };
  static const char* op_name(Op op);

  explicit TimedBackend(Backend& inner) : inner_(inner) {}
  std::string name() const override { return inner_.name(); }

  double ms(Op op) const { return ms_[op]; }
  long long calls(Op op) const { return calls_[op]; }
  double total_ms() const;
  void reset();

  void conv2d_forward(const Conv2dGeometry& g, const float* in, const float* weight, const float* bias, float* out,
                      const ParamsKey& key = {}) override;
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
  void maxpool2d_forward(const Pool2dGeometry& g, const float* in, float* out, int64_t* argmax) override;
  void maxpool2d_backward(const Pool2dGeometry& g, const float* dout, const int64_t* argmax, float* din) override;
  void relu_forward(int64_t count, const float* in, float* out) override;
  void relu_backward(int64_t count, const float* out, const float* dout, float* din) override;
  void smelu_forward(int64_t count, double beta, const float* in, float* out) override;
  void smelu_backward(int64_t count, double beta, const float* in, const float* dout, float* din) override;
  void avgpool2d_forward(const Pool2dGeometry& g, bool count_include_pad, const float* in, float* out) override;
  void avgpool2d_backward(const Pool2dGeometry& g, bool count_include_pad, const float* dout, float* din) override;
  void batched_matmul(int64_t batch, int64_t m, int64_t n, int64_t k, bool trans_a, bool trans_b, const float* a,
                      const float* b, float* c, bool accumulate) override;
  void channel_affine(int64_t count, int64_t channels, const float* in, const float* scale, const float* shift,
                      float* out) override;

 private:
  template <class Work>
  void timed(Op op, Work work);

  Backend& inner_;
  std::array<double, kOps> ms_{};
  std::array<long long, kOps> calls_{};
};

}  // namespace igscope
