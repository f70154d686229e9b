#include "igscope/train/trainer.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <numeric>

#include "igscope/classifier_eval.h"
#include "igscope/error.h"
#include "igscope/layers/softmax.h"
#include "igscope/random.h"
#include "igscope/train/adam.h"

namespace igscope {

namespace {
std::string format_number(double x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", x);
  return buf;
}

void shuffle(std::vector<int64_t>& v, Rng& rng) {
  for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[static_cast<size_t>(rng.below(i))]);
}
}  // namespace

double learning_rate_at(const TrainOptions& o, int64_t step, int64_t steps_per_epoch) {
  const int64_t total = steps_per_epoch * o.epochs;
  const int64_t warmup = std::llround(o.warmup_epochs * static_cast<double>(steps_per_epoch));
  if (step < warmup) return o.lr * static_cast<double>(step + 1) / static_cast<double>(warmup);
  const double progress = static_cast<double>(step - warmup) / static_cast<double>(std::max<int64_t>(total - warmup, 1));
  return o.lr * (o.final_lr_fraction + (1.0 - o.final_lr_fraction) * 0.5 * (1.0 + std::cos(3.141592653589793 * progress)));
}

Tensor gather_images(const Dataset& data, const std::vector<int64_t>& indices, size_t begin, size_t end) {
  Shape shape = data.images.shape();
  const int64_t per = data.images.size() / shape[0];
  shape[0] = static_cast<int64_t>(end - begin);
  Tensor batch(shape);
  for (size_t i = begin; i < end; ++i)
    std::memcpy(batch.data() + static_cast<int64_t>(i - begin) * per, data.images.data() + indices[i] * per,
                static_cast<size_t>(per) * sizeof(float));
  return batch;
}

std::vector<EpochRecord> train_classifier(Model& model, Backend& backend, const Dataset& data,
                                          const TrainOptions& o,
                                          const std::function<void(const TrainProgress&)>& on_progress) {
  if (o.epochs < 1) throw Error("epochs must be >= 1");
  if (o.batch_size < 1) throw Error("batch size must be >= 1");
  if (!(o.lr > 0.0) || !std::isfinite(o.lr)) throw Error("learning rate must be a positive number");
  if (o.validation_size < 0 || o.validation_size >= data.size())
    throw Error("validation size must be in [0, " + std::to_string(data.size()) + ")");
  if (!(o.warmup_epochs >= 0.0) || o.warmup_epochs >= o.epochs)
    throw Error("warm-up (" + format_number(o.warmup_epochs) + " epochs) must be non-negative and shorter than the run (" +
                std::to_string(o.epochs) + " epochs)");
  if (!(o.weight_decay >= 0.0) || !std::isfinite(o.weight_decay))
    throw Error("weight decay must be a non-negative number");
  if (o.augmentation.enabled() && data.images.shape().size() != 4)
    throw Error("augmentation needs image data ([N, H, W, C])");

  Rng rng(o.seed);
  std::vector<int64_t> order(static_cast<size_t>(data.size()));
  std::iota(order.begin(), order.end(), 0);
  shuffle(order, rng);
  const auto split = order.begin() + static_cast<std::ptrdiff_t>(o.validation_size);
  const std::vector<int64_t> validation(order.begin(), split);
  std::vector<int64_t> train(split, order.end());

  // Its own stream, so that turning augmentation on changes neither the split nor the order.
  Rng augment_rng(o.seed ^ 0x6175676d656e7421ull);

  Adam adam(model, o.lr, 0.9, 0.999, 1e-8, o.weight_decay);
  const int64_t steps_per_epoch = (static_cast<int64_t>(train.size()) + o.batch_size - 1) / o.batch_size;
  int64_t step = 0;
  model.seed_dropout(o.seed);
  std::vector<EpochRecord> history;
  const auto t0 = std::chrono::steady_clock::now();
  auto seconds_since = [](std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
  };

  for (int epoch = 1; epoch <= o.epochs; ++epoch) {
    shuffle(train, rng);
    const auto epoch_start = std::chrono::steady_clock::now();
    double loss_sum = 0.0;
    int64_t correct = 0, seen = 0;
    for (size_t b = 0; b < train.size(); b += static_cast<size_t>(o.batch_size)) {
      const size_t e = std::min(train.size(), b + static_cast<size_t>(o.batch_size));
      Tensor x = gather_images(data, train, b, e);
      augment_batch(x, o.augmentation, augment_rng);
      std::vector<int> labels;
      for (size_t i = b; i < e; ++i) labels.push_back(data.labels[static_cast<size_t>(train[i])]);

      adam.set_lr(learning_rate_at(o, step, steps_per_epoch));
      model.zero_grad();
      const Tensor logits = model.forward(x, backend, Mode::Train);
      const CrossEntropyResult ce = cross_entropy(logits, labels, o.label_smoothing);
      if (!std::isfinite(ce.loss)) throw Error("training diverged (loss is not finite) at epoch " + std::to_string(epoch));
      model.backward(ce.dlogits, backend, /*accumulate_params=*/true);
      adam.step();
      ++step;

      const int64_t n = static_cast<int64_t>(e - b);
      loss_sum += ce.loss * static_cast<double>(n);
      const std::vector<int> predicted = argmax_rows(logits);
      for (int64_t i = 0; i < n; ++i) correct += predicted[static_cast<size_t>(i)] == labels[static_cast<size_t>(i)];
      seen += n;
      if (on_progress) {
        TrainProgress p;
        p.epoch = epoch;
        p.epochs = o.epochs;
        p.done = seen;
        p.total = static_cast<int64_t>(train.size());
        p.loss = loss_sum / static_cast<double>(seen);
        p.accuracy = static_cast<double>(correct) / static_cast<double>(seen);
        p.images_per_second = static_cast<double>(seen) / std::max(seconds_since(epoch_start), 1e-9);
        p.elapsed_seconds = seconds_since(t0);
        on_progress(p);
      }
    }
    const double epoch_seconds = seconds_since(epoch_start);
    double val_acc = -1.0;
    if (!validation.empty()) {
      Dataset val;
      val.images = gather_images(data, validation, 0, validation.size());
      for (int64_t i : validation) val.labels.push_back(data.labels[static_cast<size_t>(i)]);
      val_acc = evaluate_classifier(model, backend, val, 500).accuracy;  // Mode::Eval: batchnorm on running statistics
    }
    history.push_back({epoch, loss_sum / static_cast<double>(seen), static_cast<double>(correct) / static_cast<double>(seen),
                       val_acc, epoch_seconds, static_cast<double>(seen) / epoch_seconds, adam.lr()});
    if (on_progress) {
      TrainProgress p;
      p.epoch = epoch;
      p.epochs = o.epochs;
      p.done = p.total = seen;
      p.loss = history.back().loss;
      p.accuracy = history.back().train_accuracy;
      p.images_per_second = history.back().images_per_second;
      p.elapsed_seconds = seconds_since(t0);
      p.epoch_finished = true;
      p.validation_accuracy = val_acc;
      on_progress(p);
    }
  }
  return history;
}

}  // namespace igscope
