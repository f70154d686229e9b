#include "igscope/backend/simd.h"

#include <algorithm>
#include <tuple>
#include <vector>
#include <type_traits>

#include "igscope/backend/simd_depthwise.h"
#include "igscope/backend/simd_gemm.h"
#include "igscope/backend/simd_winograd.h"
#include "igscope/error.h"

namespace igscope {

using simd::ceil_div;
using simd::dot_tile;
using simd::gemm_tile;
using simd::kDotMR;
using simd::kLanes;
using simd::kMaxTile;
using simd::kMR;
using simd::kNR;
using simd::kTasksPerThread;
using simd::pack_b;
using simd::pack_bias;
using simd::pack_groups;
using simd::Vec;

const char* SimdBackend::isa() { return simd::kIsa; }

bool SimdBackend::uses_winograd(const Conv2dGeometry& g, bool backward_input) {
  return winograd::applies(g, backward_input);
}

int SimdBackend::winograd_tile(const Conv2dGeometry& g, bool backward_input) {
  return winograd::tile_size(g.in_h, g.in_w, backward_input);
}

bool SimdBackend::uses_depthwise(const Conv2dGeometry& g) { return depthwise::applies(g); }

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
// Packed weights of more floats than this (256 KiB) do not stay in a core's
// cache from one row block to the next.
constexpr int64_t kLargeWeights = 1 << 16;
}  // namespace

template <class RowPtrs, class OutRow>
void SimdBackend::gemm(const GemmShape& s, const Packed& p, float* out, RowPtrs row_ptrs, OutRow out_row) {
  constexpr bool scattered = !std::is_same_v<OutRow, ContiguousRows>;
  if (s.rows == 0) return;
  const int64_t K = s.taps * s.depth, ldc = s.groups * s.cols;
  const int mr_tile = p.dot ? kDotMR : kMR;
  const int64_t row_blocks = ceil_div(s.rows, mr_tile);
  const int64_t col_blocks = p.dot ? s.cols : ceil_div(s.cols, kNR);
  // Tasks take groups of row blocks when there are many, otherwise groups
  // of column blocks with every row; with several GEMMs (conv groups), each
  // gets its share of the tasks.
  const int64_t target =
      pool_.threads() == 1 ? 1 : std::max<int64_t>(1, ceil_div(pool_.threads() * kTasksPerThread, s.groups));
  int64_t row_groups = 1, col_groups = 1;
  if (row_blocks >= target) row_groups = target;
  else col_groups = std::min(col_blocks, target);
  const int64_t rows_per_group = ceil_div(row_blocks, row_groups), cols_per_group = ceil_div(col_blocks, col_groups);
  row_groups = ceil_div(row_blocks, rows_per_group);
  col_groups = ceil_div(col_blocks, cols_per_group);
  const int64_t tasks_per_gemm = row_groups * col_groups;
  const bool gather = gather_rows(p, s.taps, s.depth);
  // Within a task, large weights (dense layers: megabytes) are walked once,
  // column block by column block, each block serving all the task's rows
  // while it is in cache; small ones are re-read for each row block, whose
  // pointers (or gathered rows) are then set up once.
  const bool columns_outer = !gather && K * s.cols > kLargeWeights;

  pool_.parallel_for(s.groups * tasks_per_gemm, [&](int64_t task) {
    const int64_t group = task / tasks_per_gemm, rg = task % tasks_per_gemm / col_groups, cg = task % col_groups;
    const int64_t rb_begin = rg * rows_per_group, rb_end = std::min(row_blocks, rb_begin + rows_per_group);
    const int64_t cb_begin = cg * cols_per_group, cb_end = std::min(col_blocks, cb_begin + cols_per_group);
    const float* b = p.b.data() + group * p.group_b;
    const float* bias = p.bias.empty() ? nullptr : p.bias.data() + group * p.group_bias;
    float* group_out = scattered ? nullptr : out + group * s.cols;
    thread_local std::vector<const float*> ptrs;
    thread_local std::vector<float> rows;
    ptrs.resize(static_cast<size_t>(kMaxTile * s.taps));
    if (gather) rows.resize(static_cast<size_t>(kMR * K));
    int64_t taps = s.taps, depth = s.depth;
    // Points ptrs at the rows of row block rb.
    auto set_rows = [&](int64_t rb) {
      const int64_t m0 = rb * mr_tile, mr = std::min<int64_t>(mr_tile, s.rows - m0);
      row_ptrs(group, m0, mr, ptrs.data());
      for (int64_t r = mr; r < mr_tile; ++r) std::copy_n(ptrs.data(), s.taps, ptrs.data() + r * s.taps);
      if (gather) {
        // Element by element: a copy call per segment would cost more than
        // the few floats it moves (conv1 gathers one float per tap).
        for (int64_t r = 0; r < mr; ++r)
          for (int64_t t = 0; t < s.taps; ++t) {
            const float* src = ptrs[static_cast<size_t>(r * s.taps + t)];
            float* dst = rows.data() + r * K + t * s.depth;
            if (s.depth == 1) *dst = *src;
            else for (int64_t d = 0; d < s.depth; ++d) dst[d] = src[d];
          }
        for (int64_t r = 0; r < kMR; ++r) ptrs[static_cast<size_t>(r)] = rows.data() + std::min(r, mr - 1) * K;
        taps = 1;
        depth = K;
      }
    };
    auto tile = [&](int64_t rb, int64_t cb) {
      const int64_t m0 = rb * mr_tile, mr = std::min<int64_t>(mr_tile, s.rows - m0);
      const int64_t nr = p.dot ? 1 : std::min<int64_t>(kNR, s.cols - cb * kNR);
      const int64_t col0 = p.dot ? cb : cb * kNR;
      float buffer[kMaxTile * kNR];
      float* c = scattered ? buffer : group_out + m0 * ldc + col0;
      const int64_t ld = scattered ? kNR : ldc;
      if (p.dot) {
        dot_tile(taps, depth, ptrs.data(), b + cb * K, bias ? bias[cb] : 0.0f, c, ld, mr);
      } else {
        gemm_tile(taps, depth, ptrs.data(), b + cb * K * kNR, bias ? bias + cb * kNR : nullptr, c, ld, mr, nr);
      }
      if constexpr (scattered) {
        for (int64_t r = 0; r < mr; ++r)
          std::copy_n(buffer + r * kNR, nr, out_row(m0 + r) + group * s.cols + col0);
      }
    };
    if (columns_outer) {
      for (int64_t cb = cb_begin; cb < cb_end; ++cb)
        for (int64_t rb = rb_begin; rb < rb_end; ++rb) {
          set_rows(rb);
          tile(rb, cb);
        }
    } else {
      for (int64_t rb = rb_begin; rb < rb_end; ++rb) {
        set_rows(rb);
        for (int64_t cb = cb_begin; cb < cb_end; ++cb) tile(rb, cb);
      }
    }
  });
}

void SimdBackend::conv2d_forward(const Conv2dGeometry& g, const float* in, const float* weight, const float* bias,
                                 float* out, const ParamsKey& key) {
  check_conv2d_geometry(g, "conv2d_forward");
  const std::array<int64_t, 5> dims{g.out_c, g.group_in_c(), g.kernel_h, g.kernel_w, g.groups};
  if (winograd::applies(g, false)) {
    // The packed kernels depend on the channels and the tile size.
    const int tile = winograd::tile_size(g.in_h, g.in_w, false);
    const Packed& p = packed({PackKind::WinogradForward, weight, bias, {g.out_c, g.in_c, tile, 0, 0}}, key,
                             [&](Packed& q) {
                               winograd::pack_forward(g, tile, weight, q.b);
                               q.bias.clear();
                               if (bias) q.bias.assign(bias, bias + g.out_c);
                             });
    winograd::convolve(pool_, tile, p.b, g.in_c, g.out_c, g.batch, g.in_h, g.in_w, in,
                       p.bias.empty() ? nullptr : p.bias.data(), zeros(g.in_c), out);
    return;
  }
  if (depthwise::applies(g)) {
    const Packed& p = packed({PackKind::DepthwiseForward, weight, bias, dims}, key, [&](Packed& q) {
      depthwise::pack(g, weight, false, q.b);
      q.bias.clear();
      if (bias) q.bias.assign(bias, bias + g.out_c);
    });
    depthwise::forward(pool_, g, in, p.b.data(), p.bias.empty() ? nullptr : p.bias.data(), out, depthwise_scratch_);
    return;
  }
  // One GEMM per group: group grp's output channels [grp * N, (grp + 1) * N)
  // read its input channels [grp * C, (grp + 1) * C).
  const int64_t taps = g.kernel_h * g.kernel_w, C = g.group_in_c(), K = taps * C, N = g.group_out_c();
  const int64_t pixel = g.in_c;  // floats per input pixel
  const Packed& p = packed({PackKind::ConvForward, weight, bias, dims}, key, [&](Packed& q) {
    // k = (ky * kw + kx) * C + c
    pack_groups(
        q, g.groups, K, N, C,
        [&](int64_t grp, int64_t k, int64_t n) {
          const int64_t t = k / C, c = k % C;
          return weight[((grp * N + n) * C + c) * taps + t];
        },
        bias);
  });
  const int64_t oh = g.out_h(), ow = g.out_w();
  const float* zero = zeros(C);
  // Offsets of the taps from the window's top-left element, for windows that
  // lie inside the image (most of them): no bounds checks there.
  std::vector<int64_t> tap_offset(static_cast<size_t>(taps));
  for (int64_t ky = 0; ky < g.kernel_h; ++ky)
    for (int64_t kx = 0; kx < g.kernel_w; ++kx)
      tap_offset[static_cast<size_t>(ky * g.kernel_w + kx)] = (ky * g.dilation_h * g.in_w + kx * g.dilation_w) * pixel;
  const int64_t extent_h = g.extent_h(), extent_w = g.extent_w();
  gemm({g.batch * oh * ow, N, taps, C, g.groups}, p, out,
       [&](int64_t grp, int64_t m0, int64_t count, const float** ptrs) {
         const float* base = in + grp * C;
         // Output pixel (n, oy, ox) of row m0, then step along the rows.
         int64_t ox = m0 % ow, oy = m0 / ow % oh, n = m0 / (oh * ow);
         for (int64_t r = 0; r < count; ++r) {
           const int64_t iy0 = oy * g.stride_h - g.pad_h, ix0 = ox * g.stride_w - g.pad_w;
           if (iy0 >= 0 && iy0 + extent_h <= g.in_h && ix0 >= 0 && ix0 + extent_w <= g.in_w) {
             const float* corner = base + ((n * g.in_h + iy0) * g.in_w + ix0) * pixel;
             for (int64_t t = 0; t < taps; ++t) *ptrs++ = corner + tap_offset[static_cast<size_t>(t)];
           } else {
             for (int64_t ky = 0; ky < g.kernel_h; ++ky) {
               const int64_t iy = iy0 + ky * g.dilation_h;
               for (int64_t kx = 0; kx < g.kernel_w; ++kx) {
                 const int64_t ix = ix0 + kx * g.dilation_w;
                 const bool inside = iy >= 0 && iy < g.in_h && ix >= 0 && ix < g.in_w;
                 *ptrs++ = inside ? base + ((n * g.in_h + iy) * g.in_w + ix) * pixel : zero;
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
  const std::array<int64_t, 5> dims{g.out_c, g.group_in_c(), g.kernel_h, g.kernel_w, g.groups};
  if (winograd::applies(g, true)) {
    const int tile = winograd::tile_size(g.in_h, g.in_w, true);
    const Packed& p = packed({PackKind::WinogradBackwardInput, weight, nullptr, {g.out_c, g.in_c, tile, 0, 0}}, key,
                             [&](Packed& q) {
                               winograd::pack_backward_input(g, tile, weight, q.b);
                               q.bias.clear();
                             });
    winograd::convolve(pool_, tile, p.b, g.out_c, g.in_c, g.batch, g.in_h, g.in_w, dout, nullptr, zeros(g.out_c), din);
    return;
  }
  if (depthwise::applies(g)) {
    const bool rotated = depthwise::backward_as_convolution(g);
    const PackKind kind = rotated ? PackKind::DepthwiseRotated : PackKind::DepthwiseGather;
    const Packed& p = packed({kind, weight, nullptr, dims}, key, [&](Packed& q) {
      depthwise::pack(g, weight, rotated, q.b);
      q.bias.clear();
    });
    depthwise::backward_input(pool_, g, dout, p.b.data(), din, depthwise_scratch_);
    return;
  }
  // A transposed convolution per group: din[n, iy, ix, grp * N + i] gathers
  // dout[n, oy, ox, grp * C + o] * w[grp * C + o, i, ky, kx] over the taps
  // with iy = oy * stride - pad + ky * dilation.
  if (g.stride_h > 1 || g.stride_w > 1) {
    conv2d_backward_input_strided(g, dout, weight, din, key);
    return;
  }
  const int64_t taps = g.kernel_h * g.kernel_w, C = g.group_out_c(), K = taps * C, N = g.group_in_c();
  const int64_t pixel = g.out_c;  // floats per dout pixel
  const Packed& p = packed({PackKind::ConvBackwardInput, weight, nullptr, dims}, key, [&](Packed& q) {
    // k = (ky * kw + kx) * C + o
    pack_groups(
        q, g.groups, K, N, C,
        [&](int64_t grp, int64_t k, int64_t n) {
          const int64_t t = k / C, o = k % C;
          return weight[((grp * C + o) * N + n) * taps + t];
        },
        nullptr);
  });
  const int64_t oh = g.out_h(), ow = g.out_w();
  const float* zero = zeros(C);
  // Tap (ky, kx) of input pixel (iy, ix) reads output pixel (iy + pad - ky *
  // dilation, ix + pad - kx * dilation): a fixed offset back from the
  // window's corner when the whole window lies inside the output (no checks
  // there).
  std::vector<int64_t> tap_offset(static_cast<size_t>(taps));
  for (int64_t ky = 0; ky < g.kernel_h; ++ky)
    for (int64_t kx = 0; kx < g.kernel_w; ++kx)
      tap_offset[static_cast<size_t>(ky * g.kernel_w + kx)] = (ky * g.dilation_h * ow + kx * g.dilation_w) * pixel;
  const int64_t reach_h = g.extent_h() - 1, reach_w = g.extent_w() - 1;
  gemm({g.batch * g.in_h * g.in_w, N, taps, C, g.groups}, p, din,
       [&](int64_t grp, int64_t m0, int64_t count, const float** ptrs) {
         const float* base = dout + grp * C;
         int64_t ix = m0 % g.in_w, iy = m0 / g.in_w % g.in_h, n = m0 / (g.in_h * g.in_w);
         for (int64_t r = 0; r < count; ++r) {
           const int64_t ty0 = iy + g.pad_h, tx0 = ix + g.pad_w;  // the tap (0, 0) target
           if (ty0 - reach_h >= 0 && ty0 < oh && tx0 - reach_w >= 0 && tx0 < ow) {
             const float* corner = base + ((n * oh + ty0) * ow + tx0) * pixel;
             for (int64_t t = 0; t < taps; ++t) *ptrs++ = corner - tap_offset[static_cast<size_t>(t)];
           } else {
             for (int64_t ky = 0; ky < g.kernel_h; ++ky) {
               const int64_t ty = ty0 - ky * g.dilation_h;
               const bool row_ok = ty >= 0 && ty < oh;
               for (int64_t kx = 0; kx < g.kernel_w; ++kx) {
                 const int64_t tx = tx0 - kx * g.dilation_w;
                 const bool ok = row_ok && tx >= 0 && tx < ow;
                 *ptrs++ = ok ? base + ((n * oh + ty) * ow + tx) * pixel : zero;
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

// Strided: input pixel (iy, ix) receives tap (ky, kx) only where iy + pad_h
// - ky * dilation_h is a multiple of stride_h (and likewise in x). So the
// pixels fall into stride_h x stride_w phases by (iy + pad_h) mod stride_h
// and (ix + pad_w) mod stride_w, each phase with its own taps, and each
// phase is one GEMM over its pixels and taps only (a stride-2 3x3
// convolution: 4, 2, 2 and 1 taps instead of 9 for every pixel; a stride-2
// 1x1 one: 1 tap for a quarter of the pixels, the rest zero).
void SimdBackend::conv2d_backward_input_strided(const Conv2dGeometry& g, const float* dout, const float* weight,
                                                float* din, const ParamsKey& key) {
  const int64_t taps = g.kernel_h * g.kernel_w, C = g.group_out_c(), N = g.group_in_c();
  const int64_t pixel = g.out_c;  // floats per dout pixel
  const int64_t oh = g.out_h(), ow = g.out_w();
  const float* zero = zeros(C);
  // The kernel rows (columns) of phase a: k with k * dilation = a (mod stride).
  auto phase_taps = [](int64_t kernel, int64_t dilation, int64_t stride, int64_t a) {
    std::vector<int64_t> ks;
    for (int64_t k = 0; k < kernel; ++k)
      if (k * dilation % stride == a) ks.push_back(k);
    return ks;
  };
  for (int64_t ay = 0; ay < g.stride_h; ++ay)
    for (int64_t ax = 0; ax < g.stride_w; ++ax) {
      // The phase's pixels: iy = iy0 + j * stride_h, ix = ix0 + i * stride_w.
      const int64_t iy0 = ((ay - g.pad_h) % g.stride_h + g.stride_h) % g.stride_h;
      const int64_t ix0 = ((ax - g.pad_w) % g.stride_w + g.stride_w) % g.stride_w;
      const int64_t rows_y = iy0 < g.in_h ? ceil_div(g.in_h - iy0, g.stride_h) : 0;
      const int64_t cols_x = ix0 < g.in_w ? ceil_div(g.in_w - ix0, g.stride_w) : 0;
      const int64_t rows = g.batch * rows_y * cols_x;
      if (rows == 0) continue;
      auto out_row = [&](int64_t m) {
        const int64_t i = m % cols_x, j = m / cols_x % rows_y, n = m / (cols_x * rows_y);
        return din + ((n * g.in_h + iy0 + j * g.stride_h) * g.in_w + ix0 + i * g.stride_w) * g.in_c;
      };
      const std::vector<int64_t> kys = phase_taps(g.kernel_h, g.dilation_h, g.stride_h, ay);
      const std::vector<int64_t> kxs = phase_taps(g.kernel_w, g.dilation_w, g.stride_w, ax);
      const int64_t phase_taps_n = static_cast<int64_t>(kys.size() * kxs.size());
      if (phase_taps_n == 0) {  // no tap reaches these pixels
        const int64_t per_image = rows_y * cols_x;
        pool_.parallel_for(g.batch, [&](int64_t n) {
          for (int64_t m = n * per_image; m < (n + 1) * per_image; ++m) std::fill_n(out_row(m), g.in_c, 0.0f);
        });
        continue;
      }
      std::vector<int64_t> tap_index;  // the phase's taps in the full kernel, row-major
      for (int64_t ky : kys)
        for (int64_t kx : kxs) tap_index.push_back(ky * g.kernel_w + kx);
      // Packed per phase: the phase and what decides its taps.
      const std::array<int64_t, 5> dims{g.out_c, g.group_in_c(), g.groups, (g.kernel_h << 32) | (g.kernel_w << 16) | (ay * g.stride_w + ax),
                                        (g.stride_h << 48) | (g.stride_w << 32) | (g.dilation_h << 16) | g.dilation_w};
      const int64_t K = phase_taps_n * C;
      const Packed& p = packed({PackKind::ConvBackwardInputPhase, weight, nullptr, dims}, key, [&](Packed& q) {
        pack_groups(
            q, g.groups, K, N, C,
            [&](int64_t grp, int64_t k, int64_t n) {
              const int64_t t = tap_index[static_cast<size_t>(k / C)], o = k % C;
              return weight[((grp * C + o) * N + n) * taps + t];
            },
            nullptr);
      });
      gemm(
          {rows, N, phase_taps_n, C, g.groups}, p, nullptr,
          [&](int64_t grp, int64_t m0, int64_t count, const float** ptrs) {
            const float* base = dout + grp * C;
            for (int64_t m = m0; m < m0 + count; ++m) {
              const int64_t i = m % cols_x, j = m / cols_x % rows_y, n = m / (cols_x * rows_y);
              const int64_t ty0 = iy0 + j * g.stride_h + g.pad_h, tx0 = ix0 + i * g.stride_w + g.pad_w;
              for (int64_t ky : kys) {
                const int64_t ty = ty0 - ky * g.dilation_h;  // a multiple of stride_h
                const bool row_ok = ty >= 0 && ty / g.stride_h < oh;
                for (int64_t kx : kxs) {
                  const int64_t tx = tx0 - kx * g.dilation_w;
                  const bool ok = row_ok && tx >= 0 && tx / g.stride_w < ow;
                  *ptrs++ = ok ? base + ((n * oh + ty / g.stride_h) * ow + tx / g.stride_w) * pixel : zero;
                }
              }
            }
          },
          out_row);
    }
}

void SimdBackend::dense_forward(int64_t batch, int64_t in_f, int64_t out_f, const float* x, const float* weight,
                                const float* bias, float* y, const ParamsKey& key) {
  check_dense_sizes(batch, in_f, out_f, "dense_forward");
  const Packed& p = packed({PackKind::DenseForward, weight, bias, {out_f, in_f, 0, 0, 1}}, key, [&](Packed& q) {
    pack_b(q, in_f, out_f, in_f, [&](int64_t k, int64_t n) { return weight[n * in_f + k]; });
    pack_bias(q, out_f, bias);
  });
  gemm({batch, out_f, 1, in_f}, p, y, [&](int64_t /*group*/, int64_t m0, int64_t count, const float** ptrs) {
    for (int64_t r = 0; r < count; ++r) ptrs[r] = x + (m0 + r) * in_f;
  });
}

void SimdBackend::dense_backward_input(int64_t batch, int64_t in_f, int64_t out_f, const float* dy,
                                       const float* weight, float* dx, const ParamsKey& key) {
  check_dense_sizes(batch, in_f, out_f, "dense_backward_input");
  const PackId id{PackKind::DenseBackwardInput, weight, nullptr, {out_f, in_f, 0, 0, 1}};
  const Packed& p = packed(id, key, [&](Packed& q) {
    pack_b(q, out_f, in_f, out_f, [&](int64_t k, int64_t n) { return weight[k * in_f + n]; });
    q.bias.clear();
  });
  gemm({batch, in_f, 1, out_f}, p, dx, [&](int64_t /*group*/, int64_t m0, int64_t count, const float** ptrs) {
    for (int64_t r = 0; r < count; ++r) ptrs[r] = dy + (m0 + r) * out_f;
  });
}

// Each product on one thread: B in k x n layout (transposed into a scratch
// row block when stored n x k), then four rows of C at a time, each a sum of
// rows of B scaled by A's entries, vectorised along n.
void SimdBackend::batched_matmul(int64_t batch, int64_t m, int64_t n, int64_t k, bool trans_a, bool trans_b,
                                 const float* a, const float* b, float* c, bool accumulate) {
  if (batch < 0 || m < 0 || n < 0 || k < 0) throw Error("batched_matmul: negative size");
  if (batch == 0 || m == 0 || n == 0) return;
  constexpr int64_t kRows = 4;
  const int64_t vec_end = n / kLanes * kLanes;
  pool_.parallel_for(batch, [&](int64_t s) {
    const float* A = a + s * m * k;
    const float* B = b + s * k * n;
    float* C = c + s * m * n;
    std::vector<float> bt;
    if (trans_b) {
      bt.resize(static_cast<size_t>(k * n));
      for (int64_t j = 0; j < n; ++j)
        for (int64_t p = 0; p < k; ++p) bt[static_cast<size_t>(p * n + j)] = B[j * k + p];
      B = bt.data();
    }
    auto a_at = [&](int64_t i, int64_t p) { return trans_a ? A[p * m + i] : A[i * k + p]; };
    for (int64_t i0 = 0; i0 < m; i0 += kRows) {
      const int64_t rows = std::min(kRows, m - i0);
      for (int64_t j = 0; j < vec_end; j += kLanes) {
        simd::Vec acc[kRows];
        for (int64_t r = 0; r < kRows; ++r)
          acc[r] = r < rows && accumulate ? simd::load(C + (i0 + r) * n + j) : simd::zero();
        for (int64_t p = 0; p < k; ++p) {
          const simd::Vec bv = simd::load(B + p * n + j);
          for (int64_t r = 0; r < rows; ++r) acc[r] = simd::madd(simd::splat(a_at(i0 + r, p)), bv, acc[r]);
        }
        for (int64_t r = 0; r < rows; ++r) simd::store(C + (i0 + r) * n + j, acc[r]);
      }
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t j = vec_end; j < n; ++j) {
          float acc = accumulate ? C[(i0 + r) * n + j] : 0.0f;
          for (int64_t p = 0; p < k; ++p) acc += a_at(i0 + r, p) * B[p * n + j];
          C[(i0 + r) * n + j] = acc;
        }
    }
  });
}

void SimdBackend::maxpool2d_forward(const Pool2dGeometry& g, const float* in, float* out, int64_t* argmax) {
  check_pool2d_geometry(g, "maxpool2d_forward");
  const int64_t oh = g.out_h(), ow = g.out_w(), C = g.channels;
  const int64_t vec_end = C / kLanes * kLanes;
  const bool narrow = g.batch * g.in_h * g.in_w * C <= INT32_MAX;
  const simd::IntVec lanes = simd::lane_index();
  pool_.parallel_for(g.batch * oh, [&](int64_t row) {
    const int64_t n = row / oh, oy = row % oh;
    // Flat index of channel 0 of each of the window's input cells, in
    // row-major order; padded cells are left out (never the maximum). Every
    // window holds at least one input cell (check_pool2d_geometry, out_h()).
    thread_local std::vector<int64_t> base;
    base.resize(static_cast<size_t>(g.kernel_h * g.kernel_w));
    for (int64_t ox = 0; ox < ow; ++ox) {
      int64_t window = 0;
      for (int64_t ky = 0; ky < g.kernel_h; ++ky) {
        const int64_t iy = oy * g.stride_h - g.pad_h + ky;
        if (iy < 0 || iy >= g.in_h) continue;
        for (int64_t kx = 0; kx < g.kernel_w; ++kx) {
          const int64_t ix = ox * g.stride_w - g.pad_w + kx;
          if (ix < 0 || ix >= g.in_w) continue;
          base[static_cast<size_t>(window++)] = ((n * g.in_h + iy) * g.in_w + ix) * C;
        }
      }
      float* o = out + ((n * oh + oy) * ow + ox) * C;
      int64_t* arg = argmax + ((n * oh + oy) * ow + ox) * C;
      // Window cells in row-major order; a strict '>' keeps the first
      // maximum on ties. Lanes carry the winning cell's flat index where
      // every index fits in int32 (stored widened, as vectors), otherwise
      // the cell's number.
      for (int64_t c = 0; c < vec_end; c += kLanes) {
        Vec best = simd::load(in + base[0] + c);
        if (narrow) {
          simd::IntVec win = simd::splat_int(static_cast<int32_t>(base[0] + c)) + lanes;
          for (int64_t w = 1; w < window; ++w) {
            const int64_t cell = base[static_cast<size_t>(w)] + c;
            const Vec v = simd::load(in + cell);
            const simd::IntVec greater = v > best;
            best = greater ? v : best;
            win = greater ? simd::splat_int(static_cast<int32_t>(cell)) + lanes : win;
          }
          simd::store(o + c, best);
          simd::store_indices(arg + c, win);
          continue;
        }
        simd::IntVec win = simd::IntVec{};
        for (int64_t w = 1; w < window; ++w) {
          const Vec v = simd::load(in + base[static_cast<size_t>(w)] + c);
          const simd::IntVec greater = v > best;
          best = greater ? v : best;
          win = greater ? simd::splat_int(static_cast<int32_t>(w)) : win;
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

// Vectorised over channels (NHWC keeps a cell's channels contiguous), split
// over output rows; the base class's sums in the same order, in float rather
// than double.
void SimdBackend::avgpool2d_forward(const Pool2dGeometry& g, bool count_include_pad, const float* in, float* out) {
  check_pool2d_geometry(g, "avgpool2d_forward");
  const int64_t oh = g.out_h(), ow = g.out_w(), C = g.channels;
  const int64_t vec_end = C / kLanes * kLanes;
  pool_.parallel_for(g.batch * oh, [&](int64_t row) {
    const int64_t n = row / oh, oy = row % oh;
    const PoolSpan sy = pool_span(oy, g.in_h, g.kernel_h, g.stride_h, g.pad_h, count_include_pad);
    for (int64_t ox = 0; ox < ow; ++ox) {
      const PoolSpan sx = pool_span(ox, g.in_w, g.kernel_w, g.stride_w, g.pad_w, count_include_pad);
      const float divisor = static_cast<float>(sy.divisor * sx.divisor);
      float* o = out + ((n * oh + oy) * ow + ox) * C;
      for (int64_t c = 0; c < vec_end; c += kLanes) {
        Vec acc = simd::zero();
        for (int64_t iy = sy.begin; iy < sy.end; ++iy)
          for (int64_t ix = sx.begin; ix < sx.end; ++ix) acc += simd::load(in + ((n * g.in_h + iy) * g.in_w + ix) * C + c);
        simd::store(o + c, acc / divisor);
      }
      for (int64_t c = vec_end; c < C; ++c) {
        float acc = 0.0f;
        for (int64_t iy = sy.begin; iy < sy.end; ++iy)
          for (int64_t ix = sx.begin; ix < sx.end; ++ix) acc += in[((n * g.in_h + iy) * g.in_w + ix) * C + c];
        o[c] = acc / divisor;
      }
    }
  });
}

// Each input cell gathers dout / divisor from the windows that hold it, so
// rows of the input are independent (no scatter, no atomics).
void SimdBackend::avgpool2d_backward(const Pool2dGeometry& g, bool count_include_pad, const float* dout, float* din) {
  check_pool2d_geometry(g, "avgpool2d_backward");
  const int64_t oh = g.out_h(), ow = g.out_w(), C = g.channels;
  const int64_t vec_end = C / kLanes * kLanes;
  std::vector<float> scale(static_cast<size_t>(oh * ow));  // 1 / divisor of window (oy, ox)
  for (int64_t oy = 0; oy < oh; ++oy) {
    const int64_t dy = pool_span(oy, g.in_h, g.kernel_h, g.stride_h, g.pad_h, count_include_pad).divisor;
    for (int64_t ox = 0; ox < ow; ++ox) {
      const int64_t dx = pool_span(ox, g.in_w, g.kernel_w, g.stride_w, g.pad_w, count_include_pad).divisor;
      scale[static_cast<size_t>(oy * ow + ox)] = static_cast<float>(1.0 / static_cast<double>(dy * dx));
    }
  }
  pool_.parallel_for(g.batch * g.in_h, [&](int64_t row) {
    const int64_t n = row / g.in_h, iy = row % g.in_h;
    const PoolWindows wy = pool_windows_holding(iy, oh, g.kernel_h, g.stride_h, g.pad_h);
    for (int64_t ix = 0; ix < g.in_w; ++ix) {
      const PoolWindows wx = pool_windows_holding(ix, ow, g.kernel_w, g.stride_w, g.pad_w);
      float* cell = din + ((n * g.in_h + iy) * g.in_w + ix) * C;
      for (int64_t c = 0; c < vec_end; c += kLanes) {
        Vec acc = simd::zero();
        for (int64_t oy = wy.first; oy <= wy.last; ++oy)
          for (int64_t ox = wx.first; ox <= wx.last; ++ox)
            acc += simd::load(dout + ((n * oh + oy) * ow + ox) * C + c) * scale[static_cast<size_t>(oy * ow + ox)];
        simd::store(cell + c, acc);
      }
      for (int64_t c = vec_end; c < C; ++c) {
        float acc = 0.0f;
        for (int64_t oy = wy.first; oy <= wy.last; ++oy)
          for (int64_t ox = wx.first; ox <= wx.last; ++ox)
            acc += dout[((n * oh + oy) * ow + ox) * C + c] * scale[static_cast<size_t>(oy * ow + ox)];
        cell[c] = acc;
      }
    }
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

// The base class's loops, vectorised and split over the threads; the same
// float operations in the same order, so the results are identical.
void SimdBackend::smelu_forward(int64_t count, double beta, const float* in, float* out) {
  const float b = static_cast<float>(beta);
  const float inv4b = static_cast<float>(0.25 / beta);
  pool_.parallel_for(ceil_div(count, kElementwiseChunk), [&](int64_t chunk) {
    const int64_t begin = chunk * kElementwiseChunk, end = std::min(count, begin + kElementwiseChunk);
    int64_t i = begin;
    for (; i + kLanes <= end; i += kLanes) {
      const Vec v = simd::load(in + i);
      const Vec s = v + b;
      const Vec quad = s * s * inv4b;
      simd::store(out + i, v >= b ? v : (v <= -b ? simd::zero() : quad));
    }
    Backend::smelu_forward(end - i, beta, in + i, out + i);
  });
}

void SimdBackend::smelu_backward(int64_t count, double beta, const float* in, const float* dout, float* din) {
  const float b = static_cast<float>(beta);
  const float inv2b = static_cast<float>(0.5 / beta);
  pool_.parallel_for(ceil_div(count, kElementwiseChunk), [&](int64_t chunk) {
    const int64_t begin = chunk * kElementwiseChunk, end = std::min(count, begin + kElementwiseChunk);
    int64_t i = begin;
    for (; i + kLanes <= end; i += kLanes) {
      Vec slope = (simd::load(in + i) + b) * inv2b;
      slope = slope < 0.0f ? simd::zero() : slope;  // std::clamp's order: NaN stays NaN
      slope = slope > 1.0f ? simd::splat(1.0f) : slope;
      simd::store(din + i, simd::load(dout + i) * slope);
    }
    Backend::smelu_backward(end - i, beta, in + i, dout + i, din + i);
  });
}

// Vectorised along each pixel's channels, split over the threads in
// chunks of whole pixels.
void SimdBackend::channel_affine(int64_t count, int64_t channels, const float* in, const float* scale,
                                 const float* shift, float* out) {
  if (count <= 0 || channels <= 0) return;
  const int64_t pixels = count / channels, per_chunk = std::max<int64_t>(1, kElementwiseChunk / channels);
  const int64_t vec_end = channels / kLanes * kLanes;
  pool_.parallel_for(ceil_div(pixels, per_chunk), [&](int64_t chunk) {
    const int64_t end = std::min(pixels, (chunk + 1) * per_chunk);
    for (int64_t px = chunk * per_chunk; px < end; ++px) {
      const float* x = in + px * channels;
      float* y = out + px * channels;
      int64_t k = 0;
      for (; k < vec_end; k += kLanes) {
        const Vec v = simd::load(scale + k) * simd::load(x + k);
        simd::store(y + k, shift ? v + simd::load(shift + k) : v);
      }
      for (; k < channels; ++k) y[k] = scale[k] * x[k] + (shift ? shift[k] : 0.0f);
    }
  });
}

}  // namespace igscope
