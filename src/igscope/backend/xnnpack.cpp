#include "igscope/backend/xnnpack.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <thread>
#include <vector>

#include <pthreadpool.h>
#include <xnnpack.h>

#include "igscope/error.h"

namespace igscope {

namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

const char* status_name(xnn_status s) {
  switch (s) {
    case xnn_status_success: return "success";
    case xnn_status_uninitialized: return "uninitialized";
    case xnn_status_invalid_parameter: return "invalid parameter";
    case xnn_status_invalid_state: return "invalid state";
    case xnn_status_unsupported_parameter: return "unsupported parameter";
    case xnn_status_unsupported_hardware: return "unsupported hardware";
    case xnn_status_out_of_memory: return "out of memory";
  }
  return "unknown status";
}

void check(xnn_status s, const char* what) {
  if (s != xnn_status_success) throw Error(std::string("xnnpack: ") + what + " failed (" + status_name(s) + ")");
}

size_t u(int64_t v) { return static_cast<size_t>(v); }
uint32_t u32(int64_t v) { return static_cast<uint32_t>(v); }

}  // namespace

void XnnpackBackend::OperatorDeleter::operator()(xnn_operator* op) const { xnn_delete_operator(op); }

XnnpackBackend::XnnpackBackend(int threads) {
  if (threads < 0) throw Error("backend threads must be >= 0 (0: one per core), got " + std::to_string(threads));
  check(xnn_initialize(nullptr), "initialisation");
  const unsigned cores = std::thread::hardware_concurrency();
  threads_ = threads > 0 ? threads : static_cast<int>(cores ? cores : 1);
  if (threads_ > 1) {
    pool_ = pthreadpool_create(u(threads_));
    if (!pool_) {
      xnn_deinitialize();
      throw Error("xnnpack: cannot create a thread pool of " + std::to_string(threads_) + " threads");
    }
  }
}

XnnpackBackend::~XnnpackBackend() {
  cache_.clear();
  uncached_.reset();
  if (pool_) pthreadpool_destroy(pool_);
  xnn_deinitialize();
}

template <class Create>
xnn_operator* XnnpackBackend::get(const OpId& id, const ParamsKey& key, bool has_weights, Create create) {
  if (has_weights && !key.known()) {
    uncached_.reset();
    xnn_operator* op = nullptr;
    create(&op);
    uncached_.reset(op);
    ++create_count_;
    return op;
  }
  auto it = cache_.find(id);
  if (it != cache_.end() && (!has_weights || it->second.key == key)) return it->second.op.get();
  if (it == cache_.end() && cache_.size() >= 64) cache_.clear();
  Cached& c = cache_[id];
  c.op.reset();
  xnn_operator* op = nullptr;
  create(&op);
  c.op.reset(op);
  c.key = key;
  if (has_weights) ++create_count_;
  return op;
}

void XnnpackBackend::run(xnn_operator* op, const char* what) { check(xnn_run_operator(op, pool_), what); }

namespace {
// What a convolution operator is made for, beyond its weights.
std::array<int64_t, 9> conv_dims(const Conv2dGeometry& g) {
  return {g.out_c,
          g.in_c,
          g.kernel_h,
          g.kernel_w,
          g.stride_h * 65536 + g.stride_w,
          g.pad_h * 65536 + g.pad_w,
          g.groups,
          g.dilation_h * 65536 + g.dilation_w,
          0};
}
}  // namespace

void XnnpackBackend::conv2d_forward(const Conv2dGeometry& g, const float* in, const float* weight, const float* bias,
                                    float* out, const ParamsKey& key) {
  check_conv2d_geometry(g, "conv2d_forward");
  if (g.batch == 0) return;
  const int64_t taps = g.kernel_h * g.kernel_w, gi = g.group_in_c();
  xnn_operator* op = get({Kind::ConvForward, weight, bias, conv_dims(g)}, key, true, [&](xnn_operator** created) {
    // XNNPACK takes [out, kh, kw, in / groups]; PyTorch's is [out, in / groups, kh, kw].
    std::vector<float> ohwi(u(g.out_c * taps * gi));
    for (int64_t o = 0; o < g.out_c; ++o)
      for (int64_t i = 0; i < gi; ++i)
        for (int64_t t = 0; t < taps; ++t) ohwi[u((o * taps + t) * gi + i)] = weight[(o * gi + i) * taps + t];
    check(xnn_create_convolution2d_nhwc_f32(u32(g.pad_h), u32(g.pad_w), u32(g.pad_h), u32(g.pad_w), u32(g.kernel_h),
                                            u32(g.kernel_w), u32(g.stride_h), u32(g.stride_w), u32(g.dilation_h),
                                            u32(g.dilation_w), u32(g.groups), u(gi), u(g.group_out_c()), u(g.in_c),
                                            u(g.out_c), ohwi.data(), bias, -kInf, kInf, 0, created),
          "create convolution");
  });
  check(xnn_setup_convolution2d_nhwc_f32(op, u(g.batch), u(g.in_h), u(g.in_w), in, out, pool_), "setup convolution");
  run(op, "convolution");
}

void XnnpackBackend::conv2d_backward_input(const Conv2dGeometry& g, const float* dout, const float* weight,
                                           float* din, const ParamsKey& key) {
  check_conv2d_geometry(g, "conv2d_backward_input");
  if (g.batch == 0) return;
  const int64_t taps = g.kernel_h * g.kernel_w, oh = g.out_h(), ow = g.out_w();
  const int64_t gi = g.group_in_c(), go = g.group_out_c();
  const int64_t pad_h = g.dilation_h * (g.kernel_h - 1) - g.pad_h, pad_w = g.dilation_w * (g.kernel_w - 1) - g.pad_w;
  if (g.groups > 1 && pad_h >= 0 && pad_w >= 0) {
    // A grouped convolution's input gradient is a stride-1 convolution, with
    // the same groups, of dout spread out by the stride (stride - 1 zeros
    // between its pixels), each group's kernels rotated by 180 degrees and
    // their in and out channels swapped, padded by dilation * (kernel - 1) -
    // pad (more at the bottom and right where the stride dropped input rows):
    // XNNPACK's fast depthwise kernels where the layer is depthwise, which
    // its grouped deconvolution is not (40 times slower on MobileNet's
    // strided depthwise layers). Strided, it multiplies stride^2 times as
    // many zeros as it needs.
    const int64_t spread_h = g.stride_h * (oh - 1) + 1, spread_w = g.stride_w * (ow - 1) + 1;
    const int64_t bottom = g.in_h - spread_h - pad_h + g.extent_h() - 1;
    const int64_t right = g.in_w - spread_w - pad_w + g.extent_w() - 1;
    std::array<int64_t, 9> dims = conv_dims(g);
    dims[8] = g.in_h * 65536 + g.in_w;  // the bottom and right padding depend on the input size
    xnn_operator* op = get({Kind::ConvBackwardInputRotated, weight, nullptr, dims}, key, true,
                           [&](xnn_operator** created) {
                             // [groups * gi, kh, kw, go]
                             std::vector<float> rotated(u(g.in_c * taps * go));
                             for (int64_t grp = 0; grp < g.groups; ++grp)
                               for (int64_t i = 0; i < gi; ++i)
                                 for (int64_t t = 0; t < taps; ++t)
                                   for (int64_t o = 0; o < go; ++o)
                                     rotated[u(((grp * gi + i) * taps + t) * go + o)] =
                                         weight[((grp * go + o) * gi + i) * taps + (taps - 1 - t)];
                             check(xnn_create_convolution2d_nhwc_f32(
                                       u32(pad_h), u32(right), u32(bottom), u32(pad_w), u32(g.kernel_h),
                                       u32(g.kernel_w), 1, 1, u32(g.dilation_h), u32(g.dilation_w), u32(g.groups),
                                       u(go), u(gi), u(g.out_c), u(g.in_c), rotated.data(), nullptr, -kInf, kInf, 0,
                                       created),
                                   "create convolution (input gradient)");
                           });
    const float* src = dout;
    if (g.stride_h > 1 || g.stride_w > 1) {
      // XNNPACK may read up to XNN_EXTRA_BYTES past the end of its input.
      spread_.assign(u(g.batch * spread_h * spread_w * g.out_c) + XNN_EXTRA_BYTES / sizeof(float), 0.0f);
      float* dst = spread_.data();
      pthreadpool_parallelize_1d(
          pool_,
          [&](size_t row) {
            const int64_t n = static_cast<int64_t>(row) / oh, oy = static_cast<int64_t>(row) % oh;
            for (int64_t ox = 0; ox < ow; ++ox)
              std::copy_n(dout + ((n * oh + oy) * ow + ox) * g.out_c, g.out_c,
                          dst + ((n * spread_h + oy * g.stride_h) * spread_w + ox * g.stride_w) * g.out_c);
          },
          u(g.batch * oh));
      src = dst;
    }
    check(xnn_setup_convolution2d_nhwc_f32(op, u(g.batch), u(spread_h), u(spread_w), src, din, pool_),
          "setup convolution (input gradient)");
    run(op, "convolution (input gradient)");
    return;
  }
  xnn_operator* op = get({Kind::ConvBackwardInput, weight, nullptr, conv_dims(g)}, key, true,
                         [&](xnn_operator** created) {
                           // The deconvolution maps out_c channels to in_c, group by group:
                           // kernel [groups * gi, kh, kw, go].
                           std::vector<float> ihwo(u(g.in_c * taps * go));
                           for (int64_t grp = 0; grp < g.groups; ++grp)
                             for (int64_t o = 0; o < go; ++o)
                               for (int64_t i = 0; i < gi; ++i)
                                 for (int64_t t = 0; t < taps; ++t)
                                   ihwo[u(((grp * gi + i) * taps + t) * go + o)] =
                                       weight[((grp * go + o) * gi + i) * taps + t];
                           check(xnn_create_deconvolution2d_nhwc_f32(
                                     u32(g.pad_h), u32(g.pad_w), u32(g.pad_h), u32(g.pad_w), u32(g.kernel_h),
                                     u32(g.kernel_w), u32(g.stride_h), u32(g.stride_w), u32(g.dilation_h),
                                     u32(g.dilation_w), u32(g.groups), u(go), u(gi), u(g.out_c), u(g.in_c),
                                     ihwo.data(), nullptr, -kInf, kInf, 0, created),
                                 "create deconvolution");
                         });
  // The transposed convolution's natural output is stride * (oh - 1) +
  // dilated kernel - 2 pad rows; the input rows a strided convolution never
  // read come back as the adjustment (always < stride).
  const int64_t adjust_h = g.in_h - (g.stride_h * (oh - 1) + g.extent_h() - 2 * g.pad_h);
  const int64_t adjust_w = g.in_w - (g.stride_w * (ow - 1) + g.extent_w() - 2 * g.pad_w);
  check(xnn_setup_deconvolution2d_nhwc_f32(op, u(g.batch), u(oh), u(ow), u32(adjust_h), u32(adjust_w), dout, din,
                                           pool_),
        "setup deconvolution");
  run(op, "deconvolution");
}

void XnnpackBackend::dense_forward(int64_t batch, int64_t in_f, int64_t out_f, const float* x, const float* weight,
                                   const float* bias, float* y, const ParamsKey& key) {
  check_dense_sizes(batch, in_f, out_f, "dense_forward");
  if (batch == 0) return;
  xnn_operator* op =
      get({Kind::DenseForward, weight, bias, {out_f, in_f}}, key, true, [&](xnn_operator** created) {
        check(xnn_create_fully_connected_nc_f32(u(in_f), u(out_f), u(in_f), u(out_f), weight, bias, -kInf, kInf, 0,
                                                created),
              "create fully connected");
      });
  check(xnn_setup_fully_connected_nc_f32(op, u(batch), x, y, pool_), "setup fully connected");
  run(op, "fully connected");
}

void XnnpackBackend::dense_backward_input(int64_t batch, int64_t in_f, int64_t out_f, const float* dy,
                                          const float* weight, float* dx, const ParamsKey& key) {
  check_dense_sizes(batch, in_f, out_f, "dense_backward_input");
  if (batch == 0) return;
  // dx = dy w: a fully connected layer from out_f to in_f whose weights,
  // [out_f, in_f], are the transpose of the layout XNNPACK expects.
  xnn_operator* op = get({Kind::DenseBackwardInput, weight, nullptr, {out_f, in_f}}, key, true,
                         [&](xnn_operator** created) {
                           check(xnn_create_fully_connected_nc_f32(u(out_f), u(in_f), u(out_f), u(in_f), weight,
                                                                   nullptr, -kInf, kInf,
                                                                   XNN_FLAG_TRANSPOSE_WEIGHTS, created),
                                 "create fully connected (transposed)");
                         });
  check(xnn_setup_fully_connected_nc_f32(op, u(batch), dy, dx, pool_), "setup fully connected (transposed)");
  run(op, "fully connected (transposed)");
}

void XnnpackBackend::maxpool2d_forward(const Pool2dGeometry& g, const float* in, float* out, int64_t* argmax) {
  check_pool2d_geometry(g, "maxpool2d_forward");
  if (g.batch == 0) return;
  const bool partial_windows = g.out_h() != (g.in_h - g.kernel_h) / g.stride_h + 1 ||
                               g.out_w() != (g.in_w - g.kernel_w) / g.stride_w + 1;
  if (g.stride_h != g.kernel_h || g.stride_w != g.kernel_w || g.pad_h != 0 || g.pad_w != 0 || partial_windows) {
    // Overlapping or gapped windows: XNNPACK's argmax pooling has no stride.
    // It has no ceil_mode either (partial last windows), and this version
    // does not document what value and index a padded window element takes,
    // so padding and partial windows cannot be trusted to give the first
    // input maximum in row-major order: those geometries run the reference
    // loops too. (ceil_mode where the windows tile the input exactly is the
    // floor geometry and stays on XNNPACK.)
    reference_.maxpool2d_forward(g, in, out, argmax);
    return;
  }
  const int64_t oh = g.out_h(), ow = g.out_w(), C = g.channels;
  xnn_operator* op = get({Kind::ArgmaxPool, nullptr, nullptr, {C, g.kernel_h, g.kernel_w}}, {}, false,
                         [&](xnn_operator** created) {
                           check(xnn_create_argmax_pooling2d_nhwc_f32(0, 0, 0, 0, u32(g.kernel_h), u32(g.kernel_w),
                                                                      u(C), u(C), u(C), 0, created),
                                 "create argmax pooling");
                         });
  const int64_t out_n = g.batch * oh * ow * C;
  window_index_.resize(u(out_n));
  check(xnn_setup_argmax_pooling2d_nhwc_f32(op, u(g.batch), u(g.in_h), u(g.in_w), in, out, window_index_.data(),
                                            pool_),
        "setup argmax pooling");
  run(op, "argmax pooling");
  // XNNPACK numbers a window's elements column by column (k = kx * kernel_h
  // + ky) and keeps the first maximum in that order; igscope (and PyTorch)
  // keep the first in row-major order. Everything before XNNPACK's choice in
  // column order is smaller than the maximum, so only the elements before it
  // in row order but after it in column order (rows above, columns to the
  // right) can hold an earlier tie.
  const uint32_t* index = window_index_.data();
  // XNNPACK's element k of a window as the offset (ky * in_w + kx) * C from
  // its corner, and ky, kx: no divisions per element.
  const int64_t window = g.kernel_h * g.kernel_w;
  std::vector<int64_t> cell_offset(u(window)), cell_y(u(window)), cell_x(u(window));
  for (int64_t k = 0; k < window; ++k) {
    cell_x[u(k)] = k / g.kernel_h;
    cell_y[u(k)] = k % g.kernel_h;
    cell_offset[u(k)] = (cell_y[u(k)] * g.in_w + cell_x[u(k)]) * C;
  }
  pthreadpool_parallelize_1d(
      pool_,
      [&](size_t row) {
        const int64_t n = static_cast<int64_t>(row) / oh, oy = static_cast<int64_t>(row) % oh;
        for (int64_t ox = 0; ox < ow; ++ox) {
          const int64_t corner = ((n * g.in_h + oy * g.kernel_h) * g.in_w + ox * g.kernel_w) * C;
          const int64_t o0 = ((n * oh + oy) * ow + ox) * C;
          for (int64_t c = 0; c < C; ++c) {
            const uint32_t k = index[o0 + c];
            const int64_t ky = cell_y[k], kx = cell_x[k];
            int64_t found = corner + cell_offset[k] + c;
            bool earlier = false;
            for (int64_t wy = 0; wy < ky && !earlier; ++wy)
              for (int64_t wx = kx + 1; wx < g.kernel_w; ++wx) {
                const int64_t idx = corner + (wy * g.in_w + wx) * C + c;
                if (in[idx] == out[o0 + c]) {
                  found = idx;
                  earlier = true;
                  break;
                }
              }
            argmax[o0 + c] = found;
          }
        }
      },
      u(g.batch * oh));
}

void XnnpackBackend::maxpool2d_backward(const Pool2dGeometry& g, const float* dout, const int64_t* argmax,
                                        float* din) {
  check_pool2d_geometry(g, "maxpool2d_backward");
  const int64_t in_per_image = g.in_h * g.in_w * g.channels;
  const int64_t out_per_image = g.out_h() * g.out_w() * g.channels;
  // Every argmax of image n lies in image n, so images are independent.
  pthreadpool_parallelize_1d(
      pool_,
      [&](size_t image) {
        const int64_t n = static_cast<int64_t>(image);
        std::fill(din + n * in_per_image, din + (n + 1) * in_per_image, 0.0f);
        for (int64_t o = n * out_per_image; o < (n + 1) * out_per_image; ++o) din[argmax[o]] += dout[o];
      },
      u(g.batch));
}

void XnnpackBackend::relu_forward(int64_t count, const float* in, float* out) {
  if (count <= 0) return;
  xnn_operator* op = get({Kind::Clamp, nullptr, nullptr, {}}, {}, false, [&](xnn_operator** created) {
    check(xnn_create_clamp_nc_f32(1, 1, 1, 0.0f, kInf, 0, created), "create clamp");
  });
  check(xnn_setup_clamp_nc_f32(op, u(count), in, out, pool_), "setup clamp");
  run(op, "clamp");
}

void XnnpackBackend::relu_backward(int64_t count, const float* out, const float* dout, float* din) {
  constexpr int64_t kChunk = 1 << 15;
  pthreadpool_parallelize_1d(
      pool_,
      [&](size_t chunk) {
        const int64_t begin = static_cast<int64_t>(chunk) * kChunk, end = std::min(count, begin + kChunk);
        // dout is read unconditionally, so that the loop vectorises (a
        // conditional load does not).
        for (int64_t i = begin; i < end; ++i) {
          const float d = dout[i];
          din[i] = out[i] > 0.0f ? d : 0.0f;
        }
      },
      u((std::max<int64_t>(count, 0) + kChunk - 1) / kChunk));
}

}  // namespace igscope
