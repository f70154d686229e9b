#pragma once
// Backend on an NVIDIA GPU (built when CMake finds nvcc, cuBLAS and cuDNN;
// IGSCOPE_HAVE_CUDA is then defined):
//
//   conv2d forward          cuDNN cudnnConvolutionForward
//   conv2d input gradient   cuDNN cudnnConvolutionBackwardData
//   conv2d weight gradient  cuDNN cudnnConvolutionBackwardFilter; bias: own kernel
//   dense (all three)       cuBLAS SGEMM; bias and its gradient: own kernels
//   max-pool, ReLU          own kernels (cuda_kernels.cu); max-pool ties go to
//                           the first maximum in row-major window order
//   average pooling         the Backend base class's loops, on the host
//
// Activations are NHWC on the device as on the host; conv weights are
// re-laid-out once to cuDNN's NHWC filter layout [out, kh, kw, in]. Only
// deterministic cuDNN algorithms with FMA math (no TF32 tensor cores) are
// used, and cuBLAS runs without TF32, so results are float32 throughout and
// the same on every call.
//
// The Backend interface takes host pointers: each op copies its inputs to the
// device, runs, and copies its output back before it returns. Weights and
// biases stay on the device per ParamsKey (see backend.h): uploaded (and
// re-laid-out) once per contents and reused while the key is the same.
// Device buffers for activations and cuDNN's workspace are kept and grown,
// never freed between calls.
#include <cstdint>
#include <memory>
#include <string>

#include "igscope/backend/backend.h"

namespace igscope {

// Whether a CUDA device can be used; if not and `reason` is given, why not
// (the CUDA runtime's message).
bool cuda_device_available(std::string* reason = nullptr);

class CudaBackend final : public Backend {
 public:
  // Uses CUDA device `device`. Throws igscope::Error ("no CUDA device: ...")
  // when there is none.
  explicit CudaBackend(int device = 0);
  ~CudaBackend() override;
  CudaBackend(const CudaBackend&) = delete;
  CudaBackend& operator=(const CudaBackend&) = delete;

  std::string name() const override { return "cuda"; }
  // The device's name and compute capability, e.g. "NVIDIA H100 80GB HBM3 (sm_90)".
  std::string device_name() const;

  void conv2d_forward(const Conv2dGeometry& g, const float* in, const float* weight, const float* bias,
                      float* out, const ParamsKey& key = {}) override;
  void conv2d_backward_input(const Conv2dGeometry& g, const float* dout, const float* weight, float* din,
                             const ParamsKey& key = {}) override;
  void conv2d_backward_params(const Conv2dGeometry& g, const float* in, const float* dout, float* dweight,
                              float* dbias) override;
  void dense_forward(int64_t batch, int64_t in_f, int64_t out_f, const float* x, const float* weight,
                     const float* bias, float* y, const ParamsKey& key = {}) override;
  void dense_backward_input(int64_t batch, int64_t in_f, int64_t out_f, const float* dy, const float* weight,
                            float* dx, const ParamsKey& key = {}) override;
  void dense_backward_params(int64_t batch, int64_t in_f, int64_t out_f, const float* x, const float* dy,
                             float* dweight, float* dbias) override;
  void maxpool2d_forward(const Pool2dGeometry& g, const float* in, float* out, int64_t* argmax) override;
  void maxpool2d_backward(const Pool2dGeometry& g, const float* dout, const int64_t* argmax, float* din) override;
  void relu_forward(int64_t count, const float* in, float* out) override;
  void relu_backward(int64_t count, const float* out, const float* dout, float* din) override;

  // How many weight and bias tensors were uploaded to the device under a
  // known key (for the tests of the cache); unkeyed uploads are not counted.
  int64_t upload_count() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace igscope
