// igscope init --arch NAME --seed S --out FILE: an untrained, He-initialised model.
#include <cstdio>
#include <memory>
#include <string>

#include "commands.h"
#include "igscope/architectures.h"
#include "igscope/model.h"

namespace igscope::tools {

void add_init_command(CLI::App& app) {
  struct Options {
    std::string arch, out;
    uint64_t seed = 0;
  };
  auto opt = std::make_shared<Options>();
  auto* cmd = app.add_subcommand("init", "Write a randomly initialised (untrained) model file");
  cmd->add_option("--arch", opt->arch, "architecture name")->required()->check(CLI::IsMember(architecture_names()));
  cmd->add_option("--seed", opt->seed, "random seed")->default_val(0);
  cmd->add_option("--out", opt->out, "output file (.safetensors)")->required();
  cmd->callback([opt] {
    Model model(named_architecture(opt->arch));
    model.init_he(opt->seed);
    save_model(model, opt->out);
    std::printf("wrote %s (%s, He-initialised with seed %llu, untrained)\n", opt->out.c_str(), opt->arch.c_str(),
                static_cast<unsigned long long>(opt->seed));
  });
}

}  // namespace igscope::tools
