// igscope sample --per-class N --seed S [--split test|train] --out FILE.json:
// a small labelled sample of a Fashion-MNIST split that a web page can load
// without the Debian package. Pixels are stored as the data set's own bytes (0..255, row
// major), with each image's index in its split.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "igscope/data/fashion_mnist.h"
#include "igscope/error.h"
#include "igscope/random.h"

namespace igscope::tools {

void add_sample_command(CLI::App& app) {
  struct Options {
    int per_class = 20;
    uint64_t seed = 0;
    std::string split = "test";
    std::string out;
  };
  auto opt = std::make_shared<Options>();
  auto* cmd = app.add_subcommand("sample", "Write a labelled sample of a Fashion-MNIST split as JSON");
  cmd->add_option("--per-class", opt->per_class, "images per class")->check(CLI::Range(1, 1000));
  cmd->add_option("--seed", opt->seed, "seed of the (per-class) random choice");
  cmd->add_option("--split", opt->split, "which split to sample")->check(CLI::IsMember({"test", "train"}));
  cmd->add_option("--out", opt->out, "output JSON file")->required();
  cmd->callback([opt] {
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
