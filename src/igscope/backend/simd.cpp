#include "igscope/backend/simd.h"

#include <algorithm>
#include <cstring>
#include <tuple>

#include "igscope/backend/simd_vec.h"
#include "igscope/error.h"

namespace igscope {

using simd::kLanes;
using simd::Vec;

namespace {

// Register tile of the GEMM micro-kernel: kMR rows by kNV vectors (kNR
// columns) of accumulators, which must fit the register file with room for
// kNV weight vectors and one broadcast: 16 of 32 zmm (AVX-512), 12 of 16
// ymm (AVX2). For simd128, V8 has 16 xmm registers and keeps some for
// itself: 4 x 2 (8 accumulators) measured fastest under node 20 (22 GFLOP/s
// per core for the IG workload, against 15 for 6 x 2, 16 for 8 x 1, 19 for
// 6 x 1, 21 for 3 x 2, 5 x 2 and 2 x 4).
#if defined(__AVX512F__)
constexpr int kMR = 8;
constexpr int kNV = 2;
constexpr int kDotMR = 8;
#elif defined(__AVX__)
constexpr int kMR = 6;
constexpr int kNV = 2;
constexpr int kDotMR = 6;
#else
constexpr int kMR = 4;
constexpr int kNV = 2;
constexpr int kDotMR = 4;
#endif
constexpr int kNR = kNV * kLanes;
constexpr int kMaxTile = std::max(kMR, kDotMR);

// Tasks per thread handed to the pool: enough for dynamic balancing.
constexpr int64_t kTasksPerThread = 8;

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// C[0..mr, 0..nr) = bias + A B for one kMR x kNR tile. a holds kMR rows of
// `taps` segment pointers (rows past mr repeat row 0); w is the tile's
// panel: taps * depth rows of kNR floats.
#if defined(__GNUC__) && !defined(__clang__)
__attribute__((optimize("unroll-loops")))
#endif
void gemm_tile(int64_t taps, int64_t depth, const float* const* a, const float* w, const float* bias, float* c,
               int64_t ldc, int64_t mr, int64_t nr) {
  Vec acc[kMR][kNV];
  for (int v = 0; v < kNV; ++v) {
    const Vec b0 = bias ? simd::load(bias + v * kLanes) : simd::zero();
    for (int r = 0; r < kMR; ++r) acc[r][v] = b0;
  }
  for (int64_t t = 0; t < taps; ++t) {
    const float* ar[kMR];
    for (int r = 0; r < kMR; ++r) ar[r] = a[r * taps + t];
    for (int64_t k = 0; k < depth; ++k) {
      Vec bv[kNV];
      for (int v = 0; v < kNV; ++v) bv[v] = simd::load(w + v * kLanes);
      w += kNR;
      for (int r = 0; r < kMR; ++r) {
        const Vec av = simd::splat(ar[r][k]);
        for (int v = 0; v < kNV; ++v) acc[r][v] += av * bv[v];
      }
    }
  }
  if (nr == kNR) {
    for (int r = 0; r < kMR; ++r) {
      if (r >= mr) break;
      for (int v = 0; v < kNV; ++v) simd::store(c + r * ldc + v * kLanes, acc[r][v]);
    }
  } else {
    for (int r = 0; r < kMR; ++r) {
      if (r >= mr) break;
      float row[kNR];
      for (int v = 0; v < kNV; ++v) simd::store(row + v * kLanes, acc[r][v]);
      std::memcpy(c + r * ldc, row, static_cast<size_t>(nr) * sizeof(float));
    }
  }
}

// c[r * ldc] = bias + dot(A row r, b) for r < mr: kDotMR rows, one output
// column, vectorised along each segment (depth floats, contiguous).
void dot_tile(int64_t taps, int64_t depth, const float* const* a, const float* b, float bias, float* c, int64_t ldc,
              int64_t mr) {
  Vec acc[kDotMR];
  float tail[kDotMR];
  for (int r = 0; r < kDotMR; ++r) {
    acc[r] = simd::zero();
    tail[r] = 0.0f;
  }
  const int64_t vec_end = depth / kLanes * kLanes;
  for (int64_t t = 0; t < taps; ++t) {
    const float* ar[kDotMR];
    for (int r = 0; r < kDotMR; ++r) ar[r] = a[r * taps + t];
    const float* bt = b + t * depth;
    for (int64_t k = 0; k < vec_end; k += kLanes) {
      const Vec bv = simd::load(bt + k);
      for (int r = 0; r < kDotMR; ++r) acc[r] += simd::load(ar[r] + k) * bv;
    }
    for (int64_t k = vec_end; k < depth; ++k)
      for (int r = 0; r < kDotMR; ++r) tail[r] += ar[r][k] * bt[k];
  }
  for (int r = 0; r < kDotMR && r < mr; ++r) c[r * ldc] = simd::horizontal_sum(acc[r]) + tail[r] + bias;
}

// The dot kernel pays off when the GEMM tile would be mostly padding.
bool use_dot(int64_t cols, int64_t depth) { return cols * 2 <= kNR && depth >= kLanes; }

// B[k, n] = value(k, n) for k < K, n < N, laid out for the kernel use_dot picks.
template <class Value>
void pack_b(SimdBackend::Packed& p, int64_t K, int64_t N, int64_t depth, Value value) {
  p.dot = use_dot(N, depth);
  if (p.dot) {
    p.b.assign(static_cast<size_t>(K * N), 0.0f);
    for (int64_t n = 0; n < N; ++n)
      for (int64_t k = 0; k < K; ++k) p.b[static_cast<size_t>(n * K + k)] = value(k, n);
  } else {
    const int64_t panels = ceil_div(N, kNR);
    p.b.assign(static_cast<size_t>(panels * K * kNR), 0.0f);
    for (int64_t pn = 0; pn < panels; ++pn)
      for (int64_t k = 0; k < K; ++k)
        for (int64_t j = 0; j < kNR && pn * kNR + j < N; ++j)
          p.b[static_cast<size_t>((pn * K + k) * kNR + j)] = value(k, pn * kNR + j);
  }
}

void pack_bias(SimdBackend::Packed& p, int64_t N, const float* bias) {
  p.bias.clear();
  if (!bias) return;
  p.bias.assign(static_cast<size_t>(p.dot ? N : ceil_div(N, kNR) * kNR), 0.0f);
  std::copy(bias, bias + N, p.bias.begin());
}

}  // namespace

const char* SimdBackend::isa() { return simd::kIsa; }

SimdBackend::SimdBackend(int threads) : pool_(threads) {}
SimdBackend::~SimdBackend() = default;

bool SimdBackend::PackId::operator<(const PackId& o) const {
  return std::tie(kind, weight, bias, dims) < std::tie(o.kind, o.weight, o.bias, o.dims);
}

template <class Fill>
const SimdBackend::Packed& SimdBackend::packed(const PackId& id, const ParamsKey& key, Fill fill) {
  if (!key.known()) {
    fill(scratch_);
    ++pack_count_;
    return scratch_;
  }
  auto it = cache_.find(id);
  if (it != cache_.end() && it->second.key == key) return it->second;
  // Entries for weights that no longer exist only cost memory; keep it bounded.
  if (it == cache_.end() && cache_.size() >= 64) cache_.clear();
  Packed& p = cache_[id];
  fill(p);
  p.key = key;
  ++pack_count_;
  return p;
}

const float* SimdBackend::zeros(int64_t count) {
  if (static_cast<int64_t>(zeros_.size()) < count) zeros_.assign(static_cast<size_t>(count), 0.0f);
  return zeros_.data();
}

namespace {
// Segments shorter than a vector (conv1 reads one channel per tap) leave the
// micro-kernel mostly loading pointers; such rows are gathered into a
// contiguous block first (a small im2col in L1) and run as one segment.
bool gather_rows(const SimdBackend::Packed& p, int64_t taps, int64_t depth) {
  return !p.dot && taps > 1 && depth < kLanes;
}
}  // namespace

template <class RowPtrs>
void SimdBackend::gemm(const GemmShape& s, const Packed& p, float* out, RowPtrs row_ptrs) {
  if (s.rows == 0) return;
  const int64_t K = s.taps * s.depth;
  const int mr_tile = p.dot ? kDotMR : kMR;
  const int64_t row_blocks = ceil_div(s.rows, mr_tile);
  const int64_t col_blocks = p.dot ? s.cols : ceil_div(s.cols, kNR);
  // Split rows into groups when there are many; otherwise rows x column groups.
  const int64_t target = pool_.threads() == 1 ? 1 : pool_.threads() * kTasksPerThread;
  int64_t blocks_per_task = 1, col_groups = 1;
  if (row_blocks >= target) {
    blocks_per_task = ceil_div(row_blocks, target);
  } else {
    col_groups = std::min(col_blocks, ceil_div(target, row_blocks));
  }
  const int64_t row_tasks = ceil_div(row_blocks, blocks_per_task);
  const int64_t cols_per_group = ceil_div(col_blocks, col_groups);
  col_groups = ceil_div(col_blocks, cols_per_group);
  const bool gather = gather_rows(p, s.taps, s.depth);

  pool_.parallel_for(row_tasks * col_groups, [&](int64_t task) {
    const int64_t rt = task / col_groups, cg = task % col_groups;
    const int64_t cb_begin = cg * cols_per_group, cb_end = std::min(col_blocks, cb_begin + cols_per_group);
    thread_local std::vector<const float*> ptrs;
    thread_local std::vector<float> rows;
    ptrs.resize(static_cast<size_t>(kMaxTile * s.taps));
    if (gather) rows.resize(static_cast<size_t>(kMR * K));
    const int64_t rb_end = std::min(row_blocks, (rt + 1) * blocks_per_task);
    for (int64_t rb = rt * blocks_per_task; rb < rb_end; ++rb) {
      const int64_t m0 = rb * mr_tile, mr = std::min<int64_t>(mr_tile, s.rows - m0);
      row_ptrs(m0, mr, ptrs.data());
      for (int64_t r = mr; r < mr_tile; ++r) std::copy_n(ptrs.data(), s.taps, ptrs.data() + r * s.taps);
      int64_t taps = s.taps, depth = s.depth;
      if (gather) {
        for (int64_t r = 0; r < mr; ++r)
          for (int64_t t = 0; t < s.taps; ++t)
            std::copy_n(ptrs[static_cast<size_t>(r * s.taps + t)], s.depth, rows.data() + r * K + t * s.depth);
        for (int64_t r = 0; r < kMR; ++r) ptrs[static_cast<size_t>(r)] = rows.data() + std::min(r, mr - 1) * K;
        taps = 1;
        depth = K;
      }
      float* c = out + m0 * s.cols;
      for (int64_t cb = cb_begin; cb < cb_end; ++cb) {
        if (p.dot) {
          dot_tile(taps, depth, ptrs.data(), p.b.data() + cb * K,
                   p.bias.empty() ? 0.0f : p.bias[static_cast<size_t>(cb)], c + cb, s.cols, mr);
        } else {
          gemm_tile(taps, depth, ptrs.data(), p.b.data() + cb * K * kNR,
                    p.bias.empty() ? nullptr : p.bias.data() + cb * kNR, c + cb * kNR, s.cols, mr,
                    std::min<int64_t>(kNR, s.cols - cb * kNR));
        }
      }
    }
  });
}

void SimdBackend::conv2d_forward(const Conv2dGeometry& g, const float* in, const float* weight, const float* bias,
                                 float* out, const ParamsKey& key) {
  check_conv2d_geometry(g, "conv2d_forward");
  const int64_t taps = g.kernel_h * g.kernel_w, C = g.in_c, K = taps * C, N = g.out_c;
  const Packed& p = packed({PackKind::ConvForward, weight, bias, {g.out_c, g.in_c, g.kernel_h, g.kernel_w}}, key,
                           [&](Packed& q) {
                             // k = (ky * kw + kx) * in_c + c
                             pack_b(q, K, N, C, [&](int64_t k, int64_t n) {
                               const int64_t t = k / C, c = k % C;
                               return weight[(n * C + c) * taps + t];
                             });
                             pack_bias(q, N, bias);
                           });
  const int64_t oh = g.out_h(), ow = g.out_w();
  const float* zero = zeros(C);
  // Offsets of the taps from the window's top-left element, for windows that
  // lie inside the image (most of them): no bounds checks there.
  std::vector<int64_t> tap_offset(static_cast<size_t>(taps));
  for (int64_t ky = 0; ky < g.kernel_h; ++ky)
    for (int64_t kx = 0; kx < g.kernel_w; ++kx)
      tap_offset[static_cast<size_t>(ky * g.kernel_w + kx)] = (ky * g.in_w + kx) * C;
  gemm({g.batch * oh * ow, N, taps, C}, p, out, [&](int64_t m0, int64_t count, const float** ptrs) {
    // Output pixel (n, oy, ox) of row m0, then step along the rows.
    int64_t ox = m0 % ow, oy = m0 / ow % oh, n = m0 / (oh * ow);
    for (int64_t r = 0; r < count; ++r) {
      const int64_t iy0 = oy * g.stride_h - g.pad_h, ix0 = ox * g.stride_w - g.pad_w;
      if (iy0 >= 0 && iy0 + g.kernel_h <= g.in_h && ix0 >= 0 && ix0 + g.kernel_w <= g.in_w) {
        const float* corner = in + ((n * g.in_h + iy0) * g.in_w + ix0) * C;
        for (int64_t t = 0; t < taps; ++t) *ptrs++ = corner + tap_offset[static_cast<size_t>(t)];
      } else {
        for (int64_t ky = 0; ky < g.kernel_h; ++ky) {
          const int64_t iy = iy0 + ky;
          for (int64_t kx = 0; kx < g.kernel_w; ++kx) {
            const int64_t ix = ix0 + kx;
            const bool inside = iy >= 0 && iy < g.in_h && ix >= 0 && ix < g.in_w;
            *ptrs++ = inside ? in + ((n * g.in_h + iy) * g.in_w + ix) * C : zero;
          }
        }
      }
      if (++ox == ow) {
        ox = 0;
        if (++oy == oh) {
          oy = 0;
          ++n;
        }
      }
    }
  });
}

void SimdBackend::conv2d_backward_input(const Conv2dGeometry& g, const float* dout, const float* weight, float* din,
                                        const ParamsKey& key) {
  check_conv2d_geometry(g, "conv2d_backward_input");
  // A transposed convolution: din[n, iy, ix, i] gathers dout[n, oy, ox, o] *
  // w[o, i, ky, kx] over the taps with iy = oy * stride - pad + ky.
  const int64_t taps = g.kernel_h * g.kernel_w, C = g.out_c, K = taps * C, N = g.in_c;
  const Packed& p =
      packed({PackKind::ConvBackwardInput, weight, nullptr, {g.out_c, g.in_c, g.kernel_h, g.kernel_w}}, key,
             [&](Packed& q) {
               // k = (ky * kw + kx) * out_c + o
               pack_b(q, K, N, C, [&](int64_t k, int64_t n) {
                 const int64_t t = k / C, o = k % C;
                 return weight[(o * N + n) * taps + t];
               });
               q.bias.clear();
             });
  const int64_t oh = g.out_h(), ow = g.out_w();
  const float* zero = zeros(C);
  // With stride 1, tap (ky, kx) of input pixel (iy, ix) reads output pixel
  // (iy + pad - ky, ix + pad - kx): a fixed offset back from the window's
  // corner when the whole window lies inside the output (no checks there).
  const bool unit_stride = g.stride_h == 1 && g.stride_w == 1;
  std::vector<int64_t> tap_offset(static_cast<size_t>(taps));
  for (int64_t ky = 0; ky < g.kernel_h; ++ky)
    for (int64_t kx = 0; kx < g.kernel_w; ++kx)
      tap_offset[static_cast<size_t>(ky * g.kernel_w + kx)] = (ky * ow + kx) * C;
  gemm({g.batch * g.in_h * g.in_w, N, taps, C}, p, din, [&](int64_t m0, int64_t count, const float** ptrs) {
    int64_t ix = m0 % g.in_w, iy = m0 / g.in_w % g.in_h, n = m0 / (g.in_h * g.in_w);
    for (int64_t r = 0; r < count; ++r) {
      const int64_t ty0 = iy + g.pad_h, tx0 = ix + g.pad_w;  // the tap (0, 0) target
      if (unit_stride && ty0 - (g.kernel_h - 1) >= 0 && ty0 < oh && tx0 - (g.kernel_w - 1) >= 0 && tx0 < ow) {
        const float* corner = dout + ((n * oh + ty0) * ow + tx0) * C;
        for (int64_t t = 0; t < taps; ++t) *ptrs++ = corner - tap_offset[static_cast<size_t>(t)];
      } else {
        for (int64_t ky = 0; ky < g.kernel_h; ++ky) {
          const int64_t ty = ty0 - ky;
          const bool row_ok = ty >= 0 && ty % g.stride_h == 0 && ty / g.stride_h < oh;
          for (int64_t kx = 0; kx < g.kernel_w; ++kx) {
            const int64_t tx = tx0 - kx;
            const bool ok = row_ok && tx >= 0 && tx % g.stride_w == 0 && tx / g.stride_w < ow;
            *ptrs++ = ok ? dout + ((n * oh + ty / g.stride_h) * ow + tx / g.stride_w) * C : zero;
          }
        }
      }
      if (++ix == g.in_w) {
        ix = 0;
        if (++iy == g.in_h) {
          iy = 0;
          ++n;
        }
      }
    }
  });
}

void SimdBackend::dense_forward(int64_t batch, int64_t in_f, int64_t out_f, const float* x, const float* weight,
                                const float* bias, float* y, const ParamsKey& key) {
  check_dense_sizes(batch, in_f, out_f, "dense_forward");
  const Packed& p = packed({PackKind::DenseForward, weight, bias, {out_f, in_f, 0, 0}}, key, [&](Packed& q) {
    pack_b(q, in_f, out_f, in_f, [&](int64_t k, int64_t n) { return weight[n * in_f + k]; });
    pack_bias(q, out_f, bias);
  });
  gemm({batch, out_f, 1, in_f}, p, y, [&](int64_t m0, int64_t count, const float** ptrs) {
    for (int64_t r = 0; r < count; ++r) ptrs[r] = x + (m0 + r) * in_f;
  });
}

void SimdBackend::dense_backward_input(int64_t batch, int64_t in_f, int64_t out_f, const float* dy,
                                       const float* weight, float* dx, const ParamsKey& key) {
  check_dense_sizes(batch, in_f, out_f, "dense_backward_input");
  const Packed& p = packed({PackKind::DenseBackwardInput, weight, nullptr, {out_f, in_f, 0, 0}}, key, [&](Packed& q) {
    pack_b(q, out_f, in_f, out_f, [&](int64_t k, int64_t n) { return weight[k * in_f + n]; });
    q.bias.clear();
  });
  gemm({batch, in_f, 1, out_f}, p, dx, [&](int64_t m0, int64_t count, const float** ptrs) {
    for (int64_t r = 0; r < count; ++r) ptrs[r] = dy + (m0 + r) * out_f;
  });
}

void SimdBackend::maxpool2d_forward(const Pool2dGeometry& g, const float* in, float* out, int64_t* argmax) {
  check_pool2d_geometry(g, "maxpool2d_forward");
  const int64_t oh = g.out_h(), ow = g.out_w(), C = g.channels, window = g.kernel_h * g.kernel_w;
  const int64_t vec_end = C / kLanes * kLanes;
  pool_.parallel_for(g.batch * oh, [&](int64_t row) {
    const int64_t n = row / oh, oy = row % oh;
    thread_local std::vector<int64_t> base;  // flat index of each window element's channel 0
    base.resize(static_cast<size_t>(window));
    for (int64_t ox = 0; ox < ow; ++ox) {
      for (int64_t ky = 0; ky < g.kernel_h; ++ky)
        for (int64_t kx = 0; kx < g.kernel_w; ++kx)
          base[static_cast<size_t>(ky * g.kernel_w + kx)] =
              ((n * g.in_h + oy * g.stride_h + ky) * g.in_w + ox * g.stride_w + kx) * C;
      float* o = out + ((n * oh + oy) * ow + ox) * C;
      int64_t* arg = argmax + ((n * oh + oy) * ow + ox) * C;
      // Window elements in row-major order; a strict '>' keeps the first
      // maximum on ties. Lanes carry the winning element's number.
      for (int64_t c = 0; c < vec_end; c += kLanes) {
        Vec best = simd::load(in + base[0] + c);
        simd::IntVec win = simd::IntVec{};
        for (int64_t w = 1; w < window; ++w) {
          const Vec v = simd::load(in + base[static_cast<size_t>(w)] + c);
          const simd::IntVec greater = v > best;
          best = greater ? v : best;
          win = greater ? static_cast<int32_t>(w) - simd::IntVec{} : win;
        }
        simd::store(o + c, best);
        for (int lane = 0; lane < kLanes; ++lane) arg[c + lane] = base[static_cast<size_t>(win[lane])] + c + lane;
      }
      for (int64_t c = vec_end; c < C; ++c) {
        float best = in[base[0] + c];
        int64_t best_index = base[0] + c;
        for (int64_t w = 1; w < window; ++w) {
          const float v = in[base[static_cast<size_t>(w)] + c];
          if (v > best) {
            best = v;
            best_index = base[static_cast<size_t>(w)] + c;
          }
        }
        o[c] = best;
        arg[c] = best_index;
      }
    }
  });
}

void SimdBackend::maxpool2d_backward(const Pool2dGeometry& g, const float* dout, const int64_t* argmax, float* din) {
  check_pool2d_geometry(g, "maxpool2d_backward");
  const int64_t in_per_image = g.in_h * g.in_w * g.channels;
  const int64_t out_per_image = g.out_h() * g.out_w() * g.channels;
  // Every argmax of image n lies in image n, so images are independent.
  pool_.parallel_for(g.batch, [&](int64_t n) {
    std::fill(din + n * in_per_image, din + (n + 1) * in_per_image, 0.0f);
    for (int64_t o = n * out_per_image; o < (n + 1) * out_per_image; ++o) din[argmax[o]] += dout[o];
  });
}

namespace {
constexpr int64_t kElementwiseChunk = 1 << 15;
}

void SimdBackend::relu_forward(int64_t count, const float* in, float* out) {
  pool_.parallel_for(ceil_div(count, kElementwiseChunk), [&](int64_t chunk) {
    const int64_t begin = chunk * kElementwiseChunk, end = std::min(count, begin + kElementwiseChunk);
    int64_t i = begin;
    for (; i + kLanes <= end; i += kLanes) {
      const Vec v = simd::load(in + i);
      simd::store(out + i, v > 0.0f ? v : simd::zero());
    }
    for (; i < end; ++i) out[i] = in[i] > 0.0f ? in[i] : 0.0f;
  });
}

void SimdBackend::relu_backward(int64_t count, const float* out, const float* dout, float* din) {
  pool_.parallel_for(ceil_div(count, kElementwiseChunk), [&](int64_t chunk) {
    const int64_t begin = chunk * kElementwiseChunk, end = std::min(count, begin + kElementwiseChunk);
    int64_t i = begin;
    for (; i + kLanes <= end; i += kLanes) {
      const Vec y = simd::load(out + i);
      simd::store(din + i, y > 0.0f ? simd::load(dout + i) : simd::zero());
    }
    for (; i < end; ++i) din[i] = out[i] > 0.0f ? dout[i] : 0.0f;
  });
}

}  // namespace igscope
