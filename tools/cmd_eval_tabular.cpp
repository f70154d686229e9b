// igscope eval-tabular --model FILE [--json]: a tabular regressor's R^2 on
// the training split and on the held-out split that its model file names.
#include <cstdio>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "igscope/backend/backend.h"
#include "igscope/model.h"
#include "igscope/tabular.h"
#include "igscope/train/regression.h"
#include "inputs.h"

namespace igscope::tools {

void add_eval_tabular_command(CLI::App& app) {
  struct Options {
    std::string model;
    bool json = false;
  };
  auto opt = std::make_shared<Options>();
  auto* cmd = app.add_subcommand("eval-tabular", "R^2 of a tabular regressor on its training and held-out splits");
  cmd->add_option("--model", opt->model, "model file (.safetensors) with tabular information")->required();
  cmd->add_flag("--json", opt->json, "print one JSON object (with the held-out rows' indices and predictions)");
  cmd->callback([opt] {
    Model model = load_model(opt->model);
    const TabularRows rows = read_tabular_rows(model);
    auto backend = make_backend("reference", 1);
    nlohmann::json j = {{"model", opt->model}, {"dataset", model.tabular()->dataset}};
    for (const auto& [name, indices] : {std::pair{"train", &rows.split.train}, std::pair{"held_out", &rows.split.test}}) {
      std::vector<double> y;
      for (int64_t i : *indices) y.push_back(rows.targets[static_cast<size_t>(i)]);
      const std::vector<double> p = predict_rows(model, *backend, gather_rows(rows.all, *indices));
      const double r2 = r_squared(p, y);
      j[std::string(name)] = {{"r2", r2}, {"count", indices->size()}, {"indices", *indices}, {"predictions", p}};
      if (!opt->json)
        std::printf("R^2 %-9s %.4f (%zu samples)\n", name == std::string("train") ? "training" : "held out", r2,
                    indices->size());
    }
    if (opt->json) std::printf("%s\n", j.dump().c_str());
  });
}

}  // namespace igscope::tools
