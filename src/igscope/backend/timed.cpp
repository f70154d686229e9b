#include "igscope/backend/timed.h"

#include <chrono>

namespace igscope {

const char* TimedBackend::op_name(Op op) {
  static const char* const names[kOps] = {
      "conv2d forward",  "conv2d input gradient", "conv2d weight gradient", "dense forward",
      "dense input gradient", "dense weight gradient", "max-pool forward", "max-pool backward",
      "relu forward",    "relu backward",         "smelu forward",         "smelu backward",
      "avg-pool forward", "avg-pool backward",    "channel affine",        "batched matmul"};
  return names[op];
}

double TimedBackend::total_ms() const {
  double t = 0.0;
  for (double m : ms_) t += m;
  return t;
}

void TimedBackend::reset() {
  ms_.fill(0.0);
  calls_.fill(0);
}

template <class Work>
void TimedBackend::timed(Op op, Work work) {
  const auto t0 = std::chrono::steady_clock::now();
  work();
  ms_[op] += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  ++calls_[op];
}

void TimedBackend::conv2d_forward(const Conv2dGeometry& g, const float* in, const float* weight, const float* bias,
                                  float* out, const ParamsKey& key) {
  timed(ConvForward, [&] { inner_.conv2d_forward(g, in, weight, bias, out, key); });
}
void TimedBackend::conv2d_backward_input(const Conv2dGeometry& g, const float* dout, const float* weight, float* din,
                                         const ParamsKey& key) {
  timed(ConvBackwardInput, [&] { inner_.conv2d_backward_input(g, dout, weight, din, key); });
}
void TimedBackend::conv2d_backward_params(const Conv2dGeometry& g, const float* in, const float* dout,
                                          float* dweight, float* dbias) {
  timed(ConvBackwardParams, [&] { inner_.conv2d_backward_params(g, in, dout, dweight, dbias); });
}
void TimedBackend::dense_forward(int64_t batch, int64_t in_f, int64_t out_f, const float* x, const float* weight,
                                 const float* bias, float* y, const ParamsKey& key) {
  timed(DenseForward, [&] { inner_.dense_forward(batch, in_f, out_f, x, weight, bias, y, key); });
}
void TimedBackend::dense_backward_input(int64_t batch, int64_t in_f, int64_t out_f, const float* dy,
                                        const float* weight, float* dx, const ParamsKey& key) {
  timed(DenseBackwardInput, [&] { inner_.dense_backward_input(batch, in_f, out_f, dy, weight, dx, key); });
}
void TimedBackend::dense_backward_params(int64_t batch, int64_t in_f, int64_t out_f, const float* x,
                                         const float* dy, float* dweight, float* dbias) {
  timed(DenseBackwardParams, [&] { inner_.dense_backward_params(batch, in_f, out_f, x, dy, dweight, dbias); });
}
void TimedBackend::maxpool2d_forward(const Pool2dGeometry& g, const float* in, float* out, int64_t* argmax) {
  timed(MaxPoolForward, [&] { inner_.maxpool2d_forward(g, in, out, argmax); });
}
void TimedBackend::maxpool2d_backward(const Pool2dGeometry& g, const float* dout, const int64_t* argmax,
                                      float* din) {
  timed(MaxPoolBackward, [&] { inner_.maxpool2d_backward(g, dout, argmax, din); });
}
void TimedBackend::relu_forward(int64_t count, const float* in, float* out) {
  timed(ReluForward, [&] { inner_.relu_forward(count, in, out); });
}
void TimedBackend::relu_backward(int64_t count, const float* out, const float* dout, float* din) {
  timed(ReluBackward, [&] { inner_.relu_backward(count, out, dout, din); });
}

void TimedBackend::smelu_forward(int64_t count, double beta, const float* in, float* out) {
  timed(SmeluForward, [&] { inner_.smelu_forward(count, beta, in, out); });
}
void TimedBackend::smelu_backward(int64_t count, double beta, const float* in, const float* dout, float* din) {
  timed(SmeluBackward, [&] { inner_.smelu_backward(count, beta, in, dout, din); });
}
void TimedBackend::avgpool2d_forward(const Pool2dGeometry& g, bool count_include_pad, const float* in, float* out) {
  timed(AvgPoolForward, [&] { inner_.avgpool2d_forward(g, count_include_pad, in, out); });
}
void TimedBackend::avgpool2d_backward(const Pool2dGeometry& g, bool count_include_pad, const float* dout,
                                      float* din) {
  timed(AvgPoolBackward, [&] { inner_.avgpool2d_backward(g, count_include_pad, dout, din); });
}

void TimedBackend::batched_matmul(int64_t batch, int64_t m, int64_t n, int64_t k, bool trans_a, bool trans_b,
                                  const float* a, const float* b, float* c, bool accumulate) {
  timed(BatchedMatmul, [&] { inner_.batched_matmul(batch, m, n, k, trans_a, trans_b, a, b, c, accumulate); });
}

void TimedBackend::channel_affine(int64_t count, int64_t channels, const float* in, const float* scale,
                                  const float* shift, float* out) {
  timed(ChannelAffine, [&] { inner_.channel_affine(count, channels, in, scale, shift, out); });
}

}  // namespace igscope
