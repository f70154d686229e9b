#pragma once
// Each igscope subcommand lives in its own file (tools/cmd_*.cpp) and
// registers itself here; main() only parses and reports errors.
#include <CLI/CLI.hpp>

namespace igscope::tools {

void add_info_command(CLI::App& app);
void add_init_command(CLI::App& app);
void add_train_command(CLI::App& app);
void add_eval_command(CLI::App& app);
void add_attribute_command(CLI::App& app);
void add_bench_command(CLI::App& app);
void add_sample_command(CLI::App& app);
void add_merge_command(CLI::App& app);
void add_conductance_command(CLI::App& app);
void add_train_tabular_command(CLI::App& app);
void add_eval_tabular_command(CLI::App& app);
void add_classmaps_command(CLI::App& app);
void add_import_command(CLI::App& app);
void add_robustness_command(CLI::App& app);
void add_attack_command(CLI::App& app);

}  // namespace igscope::tools
