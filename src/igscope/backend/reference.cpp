#include "igscope/backend/reference.h"

#include <algorithm>

namespace igscope {

namespace {
// Index helpers for NHWC activations and OIHW weights.
inline int64_t nhwc(const Conv2dGeometry& g, int64_t n, int64_t y, int64_t x, int64_t c) {
  return ((n * g.in_h + y) * g.in_w + x) * g.in_c + c;
}
inline int64_t out_nhwc(const Conv2dGeometry& g, int64_t n, int64_t y, int64_t x, int64_t c) {
  return ((n * g.out_h() + y) * g.out_w() + x) * g.out_c + c;
}
inline int64_t oihw(const Conv2dGeometry& g, int64_t o, int64_t i, int64_t ky, int64_t kx) {
  return ((o * g.in_c + i) * g.kernel_h + ky) * g.kernel_w + kx;
}
}  // namespace

void ReferenceBackend::conv2d_forward(const Conv2dGeometry& g, const float* in, const float* weight,
                                      const float* bias, float* out, const ParamsKey& /*key*/) {
  for (int64_t n = 0; n < g.batch; ++n)
    for (int64_t oy = 0; oy < g.out_h(); ++oy)
      for (int64_t ox = 0; ox < g.out_w(); ++ox)
        for (int64_t o = 0; o < g.out_c; ++o) {
          double acc = bias ? bias[o] : 0.0;
          for (int64_t ky = 0; ky < g.kernel_h; ++ky) {
            const int64_t iy = oy * g.stride_h - g.pad_h + ky;
            if (iy < 0 || iy >= g.in_h) continue;
            for (int64_t kx = 0; kx < g.kernel_w; ++kx) {
              const int64_t ix = ox * g.stride_w - g.pad_w + kx;
              if (ix < 0 || ix >= g.in_w) continue;
              for (int64_t i = 0; i < g.in_c; ++i)
                acc += static_cast<double>(in[nhwc(g, n, iy, ix, i)]) * weight[oihw(g, o, i, ky, kx)];
            }
          }
          out[out_nhwc(g, n, oy, ox, o)] = static_cast<float>(acc);
        }
}

void ReferenceBackend::conv2d_backward_input(const Conv2dGeometry& g, const float* dout,
                                             const float* weight, float* din, const ParamsKey& /*key*/) {
  // Gather form: each input element sums over the outputs that read it.
  for (int64_t n = 0; n < g.batch; ++n)
    for (int64_t iy = 0; iy < g.in_h; ++iy)
      for (int64_t ix = 0; ix < g.in_w; ++ix)
        for (int64_t i = 0; i < g.in_c; ++i) {
          double acc = 0.0;
          for (int64_t ky = 0; ky < g.kernel_h; ++ky) {
            const int64_t ty = iy + g.pad_h - ky;
            if (ty < 0 || ty % g.stride_h != 0) continue;
            const int64_t oy = ty / g.stride_h;
            if (oy >= g.out_h()) continue;
            for (int64_t kx = 0; kx < g.kernel_w; ++kx) {
              const int64_t tx = ix + g.pad_w - kx;
              if (tx < 0 || tx % g.stride_w != 0) continue;
              const int64_t ox = tx / g.stride_w;
              if (ox >= g.out_w()) continue;
              for (int64_t o = 0; o < g.out_c; ++o)
                acc += static_cast<double>(dout[out_nhwc(g, n, oy, ox, o)]) * weight[oihw(g, o, i, ky, kx)];
            }
          }
          din[nhwc(g, n, iy, ix, i)] = static_cast<float>(acc);
        }
}

void ReferenceBackend::conv2d_backward_params(const Conv2dGeometry& g, const float* in,
                                              const float* dout, float* dweight, float* dbias) {
  for (int64_t o = 0; o < g.out_c; ++o) {
    double db = 0.0;
    for (int64_t n = 0; n < g.batch; ++n)
      for (int64_t oy = 0; oy < g.out_h(); ++oy)
        for (int64_t ox = 0; ox < g.out_w(); ++ox) db += dout[out_nhwc(g, n, oy, ox, o)];
    if (dbias) dbias[o] += static_cast<float>(db);
    for (int64_t i = 0; i < g.in_c; ++i)
      for (int64_t ky = 0; ky < g.kernel_h; ++ky)
        for (int64_t kx = 0; kx < g.kernel_w; ++kx) {
          double acc = 0.0;
          for (int64_t n = 0; n < g.batch; ++n)
            for (int64_t oy = 0; oy < g.out_h(); ++oy) {
              const int64_t iy = oy * g.stride_h - g.pad_h + ky;
              if (iy < 0 || iy >= g.in_h) continue;
              for (int64_t ox = 0; ox < g.out_w(); ++ox) {
                const int64_t ix = ox * g.stride_w - g.pad_w + kx;
                if (ix < 0 || ix >= g.in_w) continue;
                acc += static_cast<double>(dout[out_nhwc(g, n, oy, ox, o)]) * in[nhwc(g, n, iy, ix, i)];
              }
            }
          dweight[oihw(g, o, i, ky, kx)] += static_cast<float>(acc);
        }
  }
}

void ReferenceBackend::dense_forward(int64_t batch, int64_t in_f, int64_t out_f, const float* x,
                                     const float* weight, const float* bias, float* y, const ParamsKey& /*key*/) {
  for (int64_t n = 0; n < batch; ++n)
    for (int64_t o = 0; o < out_f; ++o) {
      double acc = bias ? bias[o] : 0.0;
      for (int64_t i = 0; i < in_f; ++i) acc += static_cast<double>(x[n * in_f + i]) * weight[o * in_f + i];
      y[n * out_f + o] = static_cast<float>(acc);
    }
}

void ReferenceBackend::dense_backward_input(int64_t batch, int64_t in_f, int64_t out_f,
                                            const float* dy, const float* weight, float* dx, const ParamsKey& /*key*/) {
  for (int64_t n = 0; n < batch; ++n)
    for (int64_t i = 0; i < in_f; ++i) {
      double acc = 0.0;
      for (int64_t o = 0; o < out_f; ++o) acc += static_cast<double>(dy[n * out_f + o]) * weight[o * in_f + i];
      dx[n * in_f + i] = static_cast<float>(acc);
    }
}

void ReferenceBackend::dense_backward_params(int64_t batch, int64_t in_f, int64_t out_f,
                                             const float* x, const float* dy, float* dweight,
                                             float* dbias) {
  for (int64_t o = 0; o < out_f; ++o) {
    double db = 0.0;
    for (int64_t n = 0; n < batch; ++n) db += dy[n * out_f + o];
    if (dbias) dbias[o] += static_cast<float>(db);
    for (int64_t i = 0; i < in_f; ++i) {
      double acc = 0.0;
      for (int64_t n = 0; n < batch; ++n) acc += static_cast<double>(dy[n * out_f + o]) * x[n * in_f + i];
      dweight[o * in_f + i] += static_cast<float>(acc);
    }
  }
}

void ReferenceBackend::maxpool2d_forward(const Pool2dGeometry& g, const float* in, float* out,
                                         int64_t* argmax) {
  const int64_t oh = g.out_h(), ow = g.out_w();
  for (int64_t n = 0; n < g.batch; ++n)
    for (int64_t oy = 0; oy < oh; ++oy)
      for (int64_t ox = 0; ox < ow; ++ox)
        for (int64_t c = 0; c < g.channels; ++c) {
          int64_t best = -1;
          float best_value = 0.0f;
          // Row-major window order over the window's input cells (padding is
          // never chosen); strict '>' keeps the first maximum on ties.
          for (int64_t ky = 0; ky < g.kernel_h; ++ky)
            for (int64_t kx = 0; kx < g.kernel_w; ++kx) {
              const int64_t iy = oy * g.stride_h - g.pad_h + ky, ix = ox * g.stride_w - g.pad_w + kx;
              if (iy < 0 || iy >= g.in_h || ix < 0 || ix >= g.in_w) continue;
              const int64_t idx = ((n * g.in_h + iy) * g.in_w + ix) * g.channels + c;
              if (best < 0 || in[idx] > best_value) {
                best = idx;
                best_value = in[idx];
              }
            }
          const int64_t o = ((n * oh + oy) * ow + ox) * g.channels + c;
          out[o] = best_value;
          argmax[o] = best;
        }
}

void ReferenceBackend::maxpool2d_backward(const Pool2dGeometry& g, const float* dout,
                                          const int64_t* argmax, float* din) {
  const int64_t in_count = g.batch * g.in_h * g.in_w * g.channels;
  const int64_t out_count = g.batch * g.out_h() * g.out_w() * g.channels;
  std::fill(din, din + in_count, 0.0f);
  for (int64_t o = 0; o < out_count; ++o) din[argmax[o]] += dout[o];
}

void ReferenceBackend::relu_forward(int64_t count, const float* in, float* out) {
  for (int64_t i = 0; i < count; ++i) out[i] = in[i] > 0.0f ? in[i] : 0.0f;
}

void ReferenceBackend::relu_backward(int64_t count, const float* out, const float* dout, float* din) {
  for (int64_t i = 0; i < count; ++i) din[i] = out[i] > 0.0f ? dout[i] : 0.0f;
}

}  // namespace igscope
