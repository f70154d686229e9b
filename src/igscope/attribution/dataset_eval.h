#pragma once
// Attribution quality over a data set: for every image and every (method,
// baseline) pair, the completeness gap and the faithfulness metrics
// (deletion / insertion AUC, infidelity, max-sensitivity), and the time spent
// attributing. Work splits into shards (image index mod n == i) whose
// results merge exactly: per-image records are kept, and every summary is
// computed from the merged records. Random baselines and metric noise are
// seeded per image index, so a shard computes exactly what a single run does.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "igscope/attribution/explain.h"
#include "igscope/attribution/metrics.h"
#include "igscope/data/fashion_mnist.h"

namespace igscope {

struct AttributionEvalConfig {
  std::vector<std::string> methods = {"ig"};
  // The baselines that need no data set: constant black and white, uniform
  // and Gaussian noise, a blur of the input and the maximum-distance image
  // (mean, median and train:N also need the training images).
  std::vector<std::string> baselines = {"black", "white", "uniform", "gaussian:0.1", "blur:2", "maxdist"};
  AttributionRequest request;      // steps, quadrature, target output, ...; method and baseline are set per pair
  int64_t curve_steps = 20;        // deletion / insertion points (the model's softmax probability of the target)
  InfidelityOptions infidelity;    // samples 0: skip
  SensitivityOptions sensitivity;  // samples 0: skip (it re-runs the method per sample)
  nlohmann::json to_json() const;
};

struct Shard {
  int64_t index = 0, count = 1;
  bool contains(int64_t image) const { return image % count == index; }
};
Shard parse_shard(const std::string& spec);  // "i/n", 0 <= i < n; throws Error

struct PairResult {
  std::string method, baseline;
  double f_input = 0, f_baseline = 0, gap = 0, relative_gap = 0;
  double deletion_auc = 0, insertion_auc = 0, infidelity = 0, sensitivity = 0;
  int64_t evaluations = 0;
  double seconds = 0;  // attribution only
};

struct ImageResult {
  int64_t index = 0;
  int label = 0;
  int64_t predicted = 0;
  std::vector<PairResult> pairs;
};

struct AttributionEvalResults {
  nlohmann::json config;
  std::vector<ImageResult> images;  // in increasing index
  double seconds = 0;               // wall clock of the run(s), metrics included
  nlohmann::json to_json() const;   // records, summary included
  static AttributionEvalResults from_json(const nlohmann::json& j);  // throws Error
  nlohmann::json summary() const;   // accuracy and per-pair statistics
};

struct EvalProgress {
  int64_t done = 0, total = 0;
  double images_per_second = 0;  // attribution throughput so far
};

AttributionEvalResults evaluate_attributions(Model& model, Backend& backend, const Dataset& data,
                                             const AttributionEvalConfig& config, const Shard& shard = {},
                                             const std::function<void(const EvalProgress&)>& on_progress = {},
                                             const BaselineSources& sources = {});

// Merges shard results of the same configuration; throws Error when the
// configurations differ or two shards hold the same image.
AttributionEvalResults merge_attribution_results(const std::vector<AttributionEvalResults>& parts);

}  // namespace igscope
