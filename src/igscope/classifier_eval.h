#pragma once
// Classification metrics: accuracy, per-class precision and recall, and the
// confusion matrix, from a model run in evaluation mode over a labelled set.
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "igscope/backend/backend.h"
#include "igscope/data/fashion_mnist.h"
#include "igscope/model.h"

namespace igscope {

struct ClassificationReport {
  int64_t total = 0, correct = 0;
  double accuracy = 0.0;
  std::vector<std::string> class_names;
  std::vector<std::vector<int64_t>> confusion;  // [true][predicted]
  std::vector<double> precision, recall;        // per class (0 when undefined)
  std::vector<int> predictions;                 // per image
  nlohmann::json to_json() const;
};

// Images [begin, begin + n) of the data set as one model input batch; throws
// Error when the images do not fit the model's input.
Tensor dataset_batch(const Model& model, const Dataset& data, int64_t begin, int64_t n);

// Index of the largest value in each row of [N, K] (the first on ties).
std::vector<int> argmax_rows(const Tensor& logits);

ClassificationReport evaluate_classifier(Model& model, Backend& backend, const Dataset& data,
                                         int64_t batch_size = 500);

}  // namespace igscope
