// How many function evaluations IG needs to bring its completeness gap under
// a tolerance: the adaptive mode against uniform Gauss-Legendre.
//
//   bench_adaptive_ig [--model FILE] [--images N] [--tolerance T]... [--output logit|probability]
//                     [--baseline SPEC] [--max-steps N] [--points P] [--initial K] [--round R]
//                     [--backend NAME] [--json FILE] [--adaptive-only]
//
// For each of the first N test images (target: the predicted class; default
// baseline black) and each tolerance T (relative: |gap| <= T |F(x) - F(x')|):
//   adaptive   the adaptive mode's evaluated points when it stops;
//   uniform    the fewest points uniform Gauss-Legendre needs, n + 2 (F at
//              both ends is needed to know the gap), with n the smallest on
//              the grid 1, 2, 3, 4, 6, 8, 12, ... (steps of about sqrt 2) up to
//              max-steps whose gap is under T. Knowing that n takes
//              hindsight, so this favours the uniform rule;
//   doubling   what a user pays who tries n = 4, 8, 16, ... until the gap is
//              under T: the sum of the n tried, plus 2.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "igscope/attribution/baselines.h"
#include "igscope/attribution/ig.h"
#include "igscope/data/fashion_mnist.h"
#include "igscope/error.h"
#include "igscope/model.h"
#include "igscope/statistics.h"

using namespace igscope;

namespace {

struct Stats {
  std::vector<double> adaptive, uniform, doubling;
  double adaptive_seconds = 0.0, uniform_seconds = 0.0;  // wall time of the adaptive runs; of the hindsight-n uniform runs
  int adaptive_failed = 0, uniform_failed = 0, adaptive_fewer = 0, ties = 0;
};

std::vector<int64_t> uniform_grid(int64_t max_steps) {
  std::vector<int64_t> g;
  for (int64_t p = 1; p <= max_steps; p *= 2) {
    g.push_back(p);
    if (p >= 2 && p + p / 2 <= max_steps) g.push_back(p + p / 2);
  }
  std::sort(g.begin(), g.end());
  g.erase(std::unique(g.begin(), g.end()), g.end());
  return g;
}

}  // namespace

int main(int argc, char** argv) {
  std::string model_path = "model_weights/fashion_cnn_v1.safetensors", output = "logit", baseline = "black", backend_name,
              json_path;
  int64_t images = 100, max_steps = 1024;
  bool adaptive_only = false;
  AdaptiveOptions adaptive;
  std::vector<double> tolerances;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) throw Error(a + " needs a value");
      return argv[++i];
    };
    try {
      if (a == "--model") model_path = next();
      else if (a == "--images") images = std::stoll(next());
      else if (a == "--tolerance") tolerances.push_back(std::stod(next()));
      else if (a == "--output") output = next();
      else if (a == "--baseline") baseline = next();
      else if (a == "--max-steps") max_steps = std::stoll(next());
      else if (a == "--points") adaptive.points_per_interval = std::stoll(next());
      else if (a == "--initial") adaptive.initial_intervals = std::stoll(next());
      else if (a == "--round") adaptive.points_per_round = std::stoll(next());
      else if (a == "--backend") backend_name = next();
      else if (a == "--adaptive-only") adaptive_only = true;
      else if (a == "--json") json_path = next();
      else throw Error("unknown option " + a);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "bench_adaptive_ig: %s\n", e.what());
      return 2;
    }
  }
  if (tolerances.empty()) tolerances = {0.01, 0.001};
  adaptive.max_evaluations = max_steps;
  try {
    Model model = load_model(model_path);
    auto backend = make_backend(backend_name.empty() ? default_backend() : backend_name);
    const Dataset test = load_fashion_mnist("test");
    const TargetOutput out = parse_target_output(output);
    const BaselineSpec spec = parse_baseline_spec(baseline);
    const std::vector<int64_t> grid = uniform_grid(max_steps);
    std::vector<Stats> stats(tolerances.size());
    const auto t0 = std::chrono::steady_clock::now();
    int64_t total_evaluations = 0;
    for (int64_t k = 0; k < images && k < test.size(); ++k) {
      Tensor x(model.batch_input_shape(1));
      std::copy(test.images.data() + k * x.size(), test.images.data() + (k + 1) * x.size(), x.data());
      ModelTarget f(model, *backend, predicted_class(model, *backend, x), out);
      const std::vector<Tensor> bs = make_baselines(spec, x, {}, {}, 0);
      for (size_t t = 0; t < tolerances.size(); ++t) {
        Stats& s = stats[t];
        AdaptiveOptions o = adaptive;
        o.tolerance = tolerances[t];
        auto start = std::chrono::steady_clock::now();
        const Attribution a = adaptive_integrated_gradients(f, x, bs, o);
        s.adaptive_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        total_evaluations += a.evaluations;
        bool converged = true;
        for (const auto& p : a.paths) converged = converged && p.converged;
        if (converged) s.adaptive.push_back(static_cast<double>(a.evaluations));
        else ++s.adaptive_failed;
        // Uniform Gauss-Legendre on the grid, in increasing n.
        int64_t best = -1;
        for (int64_t n : adaptive_only ? std::vector<int64_t>{} : grid) {
          const Attribution u = integrated_gradients(f, x, bs, {Quadrature::GaussLegendre, n, 32});
          total_evaluations += u.evaluations;
          if (u.relative_gap() <= tolerances[t]) {
            best = u.evaluations;
            start = std::chrono::steady_clock::now();  // time the winning n alone, as if known in advance
            integrated_gradients(f, x, bs, {Quadrature::GaussLegendre, n, 32});
            s.uniform_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
            break;
          }
        }
        // Doubling from 4, as a user without hindsight would.
        int64_t paid = 2, doubled = -1;
        for (int64_t n = 4; n <= (adaptive_only ? 0 : max_steps); n *= 2) {
          paid += n;
          const Attribution u = integrated_gradients(f, x, bs, {Quadrature::GaussLegendre, n, 32});
          total_evaluations += u.evaluations;
          if (u.relative_gap() <= tolerances[t]) {
            doubled = paid;
            break;
          }
        }
        if (best > 0) s.uniform.push_back(static_cast<double>(best));
        else ++s.uniform_failed;
        if (doubled > 0) s.doubling.push_back(static_cast<double>(doubled));
        if (converged && best > 0) {
          s.adaptive_fewer += a.evaluations < best;
          s.ties += a.evaluations == best;
        }
      }
      std::fprintf(stderr, "\r%lld/%lld images", static_cast<long long>(k + 1), static_cast<long long>(images));
    }
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::fprintf(stderr, "\n");
    std::printf("model %s, %lld test images, target: predicted class (%s), baseline %s, cap %lld points\n",
                model_path.c_str(), static_cast<long long>(images), output.c_str(), baseline.c_str(),
                static_cast<long long>(max_steps));
    std::printf("adaptive: %lld initial intervals of %lld Gauss-Lobatto points, up to %lld new points per round\n",
                static_cast<long long>(adaptive.initial_intervals), static_cast<long long>(adaptive.points_per_interval),
                static_cast<long long>(adaptive.points_per_round));
    std::printf("\n%-9s %-26s %8s %8s %8s %8s %8s %8s\n", "tolerance", "evaluations to reach it", "median", "mean", "p90",
                "max", "reached", "fewer");
    nlohmann::json j = nlohmann::json::array();
    for (size_t t = 0; t < tolerances.size(); ++t) {
      const Stats& s = stats[t];
      auto row = [&](const char* name, const std::vector<double>& v, int failed, const std::string& fewer) {
        std::printf("%-9g %-26s %8.0f %8.1f %8.0f %8.0f %4zu/%-3lld %8s\n", tolerances[t], name, percentile(v, 50), mean(v),
                    percentile(v, 90), v.empty() ? std::nan("") : *std::max_element(v.begin(), v.end()), v.size(),
                    static_cast<long long>(v.size() + static_cast<size_t>(failed)), fewer.c_str());
      };
      row("adaptive", s.adaptive, s.adaptive_failed, std::to_string(s.adaptive_fewer) + "/" + std::to_string(s.ties));
      row("uniform GL (hindsight n)", s.uniform, s.uniform_failed, "");
      row("uniform GL (doubling)", s.doubling, static_cast<int>(images) - static_cast<int>(s.doubling.size()), "");
      j.push_back({{"tolerance", tolerances[t]},
                   {"adaptive", {{"median", percentile(s.adaptive, 50)}, {"mean", mean(s.adaptive)},
                                 {"p90", percentile(s.adaptive, 90)}, {"reached", s.adaptive.size()}}},
                   {"uniform_hindsight", {{"median", percentile(s.uniform, 50)}, {"mean", mean(s.uniform)},
                                          {"p90", percentile(s.uniform, 90)}, {"reached", s.uniform.size()}}},
                   {"uniform_doubling", {{"median", percentile(s.doubling, 50)}, {"mean", mean(s.doubling)},
                                         {"p90", percentile(s.doubling, 90)}, {"reached", s.doubling.size()}}},
                   {"adaptive_fewer", s.adaptive_fewer},
                   {"adaptive_ms_per_image", 1e3 * s.adaptive_seconds / static_cast<double>(images)},
                   {"uniform_hindsight_ms_per_image", 1e3 * s.uniform_seconds / static_cast<double>(images)},
                   {"ties", s.ties}});
    }
    std::printf("\n(fewer: images where adaptive needed fewer points than uniform with hindsight / as many)\n");
    for (size_t t = 0; t < tolerances.size(); ++t)
      std::printf("wall time per image at tolerance %g: adaptive %.1f ms, uniform GL with the hindsight n %.1f ms\n",
                  tolerances[t], 1e3 * stats[t].adaptive_seconds / static_cast<double>(images),
                  1e3 * stats[t].uniform_seconds / static_cast<double>(images));
    std::printf("%.1f s, %lld points evaluated in all, %s backend\n", secs, static_cast<long long>(total_evaluations),
                backend->name().c_str());
    if (!json_path.empty()) std::ofstream(json_path) << j.dump(2) << "\n";
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_adaptive_ig: %s\n", e.what());
    return 1;
  }
  return 0;
}
