#pragma once
// Depthwise convolutions (groups == in_c: every input channel has its own
// out_c / in_c kernels, the channel multiplier) for the simd backend,
// vectorised over the channels of NHWC activations, any kernel size, stride,
// padding and dilation.
//
// The kernel is one convolution of multiplier 1 over C channels (a "plane"):
// each output vector of kLanes channels is the bias plus one multiply-add per
// tap, one task per output row, pixel after pixel and all channels of a
// pixel in order (the order the hardware prefetchers follow). Pixels whose
// window lies inside the image take the inner loop (a 3x3 kernel fully
// unrolled); the border pixels list their in-image taps. A channel count
// that is not a multiple of kLanes ends with a vector overlapping the one
// before (the same values written twice, by the same task); fewer than
// kLanes channels run as scalars.
//
// A channel multiplier M > 1 expands the input to out_c channels first
// (channel o reads input channel o / M), so the plane runs over out_c.
//
// The input gradient of a stride-1 depthwise convolution whose padding is at
// most its dilated kernel extent minus 1 is itself a stride-1 depthwise
// convolution, of dout with the kernels rotated by 180 degrees and padding
// dilation * (kernel - 1) - pad: the same plane. Other strides gather, per
// input pixel, the outputs that read it. With M > 1 the gradient of the
// expanded input is summed over each input channel's M outputs.
#include <cstdint>
#include <vector>

#include "igscope/backend/backend.h"
#include "igscope/backend/thread_pool.h"

namespace igscope::depthwise {

// Whether the simd backend runs this geometry here: groups == in_c > 1.
bool applies(const Conv2dGeometry& g);

// The weights [out_c, 1, kh, kw] as [kh * kw][out_c]; `rotated`: tap
// (ky, kx) holds (kh - 1 - ky, kw - 1 - kx), the input gradient's kernel.
void pack(const Conv2dGeometry& g, const float* weight, bool rotated, std::vector<float>& packed);

// Whether the input gradient runs as a convolution with the rotated weights
// (pack(..., true)); otherwise it gathers with the unrotated ones.
bool backward_as_convolution(const Conv2dGeometry& g);

// out = the convolution of `in` (NHWC, in_c channels) with the packed
// weights, plus bias (out_c floats, or null). `scratch` holds the expanded
// input when out_c > in_c.
void forward(ThreadPool& pool, const Conv2dGeometry& g, const float* in, const float* packed, const float* bias,
             float* out, std::vector<float>& scratch);

// din = the input gradient for dout; `packed` as backward_as_convolution
// says. `scratch` holds the expanded input's gradient when out_c > in_c.
void backward_input(ThreadPool& pool, const Conv2dGeometry& g, const float* dout, const float* packed, float* din,
                    std::vector<float>& scratch);

}  // namespace igscope::depthwise
