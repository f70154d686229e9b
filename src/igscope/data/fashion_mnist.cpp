#include "igscope/data/fashion_mnist.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>

#include "igscope/data/gzip_file.h"
#include "igscope/error.h"

namespace igscope {

namespace {

constexpr uint32_t kImageMagic = 0x00000803;  // unsigned byte, 3 dimensions
constexpr uint32_t kLabelMagic = 0x00000801;  // unsigned byte, 1 dimension
constexpr const char* kDefaultDir = "/usr/share/datasets/fashion-mnist";

uint32_t read_u32_be(const std::vector<uint8_t>& b, size_t at) {
  return (uint32_t{b[at]} << 24) | (uint32_t{b[at + 1]} << 16) | (uint32_t{b[at + 2]} << 8) | uint32_t{b[at + 3]};
}

std::string hex(uint32_t v) {
  char s[16];
  std::snprintf(s, sizeof s, "0x%08x", v);
  return s;
}

}  // namespace

Dataset Dataset::slice(int64_t begin, int64_t end) const {
  begin = std::clamp<int64_t>(begin, 0, size());
  end = std::clamp<int64_t>(end, begin, size());
  Dataset d;
  Shape shape = images.shape();
  const int64_t per = images.size() / std::max<int64_t>(shape[0], 1);
  shape[0] = end - begin;
  d.images = Tensor(shape);
  std::copy(images.data() + begin * per, images.data() + end * per, d.images.data());
  d.labels.assign(labels.begin() + begin, labels.begin() + end);
  d.class_names = class_names;
  return d;
}

const std::vector<std::string>& fashion_mnist_classes() {
  static const std::vector<std::string> names = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                                 "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
  return names;
}

std::string fashion_mnist_dir() {
  const char* env = std::getenv("IGSCOPE_FASHION_MNIST_DIR");
  const std::string dir = env && *env ? env : kDefaultDir;
  std::error_code ec;
  if (!std::filesystem::is_regular_file(dir + "/t10k-images-idx3-ubyte.gz", ec))
    throw Error("Fashion-MNIST not found in " + dir +
                ": install the Debian package dataset-fashion-mnist (scripts/bootstrap does), or set "
                "IGSCOPE_FASHION_MNIST_DIR to a folder with the four *-idx*-ubyte.gz files");
  return dir;
}

Dataset load_fashion_mnist(const std::string& split, const std::string& dir) {
  std::string prefix;
  if (split == "train") prefix = "train";
  else if (split == "test") prefix = "t10k";
  else throw Error("unknown Fashion-MNIST split '" + split + "' (train or test)");
  const std::string folder = dir.empty() ? fashion_mnist_dir() : dir;
  Dataset d = read_idx_dataset(folder + "/" + prefix + "-images-idx3-ubyte.gz",
                               folder + "/" + prefix + "-labels-idx1-ubyte.gz");
  for (int label : d.labels)
    if (label >= 10) throw Error("Fashion-MNIST label " + std::to_string(label) + " outside 0..9");
  d.class_names = fashion_mnist_classes();
  return d;
}

Dataset read_idx_dataset(const std::string& images_path, const std::string& labels_path) {
  const std::vector<uint8_t> img = read_maybe_gzip(images_path);
  const std::vector<uint8_t> lab = read_maybe_gzip(labels_path);
  if (img.size() < 16) throw Error("'" + images_path + "' is too short for an IDX image header (16 bytes)");
  if (lab.size() < 8) throw Error("'" + labels_path + "' is too short for an IDX label header (8 bytes)");
  if (read_u32_be(img, 0) != kImageMagic)
    throw Error("'" + images_path + "' has magic number " + hex(read_u32_be(img, 0)) + ", not " + hex(kImageMagic) +
                " (IDX unsigned-byte images)");
  if (read_u32_be(lab, 0) != kLabelMagic)
    throw Error("'" + labels_path + "' has magic number " + hex(read_u32_be(lab, 0)) + ", not " + hex(kLabelMagic) +
                " (IDX unsigned-byte labels)");
  const uint64_t n = read_u32_be(img, 4), rows = read_u32_be(img, 8), cols = read_u32_be(img, 12);
  const uint64_t n_labels = read_u32_be(lab, 4);
  if (rows == 0 || cols == 0 || rows > 4096 || cols > 4096)
    throw Error("'" + images_path + "' declares an implausible image size " + std::to_string(rows) + "x" +
                std::to_string(cols));
  if (img.size() != 16 + n * rows * cols)
    throw Error("'" + images_path + "' declares " + std::to_string(n) + " images of " + std::to_string(rows) + "x" +
                std::to_string(cols) + " (" + std::to_string(16 + n * rows * cols) + " bytes) but holds " +
                std::to_string(img.size()) + " bytes: truncated or corrupt");
  if (lab.size() != 8 + n_labels)
    throw Error("'" + labels_path + "' declares " + std::to_string(n_labels) + " labels but holds " +
                std::to_string(lab.size() - 8) + ": truncated or corrupt");
  if (n != n_labels)
    throw Error("'" + images_path + "' has " + std::to_string(n) + " images but '" + labels_path + "' has " +
                std::to_string(n_labels) + " labels");
  Dataset d;
  d.images = Tensor({static_cast<int64_t>(n), static_cast<int64_t>(rows), static_cast<int64_t>(cols), 1});
  for (int64_t i = 0; i < d.images.size(); ++i) d.images[i] = static_cast<float>(img[16 + static_cast<size_t>(i)]) / 255.0f;
  d.labels.assign(lab.begin() + 8, lab.end());
  return d;
}

}  // namespace igscope
