#pragma once
// Backend: the heavy operations of a model over a batch, behind one small
// interface. `reference` (plain loops) is the oracle every faster backend is
// tested against.
//
// Layouts: activations are NHWC; conv weights are PyTorch's [out, in, kh, kw];
// dense weights are PyTorch's [out, in]. All ops write every element of their
// output except those documented as accumulating.
//
// Packed weights: backends that re-lay-out weights for their kernels (simd,
// xnnpack) do it once per weight contents, not per call. The ops that read
// weights take a ParamsKey naming the contents of the weight and bias
// tensors (Tensor::content_id(), as the layers pass it); such a backend keeps
// what it prepared for that key and reuses it while the key stays the same.
// A default (unknown) key promises nothing and the weights are prepared
// again on every call.
#include <cstdint>
#include <memory>
#include <string>

namespace igscope {

// Grouped convolution (PyTorch's `groups`): the in_c input and out_c output
// channels are cut into `groups` consecutive slices, and output slice g reads
// input slice g only; weights are [out_c, in_c / groups, kh, kw]. groups ==
// in_c is a depthwise convolution (out_c / in_c outputs per input channel).
// Dilation spaces the kernel's taps: tap (ky, kx) reads input row
// oy * stride_h - pad_h + ky * dilation_h, so the kernel spans
// dilation * (kernel - 1) + 1 pixels.
struct Conv2dGeometry {
  int64_t batch = 1;
  int64_t in_h = 0, in_w = 0, in_c = 0;
  int64_t out_c = 0;
  int64_t kernel_h = 1, kernel_w = 1;
  int64_t stride_h = 1, stride_w = 1;
  int64_t pad_h = 0, pad_w = 0;
  int64_t groups = 1;
  int64_t dilation_h = 1, dilation_w = 1;

  int64_t extent_h() const { return dilation_h * (kernel_h - 1) + 1; }
  int64_t extent_w() const { return dilation_w * (kernel_w - 1) + 1; }
  int64_t out_h() const { return (in_h + 2 * pad_h - extent_h()) / stride_h + 1; }
  int64_t out_w() const { return (in_w + 2 * pad_w - extent_w()) / stride_w + 1; }
  int64_t group_in_c() const { return in_c / groups; }
  int64_t group_out_c() const { return out_c / groups; }
  bool dilated() const { return dilation_h != 1 || dilation_w != 1; }
};

// Pooling windows as PyTorch's MaxPool2d / AvgPool2d place them: window
// (oy, ox) starts at (oy * stride_h - pad_h, ox * stride_w - pad_w) in the
// input. The output size is floor((in + 2 pad - kernel) / stride) + 1, or
// with ceil_mode the ceiling, less one when that last window would start in
// the right (bottom) padding or past it, so every window holds at least one
// input cell (PyTorch's pooling_output_shape). PyTorch requires pad <= kernel / 2.
struct Pool2dGeometry {
  int64_t batch = 1;
  int64_t in_h = 0, in_w = 0, channels = 0;
  int64_t kernel_h = 2, kernel_w = 2;
  int64_t stride_h = 2, stride_w = 2;
  int64_t pad_h = 0, pad_w = 0;
  bool ceil_mode = false;

  static int64_t out_size(int64_t in, int64_t kernel, int64_t stride, int64_t pad, bool ceil_mode) {
    const int64_t span = in + 2 * pad - kernel;
    int64_t out = (ceil_mode ? (span + stride - 1) / stride : span / stride) + 1;
    if (ceil_mode && (out - 1) * stride >= in + pad) --out;
    return out;
  }
  int64_t out_h() const { return out_size(in_h, kernel_h, stride_h, pad_h, ceil_mode); }
  int64_t out_w() const { return out_size(in_w, kernel_w, stride_w, pad_w, ceil_mode); }
};

struct ParamsKey {
  uint64_t weight = 0;  // Tensor::content_id() of the weights; 0: unknown
  uint64_t bias = 0;    // Tensor::content_id() of the bias; 0: unknown or no bias
  bool known() const { return weight != 0; }
  bool operator==(const ParamsKey& o) const { return weight == o.weight && bias == o.bias; }
  bool operator!=(const ParamsKey& o) const { return !(*this == o); }
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;

  // out[n,oy,ox,o] = bias[o] + sum_{i,ky,kx} in[n,oy*s-p+ky*d,ox*s-p+kx*d,g*I+i] * w[o,i,ky,kx]
  // with I = in_c / groups input channels per group and g = o / (out_c / groups).
  virtual void conv2d_forward(const Conv2dGeometry& g, const float* in, const float* weight,
                              const float* bias, float* out, const ParamsKey& key = {}) = 0;
  // din = d(sum dout*out)/d(in); overwrites din.
  virtual void conv2d_backward_input(const Conv2dGeometry& g, const float* dout,
                                     const float* weight, float* din, const ParamsKey& key = {}) = 0;
  // Accumulates into dweight [out,in,kh,kw] and dbias [out].
  virtual void conv2d_backward_params(const Conv2dGeometry& g, const float* in, const float* dout,
                                      float* dweight, float* dbias) = 0;

  // y[n,o] = b[o] + sum_i x[n,i] * w[o,i]
  virtual void dense_forward(int64_t batch, int64_t in_f, int64_t out_f, const float* x,
                             const float* weight, const float* bias, float* y,
                             const ParamsKey& key = {}) = 0;
  // dx = dy * w; overwrites dx.
  virtual void dense_backward_input(int64_t batch, int64_t in_f, int64_t out_f, const float* dy,
                                    const float* weight, float* dx, const ParamsKey& key = {}) = 0;
  // Accumulates dw += dy^T x and db += sum_n dy.
  virtual void dense_backward_params(int64_t batch, int64_t in_f, int64_t out_f, const float* x,
                                     const float* dy, float* dweight, float* dbias) = 0;

  // Max pooling. argmax holds, per output element, the flat index into `in`
  // of the maximum; a tie goes to the first maximum in row-major window
  // order (as PyTorch does). Padded cells are -infinity: never chosen.
  virtual void maxpool2d_forward(const Pool2dGeometry& g, const float* in, float* out,
                                 int64_t* argmax) = 0;
  // Overwrites din (size of the input) with dout routed through argmax.
  virtual void maxpool2d_backward(const Pool2dGeometry& g, const float* dout,
                                  const int64_t* argmax, float* din) = 0;

  virtual void relu_forward(int64_t count, const float* in, float* out) = 0;
  // din = dout where out > 0, else 0.
  virtual void relu_backward(int64_t count, const float* out, const float* dout, float* din) = 0;

  // SmeLU with half-width beta (layers/smelu.h), elementwise. This base
  // class computes both in plain loops, the reference that a backend's own
  // version is tested against.
  virtual void smelu_forward(int64_t count, double beta, const float* in, float* out);
  // din = dout * clamp((in + beta) / 2 beta, 0, 1)
  virtual void smelu_backward(int64_t count, double beta, const float* in, const float* dout, float* din);

  // Average pooling (PyTorch's AvgPool2d): out = (sum of the window's input
  // cells) / divisor, where the window is clipped to the padded input (with
  // ceil_mode the last windows can run past it) and the divisor counts the
  // clipped window's cells, padding included when count_include_pad, the
  // input cells only otherwise. Plain loops here (sums in double), the
  // reference for a backend's own version.
  virtual void avgpool2d_forward(const Pool2dGeometry& g, bool count_include_pad, const float* in, float* out);
  // din[j] = sum of dout[o] / divisor(o) over the windows o holding input
  // cell j; overwrites din.
  virtual void avgpool2d_backward(const Pool2dGeometry& g, bool count_include_pad, const float* dout, float* din);

  // A per-channel affine map over NHWC values (batch norm in evaluation,
  // and its input gradient and tangent): out[i * channels + k] = scale[k] *
  // in[i * channels + k] + shift[k] for i < count / channels; shift null:
  // no shift. A plain loop here, the reference for a backend's own version.
  virtual void channel_affine(int64_t count, int64_t channels, const float* in, const float* scale,
                              const float* shift, float* out);

  // Products of many small matrices (attention's scores and mixes): for
  // b < batch, C_b = op(A_b) op(B_b), plus C_b when accumulate, where C_b is
  // m x n at c + b m n, op(A_b) is m x k (A_b stored m x k at a + b m k, or
  // k x m when trans_a), op(B_b) is k x n (B_b stored k x n at b_ + b k n, or
  // n x k when trans_b); all row-major and contiguous. Plain loops here (sums
  // in float, in order of k), the reference for a backend's own version.
  virtual void batched_matmul(int64_t batch, int64_t m, int64_t n, int64_t k, bool trans_a, bool trans_b,
                              const float* a, const float* b, float* c, bool accumulate);
};

// For backends that check what they are given: throw igscope::Error, naming
// `op`, when sizes, kernel, stride, padding, dilation or groups make no sense
// (groups must divide in_c and out_c).
void check_conv2d_geometry(const Conv2dGeometry& g, const std::string& op);
void check_dense_sizes(int64_t batch, int64_t in_f, int64_t out_f, const std::string& op);
void check_pool2d_geometry(const Pool2dGeometry& g, const std::string& op);

// One output row's or column's window under g: its first and one-past-last
// input cell (clipped to the input) and its average-pooling divisor along
// that axis (the window clipped to the padded input when count_include_pad,
// to the input otherwise). The divisor of window (oy, ox) is the product of
// the two axes'.
struct PoolSpan {
  int64_t begin, end, divisor;
};
inline PoolSpan pool_span(int64_t o, int64_t in, int64_t kernel, int64_t stride, int64_t pad, bool count_include_pad) {
  const int64_t start = o * stride - pad;
  const int64_t padded_end = start + kernel < in + pad ? start + kernel : in + pad;
  const int64_t begin = start > 0 ? start : 0, end = padded_end < in ? padded_end : in;
  return {begin, end, count_include_pad ? padded_end - start : end - begin};
}
// The windows along one axis that hold input cell i: o in [first, last]
// (none when first > last).
struct PoolWindows {
  int64_t first, last;
};
inline PoolWindows pool_windows_holding(int64_t i, int64_t out, int64_t kernel, int64_t stride, int64_t pad) {
  const int64_t before = i + pad - kernel;  // window o holds i iff o * stride - pad <= i < o * stride - pad + kernel
  const int64_t last = (i + pad) / stride;
  return {before < 0 ? 0 : before / stride + 1, last < out - 1 ? last : out - 1};
}

// Backends by name (see available_backends()); threads: 0 means all cores
// (ignored by single-threaded backends).
std::unique_ptr<Backend> make_backend(const std::string& name, int threads = 0);
std::string available_backends();  // comma-separated names
// What a backend is chosen for when none is named.
enum class BackendUse {
  Attribution,  // forward and input-gradient passes: attribute, eval, conductance, classmaps, bench, the page
  Training,     // forward, input- and weight-gradient passes: train
};
// The one source of the commands' defaults (default_backend_reason says why):
// simd for attribution, natively and in WebAssembly; for training eigen
// natively, simd in WebAssembly (where eigen is not built).
std::string default_backend(BackendUse use = BackendUse::Attribution);
// "simd: ..." with the reason, for help texts.
std::string default_backend_reason(BackendUse use = BackendUse::Attribution);

}  // namespace igscope
