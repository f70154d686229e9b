#pragma once
// The cuda backend's own kernels (cuda_kernels.cu): everything that is not a
// convolution (cuDNN) or a GEMM (cuBLAS). Every launcher enqueues its kernel
// on `stream` and throws igscope::Error if the launch fails; pointers are
// device pointers. Each kernel computes its results in the same order as the
// reference backend where that order decides the float result (max-pool ties,
// max-pool backward sums), so those agree bit for bit.
#include <cuda_runtime.h>

#include <cstdint>

namespace igscope::cuda {

// Max-pool sizes, out_h and out_w included (device code cannot call
// Pool2dGeometry's member functions).
struct PoolDims {
  int64_t batch, in_h, in_w, channels;
  int64_t kernel_h, kernel_w, stride_h, stride_w;
  int64_t pad_h, pad_w;  // window (oy, ox) starts at (oy * stride_h - pad_h, ox * stride_w - pad_w)
  int64_t out_h, out_w;  // Pool2dGeometry's, ceil_mode included
};

// y[r, c] = bias[c] (0 when bias is null), for rows x cols row-major.
void fill_rows(cudaStream_t stream, float* y, const float* bias, int64_t rows, int64_t cols);
// y[r, c] += bias[c].
void add_to_rows(cudaStream_t stream, float* y, const float* bias, int64_t rows, int64_t cols);
// acc[c] += sum_r x[r, c], summed in double, one thread per column (a fixed
// order, so the result is deterministic).
void accumulate_column_sums(cudaStream_t stream, const float* x, int64_t rows, int64_t cols, float* acc);

// Conv weights between PyTorch's [out, in, kh, kw] and cuDNN's NHWC filter
// layout [out, kh, kw, in].
void oihw_to_ohwi(cudaStream_t stream, const float* oihw, float* ohwi, int64_t out_c, int64_t in_c,
                  int64_t kernel_h, int64_t kernel_w);
// oihw[o, i, ky, kx] += ohwi[o, ky, kx, i].
void add_ohwi_to_oihw(cudaStream_t stream, const float* ohwi, float* oihw, int64_t out_c, int64_t in_c,
                      int64_t kernel_h, int64_t kernel_w);

// NHWC max pooling; argmax is the flat index into `in` of the first maximum
// in row-major window order among the window's input cells (padding is never
// chosen; strict '>', as the reference backend).
void maxpool_forward(cudaStream_t stream, const PoolDims& d, const float* in, float* out, int64_t* argmax);
// din[j] = sum of dout[o] over the outputs o whose window holds j and whose
// argmax is j, added in increasing o (the reference's scatter order), so
// overlapping windows need no atomics and the result is deterministic.
void maxpool_backward(cudaStream_t stream, const PoolDims& d, const float* dout, const int64_t* argmax, float* din);

void relu_forward(cudaStream_t stream, int64_t count, const float* in, float* out);
// din = dout where out > 0, else 0.
void relu_backward(cudaStream_t stream, int64_t count, const float* out, const float* dout, float* din);

}  // namespace igscope::cuda
