#pragma once
// Tensor: a float32 array with a shape, owning 64-byte aligned contiguous
// storage. Image tensors are NHWC (batch, height, width, channels); flat
// tensors are (batch, features). No views, no autograd: layers read and write
// the raw data directly.
//
// content_id() names the tensor's current contents: it stays the same while
// only const accessors are used and changes after any mutable access
// (non-const data() or operator[], fill, assignment), and no two tensors
// ever share one. Backends that repack weights key their caches on it. A
// pointer from the non-const data() must not be written through after
// content_id() has been read (take the pointer again instead).
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

namespace igscope {

using Shape = std::vector<int64_t>;

std::string shape_to_string(const Shape& shape);
int64_t shape_numel(const Shape& shape);

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(Shape shape);  // zero-filled
  Tensor(Shape shape, float fill);
  Tensor(std::initializer_list<int64_t> shape) : Tensor(Shape(shape)) {}
  // Storage left uninitialised: for outputs that a kernel writes in full
  // (every backend op does, except the documented accumulating ones), so the
  // memory is not written twice.
  static Tensor uninitialized(Shape shape);

  Tensor(const Tensor& other);
  Tensor& operator=(const Tensor& other);
  Tensor(Tensor&& other) noexcept;
  Tensor& operator=(Tensor&& other) noexcept;

  const Shape& shape() const { return shape_; }
  int rank() const { return static_cast<int>(shape_.size()); }
  int64_t dim(int i) const { return shape_.at(static_cast<size_t>(i)); }
  int64_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

  float* data() {
    content_id_ = 0;
    return data_.get();
  }
  const float* data() const { return data_.get(); }
  float& operator[](int64_t i) {
    content_id_ = 0;
    return data_.get()[i];
  }
  float operator[](int64_t i) const { return data_.get()[i]; }

  // See the note at the top. Not thread-safe against concurrent first calls.
  uint64_t content_id() const;

  void fill(float value);
  // Same data, new shape with the same number of elements.
  void reshape(Shape shape);

 private:
  struct Uninitialized {};
  Tensor(Shape shape, Uninitialized);
  struct AlignedFree {
    void operator()(float* p) const;
  };
  Shape shape_;
  int64_t size_ = 0;
  std::unique_ptr<float[], AlignedFree> data_;
  mutable uint64_t content_id_ = 0;  // 0: contents changed since the last content_id()
};

}  // namespace igscope
