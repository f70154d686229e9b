// igscope merge --out ALL.json SHARD.json...: merges the results of
// `igscope eval --attribution --shard i/n --out ...` into one file whose
// summary is computed from all the per-image records.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "commands.h"
#include "igscope/attribution/dataset_eval.h"
#include "igscope/error.h"

namespace igscope::tools {

void add_merge_command(CLI::App& app) {
  struct Options {
    std::vector<std::string> inputs;
    std::string out;
  };
  auto opt = std::make_shared<Options>();
  auto* cmd = app.add_subcommand("merge", "Merge sharded attribution-eval results");
  cmd->add_option("inputs", opt->inputs, "result files of eval --attribution --shard")->required()->check(CLI::ExistingFile);
  cmd->add_option("--out", opt->out, "merged result file (JSON)")->required();
  cmd->callback([opt] {
    std::vector<AttributionEvalResults> parts;
    for (const auto& path : opt->inputs) {
      std::ifstream f(path);
      nlohmann::json j;
      try {
        j = nlohmann::json::parse(f);
      } catch (const nlohmann::json::exception& e) {
        throw Error("'" + path + "' is not JSON: " + e.what());
      }
      parts.push_back(AttributionEvalResults::from_json(j));
    }
    const nlohmann::json merged = merge_attribution_results(parts).to_json();
    std::ofstream f(opt->out);
    if (!f) throw Error("cannot open '" + opt->out + "' for writing");
    f << merged.dump() << "\n";
    std::cout << merged["summary"].dump(2) << "\n";
  });
}

}  // namespace igscope::tools
