// igscope train --arch NAME --epochs N --seed S --out FILE: train on Fashion-MNIST.
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>

#include "commands.h"
#include "igscope/architectures.h"
#include "igscope/backend/backend.h"
#include "igscope/data/fashion_mnist.h"
#include "igscope/error.h"
#include "igscope/model.h"
#include "igscope/train/trainer.h"
#include "progress.h"

namespace igscope::tools {

void add_train_command(CLI::App& app) {
  struct Options {
    std::string arch, out, history, init, backend = default_backend(BackendUse::Training);
    TrainOptions train;
    std::vector<std::string> augment;
    int64_t crop_padding = 2;
    int threads = 0;
  };
  auto opt = std::make_shared<Options>();
  auto* cmd = app.add_subcommand("train", "Train a classifier on Fashion-MNIST (Adam or AdamW, cross-entropy, dropout, batchnorm, augmentation)");
  cmd->add_option("--arch", opt->arch, "architecture name")->required()->check(CLI::IsMember(architecture_names()));
  cmd->add_option("--epochs", opt->train.epochs, "passes over the training split")->check(CLI::Range(1, 1000));
  cmd->add_option("--seed", opt->train.seed, "seed for initialisation, shuffling and dropout");
  cmd->add_option("--batch-size", opt->train.batch_size, "minibatch size")->check(CLI::Range(1, 65536));
  cmd->add_option("--lr", opt->train.lr, "peak learning rate (cosine decay to 5% of it)")->check(CLI::PositiveNumber);
  cmd->add_option("--warmup-epochs", opt->train.warmup_epochs,
                  "epochs (may be fractional) of linear learning-rate warm-up before the cosine decay")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--weight-decay", opt->train.weight_decay,
                  "decoupled weight decay (AdamW) of conv2d, dense and attention weights; biases, batchnorm, layernorm and "
                  "learned embeddings are not decayed")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--label-smoothing", opt->train.label_smoothing,
                  "label smoothing of the cross-entropy's target, as PyTorch's (0: one-hot labels)")
      ->check(CLI::Range(0.0, 0.999));
  auto* augment = cmd->add_option("--augment", opt->augment,
                                  "training-batch augmentation, comma-separated: crop (random crop of the zero-padded "
                                  "image), flip (horizontal, probability 1/2)")
                      ->delimiter(',')
                      ->check(CLI::IsMember({"crop", "flip"}));
  auto* crop_padding = cmd->add_option("--crop-padding", opt->crop_padding, "zero padding of --augment crop, in pixels")
                           ->capture_default_str()
                           ->check(CLI::Range(1, 13))
                           ->needs(augment);
  cmd->add_option("--validation", opt->train.validation_size, "training images held out for validation")
      ->check(CLI::Range(0, 59999));
  cmd->add_option("--threads", opt->threads, "threads (0: all cores); results are deterministic per thread count")
      ->check(CLI::Range(0, 256));
  cmd->add_option("--backend", opt->backend,
                  "kernel backend (" + available_backends() + "; default " +
                      default_backend_reason(BackendUse::Training) + ")");
  cmd->add_option("--init", opt->init,
                  "start from this model file (weights and batch-norm statistics, of the --arch architecture) "
                  "instead of a seeded He initialisation; the optimiser state and the schedule start afresh")
      ->check(CLI::ExistingFile);
  cmd->add_option("--out", opt->out, "output model file (.safetensors)")->required();
  cmd->add_option("--history", opt->history, "write per-epoch loss, accuracy and speed as JSON");
  cmd->callback([opt, crop_padding] {
    if (opt->arch == "diabetes_mlp")
      throw Error("diabetes_mlp is a tabular regressor: train it with igscope train-tabular");
    const bool crop = std::find(opt->augment.begin(), opt->augment.end(), "crop") != opt->augment.end();
    if (crop_padding->count() > 0 && !crop) throw Error("--crop-padding needs --augment crop");
    opt->train.augmentation = parse_augmentation(opt->augment, opt->crop_padding);
    const Dataset data = load_fashion_mnist("train");
    Model model(named_architecture(opt->arch));
    if (opt->init.empty()) {
      model.init_he(opt->train.seed);
    } else {
      Model start = load_model(opt->init);
      const auto want = model.named_parameters(), have = start.named_parameters();
      bool same = want.size() == have.size() && model.num_layers() == start.num_layers();
      for (size_t i = 0; same && i < want.size(); ++i)
        same = want[i].name == have[i].name && want[i].param->value.shape() == have[i].param->value.shape();
      if (!same) throw Error("--init: " + opt->init + " is not a " + opt->arch + " model (its parameters differ)");
      model = std::move(start);
    }
    auto backend = make_backend(opt->backend, opt->threads);
    if (!opt->init.empty()) std::fprintf(stderr, "starting from %s\n", opt->init.c_str());
    std::fprintf(stderr, "training %s on %lld Fashion-MNIST images (%lld held out), %d epochs, batch %lld, seed %llu, %s backend\n",
                 opt->arch.c_str(), static_cast<long long>(data.size() - opt->train.validation_size),
                 static_cast<long long>(opt->train.validation_size), opt->train.epochs,
                 static_cast<long long>(opt->train.batch_size), static_cast<unsigned long long>(opt->train.seed),
                 backend->name().c_str());
    std::fprintf(stderr, "lr %g (warm-up %g epochs, cosine to %g%%), weight decay %g, augmentation %s\n", opt->train.lr,
                 opt->train.warmup_epochs, 100 * opt->train.final_lr_fraction, opt->train.weight_decay,
                 opt->train.augmentation.describe().c_str());
    Progress progress;
    const auto history = train_classifier(model, *backend, data, opt->train, [&](const TrainProgress& p) {
      char line[256];
      if (p.epoch_finished) {
        std::snprintf(line, sizeof line, "epoch %d/%d  loss %.4f  train %.2f%%  validation %.2f%%  %.0f img/s  %s elapsed",
                      p.epoch, p.epochs, p.loss, 100 * p.accuracy, 100 * p.validation_accuracy, p.images_per_second,
                      format_duration(p.elapsed_seconds).c_str());
        progress.finish(line);
        return;
      }
      const double fraction = static_cast<double>(p.done) / static_cast<double>(p.total);
      const double remaining = (static_cast<double>(p.total - p.done) +
                                static_cast<double>(p.total) * (p.epochs - p.epoch)) / std::max(p.images_per_second, 1e-9);
      std::snprintf(line, sizeof line, "epoch %d/%d  loss %.4f  acc %.2f%%  %.0f img/s  ETA %s", p.epoch, p.epochs,
                    p.loss, 100 * p.accuracy, p.images_per_second, format_duration(remaining).c_str());
      progress.update(fraction, line);
    });
    save_model(model, opt->out);
    std::fprintf(stderr, "wrote %s\n", opt->out.c_str());
    if (!opt->history.empty()) {
      nlohmann::json j = nlohmann::json::array();
      for (const auto& e : history)
        j.push_back({{"epoch", e.epoch}, {"loss", e.loss}, {"train_accuracy", e.train_accuracy},
                     {"validation_accuracy", e.validation_accuracy}, {"seconds", e.seconds},
                     {"images_per_second", e.images_per_second}, {"lr", e.lr}});
      std::ofstream(opt->history) << j.dump(2) << "\n";
    }
  });
}

}  // namespace igscope::tools
