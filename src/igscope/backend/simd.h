#pragma once
#include <array>
#include <map>
#include <memory>
#include <vector>

#include "igscope/backend/backend.h"
#include "igscope/backend/reference.h"
#include "igscope/backend/thread_pool.h"

namespace igscope {

// The project's own SIMD kernels: portable source (simd_vec.h) that compiles
// to AVX-512 / AVX2+FMA natively and to simd128 in the WebAssembly build.
//
// Convolutions and dense layers are one register-tiled GEMM micro-kernel
// over packed weights, im2col-free: each output row gathers its input
// through per-tap pointers (an implicit im2col; padding points at a zero
// row). conv2d's input gradient is the same kernel gathering dout with the
// weights re-laid-out (a transposed convolution; any stride). When the
// output has few channels (conv1's input gradient has one), a dot-product
// kernel vectorised along the reduction replaces the GEMM. 3x3 convolutions
// with stride 1 and pad 1 (both directions) run as Winograd F(2x2, 3x3), the input gradient as F(4x4, 3x3) on larger images
// instead (simd_winograd.h): 16 multiply-adds per 2x2 outputs and channel
// pair instead of 36, through the same micro-kernel. Grouped convolutions
// run the same GEMM once per group on its channel slices (one pass over
// the pool for all groups); depthwise ones (groups == in_c) have their own
// kernels, vectorised over the channels (simd_depthwise.h). Dilation goes
// through the per-tap pointers. Weights are packed once per ParamsKey (see
// backend.h) and kept; pooling (max and average, over channels) and ReLU are vectorised loops. Weight
// gradients (training) use the reference loops.
//
// Threads: a ThreadPool of `threads` (0: one per core), the caller included;
// results do not depend on the thread count. Not thread-safe: one caller at
// a time.
class SimdBackend final : public Backend {
 public:
  explicit SimdBackend(int threads = 0);
  ~SimdBackend() override;
  std::string name() const override { return "simd"; }
  int threads() const { return pool_.threads(); }
  // The instruction set the kernels were compiled for ("AVX-512", "wasm simd128", ...).
  static const char* isa();

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
  void smelu_forward(int64_t count, double beta, const float* in, float* out) override;
  void smelu_backward(int64_t count, double beta, const float* in, const float* dout, float* din) override;
  void avgpool2d_forward(const Pool2dGeometry& g, bool count_include_pad, const float* in, float* out) override;
  void avgpool2d_backward(const Pool2dGeometry& g, bool count_include_pad, const float* dout, float* din) override;
  void batched_matmul(int64_t batch, int64_t m, int64_t n, int64_t k, bool trans_a, bool trans_b, const float* a,
                      const float* b, float* c, bool accumulate) override;
  void channel_affine(int64_t count, int64_t channels, const float* in, const float* scale, const float* shift,
                      float* out) override;

  // Whether conv2d_forward (or, with backward_input, conv2d_backward_input)
  // runs this geometry as Winograd rather than directly, and with which
  // tile: F(m x m, 3x3), m = 2 or 4 (simd_winograd.h).
  static bool uses_winograd(const Conv2dGeometry& g, bool backward_input);
  static int winograd_tile(const Conv2dGeometry& g, bool backward_input);
  // Whether conv2d_forward and conv2d_backward_input run this geometry with
  // the depthwise kernels (groups == in_c > 1).
  static bool uses_depthwise(const Conv2dGeometry& g);

  // How many times weights were packed (for the tests of the cache).
  int64_t pack_count() const { return pack_count_; }

  // Weights laid out for one GEMM per group: B is K x N (K = taps * C),
  // either in panels of kNR columns (GEMM kernel) or as N rows of K (dot
  // kernel), group after group (group_b floats and group_bias bias floats
  // each); or, for the Winograd and depthwise convolutions, their own
  // layouts (simd_winograd.h, simd_depthwise.h) with the bias unpadded.
  struct Packed {
    ParamsKey key;
    bool dot = false;
    std::vector<float> b;
    std::vector<float> bias;  // padded to whole panels (GEMM) or N (dot); empty: no bias
    int64_t group_b = 0, group_bias = 0;
  };

 private:
  enum class PackKind {
    ConvForward,
    ConvBackwardInput,
    ConvBackwardInputPhase,
    WinogradForward,
    WinogradBackwardInput,
    DepthwiseForward,
    DepthwiseGather,
    DepthwiseRotated,
    DenseForward,
    DenseBackwardInput
  };
  struct PackId {
    PackKind kind;
    const float* weight;
    const float* bias;
    std::array<int64_t, 5> dims;
    bool operator<(const PackId& o) const;
  };
  template <class Fill>
  const Packed& packed(const PackId& id, const ParamsKey& key, Fill fill);

  struct GemmShape {
    int64_t rows = 0;    // M
    int64_t cols = 0;    // N, per group
    int64_t taps = 1;    // row segments
    int64_t depth = 0;   // C: floats per segment; K = taps * C
    int64_t groups = 1;  // independent GEMMs over the same rows
  };
  // For each group g: out[m, g * N + n] = bias_g[n] + sum_k A_g[m, k] B_g[k, n]
  // (out's rows are groups * N floats), where row m of A_g is the
  // concatenation of `taps` segments of `depth` floats: row_ptrs(g, m0,
  // count, ptrs) writes the segment pointers of rows m0 .. m0 + count - 1 of
  // group g, row by row. With out_row, row m of out is out_row(m) instead
  // of out + m * groups * N (tiles then go through a buffer in L1).
  struct ContiguousRows {};
  template <class RowPtrs, class OutRow = ContiguousRows>
  void gemm(const GemmShape& s, const Packed& p, float* out, RowPtrs row_ptrs, OutRow out_row = {});
  const float* zeros(int64_t count);
  void conv2d_backward_input_strided(const Conv2dGeometry& g, const float* dout, const float* weight, float* din,
                                     const ParamsKey& key);

  ThreadPool pool_;
  std::map<PackId, Packed> cache_;
  Packed scratch_;  // weights with an unknown key, packed on every call
  std::vector<float> depthwise_scratch_;  // the expanded input (or its gradient) of a channel multiplier > 1
  std::vector<float> zeros_;
  int64_t pack_count_ = 0;
  ReferenceBackend reference_;
};

}  // namespace igscope
