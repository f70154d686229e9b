#pragma once
// The register-tiled micro-kernels of the simd backend and the weight
// packing they read, shared by its direct (simd.cpp) and Winograd
// (simd_winograd.cpp) convolutions. Sources that include this header build
// with -ffp-contract=fast, so that a * b + c becomes an FMA where the target
// has one.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <utility>
#include <vector>

#include "igscope/backend/simd.h"
#include "igscope/backend/simd_vec.h"

namespace igscope::simd {

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

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// C[0..mr, 0..nr) = bias + A B for one kMR x kNR tile. a holds kMR rows of
// `taps` segment pointers (rows past mr repeat row 0); w is the tile's
// panel: taps * depth rows of kNR floats.
#if defined(__GNUC__) && !defined(__clang__)
__attribute__((optimize("unroll-loops")))
#endif
inline void gemm_tile(int64_t taps, int64_t depth, const float* const* a, const float* w, const float* bias, float* c,
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
        for (int v = 0; v < kNV; ++v) acc[r][v] = simd::madd(av, bv[v], acc[r][v]);
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
inline void dot_tile(int64_t taps, int64_t depth, const float* const* a, const float* b, float bias, float* c, int64_t ldc,
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
      for (int r = 0; r < kDotMR; ++r) acc[r] = simd::madd(simd::load(ar[r] + k), bv, acc[r]);
    }
    for (int64_t k = vec_end; k < depth; ++k)
      for (int r = 0; r < kDotMR; ++r) tail[r] += ar[r][k] * bt[k];
  }
  for (int r = 0; r < kDotMR && r < mr; ++r) c[r * ldc] = simd::horizontal_sum(acc[r]) + tail[r] + bias;
}

// The dot kernel pays off when the GEMM tile would be mostly padding.
inline bool use_dot(int64_t cols, int64_t depth) { return cols * 2 <= kNR && depth >= kLanes; }

// B[k, n] = value(k, n) for k < K, n < N, laid out for the kernel use_dot picks.
template <class Value>
inline void pack_b(SimdBackend::Packed& p, int64_t K, int64_t N, int64_t depth, Value value) {
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

inline void pack_bias(SimdBackend::Packed& p, int64_t N, const float* bias) {
  p.bias.clear();
  if (!bias) return;
  p.bias.assign(static_cast<size_t>(p.dot ? N : ceil_div(N, kNR) * kNR), 0.0f);
  std::copy(bias, bias + N, p.bias.begin());
}

// One GEMM per group, group after group: B_g[k, n] = value(g, k, n), bias_g
// = bias + g * N (bias null: none).
template <class Value>
inline void pack_groups(SimdBackend::Packed& p, int64_t groups, int64_t K, int64_t N, int64_t depth, Value value,
                        const float* bias) {
  SimdBackend::Packed one;
  std::vector<float> b, biases;
  for (int64_t g = 0; g < groups; ++g) {
    pack_b(one, K, N, depth, [&](int64_t k, int64_t n) { return value(g, k, n); });
    pack_bias(one, N, bias ? bias + g * N : nullptr);
    b.insert(b.end(), one.b.begin(), one.b.end());
    biases.insert(biases.end(), one.bias.begin(), one.bias.end());
  }
  p.dot = one.dot;
  p.b = std::move(b);
  p.bias = std::move(biases);
  p.group_b = static_cast<int64_t>(one.b.size());
  p.group_bias = static_cast<int64_t>(one.bias.size());
}

}  // namespace igscope::simd
