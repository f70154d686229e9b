// The igscope command.
#include <cstdio>
#include <exception>

#include "commands.h"
#include "igscope/backend/backend.h"
#include "igscope/error.h"

int main(int argc, char** argv) {
  CLI::App app{"igscope: Integrated Gradients for convolutional networks"};
  app.require_subcommand(1);
  app.footer("Backends (--backend NAME; this build has " + igscope::available_backends() + "):\n" +
             "  attribute, eval, conductance, classmaps, bench: " + igscope::default_backend_reason() + "\n" +
             "  train: " + igscope::default_backend_reason(igscope::BackendUse::Training));
  igscope::tools::add_info_command(app);
  igscope::tools::add_init_command(app);
  igscope::tools::add_train_command(app);
  igscope::tools::add_eval_command(app);
  igscope::tools::add_attribute_command(app);
  igscope::tools::add_bench_command(app);
  igscope::tools::add_sample_command(app);
  igscope::tools::add_merge_command(app);
  igscope::tools::add_conductance_command(app);
  igscope::tools::add_train_tabular_command(app);
  igscope::tools::add_eval_tabular_command(app);
  igscope::tools::add_classmaps_command(app);
  igscope::tools::add_import_command(app);
  igscope::tools::add_robustness_command(app);
  igscope::tools::add_attack_command(app);
  try {
    app.parse(argc, argv);  // subcommand callbacks run here
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const igscope::Error& e) {
    std::fprintf(stderr, "igscope: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "igscope: unexpected error: %s\n", e.what());
    return 2;
  }
  return 0;
}
