// Peak memory of IG on a named architecture (fashion_cnn_v1 unless --arch
// says otherwise; random He weights) as the number of steps grows.
//
//   attribution_memory_probe [--arch NAME] [--batch B] [--fixed-mmap-threshold] [--check-growth MB] STEPS...
//
// Runs one Gauss-Legendre IG per STEPS value, in order, in this process, and
// prints after each the process's peak resident memory (VmHWM). The peak is
// a high-water mark, so running 64 steps and then 1024 shows how much more
// memory 1024 steps need. With --check-growth MB, exits 1 when any later run
// raised the peak by more than MB over the first: memory must be bounded by
// the chunk (batch) size, not by the number of steps.
//
// glibc raises its mmap threshold each time a large block is freed, after
// which freed activation buffers stay in a fragmenting heap and the peak
// creeps up for a while whatever the work; --fixed-mmap-threshold pins the
// threshold (128 KiB) so that the peak reflects what the code holds.
#include <malloc.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "igscope/architectures.h"
#include "igscope/attribution/ig.h"
#include "igscope/model.h"

namespace {

double peak_rss_mib() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);)
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;  // kB
  return -1.0;
}

}  // namespace

int main(int argc, char** argv) {
  int64_t batch = 32;
  double max_growth = -1.0;
  std::string arch = "fashion_cnn_v1";
  std::vector<int64_t> steps;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--arch" && i + 1 < argc) {
      arch = argv[++i];
    } else if (a == "--batch" && i + 1 < argc) {
      batch = std::stoll(argv[++i]);
    } else if (a == "--fixed-mmap-threshold") {
      mallopt(M_MMAP_THRESHOLD, 128 * 1024);
    } else if (a == "--check-growth" && i + 1 < argc) {
      max_growth = std::stod(argv[++i]);
    } else {
      steps.push_back(std::stoll(a));
    }
  }
  if (steps.empty()) {
    std::fprintf(stderr, "usage: %s [--arch NAME] [--batch B] [--fixed-mmap-threshold] [--check-growth MB] STEPS...\n", argv[0]);
    return 2;
  }
  try {
    igscope::Model model(igscope::named_architecture(arch));
    model.init_he(1);
    auto backend = igscope::make_backend(igscope::default_backend());
    igscope::Tensor x(model.batch_input_shape(1));
    for (int64_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(static_cast<double>(i * 37 % 101) / 100.0);
    igscope::ModelTarget f(model, *backend, 3);
    const double before = peak_rss_mib();
    std::printf("{\"arch\": \"%s\", \"batch\": %lld, \"backend\": \"%s\", \"peak_mib_before\": %.1f, \"runs\": [",
                arch.c_str(), static_cast<long long>(batch), backend->name().c_str(), before);
    double first = 0.0, worst_growth = 0.0;
    for (size_t k = 0; k < steps.size(); ++k) {
      const auto a = igscope::integrated_gradients(f, x, igscope::Tensor(x.shape()),
                                                   {igscope::Quadrature::GaussLegendre, steps[k], batch});
      const double peak = peak_rss_mib();
      if (k == 0) first = peak;
      worst_growth = std::max(worst_growth, peak - first);
      std::printf("%s{\"steps\": %lld, \"evaluations\": %lld, \"peak_mib\": %.1f, \"relative_gap\": %.3g}", k ? ", " : "",
                  static_cast<long long>(steps[k]), static_cast<long long>(a.evaluations), peak, a.relative_gap());
    }
    std::printf("], \"growth_mib\": %.1f}\n", worst_growth);
    if (max_growth >= 0 && worst_growth > max_growth) {
      std::fprintf(stderr, "peak memory grew by %.1f MiB over the first run (allowed: %.1f MiB)\n", worst_growth, max_growth);
      return 1;
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "attribution_memory_probe: %s\n", e.what());
    return 1;
  }
  return 0;
}
