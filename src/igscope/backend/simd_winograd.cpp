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

// F(m x m, 3x3): an (m + 2) x (m + 2) input tile gives m x m outputs. Each
// specialisation has the transforms of its m:
//   kernel(g, u)     U = G g G^T for one 3x3 kernel g (row-major), in double
//                    and rounded once
//   input(d, c, v)   V = B^T d B for kLanes channels of one tile: d[r][c]
//                    points at the channels of input row r, column c; v[pos]
//                    receives position pos (row-major)
//   output(m, y)     Y = A^T M A: the m x m outputs y (row-major) from the
//                    products m[pos]
template <int M>
struct Tile;

// G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1], B^T = [1 0 -1 0; 0 1 1 0;
// 0 -1 1 0; 0 1 0 -1], A^T = [1 1 1 0; 0 1 -1 -1]: adds, subtractions and
// halving.
template <>
struct Tile<2> {
  static constexpr int kSide = 4, kPositions = 16;
  // Tiles per task: two micro-kernel row tiles, so that a task's transformed
  // inputs and products stay in the core's L1 between the three stages (in
  // wasm under node, 1-thread IG: 19.6-19.9 ms with 1 or 2 row tiles per
  // task, 21.3-22.6 with 4 or 8; natively on AVX2, 2 threads, 1, 4 and 8
  // row tiles were slower too).
  static constexpr int64_t kTilesPerTask = kMR * 2;

  static void kernel(const double g[9], float u[kPositions]) {
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

  static void input(const float* const d[kSide][kSide], int64_t c, float* const v[kPositions]) {
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

  static void output(const Vec m[kPositions], Vec y[4]) {
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
};

// Interpolation points 0, 1, -1, 2, -2 and infinity:
// G = [1/4 0 0; -1/6 -1/6 -1/6; -1/6 1/6 -1/6; 1/24 1/12 1/6;
//      1/24 -1/12 1/6; 0 0 1],
// B^T = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0; 0 -2 -1 2 1 0;
//        0 2 -1 -2 1 0; 0 4 0 -5 0 1],
// A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1].
template <>
struct Tile<4> {
  static constexpr int kSide = 6, kPositions = 36;
  // One micro-kernel row tile per task: on AVX2, 2 threads, a 32-step IG of
  // fashion_cnn_v1 took 4.85 ms against 5.16, 5.08 and 5.29 with 2, 3 and 4.
  static constexpr int64_t kTilesPerTask = kMR;

  // x (3 values) -> G x (6 values)
  static void apply_g(const double x[3], double y[6]) {
    y[0] = x[0] / 4.0;
    y[1] = -(x[0] + x[1] + x[2]) / 6.0;
    y[2] = -(x[0] - x[1] + x[2]) / 6.0;
    y[3] = x[0] / 24.0 + x[1] / 12.0 + x[2] / 6.0;
    y[4] = x[0] / 24.0 - x[1] / 12.0 + x[2] / 6.0;
    y[5] = x[2];
  }

  static void kernel(const double g[9], float u[kPositions]) {
    double t[6][3];  // G g, column by column
    for (int c = 0; c < 3; ++c) {
      const double col[3] = {g[c], g[3 + c], g[6 + c]};
      double out[6];
      apply_g(col, out);
      for (int r = 0; r < 6; ++r) t[r][c] = out[r];
    }
    for (int r = 0; r < 6; ++r) {
      double out[6];
      apply_g(t[r], out);
      for (int c = 0; c < 6; ++c) u[r * 6 + c] = static_cast<float>(out[c]);
    }
  }

  // x (6 values) -> B^T x
  static void apply_bt(const Vec x[6], Vec y[6]) {
    const Vec a = x[4] - 4.0f * x[2], b = x[3] - 4.0f * x[1];  // shared by rows 1, 2
    const Vec e = x[4] - x[2], f = 2.0f * (x[3] - x[1]);       // shared by rows 3, 4
    y[0] = 4.0f * x[0] - 5.0f * x[2] + x[4];
    y[1] = a + b;
    y[2] = a - b;
    y[3] = e + f;
    y[4] = e - f;
    y[5] = 4.0f * x[1] - 5.0f * x[3] + x[5];
  }

  static void input(const float* const d[kSide][kSide], int64_t c, float* const v[kPositions]) {
    Vec t[6][6];  // B^T d
    for (int col = 0; col < 6; ++col) {
      Vec x[6], y[6];
      for (int r = 0; r < 6; ++r) x[r] = simd::load(d[r][col] + c);
      apply_bt(x, y);
      for (int r = 0; r < 6; ++r) t[r][col] = y[r];
    }
    for (int r = 0; r < 6; ++r) {
      Vec y[6];
      apply_bt(t[r], y);
      for (int col = 0; col < 6; ++col) simd::store(v[r * 6 + col] + c, y[col]);
    }
  }

  // x (6 values) -> A^T x (4 values)
  static void apply_at(const Vec x[6], Vec y[4]) {
    const Vec p12 = x[1] + x[2], m12 = x[1] - x[2], p34 = x[3] + x[4], m34 = x[3] - x[4];
    y[0] = x[0] + p12 + p34;
    y[1] = m12 + 2.0f * m34;
    y[2] = p12 + 4.0f * p34;
    y[3] = m12 + 8.0f * m34 + x[5];
  }

  static void output(const Vec m[kPositions], Vec y[16]) {
    Vec s[6][4];  // M A, row by row
    for (int r = 0; r < 6; ++r) apply_at(m + r * 6, s[r]);
    for (int col = 0; col < 4; ++col) {
      Vec x[6], out[4];
      for (int r = 0; r < 6; ++r) x[r] = s[r][col];
      apply_at(x, out);
      for (int r = 0; r < 4; ++r) y[r * 4 + col] = out[r];
    }
  }
};

// kernel(o, i, ky, kx) -> U packed as position matrices of channels_in x
// channels_out, each in panels of kNR columns.
template <int M, class Kernel>
void pack(int64_t channels_in, int64_t channels_out, std::vector<float>& packed, Kernel kernel) {
  constexpr int kPositions = Tile<M>::kPositions;
  const int64_t panels = ceil_div(channels_out, kNR);
  const int64_t per_position = panels * channels_in * kNR;
  packed.assign(static_cast<size_t>(kPositions * per_position), 0.0f);
  for (int64_t o = 0; o < channels_out; ++o)
    for (int64_t i = 0; i < channels_in; ++i) {
      double g[9];
      for (int k = 0; k < 9; ++k) g[k] = kernel(o, i, k / 3, k % 3);
      float u[kPositions];
      Tile<M>::kernel(g, u);
      const int64_t panel = o / kNR, column = o % kNR;
      for (int pos = 0; pos < kPositions; ++pos)
        packed[static_cast<size_t>(pos * per_position + (panel * channels_in + i) * kNR + column)] = u[pos];
    }
}

template <class Kernel>
void pack_tiles(int tile, int64_t channels_in, int64_t channels_out, std::vector<float>& packed, Kernel kernel) {
  if (tile == 4) pack<4>(channels_in, channels_out, packed, kernel);
  else pack<2>(channels_in, channels_out, packed, kernel);
}

template <int M>
void convolve_tiles(ThreadPool& pool, const std::vector<float>& packed, int64_t channels_in, int64_t channels_out,
                    int64_t batch, int64_t h, int64_t w, const float* in, const float* bias, const float* zeros,
                    float* out) {
  constexpr int kSide = Tile<M>::kSide, kPositions = Tile<M>::kPositions;
  constexpr int64_t kTilesPerTask = Tile<M>::kTilesPerTask;
  const int64_t C = channels_in, N = channels_out;
  const int64_t tiles_h = ceil_div(h, M), tiles_w = ceil_div(w, M), tiles = batch * tiles_h * tiles_w;
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
      const float* d[kSide][kSide];
      for (int r = 0; r < kSide; ++r)
        for (int c = 0; c < kSide; ++c) {
          const int64_t y = M * ty - 1 + r, x = M * tx - 1 + c;
          d[r][c] = y >= 0 && y < h && x >= 0 && x < w ? in + ((n * h + y) * w + x) * C : zeros;
        }
      float* vp[kPositions];
      for (int pos = 0; pos < kPositions; ++pos) vp[pos] = v.data() + (pos * kTilesPerTask + j) * C;
      for (int64_t c = 0; c < C; c += kLanes) Tile<M>::input(d, c, vp);
    }

    // Stage 2: a GEMM per position, [count x C] times [C x N].
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

    // Stage 3: back to M x M outputs per tile (those inside the image), plus the bias.
    for (int64_t j = 0; j < count; ++j) {
      const int64_t t = t0 + j, tx = t % tiles_w, ty = t / tiles_w % tiles_h, n = t / (tiles_w * tiles_h);
      const int64_t rows = std::min<int64_t>(M, h - M * ty), cols = std::min<int64_t>(M, w - M * tx);
      float* corner = out + ((n * h + M * ty) * w + M * tx) * N;
      for (int64_t o = 0; o < N; o += kLanes) {
        Vec mv[kPositions];
        for (int pos = 0; pos < kPositions; ++pos) mv[pos] = simd::load(m.data() + (pos * kTilesPerTask + j) * N + o);
        Vec y[M * M];
        Tile<M>::output(mv, y);
        const Vec b = bias ? simd::load(bias + o) : simd::zero();
        for (int64_t r = 0; r < rows; ++r)
          for (int64_t c = 0; c < cols; ++c) simd::store(corner + (r * w + c) * N + o, y[r * M + c] + b);
      }
    }
  });
}

}  // namespace

bool applies(const Conv2dGeometry& g, bool backward_input) {
  const int64_t channels_in = backward_input ? g.out_c : g.in_c;
  const int64_t channels_out = backward_input ? g.in_c : g.out_c;
  return g.groups == 1 && !g.dilated() && g.kernel_h == 3 && g.kernel_w == 3 && g.stride_h == 1 && g.stride_w == 1 &&
         g.pad_h == 1 && g.pad_w == 1 && channels_in % kLanes == 0 && channels_out % kLanes == 0;
}

int tile_size(int64_t h, int64_t w, bool backward_input) {
  if (!backward_input) return 2;
  // Position-GEMM rows either way: F(4x4) takes 36 / 16 = 2.25 products
  // per output against F(2x2)'s 4, but pads the image to multiples of 4.
  const int64_t small = Tile<2>::kPositions * ceil_div(h, 2) * ceil_div(w, 2);
  const int64_t large = Tile<4>::kPositions * ceil_div(h, 4) * ceil_div(w, 4);
  return large < small ? 4 : 2;
}

void pack_forward(const Conv2dGeometry& g, int tile, const float* weight, std::vector<float>& u) {
  const int64_t C = g.in_c;
  pack_tiles(tile, g.in_c, g.out_c, u, [&](int64_t o, int64_t i, int ky, int kx) {
    return static_cast<double>(weight[((o * C + i) * 3 + ky) * 3 + kx]);
  });
}

void pack_backward_input(const Conv2dGeometry& g, int tile, const float* weight, std::vector<float>& u) {
  // din[., y, x, i] = sum over (o, ky, kx) of dout[., y + 1 - ky, x + 1 - kx, o] w[o, i, ky, kx]:
  // a forward convolution of dout with w[o, i] rotated by 180 degrees.
  const int64_t C = g.in_c;
  pack_tiles(tile, g.out_c, g.in_c, u, [&](int64_t i, int64_t o, int ky, int kx) {
    return static_cast<double>(weight[((o * C + i) * 3 + (2 - ky)) * 3 + (2 - kx)]);
  });
}

void convolve(ThreadPool& pool, int tile, const std::vector<float>& packed, int64_t channels_in,
              int64_t channels_out, int64_t batch, int64_t h, int64_t w, const float* in, const float* bias,
              const float* zeros, float* out) {
  if (tile == 4) convolve_tiles<4>(pool, packed, channels_in, channels_out, batch, h, w, in, bias, zeros, out);
  else convolve_tiles<2>(pool, packed, channels_in, channels_out, batch, h, w, in, bias, zeros, out);
}

}  // namespace igscope::winograd
