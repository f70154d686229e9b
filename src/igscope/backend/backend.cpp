#include "igscope/backend/backend.h"

#include <algorithm>
#include <vector>

#include "igscope/backend/reference.h"
#include "igscope/backend/simd.h"
#ifndef __EMSCRIPTEN__
#include "igscope/backend/eigen.h"
#endif
#ifdef IGSCOPE_HAVE_XNNPACK
#include "igscope/backend/xnnpack.h"
#endif
#ifdef IGSCOPE_HAVE_CUDA
#include "igscope/backend/cuda.h"
#endif
#include "igscope/error.h"

namespace igscope {

void Backend::smelu_forward(int64_t count, double beta, const float* in, float* out) {
  const float b = static_cast<float>(beta);
  const float inv4b = static_cast<float>(0.25 / beta);
  for (int64_t i = 0; i < count; ++i) {
    const float v = in[i];
    const float s = v + b;
    const float quad = s * s * inv4b;
    out[i] = v >= b ? v : (v <= -b ? 0.0f : quad);
  }
}

void Backend::smelu_backward(int64_t count, double beta, const float* in, const float* dout, float* din) {
  const float b = static_cast<float>(beta);
  const float inv2b = static_cast<float>(0.5 / beta);
  for (int64_t i = 0; i < count; ++i) din[i] = dout[i] * std::clamp((in[i] + b) * inv2b, 0.0f, 1.0f);
}

void Backend::channel_affine(int64_t count, int64_t channels, const float* in, const float* scale,
                             const float* shift, float* out) {
  for (int64_t i = 0; i < count; i += channels)
    for (int64_t k = 0; k < channels; ++k) out[i + k] = scale[k] * in[i + k] + (shift ? shift[k] : 0.0f);
}

void Backend::batched_matmul(int64_t batch, int64_t m, int64_t n, int64_t k, bool trans_a, bool trans_b,
                             const float* a, const float* b, float* c, bool accumulate) {
  if (batch < 0 || m < 0 || n < 0 || k < 0) throw Error("batched_matmul: negative size");
  for (int64_t s = 0; s < batch; ++s) {
    const float* A = a + s * m * k;
    const float* B = b + s * k * n;
    float* C = c + s * m * n;
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) {
        float acc = accumulate ? C[i * n + j] : 0.0f;
        for (int64_t p = 0; p < k; ++p)
          acc += (trans_a ? A[p * m + i] : A[i * k + p]) * (trans_b ? B[j * k + p] : B[p * n + j]);
        C[i * n + j] = acc;
      }
  }
}

void Backend::avgpool2d_forward(const Pool2dGeometry& g, bool count_include_pad, const float* in, float* out) {
  check_pool2d_geometry(g, "avgpool2d_forward");
  const int64_t oh = g.out_h(), ow = g.out_w(), C = g.channels;
  std::vector<double> acc(static_cast<size_t>(C));
  for (int64_t n = 0; n < g.batch; ++n)
    for (int64_t oy = 0; oy < oh; ++oy) {
      const PoolSpan sy = pool_span(oy, g.in_h, g.kernel_h, g.stride_h, g.pad_h, count_include_pad);
      for (int64_t ox = 0; ox < ow; ++ox) {
        const PoolSpan sx = pool_span(ox, g.in_w, g.kernel_w, g.stride_w, g.pad_w, count_include_pad);
        std::fill(acc.begin(), acc.end(), 0.0);
        for (int64_t iy = sy.begin; iy < sy.end; ++iy)
          for (int64_t ix = sx.begin; ix < sx.end; ++ix) {
            const float* cell = in + ((n * g.in_h + iy) * g.in_w + ix) * C;
            for (int64_t c = 0; c < C; ++c) acc[static_cast<size_t>(c)] += cell[c];
          }
        const double divisor = static_cast<double>(sy.divisor * sx.divisor);
        float* o = out + ((n * oh + oy) * ow + ox) * C;
        for (int64_t c = 0; c < C; ++c) o[c] = static_cast<float>(acc[static_cast<size_t>(c)] / divisor);
      }
    }
}

void Backend::avgpool2d_backward(const Pool2dGeometry& g, bool count_include_pad, const float* dout, float* din) {
  check_pool2d_geometry(g, "avgpool2d_backward");
  const int64_t oh = g.out_h(), ow = g.out_w(), C = g.channels;
  std::vector<double> divisor_y(static_cast<size_t>(oh)), divisor_x(static_cast<size_t>(ow));
  for (int64_t oy = 0; oy < oh; ++oy)
    divisor_y[static_cast<size_t>(oy)] = static_cast<double>(
        pool_span(oy, g.in_h, g.kernel_h, g.stride_h, g.pad_h, count_include_pad).divisor);
  for (int64_t ox = 0; ox < ow; ++ox)
    divisor_x[static_cast<size_t>(ox)] = static_cast<double>(
        pool_span(ox, g.in_w, g.kernel_w, g.stride_w, g.pad_w, count_include_pad).divisor);
  std::vector<double> acc(static_cast<size_t>(C));
  // Each input cell gathers from the windows that hold it.
  for (int64_t n = 0; n < g.batch; ++n)
    for (int64_t iy = 0; iy < g.in_h; ++iy) {
      const PoolWindows wy = pool_windows_holding(iy, oh, g.kernel_h, g.stride_h, g.pad_h);
      for (int64_t ix = 0; ix < g.in_w; ++ix) {
        const PoolWindows wx = pool_windows_holding(ix, ow, g.kernel_w, g.stride_w, g.pad_w);
        std::fill(acc.begin(), acc.end(), 0.0);
        for (int64_t oy = wy.first; oy <= wy.last; ++oy)
          for (int64_t ox = wx.first; ox <= wx.last; ++ox) {
            const double scale = 1.0 / (divisor_y[static_cast<size_t>(oy)] * divisor_x[static_cast<size_t>(ox)]);
            const float* d = dout + ((n * oh + oy) * ow + ox) * C;
            for (int64_t c = 0; c < C; ++c) acc[static_cast<size_t>(c)] += d[c] * scale;
          }
        float* cell = din + ((n * g.in_h + iy) * g.in_w + ix) * C;
        for (int64_t c = 0; c < C; ++c) cell[c] = static_cast<float>(acc[static_cast<size_t>(c)]);
      }
    }
}

void check_conv2d_geometry(const Conv2dGeometry& g, const std::string& op) {
  if (g.batch < 0 || g.in_h < 1 || g.in_w < 1 || g.in_c < 1 || g.out_c < 1 || g.kernel_h < 1 || g.kernel_w < 1 ||
      g.stride_h < 1 || g.stride_w < 1 || g.pad_h < 0 || g.pad_w < 0)
    throw Error(op + ": sizes, channels, kernel and stride must be >= 1, padding and batch >= 0");
  if (g.dilation_h < 1 || g.dilation_w < 1)
    throw Error(op + ": dilation must be >= 1, got " + std::to_string(g.dilation_h) + "x" +
                std::to_string(g.dilation_w));
  if (g.groups < 1 || g.in_c % g.groups != 0 || g.out_c % g.groups != 0)
    throw Error(op + ": groups (" + std::to_string(g.groups) + ") must be >= 1 and divide the input channels (" +
                std::to_string(g.in_c) + ") and the output channels (" + std::to_string(g.out_c) + ")");
  if (g.in_h + 2 * g.pad_h < g.extent_h() || g.in_w + 2 * g.pad_w < g.extent_w())
    throw Error(op + ": the padded input is smaller than the kernel" +
                (g.dilated() ? std::string(" (dilated)") : std::string()));
}

void check_dense_sizes(int64_t batch, int64_t in_f, int64_t out_f, const std::string& op) {
  if (batch < 0 || in_f < 1 || out_f < 1) throw Error(op + ": features must be >= 1 and batch >= 0");
}

void check_pool2d_geometry(const Pool2dGeometry& g, const std::string& op) {
  if (g.batch < 0 || g.channels < 1 || g.in_h < 1 || g.in_w < 1 || g.kernel_h < 1 || g.kernel_w < 1 ||
      g.stride_h < 1 || g.stride_w < 1 || g.pad_h < 0 || g.pad_w < 0)
    throw Error(op + ": sizes, channels, window and stride must be >= 1, padding and batch >= 0");
  if (2 * g.pad_h > g.kernel_h || 2 * g.pad_w > g.kernel_w)
    throw Error(op + ": padding must be at most half the window (as in PyTorch)");
  if (g.in_h + 2 * g.pad_h < g.kernel_h || g.in_w + 2 * g.pad_w < g.kernel_w)
    throw Error(op + ": the padded input is smaller than the window");
}

std::unique_ptr<Backend> make_backend(const std::string& name, int threads) {
  if (threads < 0) throw Error("backend threads must be >= 0 (0: one per core), got " + std::to_string(threads));
  if (name == "reference") return std::make_unique<ReferenceBackend>();
  if (name == "simd") return std::make_unique<SimdBackend>(threads);
#ifndef __EMSCRIPTEN__
  if (name == "eigen") return std::make_unique<EigenBackend>(threads);
#endif
#ifdef IGSCOPE_HAVE_XNNPACK
  if (name == "xnnpack") return std::make_unique<XnnpackBackend>(threads);
#endif
#ifdef IGSCOPE_HAVE_CUDA
  if (name == "cuda") return std::make_unique<CudaBackend>();  // throws "no CUDA device: ..." without one
#endif
  throw Error("unknown backend '" + name + "' (available: " + available_backends() + ")");
}

std::string available_backends() {
  std::string names;
#ifdef IGSCOPE_HAVE_CUDA
  names += "cuda, ";  // built in; whether a device is there shows when it is made
#endif
#ifndef __EMSCRIPTEN__
  names += "eigen, ";
#endif
  names += "reference, simd";
#ifdef IGSCOPE_HAVE_XNNPACK
  names += ", xnnpack";
#endif
  return names;
}

std::string default_backend(BackendUse use) {
#ifndef __EMSCRIPTEN__
  if (use == BackendUse::Training) return "eigen";
#endif
  (void)use;
  return "simd";
}

std::string default_backend_reason(BackendUse use) {
  const std::string name = default_backend(use);
  if (use == BackendUse::Training && name == "eigen")
    return name + ", whose im2col + GEMM weight gradients train fastest (simd computes weight gradients with the "
                  "reference loops)";
  if (use == BackendUse::Training) return name + ", the one fast backend of this build";
  return name + ", the project's own SIMD kernels: the fastest IG of the CPU backends (Winograd convolutions), "
                "and the kernels the web page runs, so the command computes what the page shows";
}

}  // namespace igscope
