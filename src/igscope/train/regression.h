#pragma once
// Minibatch training of a one-output regressor on tabular rows with mean
// squared error and Adam: seeded shuffling, cosine learning-rate decay, an
// L2 penalty on the weights. Targets are standardised for training, and the
// scaling is folded into the last dense layer afterwards, so the trained
// model outputs the target in its own units. Deterministic for a seed.
#include <cstdint>
#include <functional>
#include <vector>

#include "igscope/backend/backend.h"
#include "igscope/model.h"

namespace igscope {

struct RegressionOptions {
  int epochs = 100;
  int64_t batch_size = 32;
  double lr = 1e-3;
  double final_lr_fraction = 0.05;  // cosine decay from lr to lr * this over the run
  double weight_decay = 1e-3;       // L2 penalty coefficient on weights (not biases), on standardised targets
  uint64_t seed = 1;
};

struct RegressionEpoch {
  int epoch;
  double loss;  // mean squared error on the standardised targets over the epoch
};

// x: [N, F] (the model's input), y: N targets. The model must end in a dense
// layer with one output; throws Error otherwise or on bad options.
std::vector<RegressionEpoch> train_regressor(Model& model, Backend& backend, const Tensor& x, const std::vector<double>& y,
                                             const RegressionOptions& options,
                                             const std::function<void(const RegressionEpoch&)>& on_epoch = {});

// The model's single output for every row of x [N, F] (evaluation mode).
std::vector<double> predict_rows(Model& model, Backend& backend, const Tensor& x);

}  // namespace igscope
