// The Fashion-MNIST / IDX reader: the real data set, and bad data refused clearly.
#include <catch2/catch.hpp>

#include <array>
#include <cstdlib>
#include <string>
#include <filesystem>
#include <fstream>

#include <zlib.h>

#include "igscope/data/fashion_mnist.h"
#include "igscope/error.h"

using namespace igscope;
namespace fs = std::filesystem;

namespace {

std::vector<uint8_t> idx_header(uint32_t magic, std::vector<uint32_t> dims) {
  std::vector<uint8_t> b;
  auto put = [&](uint32_t v) {
    for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<uint8_t>(v >> s));
  };
  put(magic);
  for (uint32_t d : dims) put(d);
  return b;
}

void write_gz(const fs::path& p, const std::vector<uint8_t>& bytes) {
  gzFile f = gzopen(p.c_str(), "wb");
  REQUIRE(f != nullptr);
  REQUIRE(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())) == static_cast<int>(bytes.size()));
  gzclose(f);
}

void write_raw(const fs::path& p, const std::vector<uint8_t>& bytes) {
  std::ofstream(p, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()),
                                           static_cast<std::streamsize>(bytes.size()));
}

// A directory of its own for each test, also when ctest runs the test cases as
// parallel processes: mkdtemp picks a name no other process holds.
struct TempDir {
  fs::path path;
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "igscope_idx_XXXXXX").string();
    REQUIRE(mkdtemp(pattern.data()) != nullptr);
    path = pattern;
  }
  ~TempDir() { fs::remove_all(path); }
};

// 3 images of 2x4 and their labels.
std::vector<uint8_t> images_file() {
  auto b = idx_header(0x803, {3, 2, 4});
  for (int i = 0; i < 24; ++i) b.push_back(static_cast<uint8_t>(i * 10));
  return b;
}
std::vector<uint8_t> labels_file() {
  auto b = idx_header(0x801, {3});
  for (int l : {7, 0, 9}) b.push_back(static_cast<uint8_t>(l));
  return b;
}

std::string error_of(const std::string& images, const std::string& labels) {
  try {
    read_idx_dataset(images, labels);
  } catch (const Error& e) {
    return e.what();
  }
  FAIL("accepted");
  return "";
}

}  // namespace

TEST_CASE("IDX files are read, gzip-compressed or not", "[data]") {
  TempDir dir;
  write_gz(dir.path / "i.gz", images_file());
  write_raw(dir.path / "l", labels_file());
  const Dataset d = read_idx_dataset(dir.path / "i.gz", dir.path / "l");
  REQUIRE(d.images.shape() == Shape{3, 2, 4, 1});
  CHECK(d.labels == std::vector<int>{7, 0, 9});
  CHECK(d.images[0] == 0.0f);
  CHECK(d.images[23] == Approx(230.0 / 255.0));
  CHECK(d.images[8] == Approx(80.0 / 255.0));  // image 1 starts at byte 8
}

TEST_CASE("bad IDX data gives a clear error", "[data]") {
  TempDir dir;
  const auto good_images = images_file(), good_labels = labels_file();
  write_gz(dir.path / "labels.gz", good_labels);
  const std::string labels = dir.path / "labels.gz";

  SECTION("wrong magic number") {
    auto b = good_images;
    b[3] = 0x01;
    write_gz(dir.path / "bad.gz", b);
    CHECK_THAT(error_of(dir.path / "bad.gz", labels), Catch::Contains("magic number 0x00000801"));
  }
  SECTION("truncated image data") {
    auto b = good_images;
    b.resize(b.size() - 5);
    write_gz(dir.path / "bad.gz", b);
    CHECK_THAT(error_of(dir.path / "bad.gz", labels), Catch::Contains("truncated"));
  }
  SECTION("truncated header") {
    write_gz(dir.path / "bad.gz", std::vector<uint8_t>(good_images.begin(), good_images.begin() + 10));
    CHECK_THAT(error_of(dir.path / "bad.gz", labels), Catch::Contains("too short"));
  }
  SECTION("truncated gzip stream") {
    write_gz(dir.path / "full.gz", good_images);
    std::ifstream in(dir.path / "full.gz", std::ios::binary);
    std::vector<char> gz((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::ofstream(dir.path / "cut.gz", std::ios::binary).write(gz.data(), static_cast<std::streamsize>(gz.size() / 2));
    const std::string e = error_of(dir.path / "cut.gz", labels);
    CHECK((e.find("gzip") != std::string::npos || e.find("truncated") != std::string::npos));
  }
  SECTION("image and label counts differ") {
    auto b = idx_header(0x801, {2});
    b.push_back(1);
    b.push_back(2);
    write_gz(dir.path / "two.gz", b);
    write_gz(dir.path / "img.gz", good_images);
    CHECK_THAT(error_of(dir.path / "img.gz", dir.path / "two.gz"), Catch::Contains("3 images") && Catch::Contains("2 labels"));
  }
  SECTION("a missing file") {
    CHECK_THAT(error_of(dir.path / "nothing.gz", labels), Catch::Contains("no such file"));
  }
}

TEST_CASE("a missing data set names the Debian package", "[data]") {
  TempDir empty;
  setenv("IGSCOPE_FASHION_MNIST_DIR", empty.path.c_str(), 1);
  CHECK_THROWS_WITH(load_fashion_mnist("test"), Catch::Contains("dataset-fashion-mnist"));
  unsetenv("IGSCOPE_FASHION_MNIST_DIR");
  CHECK_THROWS_WITH(load_fashion_mnist("validation"), Catch::Contains("train or test"));
}

TEST_CASE("the Fashion-MNIST test set: 10,000 images, 1,000 per class", "[data]") {
  const Dataset d = load_fashion_mnist("test");
  REQUIRE(d.images.shape() == Shape{10000, 28, 28, 1});
  std::array<int, 10> counts{};
  for (int l : d.labels) ++counts[static_cast<size_t>(l)];
  for (int c : counts) CHECK(c == 1000);
  float lo = 1.0f, hi = 0.0f;
  for (int64_t i = 0; i < d.images.size(); ++i) {
    lo = std::min(lo, d.images[i]);
    hi = std::max(hi, d.images[i]);
  }
  CHECK(lo == 0.0f);
  CHECK(hi == 1.0f);
  CHECK(d.class_names.at(6) == "Shirt");
  CHECK(d.labels[0] == 9);  // the first test image is an ankle boot
}
