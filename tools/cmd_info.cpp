// igscope info MODEL [--json]: architecture, parameters, multiply-adds per layer.
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>

#include "commands.h"
#include "igscope/model.h"

namespace igscope::tools {

namespace {

std::string with_commas(int64_t n) {
  std::string s = std::to_string(n);
  for (int i = static_cast<int>(s.size()) - 3; i > (n < 0 ? 1 : 0); i -= 3) s.insert(static_cast<size_t>(i), ",");
  return s;
}

std::string dims(const Shape& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) out += (i ? "x" : "") + std::to_string(s[i]);
  return out;
}

void run_info(const std::string& path, bool as_json) {
  Model model = load_model(path);
  const auto costs = model.layer_costs();
  if (as_json) {
    nlohmann::json layers = nlohmann::json::array();
    for (const auto& c : costs)
      layers.push_back({{"layer", c.description},
                        {"output", c.output_shape},
                        {"parameters", c.parameters},
                        {"multiply_adds", c.multiply_adds}});
    const nlohmann::json j = {{"name", model.name()},
                              {"architecture", model.architecture()},
                              {"parameters", model.parameter_count()},
                              {"multiply_adds", model.multiply_adds()},
                              {"layers", layers}};
    std::cout << j.dump(2) << "\n";
    return;
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
}

}  // namespace

void add_info_command(CLI::App& app) {
  struct Options {
    std::string model;
    bool json = false;
  };
  auto opt = std::make_shared<Options>();
  auto* cmd = app.add_subcommand("info", "Show a model's architecture, parameters and multiply-adds per layer");
  cmd->add_option("model", opt->model, "model file (.safetensors)")->required();
  cmd->add_flag("--json", opt->json, "print JSON instead of a table");
  cmd->callback([opt] { run_info(opt->model, opt->json); });
}

}  // namespace igscope::tools
