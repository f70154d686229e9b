#pragma once
// The one SIMD abstraction of the simd backend: GCC/Clang vector extensions.
// The same source lowers to AVX-512 or AVX2 (+FMA) natively, depending on the
// target flags, and to WebAssembly simd128 under em++ -msimd128.
//
//   Vec      kLanes floats; +, -, * and comparisons work lane-wise, and a
//            scalar operand is broadcast. a * b + c becomes an FMA where the
//            target has one (the simd sources build with -ffp-contract=fast).
//   IntVec   kLanes int32 lanes, the type of comparison masks
//   load / store   unaligned
//   splat          broadcast a scalar
//   madd(a, b, c)  a * b + c. Natively this contracts to an FMA; simd128 has
//                  no FMA, and with relaxed SIMD (-mrelaxed-simd, the
//                  relaxed build of the module) it is f32x4.relaxed_madd,
//                  fused or not as the engine's CPU does it. The hot loops
//                  (GEMM micro-kernels, depthwise) write it explicitly, since
//                  no compiler contracts to relaxed_madd by itself.
#include <cstdint>
#include <cstring>

namespace igscope::simd {

#if defined(__AVX512F__)
inline constexpr int kLanes = 16;
inline constexpr const char* kIsa = "AVX-512";
#elif defined(__AVX2__) && defined(__FMA__)
inline constexpr int kLanes = 8;
inline constexpr const char* kIsa = "AVX2+FMA";
#elif defined(__AVX__)
inline constexpr int kLanes = 8;
inline constexpr const char* kIsa = "AVX";
#elif defined(__wasm_relaxed_simd__)
inline constexpr int kLanes = 4;
inline constexpr const char* kIsa = "wasm simd128 + relaxed SIMD";
#elif defined(__wasm_simd128__)
inline constexpr int kLanes = 4;
inline constexpr const char* kIsa = "wasm simd128";
#elif defined(__SSE2__)
inline constexpr int kLanes = 4;
inline constexpr const char* kIsa = "SSE2";
#else
inline constexpr int kLanes = 4;
inline constexpr const char* kIsa = "generic";
#endif

typedef float Vec __attribute__((vector_size(kLanes * sizeof(float))));
// Lane-wise comparisons of Vecs give IntVec masks (-1 true, 0 false), and
// mask ? a : b selects lane by lane.
typedef int32_t IntVec __attribute__((vector_size(kLanes * sizeof(int32_t))));
// The same vector type, for loads and stores at any float alignment.
typedef float UnalignedVec __attribute__((vector_size(kLanes * sizeof(float)), aligned(alignof(float)), may_alias));

// kLanes int64 lanes, for storing indices.
typedef int64_t UnalignedIndexVec
    __attribute__((vector_size(kLanes * sizeof(int64_t)), aligned(alignof(int64_t)), may_alias));

inline Vec load(const float* p) { return *reinterpret_cast<const UnalignedVec*>(p); }
inline void store(float* p, Vec v) { *reinterpret_cast<UnalignedVec*>(p) = v; }
// s - 0 is s for every s (0 + s would turn -0 into +0), so this folds to a broadcast.
inline Vec splat(float s) { return s - Vec{}; }
inline Vec zero() { return Vec{}; }
inline IntVec splat_int(int32_t s) { return s - IntVec{}; }
// {0, 1, ..., kLanes - 1}
inline IntVec lane_index() {
  IntVec v{};
  for (int i = 0; i < kLanes; ++i) v[i] = i;
  return v;
}
// p[0..kLanes) = the lanes of v, widened to int64.
inline void store_indices(int64_t* p, IntVec v) {
  *reinterpret_cast<UnalignedIndexVec*>(p) = __builtin_convertvector(v, UnalignedIndexVec);
}
#if defined(__wasm_relaxed_simd__)
inline Vec madd(Vec a, Vec b, Vec c) { return __builtin_wasm_relaxed_madd_f32x4(a, b, c); }
#else
inline Vec madd(Vec a, Vec b, Vec c) { return a * b + c; }
#endif

inline float horizontal_sum(Vec v) {
  float lanes[kLanes];
  std::memcpy(lanes, &v, sizeof v);
  // Pairwise, so that the order does not depend on the compiler.
  for (int width = kLanes / 2; width >= 1; width /= 2)
    for (int i = 0; i < width; ++i) lanes[i] += lanes[i + width];
  return lanes[0];
}

}  // namespace igscope::simd
