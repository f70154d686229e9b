#pragma once
// Minibatch training of a classifier with cross-entropy loss and Adam (AdamW
// with weight decay): seeded shuffling, dropout active and batchnorm on batch
// statistics (Mode::Train), optional augmentation (random crop, flip), a
// linear warm-up then cosine decay of the learning rate, and a held-out
// validation split evaluated in Mode::Eval after every epoch. For a given
// seed and thread count the run is deterministic.
#include <cstdint>
#include <functional>
#include <vector>

#include "igscope/backend/backend.h"
#include "igscope/data/fashion_mnist.h"
#include "igscope/model.h"
#include "igscope/train/augment.h"

namespace igscope {

struct TrainOptions {
  int epochs = 12;
  int64_t batch_size = 64;
  double lr = 1e-3;
  double final_lr_fraction = 0.05;  // cosine decay from lr to lr * this over the run
  double warmup_epochs = 0.0;       // linear warm-up from lr / warm-up steps to lr first (may be fractional)
  double weight_decay = 0.0;        // decoupled (AdamW) on conv2d and dense weights; see adam.h
  double label_smoothing = 0.0;     // of the cross-entropy's target (layers/softmax.h)
  Augmentation augmentation;        // applied to every training batch (not to validation)
  int64_t validation_size = 5000;   // held out from the training set (a seeded random subset)
  uint64_t seed = 1;
};

struct TrainProgress {
  int epoch = 0;  // 1-based
  int epochs = 0;
  int64_t done = 0, total = 0;  // training images seen in this epoch / per epoch
  double loss = 0.0;            // running mean over this epoch
  double accuracy = 0.0;        // running training accuracy over this epoch
  double images_per_second = 0.0;
  double elapsed_seconds = 0.0;  // since the start of training
  bool epoch_finished = false;
  double validation_accuracy = -1.0;  // set when epoch_finished
};

struct EpochRecord {
  int epoch;
  double loss, train_accuracy, validation_accuracy, seconds, images_per_second, lr;
};

std::vector<EpochRecord> train_classifier(Model& model, Backend& backend, const Dataset& data,
                                          const TrainOptions& options,
                                          const std::function<void(const TrainProgress&)>& on_progress = {});

// The learning rate of (0-based) step `step` of a run of total_steps: over the
// first round(warmup_epochs * steps_per_epoch) steps it rises linearly,
// lr (s + 1) / warm-up steps, reaching lr on the last warm-up step; the rest
// follow a cosine from lr down to lr * final_lr_fraction. Without warm-up the
// cosine starts at step 0.
double learning_rate_at(const TrainOptions& options, int64_t step, int64_t steps_per_epoch);

// Copies images[indices] into a batch tensor.
Tensor gather_images(const Dataset& data, const std::vector<int64_t>& indices, size_t begin, size_t end);

}  // namespace igscope
