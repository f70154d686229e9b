#pragma once
// What several subcommands read: an input sample named on the command line,
// and the data some baseline kinds need.
#include <optional>
#include <string>

#include "igscope/attribution/baselines.h"
#include "igscope/model.h"
#include "igscope/tensor.h"

namespace igscope::tools {

// A grey-scale (or RGB, for 3-channel models) PNG as one sample [1, H, W, C]
// in [0, 1]; its size must be the model's. `what` names it in errors.
Tensor read_png(const std::string& path, const Shape& shape, const std::string& what);

struct Input {
  Tensor sample;                 // [1, input shape...]
  std::optional<int> label;      // the class, for an image of the test set
};

// "test:INDEX" (the Fashion-MNIST test set) or a PNG file of the model's size.
Input read_input(const std::string& spec, Model& model);

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
