#pragma once
// Timing of the work IG does, for `igscope bench` and bench/kernels: one
// forward pass of a batch of path points, and whole Integrated Gradients runs
// (Gauss-Legendre, the path evaluated in chunks of batch_size points), on one
// backend with a given thread count.
//
// FLOPs are counted from the model's multiply-adds (2 FLOPs each): a forward
// pass of B samples costs 2 * B * M, and an input-gradient pass as much again
// (each conv2d / dense input gradient has exactly its forward multiply-adds).
// An n-step IG evaluates n path points forward and backward plus the input
// and the baseline forward: 2 * M * (2 n + 2). M counts direct convolutions;
// a backend that computes them with fewer multiply-adds (the simd backend's
// Winograd convolutions) gets an effective rate from this count.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "igscope/backend/backend.h"
#include "igscope/model.h"
#include "igscope/tensor.h"

namespace igscope {

struct IgBenchmarkOptions {
  std::string backend = default_backend();
  int threads = 0;            // 0: one per core
  int64_t steps = 32;         // Gauss-Legendre points
  int64_t batch_size = 32;    // path points per forward/backward pass
  int64_t target_class = -1;  // -1: the class the model predicts for the image
  double min_seconds = 1.0;   // keep repeating each measurement at least this long
  int min_repeats = 5;        // and at least this many times
  bool profile = false;       // also time each kind of backend op (IgBenchmark::ops)
};

struct IgBenchmark {
  std::string backend;
  int threads = 0;
  int64_t steps = 0, batch_size = 0, target_class = 0;
  int64_t multiply_adds = 0;        // per sample, forward
  double ms_forward_batch = 0.0;    // median over repeats
  double ms_per_ig = 0.0;           // median over repeats
  double ms_per_ig_best = 0.0;      // fastest repeat
  int forward_repeats = 0, ig_repeats = 0;
  double flops_forward_batch = 0.0, flops_per_ig = 0.0;
  double gflops_forward() const { return flops_forward_batch / (ms_forward_batch * 1e6); }
  double gflops_ig() const { return flops_per_ig / (ms_per_ig * 1e6); }
  double gap = 0.0;                 // the completeness gap of the IG it timed
  // With options.profile: IG runs repeated through a TimedBackend, the mean
  // ms per IG of each kind of op that ran, and of the whole IG; what the ops
  // do not account for is the work between kernels.
  std::vector<std::pair<std::string, double>> ops;
  double ms_per_profiled_ig = 0.0;
};

// image: one sample of the model's input shape ([1, ...] or without the
// batch dimension); the baseline is all zeros. Throws Error for bad options.
IgBenchmark benchmark_ig(Model& model, const Tensor& image, const IgBenchmarkOptions& options);

}  // namespace igscope
