#include "igscope/backend/simd_depthwise.h"

#include <algorithm>

#include "igscope/backend/simd_vec.h"

namespace igscope::depthwise {

using simd::kLanes;
using simd::Vec;

namespace {

// A depthwise convolution of multiplier 1 over C channels (NHWC in and out).
struct Plane {
  int64_t batch, in_h, in_w, C;
  int64_t out_h, out_w;
  int64_t kh, kw, sh, sw, ph, pw, dh, dw;
};

Plane forward_plane(const Conv2dGeometry& g) {
  return {g.batch,    g.in_h,     g.in_w,     g.out_c, g.out_h(),  g.out_w(),     g.kernel_h,
          g.kernel_w, g.stride_h, g.stride_w, g.pad_h, g.pad_w,    g.dilation_h, g.dilation_w};
}

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// dst[c] = bias[c] + sum_j src[j][c] * w[j][c] for c < C (bias null: 0),
// summed in the order of j.
inline void pixel(int64_t C, int64_t taps, const float* const* src, const float* const* w, const float* bias,
                  float* dst) {
  if (C >= kLanes) {
    for (int64_t c0 = 0; c0 < C; c0 += kLanes) {
      const int64_t c = std::min(c0, C - kLanes);  // the last vector may overlap the one before
      Vec acc = bias ? simd::load(bias + c) : simd::zero();
      for (int64_t j = 0; j < taps; ++j) acc = simd::madd(simd::load(src[j] + c), simd::load(w[j] + c), acc);
      simd::store(dst + c, acc);
    }
  } else {
    for (int64_t c = 0; c < C; ++c) {
      float acc = bias ? bias[c] : 0.0f;
      for (int64_t j = 0; j < taps; ++j) acc += src[j][c] * w[j][c];
      dst[c] = acc;
    }
  }
}

// Outputs [ox_begin, ox_end) of one output row whose windows lie inside the
// image; rows[ky] points at column 0 of the input row tap row ky reads.
// Pixel by pixel, every channel of a pixel before the next pixel, two
// vectors of channels at a time: each load then walks its memory in order,
// which the hardware prefetchers follow (groups of pixels that share weight
// loads measured up to twice as slow once the tensors spill from the
// caches). The same sums in the same order as pixel(). KH, KW: the kernel
// size, or 0 for the plane's. Needs C >= kLanes.
template <int KH, int KW>
void interior(const Plane& p, const float* const* rows, int64_t ox_begin, int64_t ox_end, const float* wt,
              const float* bias, float* out_row) {
  const int64_t C = p.C, kh = KH ? KH : p.kh, kw = KW ? KW : p.kw, tap = p.dw * C;
  const int64_t pairs_end = C / (2 * kLanes) * (2 * kLanes);
  for (int64_t ox = ox_begin; ox < ox_end; ++ox) {
    const int64_t x = (ox * p.sw - p.pw) * C;
    float* o = out_row + ox * C;
    int64_t c = 0;
    for (; c < pairs_end; c += 2 * kLanes) {
      Vec acc0 = bias ? simd::load(bias + c) : simd::zero();
      Vec acc1 = bias ? simd::load(bias + c + kLanes) : simd::zero();
      for (int64_t ky = 0; ky < kh; ++ky) {
        const float* r = rows[ky] + x + c;
        const float* w = wt + ky * kw * C + c;
        for (int64_t kx = 0; kx < kw; ++kx) {
          acc0 = simd::madd(simd::load(r + kx * tap), simd::load(w + kx * C), acc0);
          acc1 = simd::madd(simd::load(r + kx * tap + kLanes), simd::load(w + kx * C + kLanes), acc1);
        }
      }
      simd::store(o + c, acc0);
      simd::store(o + c + kLanes, acc1);
    }
    for (int64_t c0 = c; c0 < C; c0 += kLanes) {
      const int64_t cv = std::min(c0, C - kLanes);  // the last vector may overlap the one before
      Vec acc = bias ? simd::load(bias + cv) : simd::zero();
      for (int64_t ky = 0; ky < kh; ++ky) {
        const float* r = rows[ky] + x + cv;
        const float* w = wt + ky * kw * C + cv;
        for (int64_t kx = 0; kx < kw; ++kx) acc = simd::madd(simd::load(r + kx * tap), simd::load(w + kx * C), acc);
      }
      simd::store(o + cv, acc);
    }
  }
}

// out = the plane's convolution of in with wt ([kh * kw][C]) plus bias; one
// task per output row.
void convolve(ThreadPool& pool, const Plane& p, const float* in, const float* wt, const float* bias, float* out) {
  const int64_t taps = p.kh * p.kw, C = p.C;
  // The columns whose windows lie inside the image: 0 <= ox * sw - pw and
  // ox * sw - pw + (kw - 1) * dw < in_w.
  const int64_t ox_lo = std::min(p.out_w, ceil_div(p.pw, p.sw));
  const int64_t last = p.in_w - 1 - (p.kw - 1) * p.dw + p.pw;
  const int64_t ox_hi = std::max(ox_lo, last < 0 ? int64_t{0} : std::min(p.out_w, last / p.sw + 1));
  const bool k3x3 = p.kh == 3 && p.kw == 3;
  pool.parallel_for(p.batch * p.out_h, [&](int64_t row) {
    const int64_t n = row / p.out_h, oy = row % p.out_h, iy0 = oy * p.sh - p.ph;
    float* out_row = out + row * p.out_w * C;
    thread_local std::vector<const float*> src, w, rows;
    src.resize(static_cast<size_t>(taps));
    w.resize(static_cast<size_t>(taps));
    rows.resize(static_cast<size_t>(p.kh));
    auto border = [&](int64_t ox) {
      const int64_t ix0 = ox * p.sw - p.pw;
      int64_t count = 0;
      for (int64_t ky = 0; ky < p.kh; ++ky) {
        const int64_t iy = iy0 + ky * p.dh;
        if (iy < 0 || iy >= p.in_h) continue;
        for (int64_t kx = 0; kx < p.kw; ++kx) {
          const int64_t ix = ix0 + kx * p.dw;
          if (ix < 0 || ix >= p.in_w) continue;
          src[static_cast<size_t>(count)] = in + ((n * p.in_h + iy) * p.in_w + ix) * C;
          w[static_cast<size_t>(count)] = wt + (ky * p.kw + kx) * C;
          ++count;
        }
      }
      pixel(C, count, src.data(), w.data(), bias, out_row + ox * C);
    };
    if (C < kLanes || iy0 < 0 || iy0 + (p.kh - 1) * p.dh >= p.in_h) {
      for (int64_t ox = 0; ox < p.out_w; ++ox) border(ox);
      return;
    }
    for (int64_t ky = 0; ky < p.kh; ++ky)
      rows[static_cast<size_t>(ky)] = in + (n * p.in_h + iy0 + ky * p.dh) * p.in_w * C;
    for (int64_t ox = 0; ox < ox_lo; ++ox) border(ox);
    if (k3x3) interior<3, 3>(p, rows.data(), ox_lo, ox_hi, wt, bias, out_row);
    else interior<0, 0>(p, rows.data(), ox_lo, ox_hi, wt, bias, out_row);
    for (int64_t ox = ox_hi; ox < p.out_w; ++ox) border(ox);
  });
}

// din = the input gradient of the plane's convolution: each input pixel sums
// dout * w over the taps that read it; one task per input row.
void gather(ThreadPool& pool, const Plane& p, const float* dout, const float* wt, float* din) {
  const int64_t taps = p.kh * p.kw, C = p.C;
  pool.parallel_for(p.batch * p.in_h, [&](int64_t row) {
    const int64_t n = row / p.in_h, iy = row % p.in_h;
    thread_local std::vector<const float*> src, w;
    src.resize(static_cast<size_t>(taps));
    w.resize(static_cast<size_t>(taps));
    for (int64_t ix = 0; ix < p.in_w; ++ix) {
      int64_t count = 0;
      for (int64_t ky = 0; ky < p.kh; ++ky) {
        const int64_t ty = iy + p.ph - ky * p.dh;
        if (ty < 0 || ty % p.sh != 0 || ty / p.sh >= p.out_h) continue;
        for (int64_t kx = 0; kx < p.kw; ++kx) {
          const int64_t tx = ix + p.pw - kx * p.dw;
          if (tx < 0 || tx % p.sw != 0 || tx / p.sw >= p.out_w) continue;
          src[static_cast<size_t>(count)] = dout + ((n * p.out_h + ty / p.sh) * p.out_w + tx / p.sw) * C;
          w[static_cast<size_t>(count)] = wt + (ky * p.kw + kx) * C;
          ++count;
        }
      }
      pixel(C, count, src.data(), w.data(), nullptr, din + (row * p.in_w + ix) * C);
    }
  });
}

constexpr int64_t kPixelsPerTask = 256;

// dst[q, c * M + m] = src[q, c] for pixels q.
void expand(ThreadPool& pool, int64_t pixels, int64_t C, int64_t M, const float* src, float* dst) {
  pool.parallel_for(ceil_div(pixels, kPixelsPerTask), [&](int64_t task) {
    const int64_t end = std::min(pixels, (task + 1) * kPixelsPerTask);
    for (int64_t q = task * kPixelsPerTask; q < end; ++q)
      for (int64_t c = 0; c < C; ++c) std::fill_n(dst + (q * C + c) * M, M, src[q * C + c]);
  });
}

// dst[q, c] = sum_m src[q, c * M + m] for pixels q.
void reduce(ThreadPool& pool, int64_t pixels, int64_t C, int64_t M, const float* src, float* dst) {
  pool.parallel_for(ceil_div(pixels, kPixelsPerTask), [&](int64_t task) {
    const int64_t end = std::min(pixels, (task + 1) * kPixelsPerTask);
    for (int64_t q = task * kPixelsPerTask; q < end; ++q)
      for (int64_t c = 0; c < C; ++c) {
        const float* s = src + (q * C + c) * M;
        float acc = s[0];
        for (int64_t m = 1; m < M; ++m) acc += s[m];
        dst[q * C + c] = acc;
      }
  });
}

}  // namespace

bool applies(const Conv2dGeometry& g) { return g.groups > 1 && g.groups == g.in_c; }

void pack(const Conv2dGeometry& g, const float* weight, bool rotated, std::vector<float>& packed) {
  const int64_t taps = g.kernel_h * g.kernel_w, C = g.out_c;
  packed.assign(static_cast<size_t>(taps * C), 0.0f);
  for (int64_t o = 0; o < C; ++o)
    for (int64_t ky = 0; ky < g.kernel_h; ++ky)
      for (int64_t kx = 0; kx < g.kernel_w; ++kx) {
        const int64_t t = ky * g.kernel_w + kx, from = rotated ? taps - 1 - t : t;
        packed[static_cast<size_t>(t * C + o)] = weight[o * taps + from];
      }
}

bool backward_as_convolution(const Conv2dGeometry& g) {
  return g.stride_h == 1 && g.stride_w == 1 && g.pad_h <= g.dilation_h * (g.kernel_h - 1) &&
         g.pad_w <= g.dilation_w * (g.kernel_w - 1);
}

void forward(ThreadPool& pool, const Conv2dGeometry& g, const float* in, const float* packed, const float* bias,
             float* out, std::vector<float>& scratch) {
  const Plane p = forward_plane(g);
  const int64_t multiplier = g.out_c / g.in_c, pixels = g.batch * g.in_h * g.in_w;
  const float* src = in;
  if (multiplier > 1) {
    scratch.resize(static_cast<size_t>(pixels * g.out_c));
    expand(pool, pixels, g.in_c, multiplier, in, scratch.data());
    src = scratch.data();
  }
  convolve(pool, p, src, packed, bias, out);
}

void backward_input(ThreadPool& pool, const Conv2dGeometry& g, const float* dout, const float* packed, float* din,
                    std::vector<float>& scratch) {
  const Plane p = forward_plane(g);
  const int64_t multiplier = g.out_c / g.in_c, pixels = g.batch * g.in_h * g.in_w;
  float* dst = din;
  if (multiplier > 1) {
    scratch.resize(static_cast<size_t>(pixels * g.out_c));
    dst = scratch.data();
  }
  if (backward_as_convolution(g)) {
    const Plane q{g.batch, p.out_h, p.out_w, p.C, g.in_h, g.in_w, p.kh, p.kw, 1, 1,
                  p.dh * (p.kh - 1) - p.ph, p.dw * (p.kw - 1) - p.pw, p.dh, p.dw};
    convolve(pool, q, dout, packed, nullptr, dst);
  } else {
    gather(pool, p, dout, packed, dst);
  }
  if (multiplier > 1) reduce(pool, pixels, g.in_c, multiplier, scratch.data(), din);
}

}  // namespace igscope::depthwise
