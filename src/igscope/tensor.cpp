#include "igscope/tensor.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <new>

#include "igscope/error.h"

namespace igscope {

namespace {
constexpr size_t kAlignment = 64;

float* allocate_aligned(int64_t count) {
  if (count == 0) return nullptr;
  size_t bytes = static_cast<size_t>(count) * sizeof(float);
  bytes = (bytes + kAlignment - 1) / kAlignment * kAlignment;
  void* p = std::aligned_alloc(kAlignment, bytes);
  if (p == nullptr) throw std::bad_alloc();
  return static_cast<float*>(p);
}
}  // namespace

std::string shape_to_string(const Shape& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

int64_t shape_numel(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) throw Error("negative dimension in shape " + shape_to_string(shape));
    n *= d;
  }
  return n;
}

void Tensor::AlignedFree::operator()(float* p) const { std::free(p); }

Tensor::Tensor(Shape shape) : Tensor(std::move(shape), 0.0f) {}

Tensor::Tensor(Shape shape, float fill_value) : Tensor(std::move(shape), Uninitialized{}) { fill(fill_value); }

Tensor::Tensor(Shape shape, Uninitialized)
    : shape_(std::move(shape)), size_(shape_numel(shape_)), data_(allocate_aligned(size_)) {}

Tensor Tensor::uninitialized(Shape shape) { return Tensor(std::move(shape), Uninitialized{}); }

Tensor::Tensor(const Tensor& other)
    : shape_(other.shape_), size_(other.size_), data_(allocate_aligned(other.size_)) {
  if (size_) std::memcpy(data_.get(), other.data_.get(), static_cast<size_t>(size_) * sizeof(float));
}

Tensor& Tensor::operator=(const Tensor& other) {
  if (this != &other) {
    Tensor copy(other);
    *this = std::move(copy);
  }
  return *this;
}

Tensor::Tensor(Tensor&& other) noexcept
    : shape_(std::move(other.shape_)), size_(other.size_), data_(std::move(other.data_)),
      content_id_(other.content_id_) {
  other.shape_.clear();
  other.size_ = 0;
  other.content_id_ = 0;
}

Tensor& Tensor::operator=(Tensor&& other) noexcept {
  if (this != &other) {
    shape_ = std::move(other.shape_);
    size_ = other.size_;
    data_ = std::move(other.data_);
    content_id_ = other.content_id_;
    other.shape_.clear();
    other.size_ = 0;
    other.content_id_ = 0;
  }
  return *this;
}

uint64_t Tensor::content_id() const {
  static std::atomic<uint64_t> next_id{1};
  if (content_id_ == 0) content_id_ = next_id.fetch_add(1, std::memory_order_relaxed);
  return content_id_;
}

void Tensor::fill(float value) {
  content_id_ = 0;
  std::fill(data_.get(), data_.get() + size_, value);
}

void Tensor::reshape(Shape shape) {
  if (shape_numel(shape) != size_)
    throw Error("cannot reshape " + shape_to_string(shape_) + " to " + shape_to_string(shape));
  shape_ = std::move(shape);
}

}  // namespace igscope
