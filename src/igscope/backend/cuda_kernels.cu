#include "igscope/backend/cuda_kernels.h"

#include <algorithm>
#include <string>

#include "igscope/error.h"

namespace igscope::cuda {

namespace {

constexpr int kThreads = 256;

// Blocks for a grid-stride loop over `count` elements.
unsigned int blocks_for(int64_t count) {
  const int64_t blocks = (count + kThreads - 1) / kThreads;
  return static_cast<unsigned int>(std::clamp<int64_t>(blocks, 1, 65535));
}

void check_launch(const char* kernel) {
  const cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) throw Error(std::string("cuda backend: launching ") + kernel + ": " + cudaGetErrorString(err));
}

__device__ inline int64_t thread_index() {
  return static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}
__device__ inline int64_t thread_stride() {
  return static_cast<int64_t>(gridDim.x) * blockDim.x;
}

__global__ void fill_rows_kernel(float* y, const float* bias, int64_t rows, int64_t cols) {
  const int64_t count = rows * cols;
  for (int64_t i = thread_index(); i < count; i += thread_stride()) y[i] = bias ? bias[i % cols] : 0.0f;
}

__global__ void add_to_rows_kernel(float* y, const float* bias, int64_t rows, int64_t cols) {
  const int64_t count = rows * cols;
  for (int64_t i = thread_index(); i < count; i += thread_stride()) y[i] += bias[i % cols];
}

__global__ void column_sums_kernel(const float* x, int64_t rows, int64_t cols, float* acc) {
  for (int64_t c = thread_index(); c < cols; c += thread_stride()) {
    double sum = 0.0;
    for (int64_t r = 0; r < rows; ++r) sum += x[r * cols + c];
    acc[c] += static_cast<float>(sum);
  }
}

__global__ void oihw_to_ohwi_kernel(const float* oihw, float* ohwi, int64_t out_c, int64_t in_c, int64_t kh,
                                    int64_t kw) {
  const int64_t count = out_c * in_c * kh * kw;
  for (int64_t j = thread_index(); j < count; j += thread_stride()) {
    // j indexes ohwi: [o, ky, kx, i]
    const int64_t i = j % in_c, kx = (j / in_c) % kw, ky = (j / (in_c * kw)) % kh, o = j / (in_c * kw * kh);
    ohwi[j] = oihw[((o * in_c + i) * kh + ky) * kw + kx];
  }
}

__global__ void add_ohwi_to_oihw_kernel(const float* ohwi, float* oihw, int64_t out_c, int64_t in_c, int64_t kh,
                                        int64_t kw) {
  const int64_t count = out_c * in_c * kh * kw;
  for (int64_t j = thread_index(); j < count; j += thread_stride()) {
    // j indexes oihw: [o, i, ky, kx]
    const int64_t kx = j % kw, ky = (j / kw) % kh, i = (j / (kw * kh)) % in_c, o = j / (kw * kh * in_c);
    oihw[j] += ohwi[((o * kh + ky) * kw + kx) * in_c + i];
  }
}

__global__ void maxpool_forward_kernel(PoolDims d, const float* in, float* out, int64_t* argmax) {
  const int64_t count = d.batch * d.out_h * d.out_w * d.channels;
  for (int64_t o = thread_index(); o < count; o += thread_stride()) {
    const int64_t c = o % d.channels, ox = (o / d.channels) % d.out_w, oy = (o / (d.channels * d.out_w)) % d.out_h,
                  n = o / (d.channels * d.out_w * d.out_h);
    int64_t best = -1;
    float best_value = 0.0f;
    for (int64_t ky = 0; ky < d.kernel_h; ++ky)
      for (int64_t kx = 0; kx < d.kernel_w; ++kx) {
        const int64_t iy = oy * d.stride_h - d.pad_h + ky, ix = ox * d.stride_w - d.pad_w + kx;
        if (iy < 0 || iy >= d.in_h || ix < 0 || ix >= d.in_w) continue;
        const int64_t idx = ((n * d.in_h + iy) * d.in_w + ix) * d.channels + c;
        const float v = in[idx];
        if (best < 0 || v > best_value) {
          best = idx;
          best_value = v;
        }
      }
    out[o] = best_value;
    argmax[o] = best;
  }
}

__global__ void maxpool_backward_kernel(PoolDims d, const float* dout, const int64_t* argmax, float* din) {
  const int64_t count = d.batch * d.in_h * d.in_w * d.channels;
  for (int64_t j = thread_index(); j < count; j += thread_stride()) {
    const int64_t c = j % d.channels, ix = (j / d.channels) % d.in_w, iy = (j / (d.channels * d.in_w)) % d.in_h,
                  n = j / (d.channels * d.in_w * d.in_h);
    // The windows holding (iy, ix): oy * stride_h - pad_h <= iy <= oy * stride_h - pad_h + kernel_h - 1.
    const int64_t lo_y = iy + d.pad_h - d.kernel_h + 1, lo_x = ix + d.pad_w - d.kernel_w + 1;
    const int64_t oy0 = lo_y <= 0 ? 0 : (lo_y + d.stride_h - 1) / d.stride_h;
    const int64_t ox0 = lo_x <= 0 ? 0 : (lo_x + d.stride_w - 1) / d.stride_w;
    const int64_t oy1 = min(d.out_h - 1, (iy + d.pad_h) / d.stride_h);
    const int64_t ox1 = min(d.out_w - 1, (ix + d.pad_w) / d.stride_w);
    float sum = 0.0f;
    for (int64_t oy = oy0; oy <= oy1; ++oy)
      for (int64_t ox = ox0; ox <= ox1; ++ox) {
        const int64_t o = ((n * d.out_h + oy) * d.out_w + ox) * d.channels + c;
        if (argmax[o] == j) sum += dout[o];
      }
    din[j] = sum;
  }
}

__global__ void relu_forward_kernel(int64_t count, const float* in, float* out) {
  for (int64_t i = thread_index(); i < count; i += thread_stride()) out[i] = in[i] > 0.0f ? in[i] : 0.0f;
}

__global__ void relu_backward_kernel(int64_t count, const float* out, const float* dout, float* din) {
  for (int64_t i = thread_index(); i < count; i += thread_stride()) din[i] = out[i] > 0.0f ? dout[i] : 0.0f;
}

}  // namespace

void fill_rows(cudaStream_t stream, float* y, const float* bias, int64_t rows, int64_t cols) {
  fill_rows_kernel<<<blocks_for(rows * cols), kThreads, 0, stream>>>(y, bias, rows, cols);
  check_launch("fill_rows");
}

void add_to_rows(cudaStream_t stream, float* y, const float* bias, int64_t rows, int64_t cols) {
  add_to_rows_kernel<<<blocks_for(rows * cols), kThreads, 0, stream>>>(y, bias, rows, cols);
  check_launch("add_to_rows");
}

void accumulate_column_sums(cudaStream_t stream, const float* x, int64_t rows, int64_t cols, float* acc) {
  column_sums_kernel<<<blocks_for(cols), kThreads, 0, stream>>>(x, rows, cols, acc);
  check_launch("accumulate_column_sums");
}

void oihw_to_ohwi(cudaStream_t stream, const float* oihw, float* ohwi, int64_t out_c, int64_t in_c, int64_t kernel_h,
                  int64_t kernel_w) {
  oihw_to_ohwi_kernel<<<blocks_for(out_c * in_c * kernel_h * kernel_w), kThreads, 0, stream>>>(oihw, ohwi, out_c, in_c,
                                                                                              kernel_h, kernel_w);
  check_launch("oihw_to_ohwi");
}

void add_ohwi_to_oihw(cudaStream_t stream, const float* ohwi, float* oihw, int64_t out_c, int64_t in_c,
                      int64_t kernel_h, int64_t kernel_w) {
  add_ohwi_to_oihw_kernel<<<blocks_for(out_c * in_c * kernel_h * kernel_w), kThreads, 0, stream>>>(
      ohwi, oihw, out_c, in_c, kernel_h, kernel_w);
  check_launch("add_ohwi_to_oihw");
}

void maxpool_forward(cudaStream_t stream, const PoolDims& d, const float* in, float* out, int64_t* argmax) {
  maxpool_forward_kernel<<<blocks_for(d.batch * d.out_h * d.out_w * d.channels), kThreads, 0, stream>>>(d, in, out,
                                                                                                       argmax);
  check_launch("maxpool_forward");
}

void maxpool_backward(cudaStream_t stream, const PoolDims& d, const float* dout, const int64_t* argmax, float* din) {
  maxpool_backward_kernel<<<blocks_for(d.batch * d.in_h * d.in_w * d.channels), kThreads, 0, stream>>>(d, dout,
                                                                                                      argmax, din);
  check_launch("maxpool_backward");
}

void relu_forward(cudaStream_t stream, int64_t count, const float* in, float* out) {
  relu_forward_kernel<<<blocks_for(count), kThreads, 0, stream>>>(count, in, out);
  check_launch("relu_forward");
}

void relu_backward(cudaStream_t stream, int64_t count, const float* out, const float* dout, float* din) {
  relu_backward_kernel<<<blocks_for(count), kThreads, 0, stream>>>(count, out, dout, din);
  check_launch("relu_backward");
}

}  // namespace igscope::cuda
