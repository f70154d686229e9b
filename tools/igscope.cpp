// The igscope command: inspect and create models.
#include <cstdio>
#include <iostream>
#include <string>

#include <CLI/CLI.hpp>

#include "igscope/architectures.h"
#include "igscope/error.h"
#include "igscope/model.h"

namespace {

std::string with_commas(int64_t n) {
  std::string s = std::to_string(n);
  for (int i = static_cast<int>(s.size()) - 3; i > (n < 0 ? 1 : 0); i -= 3) s.insert(static_cast<size_t>(i), ",");
  return s;
}

std::string dims(const igscope::Shape& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) out += (i ? "x" : "") + std::to_string(s[i]);
  return out;
}

int cmd_info(const std::string& path, bool as_json) {
  igscope::Model model = igscope::load_model(path);
  const auto costs = model.layer_costs();
  if (as_json) {
    nlohmann::json layers = nlohmann::json::array();
    for (const auto& c : costs)
      layers.push_back({{"layer", c.description},
                        {"output", c.output_shape},
                        {"parameters", c.parameters},
                        {"multiply_adds", c.multiply_adds}});
    nlohmann::json j = {{"name", model.name()},
                        {"architecture", model.architecture()},
                        {"parameters", model.parameter_count()},
                        {"multiply_adds", model.multiply_adds()},
                        {"layers", layers}};
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  std::printf("model      %s\nfile       %s\ninput      %s\n", model.name().c_str(), path.c_str(),
              dims(model.input_shape()).c_str());
  if (!model.class_names().empty()) {
    std::printf("classes   ");
    for (const auto& c : model.class_names()) std::printf(" %s;", c.c_str());
    std::printf("\n");
  }
  std::printf("\n%-3s  %-52s %-12s %12s %14s\n", "#", "layer", "output", "parameters", "multiply-adds");
  for (size_t i = 0; i < costs.size(); ++i)
    std::printf("%-3zu  %-52s %-12s %12s %14s\n", i, costs[i].description.c_str(),
                dims(costs[i].output_shape).c_str(), with_commas(costs[i].parameters).c_str(),
                with_commas(costs[i].multiply_adds).c_str());
  const int64_t macs = model.multiply_adds();
  std::printf("\ntotal      %s parameters, %s multiply-adds per forward pass (%.2f M)\n",
              with_commas(model.parameter_count()).c_str(), with_commas(macs).c_str(),
              static_cast<double>(macs) / 1e6);
  return 0;
}

int cmd_init(const std::string& arch, uint64_t seed, const std::string& out) {
  igscope::Model model(igscope::named_architecture(arch));
  model.init_he(seed);
  igscope::save_model(model, out);
  std::printf("wrote %s (%s, He-initialised with seed %llu, untrained)\n", out.c_str(), arch.c_str(),
              static_cast<unsigned long long>(seed));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"igscope: Integrated Gradients for convolutional networks"};
  app.require_subcommand(1);

  std::string info_model;
  bool info_json = false;
  auto* info = app.add_subcommand("info", "Show a model's architecture, parameters and multiply-adds per layer");
  info->add_option("model", info_model, "model file (.safetensors)")->required();
  info->add_flag("--json", info_json, "print JSON instead of a table");

  std::string init_arch, init_out;
  uint64_t init_seed = 0;
  auto* init = app.add_subcommand("init", "Write a randomly initialised (untrained) model file");
  init->add_option("--arch", init_arch, "architecture name")
      ->required()
      ->check(CLI::IsMember(igscope::architecture_names()));
  init->add_option("--seed", init_seed, "random seed")->default_val(0);
  init->add_option("--out", init_out, "output file (.safetensors)")->required();

  CLI11_PARSE(app, argc, argv);
  try {
    if (*info) return cmd_info(info_model, info_json);
    if (*init) return cmd_init(init_arch, init_seed, init_out);
  } catch (const igscope::Error& e) {
    std::fprintf(stderr, "igscope: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "igscope: unexpected error: %s\n", e.what());
    return 2;
  }
  return 0;
}
