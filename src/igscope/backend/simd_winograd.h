#pragma once
// Winograd's minimal filtering F(2x2, 3x3) (Lavin & Gray 2016, "Fast
// Algorithms for Convolutional Neural Networks") for the simd backend's 3x3,
// stride 1, pad 1 convolutions: each 2x2 block of outputs takes 16 products
// per input/output channel pair instead of 36. The input is cut into
// overlapping 4x4 tiles, each tile and each 3x3 kernel are transformed into
// 4x4 "Winograd space" (V = B^T d B, U = G g G^T), the 16 positions become 16
// independent GEMMs over the channels (M = V U, the simd micro-kernel), and
// each 4x4 M goes back to 2x2 outputs (Y = A^T M A).
//
// The input gradient of such a convolution is the same operation on dout
// with the kernels rotated by 180 degrees and their in/out channels swapped,
// so one routine serves both directions.
//
// The transforms add and subtract (G also halves), so the result differs
// from the direct sum only by float32 rounding, which the backend tests
// bound against the reference backend.
#include <cstdint>
#include <vector>

#include "igscope/backend/backend.h"
#include "igscope/backend/thread_pool.h"

namespace igscope::winograd {

// Whether a convolution with this geometry runs as F(2x2, 3x3): a 3x3
// kernel, stride 1, pad 1, no groups and no dilation, and in/out channel
// counts that fill whole SIMD vectors. `backward_input`: the transposed direction (in and out swap).
bool applies(const Conv2dGeometry& g, bool backward_input);

// The kernels in Winograd space, U, for the 16 GEMMs: position p
// (row-major in the 4x4 tile) is a channels_in x channels_out matrix packed
// in panels for simd::gemm_tile. Channels are those of the convolution as
// convolve() runs it: for the input gradient, in = the layer's out_c.
void pack_forward(const Conv2dGeometry& g, const float* weight, std::vector<float>& u);
void pack_backward_input(const Conv2dGeometry& g, const float* weight, std::vector<float>& u);

// out[n, y, x, o] = bias[o] + sum over (i, ky, kx) of
//   in[n, y - 1 + ky, x - 1 + kx, i] * kernel(o, i, ky, kx)
// for images of h x w (outputs h x w), NHWC; bias: channels_out floats, or
// null for none; zeros: channels_in zeros (the padding).
void convolve(ThreadPool& pool, const std::vector<float>& u, int64_t channels_in, int64_t channels_out,
              int64_t batch, int64_t h, int64_t w, const float* in, const float* bias, const float* zeros,
              float* out);

}  // namespace igscope::winograd
