#pragma once
// What several subcommands read: an input sample named on the command line,
// and the data some baseline kinds need.
#include <optional>
#include <string>
#include <vector>

#include "igscope/attribution/baselines.h"
#include "igscope/model.h"
#include "igscope/tabular.h"
#include "igscope/tensor.h"

namespace igscope::tools {

// A grey-scale (or RGB, for 3-channel models) PNG as one sample [1, H, W, C]
// in [0, 1]; its size must be the model's. `what` names it in errors.
Tensor read_png(const std::string& path, const Shape& shape, const std::string& what);

struct Input {
  Tensor sample;                 // [1, input shape...]
  std::optional<int> label;      // the class, for an image of the test set
  // Tabular inputs: the row's raw values, its target, and whether it is in the held-out split.
  std::vector<double> raw;
  std::optional<double> target;
  bool held_out = false;
};

// "test:INDEX" (the Fashion-MNIST test set), "diabetes:INDEX" (a row of the
// diabetes data, standardised as the model file says), or a PNG file of the
// model's size.
Input read_input(const std::string& spec, Model& model);

// For a tabular model: the data set's rows standardised as the model file
// says, and its split. Throws Error for a model without tabular information.
struct TabularRows {
  Tensor all;          // [N, F], standardised
  std::vector<double> targets;
  SplitIndices split;
};
TabularRows read_tabular_rows(const Model& model);

// The valid input range: [0, 1] for images; for a tabular model the smallest
// and largest standardised value in its data set.
ValueRange input_range(const Model& model);

// The data a baseline spec needs (a custom image, or the training set), read
// for `model`. Keep the object alive while `sources` is used.
struct BaselineData {
  Tensor custom, dataset;
  BaselineSources sources;
};
void read_baseline_data(const BaselineSpec& spec, Model& model, BaselineData& data);

// The model's name for class k, or k itself.
std::string class_name(const Model& model, int64_t k);

}  // namespace igscope::tools
