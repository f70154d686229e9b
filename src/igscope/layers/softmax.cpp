#include "igscope/layers/softmax.h"

#include <algorithm>
#include <cmath>

#include "igscope/error.h"

namespace igscope {

namespace {
Shape check_2d(const Shape& in, const char* who) {
  if (in.size() != 2 || in[1] < 1)
    throw Error(std::string(who) + ": expected input [N, K], got " + shape_to_string(in));
  return in;
}
}  // namespace

void log_softmax_row(const float* in, int64_t k, float* out) {
  const float m = *std::max_element(in, in + k);
  double sum = 0.0;
  for (int64_t j = 0; j < k; ++j) sum += std::exp(static_cast<double>(in[j]) - m);
  const double log_sum = std::log(sum);
  for (int64_t j = 0; j < k; ++j) out[j] = static_cast<float>(in[j] - m - log_sum);
}

void softmax_row(const float* in, int64_t k, float* out) {
  log_softmax_row(in, k, out);
  for (int64_t j = 0; j < k; ++j) out[j] = std::exp(out[j]);
}

Shape Softmax::output_shape(const Shape& in) const { return check_2d(in, "softmax"); }

Tensor Softmax::forward(Tensor in, Backend& /*backend*/, Mode /*mode*/) {
  check_2d(in.shape(), "softmax");
  Tensor out(in.shape());
  const int64_t k = in.dim(1);
  for (int64_t n = 0; n < in.dim(0); ++n) softmax_row(in.data() + n * k, k, out.data() + n * k);
  output_ = out;
  return out;
}

Tensor Softmax::backward_input(Tensor dout, Backend& /*backend*/) {
  check_shape(dout, output_.shape(), "softmax backward");
  Tensor din(dout.shape());
  const int64_t k = dout.dim(1);
  for (int64_t n = 0; n < dout.dim(0); ++n) {
    const float* p = output_.data() + n * k;
    const float* g = dout.data() + n * k;
    double dot = 0.0;
    for (int64_t j = 0; j < k; ++j) dot += static_cast<double>(g[j]) * p[j];
    for (int64_t j = 0; j < k; ++j) din[n * k + j] = static_cast<float>(p[j] * (g[j] - dot));
  }
  return din;
}

Shape LogSoftmax::output_shape(const Shape& in) const { return check_2d(in, "log_softmax"); }

Tensor LogSoftmax::forward(Tensor in, Backend& /*backend*/, Mode /*mode*/) {
  check_2d(in.shape(), "log_softmax");
  Tensor out(in.shape());
  const int64_t k = in.dim(1);
  for (int64_t n = 0; n < in.dim(0); ++n) log_softmax_row(in.data() + n * k, k, out.data() + n * k);
  output_ = out;
  return out;
}

Tensor LogSoftmax::backward_input(Tensor dout, Backend& /*backend*/) {
  check_shape(dout, output_.shape(), "log_softmax backward");
  Tensor din(dout.shape());
  const int64_t k = dout.dim(1);
  for (int64_t n = 0; n < dout.dim(0); ++n) {
    const float* g = dout.data() + n * k;
    double sum = 0.0;
    for (int64_t j = 0; j < k; ++j) sum += g[j];
    for (int64_t j = 0; j < k; ++j)
      din[n * k + j] = static_cast<float>(g[j] - std::exp(output_[n * k + j]) * sum);
  }
  return din;
}

Tensor Softmax::forward_tangent(const Tensor& din, Backend& backend) { return backward_input(din, backend); }

Tensor LogSoftmax::forward_tangent(const Tensor& din, Backend& /*backend*/) {
  check_shape(din, output_.shape(), "log_softmax tangent");
  Tensor dout(din.shape());
  const int64_t k = din.dim(1);
  for (int64_t n = 0; n < din.dim(0); ++n) {
    const float* t = din.data() + n * k;
    double dot = 0.0;
    for (int64_t j = 0; j < k; ++j) dot += std::exp(static_cast<double>(output_[n * k + j])) * t[j];
    for (int64_t j = 0; j < k; ++j) dout[n * k + j] = static_cast<float>(t[j] - dot);
  }
  return dout;
}

CrossEntropyResult cross_entropy(const Tensor& logits, const std::vector<int>& labels, double label_smoothing) {
  check_2d(logits.shape(), "cross_entropy");
  if (!(label_smoothing >= 0.0 && label_smoothing < 1.0))
    throw Error("cross_entropy: label smoothing must be in [0, 1), got " + std::to_string(label_smoothing));
  const int64_t n = logits.dim(0), k = logits.dim(1);
  const double off = label_smoothing / static_cast<double>(k), on = 1.0 - label_smoothing + off;
  if (static_cast<int64_t>(labels.size()) != n)
    throw Error("cross_entropy: " + std::to_string(labels.size()) + " labels for a batch of " +
                std::to_string(n));
  CrossEntropyResult r;
  r.dlogits = Tensor(logits.shape());
  std::vector<float> logp(static_cast<size_t>(k));
  for (int64_t b = 0; b < n; ++b) {
    const int label = labels[static_cast<size_t>(b)];
    if (label < 0 || label >= k)
      throw Error("cross_entropy: label " + std::to_string(label) + " outside [0, " +
                  std::to_string(k) + ")");
    log_softmax_row(logits.data() + b * k, k, logp.data());
    for (int64_t j = 0; j < k; ++j) {
      const double target = j == label ? on : off, lp = logp[static_cast<size_t>(j)];
      if (target != 0.0) r.loss -= target * lp;
      r.dlogits[b * k + j] = static_cast<float>((std::exp(lp) - target) / static_cast<double>(n));
    }
  }
  r.loss /= static_cast<double>(n);
  return r;
}

}  // namespace igscope
