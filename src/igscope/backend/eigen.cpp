#include "igscope/backend/eigen.h"

#include <algorithm>

#include <Eigen/Core>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "igscope/error.h"

namespace igscope {

namespace {
using RowMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using MapRow = Eigen::Map<RowMatrix>;
using ConstMapRow = Eigen::Map<const RowMatrix>;
using ConstMapVector = Eigen::Map<const Eigen::RowVectorXf>;
using MapVector = Eigen::Map<Eigen::RowVectorXf>;

// A patch row holds every input channel's taps, channel by channel, so group
// g's patch (in_c / groups channels) is the contiguous slice of columns
// [g * group_patch, (g + 1) * group_patch), and group g's weights, rows
// [g * out_c / groups, ...) of [out_c, group_patch], are contiguous too.
int64_t patch_size(const Conv2dGeometry& g) { return g.in_c * g.kernel_h * g.kernel_w; }
int64_t group_patch(const Conv2dGeometry& g) { return g.group_in_c() * g.kernel_h * g.kernel_w; }
int64_t pixels(const Conv2dGeometry& g) { return g.batch * g.out_h() * g.out_w(); }
}  // namespace

EigenBackend::EigenBackend(int threads) {
#ifdef _OPENMP
  threads_ = threads > 0 ? threads : omp_get_num_procs();
#else
  threads_ = 1;
  (void)threads;
#endif
}

void EigenBackend::im2col(const Conv2dGeometry& g, const float* in) {
  const int64_t k = patch_size(g), oh = g.out_h(), ow = g.out_w();
  columns_.resize(static_cast<size_t>(pixels(g) * k));
  float* cols = columns_.data();
#pragma omp parallel for num_threads(threads_) schedule(static)
  for (int64_t p = 0; p < pixels(g); ++p) {
    const int64_t n = p / (oh * ow), oy = (p / ow) % oh, ox = p % ow;
    float* row = cols + p * k;
    for (int64_t c = 0; c < g.in_c; ++c)
      for (int64_t ky = 0; ky < g.kernel_h; ++ky) {
        const int64_t iy = oy * g.stride_h - g.pad_h + ky * g.dilation_h;
        for (int64_t kx = 0; kx < g.kernel_w; ++kx) {
          const int64_t ix = ox * g.stride_w - g.pad_w + kx * g.dilation_w;
          const bool inside = iy >= 0 && iy < g.in_h && ix >= 0 && ix < g.in_w;
          row[(c * g.kernel_h + ky) * g.kernel_w + kx] =
              inside ? in[((n * g.in_h + iy) * g.in_w + ix) * g.in_c + c] : 0.0f;
        }
      }
  }
}

void EigenBackend::conv2d_forward(const Conv2dGeometry& g, const float* in, const float* weight, const float* bias,
                                  float* out, const ParamsKey& /*key*/) {
  check_conv2d_geometry(g, "conv2d_forward");
  Eigen::setNbThreads(threads_);
  im2col(g, in);
  const int64_t k = patch_size(g), kg = group_patch(g), p = pixels(g), go = g.group_out_c();
  ConstMapRow cols(columns_.data(), p, k);
  ConstMapRow w(weight, g.out_c, kg);
  MapRow o(out, p, g.out_c);
  if (g.groups == 1) {
    o.noalias() = cols * w.transpose();
  } else {
    // Groups write disjoint blocks; one thread per group (a GEMM inside a
    // parallel region runs on its thread), not a parallel GEMM per group.
#pragma omp parallel for num_threads(threads_) schedule(static)
    for (int64_t grp = 0; grp < g.groups; ++grp)
      o.middleCols(grp * go, go).noalias() =
          cols.middleCols(grp * kg, kg) * w.middleRows(grp * go, go).transpose();
  }
  if (bias) o.rowwise() += ConstMapVector(bias, g.out_c);
}

void EigenBackend::conv2d_backward_input(const Conv2dGeometry& g, const float* dout, const float* weight,
                                         float* din, const ParamsKey& /*key*/) {
  check_conv2d_geometry(g, "conv2d_backward_input");
  Eigen::setNbThreads(threads_);
  const int64_t k = patch_size(g), kg = group_patch(g), p = pixels(g), oh = g.out_h(), ow = g.out_w();
  const int64_t go = g.group_out_c();
  columns_.resize(static_cast<size_t>(p * k));
  MapRow dcols(columns_.data(), p, k);
  ConstMapRow d(dout, p, g.out_c);
  ConstMapRow w(weight, g.out_c, kg);
  if (g.groups == 1) {
    dcols.noalias() = d * w;
  } else {
    // Groups write disjoint blocks; one thread per group (a GEMM inside a
    // parallel region runs on its thread), not a parallel GEMM per group.
#pragma omp parallel for num_threads(threads_) schedule(static)
    for (int64_t grp = 0; grp < g.groups; ++grp)
      dcols.middleCols(grp * kg, kg).noalias() = d.middleCols(grp * go, go) * w.middleRows(grp * go, go);
  }
  // col2im: scatter-add each patch gradient back; images are disjoint, so one thread per image.
  const float* cols = columns_.data();
  std::fill(din, din + g.batch * g.in_h * g.in_w * g.in_c, 0.0f);
#pragma omp parallel for num_threads(threads_) schedule(static)
  for (int64_t n = 0; n < g.batch; ++n)
    for (int64_t oy = 0; oy < oh; ++oy)
      for (int64_t ox = 0; ox < ow; ++ox) {
        const float* row = cols + ((n * oh + oy) * ow + ox) * k;
        for (int64_t c = 0; c < g.in_c; ++c)
          for (int64_t ky = 0; ky < g.kernel_h; ++ky) {
            const int64_t iy = oy * g.stride_h - g.pad_h + ky * g.dilation_h;
            if (iy < 0 || iy >= g.in_h) continue;
            for (int64_t kx = 0; kx < g.kernel_w; ++kx) {
              const int64_t ix = ox * g.stride_w - g.pad_w + kx * g.dilation_w;
              if (ix < 0 || ix >= g.in_w) continue;
              din[((n * g.in_h + iy) * g.in_w + ix) * g.in_c + c] += row[(c * g.kernel_h + ky) * g.kernel_w + kx];
            }
          }
      }
}

void EigenBackend::conv2d_backward_params(const Conv2dGeometry& g, const float* in, const float* dout,
                                          float* dweight, float* dbias) {
  check_conv2d_geometry(g, "conv2d_backward_params");
  Eigen::setNbThreads(threads_);
  im2col(g, in);
  const int64_t k = patch_size(g), kg = group_patch(g), p = pixels(g), go = g.group_out_c();
  ConstMapRow d(dout, p, g.out_c);
  ConstMapRow cols(columns_.data(), p, k);
  MapRow dw(dweight, g.out_c, kg);
  if (g.groups == 1) {
    dw.noalias() += d.transpose() * cols;
  } else {
    // Groups write disjoint blocks; one thread per group (a GEMM inside a
    // parallel region runs on its thread), not a parallel GEMM per group.
#pragma omp parallel for num_threads(threads_) schedule(static)
    for (int64_t grp = 0; grp < g.groups; ++grp)
      dw.middleRows(grp * go, go).noalias() += d.middleCols(grp * go, go).transpose() * cols.middleCols(grp * kg, kg);
  }
  if (dbias) MapVector(dbias, g.out_c) += d.colwise().sum();
}

void EigenBackend::dense_forward(int64_t batch, int64_t in_f, int64_t out_f, const float* x, const float* weight,
                                 const float* bias, float* y, const ParamsKey& /*key*/) {
  Eigen::setNbThreads(threads_);
  MapRow out(y, batch, out_f);
  out.noalias() = ConstMapRow(x, batch, in_f) * ConstMapRow(weight, out_f, in_f).transpose();
  if (bias) out.rowwise() += ConstMapVector(bias, out_f);
}

void EigenBackend::dense_backward_input(int64_t batch, int64_t in_f, int64_t out_f, const float* dy,
                                        const float* weight, float* dx, const ParamsKey& /*key*/) {
  Eigen::setNbThreads(threads_);
  MapRow(dx, batch, in_f).noalias() = ConstMapRow(dy, batch, out_f) * ConstMapRow(weight, out_f, in_f);
}

void EigenBackend::dense_backward_params(int64_t batch, int64_t in_f, int64_t out_f, const float* x,
                                         const float* dy, float* dweight, float* dbias) {
  Eigen::setNbThreads(threads_);
  ConstMapRow d(dy, batch, out_f);
  MapRow(dweight, out_f, in_f).noalias() += d.transpose() * ConstMapRow(x, batch, in_f);
  if (dbias) MapVector(dbias, out_f) += d.colwise().sum();
}

// One small product per task, the tasks spread over the threads (Eigen's
// own threading splits one product, too small here to gain from it).
void EigenBackend::batched_matmul(int64_t batch, int64_t m, int64_t n, int64_t k, bool trans_a, bool trans_b,
                                  const float* a, const float* b, float* c, bool accumulate) {
  if (batch < 0 || m < 0 || n < 0 || k < 0) throw Error("batched_matmul: negative size");
  Eigen::setNbThreads(1);
#pragma omp parallel for num_threads(threads_) schedule(static)
  for (int64_t s = 0; s < batch; ++s) {
    const ConstMapRow A(a + s * m * k, trans_a ? k : m, trans_a ? m : k);
    const ConstMapRow B(b + s * k * n, trans_b ? n : k, trans_b ? k : n);
    MapRow C(c + s * m * n, m, n);
    if (!accumulate) C.setZero();
    if (trans_a && trans_b)
      C.noalias() += A.transpose() * B.transpose();
    else if (trans_a)
      C.noalias() += A.transpose() * B;
    else if (trans_b)
      C.noalias() += A * B.transpose();
    else
      C.noalias() += A * B;
  }
}

}  // namespace igscope
