#pragma once
// Minibatch training of a classifier with cross-entropy loss and Adam:
// seeded shuffling, dropout active, a held-out validation split, and a
// progress callback. For a given seed and thread count the run is
// deterministic.
#include <cstdint>
#include <functional>
#include <vector>

#include "igscope/backend/backend.h"
#include "igscope/data/fashion_mnist.h"
#include "igscope/model.h"

namespace igscope {

struct TrainOptions {
  int epochs = 12;
  int64_t batch_size = 64;
  double lr = 1e-3;
  double final_lr_fraction = 0.05;  // cosine decay from lr to lr * this over the run
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

// Copies images[indices] into a batch tensor.
Tensor gather_images(const Dataset& data, const std::vector<int64_t>& indices, size_t begin, size_t end);

}  // namespace igscope
