#pragma once
// Native backend on XNNPACK (Debian's early-2022 snapshot, its operator API:
// create once, setup per call, run), with a pthreadpool sized to `threads`.
//
//   conv2d forward          convolution2d_nhwc (weights re-laid-out to [out, kh, kw, in / groups]),
//                           its groups and dilation as they are
//   conv2d input gradient   deconvolution2d_nhwc with the weights as [in, kh, kw, out / groups]
//                           (the transposed convolution; the output adjustment
//                           recovers input sizes a strided convolution dropped);
//                           grouped (depthwise) ones: convolution2d_nhwc of dout
//                           spread out by the stride, with each group's kernels
//                           rotated and transposed
//   dense forward           fully_connected_nc
//   dense input gradient    fully_connected_nc with XNN_FLAG_TRANSPOSE_WEIGHTS
//   max-pool forward        argmax_pooling2d_nhwc when the stride equals the
//                           window, its per-window index turned into the flat
//                           index igscope uses; other windows: plain loops
//   ReLU forward            clamp_nc to [0, +inf)
// Operators holding weights are created once per ParamsKey (see backend.h)
// and kept; weightless ones once per shape. Max-pool and ReLU backward are
// plain loops spread over the same pthreadpool (XNNPACK has no such
// operators); weight gradients (training) use the reference loops.
#include <array>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "igscope/backend/backend.h"
#include "igscope/backend/reference.h"

struct xnn_operator;
struct pthreadpool;

namespace igscope {

class XnnpackBackend final : public Backend {
 public:
  explicit XnnpackBackend(int threads = 0);  // 0: one per core
  ~XnnpackBackend() override;
  XnnpackBackend(const XnnpackBackend&) = delete;
  XnnpackBackend& operator=(const XnnpackBackend&) = delete;

  std::string name() const override { return "xnnpack"; }
  int threads() const { return threads_; }

  void conv2d_forward(const Conv2dGeometry& g, const float* in, const float* weight, const float* bias,
                      float* out, const ParamsKey& key = {}) override;
  void conv2d_backward_input(const Conv2dGeometry& g, const float* dout, const float* weight, float* din,
                             const ParamsKey& key = {}) override;
  void conv2d_backward_params(const Conv2dGeometry& g, const float* in, const float* dout, float* dweight,
                              float* dbias) override {
    reference_.conv2d_backward_params(g, in, dout, dweight, dbias);
  }
  void dense_forward(int64_t batch, int64_t in_f, int64_t out_f, const float* x, const float* weight,
                     const float* bias, float* y, const ParamsKey& key = {}) override;
  void dense_backward_input(int64_t batch, int64_t in_f, int64_t out_f, const float* dy, const float* weight,
                            float* dx, const ParamsKey& key = {}) override;
  void dense_backward_params(int64_t batch, int64_t in_f, int64_t out_f, const float* x, const float* dy,
                             float* dweight, float* dbias) override {
    reference_.dense_backward_params(batch, in_f, out_f, x, dy, dweight, dbias);
  }
  void maxpool2d_forward(const Pool2dGeometry& g, const float* in, float* out, int64_t* argmax) override;
  void maxpool2d_backward(const Pool2dGeometry& g, const float* dout, const int64_t* argmax, float* din) override;
  void relu_forward(int64_t count, const float* in, float* out) override;
  void relu_backward(int64_t count, const float* out, const float* dout, float* din) override;

  // How many weight-holding operators were created (for the tests of the cache).
  int64_t create_count() const { return create_count_; }

 private:
  struct OperatorDeleter {
    void operator()(xnn_operator* op) const;
  };
  using Operator = std::unique_ptr<xnn_operator, OperatorDeleter>;
  enum class Kind {
    ConvForward,
    ConvBackwardInput,
    ConvBackwardInputRotated,
    DenseForward,
    DenseBackwardInput,
    ArgmaxPool,
    Clamp
  };
  struct OpId {
    Kind kind;
    const float* weight;
    const float* bias;
    std::array<int64_t, 9> dims;
    bool operator<(const OpId& o) const {
      return std::tie(kind, weight, bias, dims) < std::tie(o.kind, o.weight, o.bias, o.dims);
    }
  };
  struct Cached {
    ParamsKey key;
    Operator op;
  };
  // The operator for id and key: the cached one, or a new one from create()
  // (kept unless the key is unknown).
  template <class Create>
  xnn_operator* get(const OpId& id, const ParamsKey& key, bool has_weights, Create create);
  void run(xnn_operator* op, const char* what);

  int threads_;
  pthreadpool* pool_ = nullptr;  // null: XNNPACK runs on the calling thread
  std::map<OpId, Cached> cache_;
  Operator uncached_;  // an operator for weights with an unknown key, replaced on every call
  std::vector<uint32_t> window_index_;  // argmax pooling's per-window indices
  std::vector<float> spread_;           // a strided grouped convolution's dout, spread out by the stride
  int64_t create_count_ = 0;
  ReferenceBackend reference_;
};

}  // namespace igscope
