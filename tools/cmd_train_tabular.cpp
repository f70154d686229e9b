// igscope train-tabular --arch diabetes_mlp --epochs N --seed S --out FILE:
// a regressor on scikit-learn's diabetes data, with a seeded held-out split,
// features standardised with training-split statistics (stored in the file),
// and the held-out R^2.
#include <cstdio>
#include <memory>
#include <string>

#include "commands.h"
#include "igscope/architectures.h"
#include "igscope/backend/backend.h"
#include "igscope/data/diabetes.h"
#include "igscope/error.h"
#include "igscope/model.h"
#include "igscope/tabular.h"
#include "igscope/train/regression.h"

namespace igscope::tools {

void add_train_tabular_command(CLI::App& app) {
  struct Options {
    std::string arch = "diabetes_mlp", out;
    RegressionOptions train;
    double test_fraction = 0.2;
    uint64_t split_seed = 1;
  };
  auto opt = std::make_shared<Options>();
  auto* cmd = app.add_subcommand(
      "train-tabular", "Train a regressor on scikit-learn's diabetes data (Debian's python3-sklearn): Adam, MSE, held-out R^2");
  cmd->add_option("--arch", opt->arch, "architecture name (one input per feature, one output)")->capture_default_str();
  cmd->add_option("--epochs", opt->train.epochs, "passes over the training split")->check(CLI::Range(1, 100000))->capture_default_str();
  cmd->add_option("--seed", opt->train.seed, "seed for initialisation and shuffling")->capture_default_str();
  cmd->add_option("--split-seed", opt->split_seed, "seed of the held-out split")->capture_default_str();
  cmd->add_option("--test-fraction", opt->test_fraction, "share of the samples held out")->check(CLI::Range(0.01, 0.99))->capture_default_str();
  cmd->add_option("--batch-size", opt->train.batch_size, "minibatch size")->check(CLI::Range(1, 65536))->capture_default_str();
  cmd->add_option("--lr", opt->train.lr, "peak learning rate (cosine decay to 5% of it)")->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--weight-decay", opt->train.weight_decay, "L2 penalty on the weights")->check(CLI::NonNegativeNumber)->capture_default_str();
  cmd->add_option("--out", opt->out, "output model file (.safetensors)")->required();
  cmd->callback([opt] {
    const TabularData data = load_diabetes();
    Model model(named_architecture(opt->arch));
    if (model.input_shape() != Shape{data.features.dim(1)})
      throw Error("architecture '" + opt->arch + "' takes " + shape_to_string(model.input_shape()) +
                  ", the diabetes data has " + std::to_string(data.features.dim(1)) + " features");
    const SplitIndices split = seeded_split(data.size(), opt->test_fraction, opt->split_seed);
    TabularInfo info;
    info.dataset = "diabetes";
    info.target = "disease progression one year after baseline";
    info.features = data.feature_names;
    info.split_seed = opt->split_seed;
    info.test_fraction = opt->test_fraction;
    const Tensor train_raw = gather_rows(data.features, split.train);
    column_statistics(train_raw, info.mean, info.std);
    model.set_tabular(info);
    const Tensor x_train = info.standardize(train_raw);
    const Tensor x_test = info.standardize(gather_rows(data.features, split.test));
    std::vector<double> y_train, y_test;
    for (int64_t i : split.train) y_train.push_back(data.targets[static_cast<size_t>(i)]);
    for (int64_t i : split.test) y_test.push_back(data.targets[static_cast<size_t>(i)]);

    model.init_he(opt->train.seed);
    auto backend = make_backend("reference", 1);
    std::fprintf(stderr, "training %s on %zu diabetes samples (%zu held out, split seed %llu), %d epochs, seed %llu\n",
                 opt->arch.c_str(), split.train.size(), split.test.size(),
                 static_cast<unsigned long long>(opt->split_seed), opt->train.epochs,
                 static_cast<unsigned long long>(opt->train.seed));
    const int every = std::max(1, opt->train.epochs / 10);
    train_regressor(model, *backend, x_train, y_train, opt->train, [&](const RegressionEpoch& e) {
      if (e.epoch % every == 0 || e.epoch == opt->train.epochs)
        std::fprintf(stderr, "epoch %d/%d  loss %.4f (standardised)\n", e.epoch, opt->train.epochs, e.loss);
    });
    const double r2_train = r_squared(predict_rows(model, *backend, x_train), y_train);
    const double r2_test = r_squared(predict_rows(model, *backend, x_test), y_test);
    save_model(model, opt->out);
    std::printf("R^2 training split  %.4f (%zu samples)\nR^2 held out        %.4f (%zu samples)\nwrote %s\n", r2_train,
                split.train.size(), r2_test, split.test.size(), opt->out.c_str());
  });
}

}  // namespace igscope::tools
