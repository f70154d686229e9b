#pragma once
// Fashion-MNIST from Debian's dataset-fashion-mnist package (gzip-compressed
// IDX files), and the IDX format itself.
#include <string>
#include <vector>

#include "igscope/tensor.h"

namespace igscope {

// A labelled image set: images [N, H, W, 1] scaled to [0, 1], labels in [0, classes).
struct Dataset {
  Tensor images;
  std::vector<int> labels;
  std::vector<std::string> class_names;
  int64_t size() const { return static_cast<int64_t>(labels.size()); }
  // Images [begin, end) as a new data set (clamped to the available range).
  Dataset slice(int64_t begin, int64_t end) const;
};

// T-shirt/top, Trouser, Pullover, Dress, Coat, Sandal, Shirt, Sneaker, Bag, Ankle boot.
const std::vector<std::string>& fashion_mnist_classes();

// The folder holding the IDX files: $IGSCOPE_FASHION_MNIST_DIR if set, else
// /usr/share/datasets/fashion-mnist. Throws an Error naming the Debian package
// when the files are not there.
std::string fashion_mnist_dir();

// split: "train" (60,000 images) or "test" (10,000). dir: as fashion_mnist_dir() if empty.
Dataset load_fashion_mnist(const std::string& split, const std::string& dir = "");

// Reads an IDX image file (magic 0x00000803, u8 pixels) and an IDX label file
// (magic 0x00000801); either may be gzip-compressed. Validates magic numbers,
// dimensions, sizes and that the counts agree; throws Error otherwise.
Dataset read_idx_dataset(const std::string& images_path, const std::string& labels_path);

}  // namespace igscope
