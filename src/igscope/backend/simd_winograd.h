#pragma once
// Winograd's minimal filtering F(m x m, 3x3) (Lavin & Gray 2016, "Fast
// Algorithms for Convolutional Neural Networks") for the simd backend's 3x3,
// stride 1, pad 1 convolutions, with m = 2 or 4: each m x m block of
// outputs takes (m + 2)^2 products per input/output channel pair instead of
// 9 m^2 (16 instead of 36 for m = 2, 36 instead of 144 for m = 4). The
// input is cut into overlapping (m + 2) x (m + 2) tiles, each tile and each
// 3x3 kernel are transformed into Winograd space (V = B^T d B, U = G g G^T),
// the (m + 2)^2 positions become independent GEMMs over the channels (M =
// V U, the simd micro-kernel), and each M goes back to m x m outputs (Y =
// A^T M A). tile_size() picks m for the image size.
//
// The input gradient of such a convolution is the same operation on dout
// with the kernels rotated by 180 degrees and their in/out channels swapped,
// so one routine serves both directions.
//
// The transforms of m = 2 add and subtract (G also halves); those of m = 4
// also scale by 2, 4, 5 and 8 (and G by 1/4, 1/6, 1/12 and 1/24, in double,
// rounded once), so the result differs from the direct sum by float32
// rounding a few times larger, which the backend tests bound against the
// reference backend.
#include <cstdint>
#include <vector>

#include "igscope/backend/backend.h"
#include "igscope/backend/thread_pool.h"

namespace igscope::winograd {

// Whether a convolution with this geometry runs as Winograd: a 3x3
// kernel, stride 1, pad 1, no groups and no dilation, and in/out channel
// counts that fill whole SIMD vectors. `backward_input`: the transposed direction (in and out swap).
bool applies(const Conv2dGeometry& g, bool backward_input);

// m for images of h x w. Forward: 2. A flat region (a black background)
// gives exactly tied outputs, and a model's max-pool must see them tied to
// send the gradient to the first maximum as every backend does; F(2x2)
// keeps a 2x2 window's outputs, one tile's, exactly tied when the tile's
// input is flat, where F(4x4) computes equal outputs of a tile that is not
// flat through different rows of A^T and rounds them apart. The input
// gradient decides nothing: 4 where its GEMMs are smaller (F(4x4) pads
// the image to a multiple of 4; from 3x3 images up it is smaller),
// otherwise 2.
int tile_size(int64_t h, int64_t w, bool backward_input);

// The kernels in Winograd space, U, for the (tile + 2)^2 GEMMs: position p
// (row-major in the tile) is a channels_in x channels_out matrix packed in
// panels for simd::gemm_tile. Channels are those of the convolution as
// convolve() runs it: for the input gradient, in = the layer's out_c.
void pack_forward(const Conv2dGeometry& g, int tile, const float* weight, std::vector<float>& u);
void pack_backward_input(const Conv2dGeometry& g, int tile, const float* weight, std::vector<float>& u);

// out[n, y, x, o] = bias[o] + sum over (i, ky, kx) of
//   in[n, y - 1 + ky, x - 1 + kx, i] * kernel(o, i, ky, kx)
// for images of h x w (outputs h x w), NHWC; bias: channels_out floats, or
// null for none; zeros: channels_in zeros (the padding); u: packed for this tile.
void convolve(ThreadPool& pool, int tile, const std::vector<float>& u, int64_t channels_in, int64_t channels_out,
              int64_t batch, int64_t h, int64_t w, const float* in, const float* bias, const float* zeros,
              float* out);

}  // namespace igscope::winograd
