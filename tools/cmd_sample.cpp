// igscope sample --per-class N --seed S [--split test|train] --out FILE.json:
// a small labelled sample of a Fashion-MNIST split that a web page can load
// without the Debian package. Pixels are stored as the data set's own bytes (0..255, row
// major), with each image's index in its split.
// igscope sample --model TABULAR.safetensors --out FILE.json: the rows of the
// data set a tabular model was trained on, in raw units, each with its index,
// target and split (as the model file's seeded split says).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "igscope/data/diabetes.h"
#include "igscope/data/fashion_mnist.h"
#include "igscope/error.h"
#include "igscope/model.h"
#include "igscope/random.h"
#include "igscope/tabular.h"

namespace igscope::tools {

namespace {

void write_tabular_rows(const std::string& model_path, const std::string& out_path) {
  const Model model = load_model(model_path);
  if (!model.tabular()) throw Error("--model: '" + model_path + "' is not a tabular model");
  const TabularInfo& info = *model.tabular();
  if (info.dataset != "diabetes")
    throw Error("--model: trained on '" + info.dataset + "'; igscope reads the diabetes data only");
  const TabularData data = load_diabetes();
  const SplitIndices split = seeded_split(data.size(), info.test_fraction, info.split_seed);
  const int64_t f = data.features.dim(1);
  nlohmann::json rows = nlohmann::json::array();
  for (int64_t n = 0; n < data.size(); ++n) {
    const std::vector<float> raw(data.features.data() + n * f, data.features.data() + (n + 1) * f);
    rows.push_back({{"index", n},
                    {"raw", raw},
                    {"target", data.targets[static_cast<size_t>(n)]},
                    {"held_out", std::binary_search(split.test.begin(), split.test.end(), n)}});
  }
  const nlohmann::json j = {{"dataset", "scikit-learn's diabetes data (Debian python3-sklearn)"},
                            {"model", model.name()},
                            {"target", info.target},
                            {"features", info.features},
                            {"split_seed", info.split_seed},
                            {"test_fraction", info.test_fraction},
                            {"held_out", split.test.size()},
                            {"rows", rows}};
  std::ofstream file(out_path);
  if (!file) throw Error("cannot open '" + out_path + "' for writing");
  file << j.dump() << "\n";
  std::fprintf(stderr, "wrote %zu rows (%zu held out) to %s\n", rows.size(), split.test.size(), out_path.c_str());
}

}  // namespace

void add_sample_command(CLI::App& app) {
  struct Options {
    int per_class = 20;
    uint64_t seed = 0;
    std::string split = "test";
    std::string out;
    std::string model;
  };
  auto opt = std::make_shared<Options>();
  auto* cmd = app.add_subcommand("sample", "Write a labelled sample of a Fashion-MNIST split (or a tabular model's rows) as JSON");
  cmd->add_option("--per-class", opt->per_class, "images per class")->check(CLI::Range(1, 1000));
  cmd->add_option("--seed", opt->seed, "seed of the (per-class) random choice");
  cmd->add_option("--split", opt->split, "which split to sample")->check(CLI::IsMember({"test", "train"}));
  cmd->add_option("--model", opt->model,
                  "a tabular model (.safetensors): write the raw rows of its data set with their split instead");
  cmd->add_option("--out", opt->out, "output JSON file")->required();
  cmd->callback([opt] {
    if (!opt->model.empty()) {
      write_tabular_rows(opt->model, opt->out);
      return;
    }
    const Dataset test = load_fashion_mnist(opt->split);
    const int64_t pixels = test.images.size() / test.size();
    Rng rng(opt->seed);
    nlohmann::json images = nlohmann::json::array();
    for (int c = 0; c < static_cast<int>(test.class_names.size()); ++c) {
      std::vector<int64_t> of_class;
      for (int64_t i = 0; i < test.size(); ++i)
        if (test.labels[static_cast<size_t>(i)] == c) of_class.push_back(i);
      for (size_t i = of_class.size(); i > 1; --i) std::swap(of_class[i - 1], of_class[rng.below(i)]);
      of_class.resize(std::min(of_class.size(), static_cast<size_t>(opt->per_class)));
      std::sort(of_class.begin(), of_class.end());
      for (int64_t i : of_class) {
        std::vector<int> bytes(static_cast<size_t>(pixels));
        for (int64_t p = 0; p < pixels; ++p)
          bytes[static_cast<size_t>(p)] = static_cast<int>(std::lround(test.images[i * pixels + p] * 255.0f));
        images.push_back({{"index", i}, {"label", c}, {"pixels", bytes}});
      }
    }
    const nlohmann::json j = {{"dataset", "Fashion-MNIST " + opt->split + " set (Debian dataset-fashion-mnist)"}, {"split", opt->split},
                              {"height", test.images.dim(1)},
                              {"width", test.images.dim(2)},
                              {"pixel_scale", "byte / 255 gives the model input in [0, 1]"},
                              {"per_class", opt->per_class},
                              {"seed", opt->seed},
                              {"classes", test.class_names},
                              {"images", images}};
    std::ofstream f(opt->out);
    if (!f) throw Error("cannot open '" + opt->out + "' for writing");
    f << j.dump() << "\n";
    std::fprintf(stderr, "wrote %zu images to %s\n", images.size(), opt->out.c_str());
  });
}

}  // namespace igscope::tools
