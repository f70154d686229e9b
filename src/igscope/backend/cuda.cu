#include "igscope/backend/cuda.h"

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include <array>
#include <climits>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "igscope/backend/cuda_kernels.h"
#include "igscope/error.h"

namespace igscope {

namespace {

void check(cudaError_t err, const std::string& what) {
  if (err != cudaSuccess) throw Error("cuda backend: " + what + ": " + cudaGetErrorString(err));
}
void check(cublasStatus_t status, const std::string& what) {
  if (status != CUBLAS_STATUS_SUCCESS) throw Error("cuda backend: " + what + ": " + cublasGetStatusString(status));
}
void check(cudnnStatus_t status, const std::string& what) {
  if (status != CUDNN_STATUS_SUCCESS) throw Error("cuda backend: " + what + ": " + cudnnGetErrorString(status));
}

// cuBLAS and cuDNN take int sizes.
int to_int(int64_t v, const std::string& what) {
  if (v < 0 || v > INT_MAX) throw Error("cuda backend: " + what + " " + std::to_string(v) + " does not fit an int");
  return static_cast<int>(v);
}

// A device allocation that grows on demand and is kept between calls.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  ~DeviceBuffer() {
    if (ptr_) cudaFree(ptr_);
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  void* reserve(size_t bytes) {
    if (bytes > bytes_) {
      if (ptr_) cudaFree(ptr_);
      ptr_ = nullptr;
      bytes_ = 0;
      check(cudaMalloc(&ptr_, bytes), "allocating " + std::to_string(bytes) + " bytes on the device");
      bytes_ = bytes;
    }
    return ptr_;
  }
  // reserve() that reports a failed allocation by returning null.
  void* try_reserve(size_t bytes) {
    if (bytes <= bytes_) return ptr_;
    if (ptr_) cudaFree(ptr_);
    ptr_ = nullptr;
    bytes_ = 0;
    if (cudaMalloc(&ptr_, bytes) != cudaSuccess) {
      cudaGetLastError();  // not sticky: clear it
      ptr_ = nullptr;
      return nullptr;
    }
    bytes_ = bytes;
    return ptr_;
  }
  float* floats(int64_t count) { return static_cast<float*>(reserve(sizeof(float) * static_cast<size_t>(count))); }
  int64_t* int64s(int64_t count) {
    return static_cast<int64_t*>(reserve(sizeof(int64_t) * static_cast<size_t>(count)));
  }

 private:
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

// Descriptors of one convolution geometry and the cuDNN algorithms that may
// run it: deterministic ones without tensor-core math, best first. The first
// candidate that runs is kept; one that fails is dropped for good.
struct ConvPlan {
  cudnnTensorDescriptor_t x = nullptr, y = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;
  bool have_fwd = false, have_bwd_data = false, have_bwd_filter = false;
  std::vector<cudnnConvolutionFwdAlgo_t> fwd;
  std::vector<cudnnConvolutionBwdDataAlgo_t> bwd_data;
  std::vector<cudnnConvolutionBwdFilterAlgo_t> bwd_filter;

  ConvPlan() = default;
  ConvPlan(const ConvPlan&) = delete;
  ConvPlan& operator=(const ConvPlan&) = delete;
  ~ConvPlan() {
    if (conv) cudnnDestroyConvolutionDescriptor(conv);
    if (w) cudnnDestroyFilterDescriptor(w);
    if (y) cudnnDestroyTensorDescriptor(y);
    if (x) cudnnDestroyTensorDescriptor(x);
  }
};

// The usable algorithms of cuDNN's ranked list (its heuristics, best first).
template <class Perf>
auto usable_algorithms(const std::vector<Perf>& perf, int returned) {
  std::vector<decltype(Perf{}.algo)> algos;
  for (int i = 0; i < returned; ++i) {
    const Perf& p = perf[static_cast<size_t>(i)];
    if (p.status != CUDNN_STATUS_SUCCESS || p.determinism != CUDNN_DETERMINISTIC) continue;
    if (p.mathType == CUDNN_TENSOR_OP_MATH || p.mathType == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION) continue;
    bool seen = false;
    for (auto a : algos) seen = seen || a == p.algo;
    if (!seen) algos.push_back(p.algo);
  }
  return algos;
}

enum class Layout { AsIs, Ohwi };  // Ohwi: conv weights [out, in, kh, kw] -> [out, kh, kw, in]

struct ParamsId {
  Layout layout;
  const float* host;
  std::array<int64_t, 4> dims;
  bool operator<(const ParamsId& o) const {
    return std::tie(layout, host, dims) < std::tie(o.layout, o.host, o.dims);
  }
};

struct CachedParams {
  uint64_t content_id = 0;  // 0: nothing valid in buf
  DeviceBuffer buf;
};

using ConvKey = std::array<int64_t, 11>;

ConvKey conv_key(const Conv2dGeometry& g) {
  return {g.batch,    g.in_h,     g.in_w,     g.in_c,  g.out_c, g.kernel_h,
          g.kernel_w, g.stride_h, g.stride_w, g.pad_h, g.pad_w};
}

// Algorithms that want more cuDNN workspace than this are passed over.
constexpr size_t kMaxWorkspace = size_t{1} << 30;

// Parameters kept on the device for at most this many host tensors; beyond
// that (many models loaded one after another) the cache starts over.
constexpr size_t kMaxCachedParams = 256;

}  // namespace

bool cuda_device_available(std::string* reason) {
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    cudaGetLastError();  // clear the runtime's sticky error state
    if (reason) *reason = std::string(cudaGetErrorString(err)) + " (" + cudaGetErrorName(err) + ")";
    return false;
  }
  if (count < 1) {
    if (reason) *reason = "the CUDA runtime reports 0 devices";
    return false;
  }
  return true;
}

struct CudaBackend::State {
  int device = 0;
  std::string device_name;
  cudaStream_t stream = nullptr;
  cublasHandle_t cublas = nullptr;
  cudnnHandle_t cudnn = nullptr;
  std::array<DeviceBuffer, 5> scratch;  // activations and gradients of the op in progress
  DeviceBuffer workspace;               // cuDNN's
  DeviceBuffer indices;                 // max-pool argmax
  DeviceBuffer staging;                 // conv weights before their re-layout
  DeviceBuffer unkeyed_weight, unkeyed_bias;
  std::map<ParamsId, CachedParams> params;
  std::map<ConvKey, std::unique_ptr<ConvPlan>> plans;
  int64_t uploads = 0;

  State() = default;
  State(const State&) = delete;
  State& operator=(const State&) = delete;
  ~State() {
    plans.clear();
    if (cudnn) cudnnDestroy(cudnn);
    if (cublas) cublasDestroy(cublas);
    if (stream) cudaStreamDestroy(stream);
  }

  // At the start of every op (never within one: the op holds pointers into the cache).
  void begin() {
    check(cudaSetDevice(device), "selecting device " + std::to_string(device));
    if (params.size() >= kMaxCachedParams) params.clear();
  }

  float* upload(DeviceBuffer& buf, const float* host, int64_t count) {
    float* d = buf.floats(count);
    check(cudaMemcpyAsync(d, host, sizeof(float) * static_cast<size_t>(count), cudaMemcpyHostToDevice, stream),
          "copying to the device");
    return d;
  }

  // Copies the result back and waits for the op to finish.
  template <class T>
  void download(T* host, const T* d, int64_t count) {
    check(cudaMemcpyAsync(host, d, sizeof(T) * static_cast<size_t>(count), cudaMemcpyDeviceToHost, stream),
          "copying from the device");
    check(cudaStreamSynchronize(stream), "running on the device");
  }

  // The device copy of a weight or bias tensor in `layout`: the cached one
  // when `content_id` names what is cached, otherwise uploaded now (into the
  // cache when content_id is known, else into `unkeyed`).
  const float* device_params(Layout layout, const float* host, const std::array<int64_t, 4>& dims,
                             uint64_t content_id, DeviceBuffer& unkeyed) {
    const int64_t count = dims[0] * dims[1] * dims[2] * dims[3];
    CachedParams* cached = nullptr;
    if (content_id != 0) {
      cached = &params[ParamsId{layout, host, dims}];
      if (cached->content_id == content_id) return cached->buf.floats(count);
      cached->content_id = 0;
    }
    DeviceBuffer& dst = cached ? cached->buf : unkeyed;
    if (layout == Layout::AsIs) {
      upload(dst, host, count);
    } else {
      const float* raw = upload(staging, host, count);
      cuda::oihw_to_ohwi(stream, raw, dst.floats(count), dims[0], dims[1], dims[2], dims[3]);
    }
    if (cached) {
      cached->content_id = content_id;
      ++uploads;
    }
    return dst.floats(count);
  }

  ConvPlan& plan(const Conv2dGeometry& g) {
    std::unique_ptr<ConvPlan>& slot = plans[conv_key(g)];
    if (slot) return *slot;
    auto p = std::make_unique<ConvPlan>();
    check(cudnnCreateTensorDescriptor(&p->x), "cudnnCreateTensorDescriptor");
    check(cudnnCreateTensorDescriptor(&p->y), "cudnnCreateTensorDescriptor");
    check(cudnnCreateFilterDescriptor(&p->w), "cudnnCreateFilterDescriptor");
    check(cudnnCreateConvolutionDescriptor(&p->conv), "cudnnCreateConvolutionDescriptor");
    const int n = to_int(g.batch, "batch"), in_c = to_int(g.in_c, "input channels"),
              out_c = to_int(g.out_c, "output channels");
    check(cudnnSetTensor4dDescriptor(p->x, CUDNN_TENSOR_NHWC, CUDNN_DATA_FLOAT, n, in_c, to_int(g.in_h, "height"),
                                     to_int(g.in_w, "width")),
          "conv2d input descriptor");
    check(cudnnSetTensor4dDescriptor(p->y, CUDNN_TENSOR_NHWC, CUDNN_DATA_FLOAT, n, out_c,
                                     to_int(g.out_h(), "output height"), to_int(g.out_w(), "output width")),
          "conv2d output descriptor");
    check(cudnnSetFilter4dDescriptor(p->w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NHWC, out_c, in_c,
                                     to_int(g.kernel_h, "kernel height"), to_int(g.kernel_w, "kernel width")),
          "conv2d filter descriptor");
    check(cudnnSetConvolution2dDescriptor(p->conv, to_int(g.pad_h, "padding"), to_int(g.pad_w, "padding"),
                                          to_int(g.stride_h, "stride"), to_int(g.stride_w, "stride"), 1, 1,
                                          CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT),
          "conv2d descriptor");
    // Plain FMA kernels: no TF32 tensor cores, whose 10-bit mantissas would
    // leave the reference backend's tolerance far behind.
    check(cudnnSetConvolutionMathType(p->conv, CUDNN_FMA_MATH), "cudnnSetConvolutionMathType");
    int dn = 0, dc = 0, dh = 0, dw = 0;
    check(cudnnGetConvolution2dForwardOutputDim(p->conv, p->x, p->w, &dn, &dc, &dh, &dw),
          "cudnnGetConvolution2dForwardOutputDim");
    if (dn != n || dc != out_c || dh != g.out_h() || dw != g.out_w())
      throw Error("cuda backend: cuDNN's conv2d output size differs from igscope's");
    slot = std::move(p);
    return *slot;
  }

  // Runs the first candidate algorithm that runs; drops those that do not.
  template <class Algo, class WorkspaceSize, class Run>
  void run_conv(std::vector<Algo>& candidates, WorkspaceSize workspace_size, Run run, const std::string& what) {
    cudnnStatus_t last = CUDNN_STATUS_NOT_SUPPORTED;
    while (!candidates.empty()) {
      const Algo algo = candidates.front();
      size_t bytes = 0;
      cudnnStatus_t status = workspace_size(algo, &bytes);
      if (status == CUDNN_STATUS_SUCCESS && bytes > kMaxWorkspace) status = CUDNN_STATUS_ALLOC_FAILED;
      if (status == CUDNN_STATUS_SUCCESS) {
        void* ws = bytes ? workspace.try_reserve(bytes) : nullptr;
        status = bytes && !ws ? CUDNN_STATUS_ALLOC_FAILED : run(algo, ws, bytes);
      }
      if (status == CUDNN_STATUS_SUCCESS) return;
      last = status;
      candidates.erase(candidates.begin());
    }
    throw Error("cuda backend: " + what + ": no deterministic cuDNN algorithm without tensor-core math runs (last: " +
                cudnnGetErrorString(last) + ")");
  }
};

CudaBackend::CudaBackend(int device) : state_(std::make_unique<State>()) {
  std::string why;
  if (!cuda_device_available(&why)) throw Error("no CUDA device: " + why);
  int count = 0;
  check(cudaGetDeviceCount(&count), "cudaGetDeviceCount");
  if (device < 0 || device >= count)
    throw Error("no CUDA device " + std::to_string(device) + ": there are " + std::to_string(count));
  State& s = *state_;
  s.device = device;
  s.begin();
  cudaDeviceProp prop{};
  check(cudaGetDeviceProperties(&prop, device), "cudaGetDeviceProperties");
  s.device_name = std::string(prop.name) + " (sm_" + std::to_string(prop.major) + std::to_string(prop.minor) + ")";
  check(cudaStreamCreateWithFlags(&s.stream, cudaStreamNonBlocking), "cudaStreamCreate");
  check(cublasCreate(&s.cublas), "cublasCreate");
  check(cublasSetStream(s.cublas, s.stream), "cublasSetStream");
  check(cublasSetMathMode(s.cublas, CUBLAS_DEFAULT_MATH), "cublasSetMathMode");  // float32, no TF32
  check(cudnnCreate(&s.cudnn), "cudnnCreate");
  check(cudnnSetStream(s.cudnn, s.stream), "cudnnSetStream");
}

CudaBackend::~CudaBackend() = default;

std::string CudaBackend::device_name() const { return state_->device_name; }

int64_t CudaBackend::upload_count() const { return state_->uploads; }

void CudaBackend::conv2d_forward(const Conv2dGeometry& g, const float* in, const float* weight, const float* bias,
                                 float* out, const ParamsKey& key) {
  check_conv2d_geometry(g, "cuda conv2d_forward");
  if (g.batch == 0) return;
  State& s = *state_;
  s.begin();
  ConvPlan& p = s.plan(g);
  if (!p.have_fwd) {
    std::vector<cudnnConvolutionFwdAlgoPerf_t> perf(CUDNN_CONVOLUTION_FWD_ALGO_COUNT);
    int returned = 0;
    check(cudnnGetConvolutionForwardAlgorithm_v7(s.cudnn, p.x, p.w, p.conv, p.y, CUDNN_CONVOLUTION_FWD_ALGO_COUNT,
                                                 &returned, perf.data()),
          "cudnnGetConvolutionForwardAlgorithm_v7");
    p.fwd = usable_algorithms(perf, returned);
    p.have_fwd = true;
  }
  const float* w = s.device_params(Layout::Ohwi, weight, {g.out_c, g.in_c, g.kernel_h, g.kernel_w}, key.weight,
                                   s.unkeyed_weight);
  const float* b =
      bias ? s.device_params(Layout::AsIs, bias, {g.out_c, 1, 1, 1}, key.known() ? key.bias : 0, s.unkeyed_bias)
           : nullptr;
  const int64_t rows = g.batch * g.out_h() * g.out_w();
  const float* x = s.upload(s.scratch[0], in, g.batch * g.in_h * g.in_w * g.in_c);
  float* y = s.scratch[1].floats(rows * g.out_c);
  const float one = 1.0f, zero = 0.0f;
  s.run_conv(
      p.fwd,
      [&](cudnnConvolutionFwdAlgo_t a, size_t* bytes) {
        return cudnnGetConvolutionForwardWorkspaceSize(s.cudnn, p.x, p.w, p.conv, p.y, a, bytes);
      },
      [&](cudnnConvolutionFwdAlgo_t a, void* ws, size_t bytes) {
        return cudnnConvolutionForward(s.cudnn, &one, p.x, x, p.w, w, p.conv, a, ws, bytes, &zero, p.y, y);
      },
      "conv2d forward");
  if (b) cuda::add_to_rows(s.stream, y, b, rows, g.out_c);
  s.download(out, y, rows * g.out_c);
}

void CudaBackend::conv2d_backward_input(const Conv2dGeometry& g, const float* dout, const float* weight, float* din,
                                        const ParamsKey& key) {
  check_conv2d_geometry(g, "cuda conv2d_backward_input");
  if (g.batch == 0) return;
  State& s = *state_;
  s.begin();
  ConvPlan& p = s.plan(g);
  if (!p.have_bwd_data) {
    std::vector<cudnnConvolutionBwdDataAlgoPerf_t> perf(CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT);
    int returned = 0;
    check(cudnnGetConvolutionBackwardDataAlgorithm_v7(s.cudnn, p.w, p.y, p.conv, p.x,
                                                      CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &returned, perf.data()),
          "cudnnGetConvolutionBackwardDataAlgorithm_v7");
    p.bwd_data = usable_algorithms(perf, returned);
    p.have_bwd_data = true;
  }
  const float* w = s.device_params(Layout::Ohwi, weight, {g.out_c, g.in_c, g.kernel_h, g.kernel_w}, key.weight,
                                   s.unkeyed_weight);
  const int64_t in_count = g.batch * g.in_h * g.in_w * g.in_c;
  const float* dy = s.upload(s.scratch[0], dout, g.batch * g.out_h() * g.out_w() * g.out_c);
  float* dx = s.scratch[1].floats(in_count);
  const float one = 1.0f, zero = 0.0f;
  s.run_conv(
      p.bwd_data,
      [&](cudnnConvolutionBwdDataAlgo_t a, size_t* bytes) {
        return cudnnGetConvolutionBackwardDataWorkspaceSize(s.cudnn, p.w, p.y, p.conv, p.x, a, bytes);
      },
      [&](cudnnConvolutionBwdDataAlgo_t a, void* ws, size_t bytes) {
        return cudnnConvolutionBackwardData(s.cudnn, &one, p.w, w, p.y, dy, p.conv, a, ws, bytes, &zero, p.x, dx);
      },
      "conv2d input gradient");
  s.download(din, dx, in_count);
}

void CudaBackend::conv2d_backward_params(const Conv2dGeometry& g, const float* in, const float* dout, float* dweight,
                                         float* dbias) {
  check_conv2d_geometry(g, "cuda conv2d_backward_params");
  if (g.batch == 0) return;
  State& s = *state_;
  s.begin();
  ConvPlan& p = s.plan(g);
  if (!p.have_bwd_filter) {
    std::vector<cudnnConvolutionBwdFilterAlgoPerf_t> perf(CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT);
    int returned = 0;
    check(cudnnGetConvolutionBackwardFilterAlgorithm_v7(s.cudnn, p.x, p.y, p.conv, p.w,
                                                        CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &returned,
                                                        perf.data()),
          "cudnnGetConvolutionBackwardFilterAlgorithm_v7");
    p.bwd_filter = usable_algorithms(perf, returned);
    p.have_bwd_filter = true;
  }
  const int64_t rows = g.batch * g.out_h() * g.out_w();
  const int64_t w_count = g.out_c * g.in_c * g.kernel_h * g.kernel_w;
  const float* x = s.upload(s.scratch[0], in, g.batch * g.in_h * g.in_w * g.in_c);
  const float* dy = s.upload(s.scratch[1], dout, rows * g.out_c);
  float* dw_ohwi = s.scratch[2].floats(w_count);
  const float one = 1.0f, zero = 0.0f;
  s.run_conv(
      p.bwd_filter,
      [&](cudnnConvolutionBwdFilterAlgo_t a, size_t* bytes) {
        return cudnnGetConvolutionBackwardFilterWorkspaceSize(s.cudnn, p.x, p.y, p.conv, p.w, a, bytes);
      },
      [&](cudnnConvolutionBwdFilterAlgo_t a, void* ws, size_t bytes) {
        return cudnnConvolutionBackwardFilter(s.cudnn, &one, p.x, x, p.y, dy, p.conv, a, ws, bytes, &zero, p.w,
                                              dw_ohwi);
      },
      "conv2d weight gradient");
  float* dw = s.upload(s.scratch[3], dweight, w_count);
  cuda::add_ohwi_to_oihw(s.stream, dw_ohwi, dw, g.out_c, g.in_c, g.kernel_h, g.kernel_w);
  if (dbias) {
    float* db = s.upload(s.scratch[4], dbias, g.out_c);
    cuda::accumulate_column_sums(s.stream, dy, rows, g.out_c, db);
    s.download(dbias, static_cast<const float*>(db), g.out_c);
  }
  s.download(dweight, static_cast<const float*>(dw), w_count);
}

void CudaBackend::dense_forward(int64_t batch, int64_t in_f, int64_t out_f, const float* x, const float* weight,
                                const float* bias, float* y, const ParamsKey& key) {
  check_dense_sizes(batch, in_f, out_f, "cuda dense_forward");
  if (batch == 0) return;
  State& s = *state_;
  s.begin();
  const float* w = s.device_params(Layout::AsIs, weight, {out_f, in_f, 1, 1}, key.weight, s.unkeyed_weight);
  const float* b =
      bias ? s.device_params(Layout::AsIs, bias, {out_f, 1, 1, 1}, key.known() ? key.bias : 0, s.unkeyed_bias)
           : nullptr;
  const float* dx = s.upload(s.scratch[0], x, batch * in_f);
  float* dy = s.scratch[1].floats(batch * out_f);
  cuda::fill_rows(s.stream, dy, b, batch, out_f);
  // Column-major view: y^T [out_f x batch] = (w as [in_f x out_f])^T * (x as [in_f x batch]) + y^T.
  const float one = 1.0f;
  check(cublasSgemm(s.cublas, CUBLAS_OP_T, CUBLAS_OP_N, to_int(out_f, "features"), to_int(batch, "batch"),
                    to_int(in_f, "features"), &one, w, to_int(in_f, "features"), dx, to_int(in_f, "features"), &one,
                    dy, to_int(out_f, "features")),
        "dense forward (cublasSgemm)");
  s.download(y, static_cast<const float*>(dy), batch * out_f);
}

void CudaBackend::dense_backward_input(int64_t batch, int64_t in_f, int64_t out_f, const float* dy,
                                       const float* weight, float* dx, const ParamsKey& key) {
  check_dense_sizes(batch, in_f, out_f, "cuda dense_backward_input");
  if (batch == 0) return;
  State& s = *state_;
  s.begin();
  const float* w = s.device_params(Layout::AsIs, weight, {out_f, in_f, 1, 1}, key.weight, s.unkeyed_weight);
  const float* d_dy = s.upload(s.scratch[0], dy, batch * out_f);
  float* d_dx = s.scratch[1].floats(batch * in_f);
  // dx^T [in_f x batch] = (w as [in_f x out_f]) * (dy as [out_f x batch]).
  const float one = 1.0f, zero = 0.0f;
  check(cublasSgemm(s.cublas, CUBLAS_OP_N, CUBLAS_OP_N, to_int(in_f, "features"), to_int(batch, "batch"),
                    to_int(out_f, "features"), &one, w, to_int(in_f, "features"), d_dy, to_int(out_f, "features"),
                    &zero, d_dx, to_int(in_f, "features")),
        "dense input gradient (cublasSgemm)");
  s.download(dx, static_cast<const float*>(d_dx), batch * in_f);
}

void CudaBackend::dense_backward_params(int64_t batch, int64_t in_f, int64_t out_f, const float* x, const float* dy,
                                        float* dweight, float* dbias) {
  check_dense_sizes(batch, in_f, out_f, "cuda dense_backward_params");
  if (batch == 0) return;
  State& s = *state_;
  s.begin();
  const float* d_x = s.upload(s.scratch[0], x, batch * in_f);
  const float* d_dy = s.upload(s.scratch[1], dy, batch * out_f);
  float* d_dw = s.upload(s.scratch[2], dweight, out_f * in_f);
  // dw^T [in_f x out_f] += (x as [in_f x batch]) * (dy as [out_f x batch])^T.
  const float one = 1.0f;
  check(cublasSgemm(s.cublas, CUBLAS_OP_N, CUBLAS_OP_T, to_int(in_f, "features"), to_int(out_f, "features"),
                    to_int(batch, "batch"), &one, d_x, to_int(in_f, "features"), d_dy, to_int(out_f, "features"),
                    &one, d_dw, to_int(in_f, "features")),
        "dense weight gradient (cublasSgemm)");
  if (dbias) {
    float* d_db = s.upload(s.scratch[3], dbias, out_f);
    cuda::accumulate_column_sums(s.stream, d_dy, batch, out_f, d_db);
    s.download(dbias, static_cast<const float*>(d_db), out_f);
  }
  s.download(dweight, static_cast<const float*>(d_dw), out_f * in_f);
}

namespace {
cuda::PoolDims pool_dims(const Pool2dGeometry& g) {
  return {g.batch,    g.in_h,     g.in_w,  g.channels, g.kernel_h, g.kernel_w,
          g.stride_h, g.stride_w, g.pad_h, g.pad_w,    g.out_h(),  g.out_w()};
}
}  // namespace

void CudaBackend::maxpool2d_forward(const Pool2dGeometry& g, const float* in, float* out, int64_t* argmax) {
  check_pool2d_geometry(g, "cuda maxpool2d_forward");
  if (g.batch == 0) return;
  State& s = *state_;
  s.begin();
  const cuda::PoolDims d = pool_dims(g);
  const int64_t out_count = g.batch * d.out_h * d.out_w * g.channels;
  const float* x = s.upload(s.scratch[0], in, g.batch * g.in_h * g.in_w * g.channels);
  float* y = s.scratch[1].floats(out_count);
  int64_t* idx = s.indices.int64s(out_count);
  cuda::maxpool_forward(s.stream, d, x, y, idx);
  check(cudaMemcpyAsync(argmax, idx, sizeof(int64_t) * static_cast<size_t>(out_count), cudaMemcpyDeviceToHost,
                        s.stream),
        "copying from the device");
  s.download(out, static_cast<const float*>(y), out_count);
}

void CudaBackend::maxpool2d_backward(const Pool2dGeometry& g, const float* dout, const int64_t* argmax, float* din) {
  check_pool2d_geometry(g, "cuda maxpool2d_backward");
  if (g.batch == 0) return;
  State& s = *state_;
  s.begin();
  const cuda::PoolDims d = pool_dims(g);
  const int64_t out_count = g.batch * d.out_h * d.out_w * g.channels;
  const int64_t in_count = g.batch * g.in_h * g.in_w * g.channels;
  const float* dy = s.upload(s.scratch[0], dout, out_count);
  int64_t* idx = s.indices.int64s(out_count);
  check(cudaMemcpyAsync(idx, argmax, sizeof(int64_t) * static_cast<size_t>(out_count), cudaMemcpyHostToDevice,
                        s.stream),
        "copying to the device");
  float* dx = s.scratch[1].floats(in_count);
  cuda::maxpool_backward(s.stream, d, dy, idx, dx);
  s.download(din, static_cast<const float*>(dx), in_count);
}

void CudaBackend::relu_forward(int64_t count, const float* in, float* out) {
  if (count <= 0) return;
  State& s = *state_;
  s.begin();
  const float* x = s.upload(s.scratch[0], in, count);
  float* y = s.scratch[1].floats(count);
  cuda::relu_forward(s.stream, count, x, y);
  s.download(out, static_cast<const float*>(y), count);
}

void CudaBackend::relu_backward(int64_t count, const float* out, const float* dout, float* din) {
  if (count <= 0) return;
  State& s = *state_;
  s.begin();
  const float* y = s.upload(s.scratch[0], out, count);
  const float* dy = s.upload(s.scratch[1], dout, count);
  float* dx = s.scratch[2].floats(count);
  cuda::relu_backward(s.stream, count, y, dy, dx);
  s.download(din, static_cast<const float*>(dx), count);
}

}  // namespace igscope
