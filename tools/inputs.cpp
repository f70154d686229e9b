#include "inputs.h"

#include <algorithm>
#include <memory>

#include "igscope/data/diabetes.h"
#include "igscope/data/fashion_mnist.h"
#include "igscope/error.h"

#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#include <stb/stb_image.h>

namespace igscope::tools {

Tensor read_png(const std::string& path, const Shape& shape, const std::string& what) {
  if (shape.size() != 3) throw Error(what + ": the model does not take images");
  const int64_t h = shape[0], w = shape[1], c = shape[2];
  if (c != 1 && c != 3) throw Error(what + ": PNG input needs a model with 1 or 3 channels");
  int iw = 0, ih = 0, ic = 0;
  unsigned char* px = stbi_load(path.c_str(), &iw, &ih, &ic, static_cast<int>(c));
  if (!px) throw Error(what + ": cannot read image '" + path + "': " + stbi_failure_reason());
  std::unique_ptr<unsigned char, void (*)(void*)> guard(px, stbi_image_free);
  if (ih != h || iw != w)
    throw Error(what + ": '" + path + "' is " + std::to_string(iw) + "x" + std::to_string(ih) + " pixels but the model takes " +
                std::to_string(w) + "x" + std::to_string(h));
  Tensor t({1, h, w, c});
  for (int64_t i = 0; i < t.size(); ++i) t[i] = static_cast<float>(px[i]) / 255.0f;
  return t;
}

TabularRows read_tabular_rows(const Model& model) {
  if (!model.tabular())
    throw Error("model '" + model.name() + "' has no tabular information (its features and their standardisation)");
  const TabularInfo& info = *model.tabular();
  if (info.dataset != "diabetes")
    throw Error("model '" + model.name() + "' was trained on '" + info.dataset + "'; igscope reads the diabetes data only");
  const TabularData data = load_diabetes();
  TabularRows rows;
  rows.all = info.standardize(data.features);
  rows.targets = data.targets;
  rows.split = seeded_split(data.size(), info.test_fraction, info.split_seed);
  return rows;
}

ValueRange input_range(const Model& model) {
  if (!model.tabular()) return {};
  const TabularRows rows = read_tabular_rows(model);
  const auto [lo, hi] = std::minmax_element(rows.all.data(), rows.all.data() + rows.all.size());
  return {static_cast<double>(*lo), static_cast<double>(*hi)};
}

Input read_input(const std::string& spec, Model& model) {
  if (spec.rfind("diabetes:", 0) == 0) {
    const std::string idx = spec.substr(9);
    if (idx.empty() || idx.find_first_not_of("0123456789") != std::string::npos || idx.size() > 9)
      throw Error("--input diabetes:INDEX needs a non-negative index, got '" + spec + "'");
    const int64_t k = std::stoll(idx);
    const TabularRows rows = read_tabular_rows(model);
    const int64_t n = rows.all.dim(0), f = rows.all.dim(1);
    if (k >= n)
      throw Error("--input " + spec + ": the diabetes data has " + std::to_string(n) + " rows (0.." +
                  std::to_string(n - 1) + ")");
    Input in;
    in.sample = Tensor(model.batch_input_shape(1));
    std::copy(rows.all.data() + k * f, rows.all.data() + (k + 1) * f, in.sample.data());
    const TabularInfo& info = *model.tabular();
    for (int64_t i = 0; i < f; ++i)
      in.raw.push_back(info.mean[static_cast<size_t>(i)] + info.std[static_cast<size_t>(i)] * in.sample[i]);
    in.target = rows.targets[static_cast<size_t>(k)];
    in.held_out = std::binary_search(rows.split.test.begin(), rows.split.test.end(), k);
    return in;
  }
  if (model.tabular())
    throw Error("--input " + spec + ": a tabular model takes diabetes:INDEX");
  if (spec.rfind("test:", 0) == 0) {
    const std::string idx = spec.substr(5);
    if (idx.empty() || idx.find_first_not_of("0123456789") != std::string::npos || idx.size() > 9)
      throw Error("--input test:INDEX needs a non-negative index, got '" + spec + "'");
    const int64_t k = std::stoll(idx);
    const Dataset test = load_fashion_mnist("test");
    if (k >= test.size())
      throw Error("--input " + spec + ": the test set has " + std::to_string(test.size()) + " images (0.." +
                  std::to_string(test.size() - 1) + ")");
    const int64_t per = test.images.size() / test.size();
    if (per != shape_numel(model.input_shape()))
      throw Error("the model's input " + shape_to_string(model.input_shape()) + " is not a Fashion-MNIST image");
    Input in;
    in.sample = Tensor(model.batch_input_shape(1));
    in.label = test.labels[static_cast<size_t>(k)];
    std::copy(test.images.data() + k * per, test.images.data() + (k + 1) * per, in.sample.data());
    return in;
  }
  Input in;
  in.sample = read_png(spec, model.input_shape(), "--input");
  return in;
}

void read_baseline_data(const BaselineSpec& spec, Model& model, BaselineData& data) {
  if (spec.kind == BaselineKind::Image) {
    data.custom = read_png(spec.image_path, model.input_shape(), "--baseline " + spec.to_string());
    data.sources.image = &data.custom;
  }
  if (spec.kind == BaselineKind::DatasetMean || spec.kind == BaselineKind::DatasetMedian ||
      spec.kind == BaselineKind::Training) {
    if (model.tabular()) {
      const TabularRows rows = read_tabular_rows(model);
      data.dataset = gather_rows(rows.all, rows.split.train);  // the training split only
    } else {
      data.dataset = load_fashion_mnist("train").images;
    }
    data.sources.dataset = &data.dataset;
  }
}

std::string class_name(const Model& model, int64_t k) {
  const auto& names = model.class_names();
  return k >= 0 && k < static_cast<int64_t>(names.size()) ? names[static_cast<size_t>(k)] : std::to_string(k);
}

}  // namespace igscope::tools
