#include "igscope/backend/simd_winograd.h"

#include <algorithm>

#include "igscope/backend/simd_gemm.h"

namespace igscope::winograd {

using simd::ceil_div;
using simd::kLanes;
using simd::kMR;
using simd::kNR;
using simd::Vec;

namespace {

constexpr int kPositions = 16;  // a 4x4 tile in Winograd space
// Tiles per task: two micro-kernel row tiles, so that a task's transformed
// inputs and products stay in the core's L1 between the three stages (in
// wasm under node, 1-thread IG: 19.6-19.9 ms with 1 or 2 row tiles per
// task, 21.3-22.6 with 4 or 8).
constexpr int64_t kTilesPerTask = kMR * 2;

// U = G g G^T for one 3x3 kernel g (row-major), G = [1 0 0; 1/2 1/2 1/2;
// 1/2 -1/2 1/2; 0 0 1], in double and rounded once.
void transform_kernel(const double g[9], float u[kPositions]) {
  double t[4][3];  // G g
  for (int c = 0; c < 3; ++c) {
    t[0][c] = g[c];
    t[1][c] = 0.5 * (g[c] + g[3 + c] + g[6 + c]);
    t[2][c] = 0.5 * (g[c] - g[3 + c] + g[6 + c]);
    t[3][c] = g[6 + c];
  }
  for (int r = 0; r < 4; ++r) {
    u[r * 4 + 0] = static_cast<float>(t[r][0]);
    u[r * 4 + 1] = static_cast<float>(0.5 * (t[r][0] + t[r][1] + t[r][2]));
    u[r * 4 + 2] = static_cast<float>(0.5 * (t[r][0] - t[r][1] + t[r][2]));
    u[r * 4 + 3] = static_cast<float>(t[r][2]);
  }
}

// kernel(o, i, ky, kx) -> U packed as 16 position matrices of
// channels_in x channels_out, each in panels of kNR columns.
template <class Kernel>
void pack(int64_t channels_in, int64_t channels_out, std::vector<float>& packed, Kernel kernel) {
  const int64_t panels = ceil_div(channels_out, kNR);
  const int64_t per_position = panels * channels_in * kNR;
  packed.assign(static_cast<size_t>(kPositions * per_position), 0.0f);
  for (int64_t o = 0; o < channels_out; ++o)
    for (int64_t i = 0; i < channels_in; ++i) {
      double g[9];
      for (int k = 0; k < 9; ++k) g[k] = kernel(o, i, k / 3, k % 3);
      float u[kPositions];
      transform_kernel(g, u);
      const int64_t panel = o / kNR, column = o % kNR;
      for (int pos = 0; pos < kPositions; ++pos)
        packed[static_cast<size_t>(pos * per_position + (panel * channels_in + i) * kNR + column)] = u[pos];
    }
}

// V = B^T d B for kLanes channels of one tile, B^T = [1 0 -1 0; 0 1 1 0;
// 0 -1 1 0; 0 1 0 -1]. d[r][c] points at the channels of input row r,
// column c of the tile; v[pos] receives position pos.
inline void transform_input(const float* const d[4][4], int64_t c, float* const v[kPositions]) {
  Vec t[4][4];  // B^T d
  for (int col = 0; col < 4; ++col) {
    const Vec d0 = simd::load(d[0][col] + c), d1 = simd::load(d[1][col] + c);
    const Vec d2 = simd::load(d[2][col] + c), d3 = simd::load(d[3][col] + c);
    t[0][col] = d0 - d2;
    t[1][col] = d1 + d2;
    t[2][col] = d2 - d1;
    t[3][col] = d1 - d3;
  }
  for (int r = 0; r < 4; ++r) {
    simd::store(v[r * 4 + 0] + c, t[r][0] - t[r][2]);
    simd::store(v[r * 4 + 1] + c, t[r][1] + t[r][2]);
    simd::store(v[r * 4 + 2] + c, t[r][2] - t[r][1]);
    simd::store(v[r * 4 + 3] + c, t[r][1] - t[r][3]);
  }
}

// Y = A^T M A for kLanes channels, A^T = [1 1 1 0; 0 1 -1 -1]: the 2x2
// outputs y[0..3] (row-major) from the 16 products m[pos].
inline void transform_output(const Vec m[kPositions], Vec y[4]) {
  Vec s[4][2];  // M A
  for (int r = 0; r < 4; ++r) {
    s[r][0] = m[r * 4 + 0] + m[r * 4 + 1] + m[r * 4 + 2];
    s[r][1] = m[r * 4 + 1] - m[r * 4 + 2] - m[r * 4 + 3];
  }
  for (int col = 0; col < 2; ++col) {
    y[col] = s[0][col] + s[1][col] + s[2][col];
    y[2 + col] = s[1][col] - s[2][col] - s[3][col];
  }
}

}  // namespace

bool applies(const Conv2dGeometry& g, bool backward_input) {
  const int64_t channels_in = backward_input ? g.out_c : g.in_c;
  const int64_t channels_out = backward_input ? g.in_c : g.out_c;
  return g.groups == 1 && !g.dilated() && g.kernel_h == 3 && g.kernel_w == 3 && g.stride_h == 1 && g.stride_w == 1 &&
         g.pad_h == 1 && g.pad_w == 1 && channels_in % kLanes == 0 && channels_out % kLanes == 0;
}

void pack_forward(const Conv2dGeometry& g, const float* weight, std::vector<float>& u) {
  const int64_t C = g.in_c;
  pack(g.in_c, g.out_c, u, [&](int64_t o, int64_t i, int ky, int kx) {
    return static_cast<double>(weight[((o * C + i) * 3 + ky) * 3 + kx]);
  });
}

void pack_backward_input(const Conv2dGeometry& g, const float* weight, std::vector<float>& u) {
  // din[., y, x, i] = sum over (o, ky, kx) of dout[., y + 1 - ky, x + 1 - kx, o] w[o, i, ky, kx]:
  // a forward convolution of dout with w[o, i] rotated by 180 degrees.
  const int64_t C = g.in_c;
  pack(g.out_c, g.in_c, u, [&](int64_t i, int64_t o, int ky, int kx) {
    return static_cast<double>(weight[((o * C + i) * 3 + (2 - ky)) * 3 + (2 - kx)]);
  });
}

void convolve(ThreadPool& pool, const std::vector<float>& packed, int64_t channels_in, int64_t channels_out,
              int64_t batch, int64_t h, int64_t w, const float* in, const float* bias, const float* zeros,
              float* out) {
  const int64_t C = channels_in, N = channels_out;
  const int64_t tiles_h = ceil_div(h, 2), tiles_w = ceil_div(w, 2), tiles = batch * tiles_h * tiles_w;
  if (tiles == 0) return;
  const int64_t panels = ceil_div(N, kNR), per_position = panels * C * kNR;

  pool.parallel_for(ceil_div(tiles, kTilesPerTask), [&](int64_t task) {
    const int64_t t0 = task * kTilesPerTask, count = std::min(kTilesPerTask, tiles - t0);
    thread_local std::vector<float> v, m;  // [position][tile][channel]
    v.resize(static_cast<size_t>(kPositions * kTilesPerTask * C));
    m.resize(static_cast<size_t>(kPositions * kTilesPerTask * N));

    // Stage 1: the tiles' inputs into Winograd space.
    for (int64_t j = 0; j < count; ++j) {
      const int64_t t = t0 + j, tx = t % tiles_w, ty = t / tiles_w % tiles_h, n = t / (tiles_w * tiles_h);
      const float* d[4][4];
      for (int r = 0; r < 4; ++r)
        for (int c = 0; c < 4; ++c) {
          const int64_t y = 2 * ty - 1 + r, x = 2 * tx - 1 + c;
          d[r][c] = y >= 0 && y < h && x >= 0 && x < w ? in + ((n * h + y) * w + x) * C : zeros;
        }
      float* vp[kPositions];
      for (int pos = 0; pos < kPositions; ++pos) vp[pos] = v.data() + (pos * kTilesPerTask + j) * C;
      for (int64_t c = 0; c < C; c += kLanes) transform_input(d, c, vp);
    }

    // Stage 2: 16 GEMMs, [count x C] times [C x N] each.
    for (int pos = 0; pos < kPositions; ++pos) {
      const float* vpos = v.data() + pos * kTilesPerTask * C;
      float* mpos = m.data() + pos * kTilesPerTask * N;
      for (int64_t panel = 0; panel < panels; ++panel) {
        const float* u = packed.data() + pos * per_position + panel * C * kNR;
        const int64_t nr = std::min<int64_t>(kNR, N - panel * kNR);
        for (int64_t r0 = 0; r0 < count; r0 += kMR) {
          const int64_t mr = std::min<int64_t>(kMR, count - r0);
          const float* rows[kMR];
          for (int r = 0; r < kMR; ++r) rows[r] = vpos + (r0 + (r < mr ? r : 0)) * C;
          simd::gemm_tile(1, C, rows, u, nullptr, mpos + r0 * N + panel * kNR, N, mr, nr);
        }
      }
    }

    // Stage 3: back to 2x2 outputs per tile, plus the bias.
    for (int64_t j = 0; j < count; ++j) {
      const int64_t t = t0 + j, tx = t % tiles_w, ty = t / tiles_w % tiles_h, n = t / (tiles_w * tiles_h);
      const bool full_x = 2 * tx + 1 < w, full_y = 2 * ty + 1 < h;
      float* o00 = out + ((n * h + 2 * ty) * w + 2 * tx) * N;
      for (int64_t o = 0; o < N; o += kLanes) {
        Vec mv[kPositions];
        for (int pos = 0; pos < kPositions; ++pos) mv[pos] = simd::load(m.data() + (pos * kTilesPerTask + j) * N + o);
        Vec y[4];
        transform_output(mv, y);
        const Vec b = bias ? simd::load(bias + o) : simd::zero();
        simd::store(o00 + o, y[0] + b);
        if (full_x) simd::store(o00 + N + o, y[1] + b);
        if (full_y) simd::store(o00 + w * N + o, y[2] + b);
        if (full_x && full_y) simd::store(o00 + (w + 1) * N + o, y[3] + b);
      }
    }
  });
}

}  // namespace igscope::winograd
