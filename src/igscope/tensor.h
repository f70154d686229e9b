#pragma once
// Tensor: a float32 array with a shape, owning 64-byte aligned contiguous
// storage. Image tensors are NHWC (batch, height, width, channels); flat
// tensors are (batch, features). No views, no autograd: layers read and write
// the raw data directly.
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

  Tensor(const Tensor& other);
  Tensor& operator=(const Tensor& other);
  Tensor(Tensor&&) noexcept = default;
  Tensor& operator=(Tensor&&) noexcept = default;

  const Shape& shape() const { return shape_; }
  int rank() const { return static_cast<int>(shape_.size()); }
  int64_t dim(int i) const { return shape_.at(static_cast<size_t>(i)); }
  int64_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

  float* data() { return data_.get(); }
  const float* data() const { return data_.get(); }
  float& operator[](int64_t i) { return data_.get()[i]; }
  float operator[](int64_t i) const { return data_.get()[i]; }

  void fill(float value);
  // Same data, new shape with the same number of elements.
  void reshape(Shape shape);

 private:
  struct AlignedFree {
    void operator()(float* p) const;
  };
  Shape shape_;
  int64_t size_ = 0;
  std::unique_ptr<float[], AlignedFree> data_;
};

}  // namespace igscope
