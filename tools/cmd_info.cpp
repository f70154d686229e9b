// igscope info MODEL [--json]: architecture, and per node its inputs, output
// shape, parameters, multiply-adds and whether it is a cut of the graph.
#include <algorithm>
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

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
      layers.push_back({{"id", c.id},
                        {"inputs", c.inputs},
                        {"cut", model.is_cut(layers.size())},
                        {"layer", c.description},
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
  // A chain reads top to bottom (every node a cut); a graph names each
  // node's inputs and says which nodes are cuts.
  const bool graph = !model.is_chain();
  size_t id_width = 4, in_width = 6, layer_width = 5;
  std::vector<std::string> inputs(costs.size());
  for (size_t i = 0; i < costs.size(); ++i) {
    for (size_t k = 0; k < costs[i].inputs.size(); ++k) inputs[i] += (k ? "," : "") + costs[i].inputs[k];
    id_width = std::max(id_width, costs[i].id.size());
    in_width = std::max(in_width, inputs[i].size());
    layer_width = std::max(layer_width, costs[i].description.size());
  }
  const int iw = static_cast<int>(id_width), nw = static_cast<int>(in_width), lw = static_cast<int>(layer_width);
  std::printf("\n%-3s  ", "#");
  if (graph) std::printf("%-*s  %-*s  ", iw, "node", nw, "inputs");
  std::printf("%-*s  %-12s %12s %14s%s\n", lw, "layer", "output", "parameters", "multiply-adds", graph ? "  cut" : "");
  for (size_t i = 0; i < costs.size(); ++i) {
    std::printf("%-3zu  ", i);
    if (graph) std::printf("%-*s  %-*s  ", iw, costs[i].id.c_str(), nw, inputs[i].c_str());
    std::printf("%-*s  %-12s %12s %14s%s\n", lw, costs[i].description.c_str(), dims(costs[i].output_shape).c_str(),
                with_commas(costs[i].parameters).c_str(), with_commas(costs[i].multiply_adds).c_str(),
                graph ? (model.is_cut(i) ? "  yes" : "  no") : "");
  }
  if (graph)
    std::printf("\n(cut: every path from the input to the output crosses the node, so its conductances sum to\n"
                " F(x) - F(x'); at other nodes they need not)\n");
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
