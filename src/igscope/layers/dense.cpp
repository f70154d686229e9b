#include "igscope/layers/dense.h"

#include <utility>

#include "igscope/error.h"

namespace igscope {

Dense::Dense(int64_t in_features, int64_t out_features) : in_f_(in_features), out_f_(out_features) {
  if (in_f_ < 1 || out_f_ < 1) throw Error("dense: in_features and out_features must be >= 1");
  params_.push_back({"weight", Tensor({out_f_, in_f_}), Tensor({out_f_, in_f_})});
  params_.push_back({"bias", Tensor({out_f_}), Tensor({out_f_})});
}

nlohmann::json Dense::to_json() const { return {{"type", type()}, {"out_features", out_f_}}; }

Shape Dense::output_shape(const Shape& in) const {
  if ((in.size() != 2 && in.size() != 3) || in.back() != in_f_)
    throw Error("dense: expected input [N, " + std::to_string(in_f_) + "] or tokens [N, T, " + std::to_string(in_f_) +
                "], got " + shape_to_string(in));
  Shape out = in;
  out.back() = out_f_;
  return out;
}

int64_t Dense::multiply_adds(const Shape& in) const {
  output_shape(in);
  return shape_numel(in) / in[0] / in_f_ * in_f_ * out_f_;
}

Tensor Dense::forward(Tensor in, Backend& backend, Mode mode) {
  Tensor out = Tensor::uninitialized(output_shape(in.shape()));
  input_shape_ = in.shape();
  batch_ = in.size() / in_f_;
  const Tensor& w = params_[0].value;
  const Tensor& b = params_[1].value;
  backend.dense_forward(batch_, in_f_, out_f_, in.data(), w.data(), b.data(), out.data(),
                        {w.content_id(), b.content_id()});
  input_ = mode == Mode::Train ? std::move(in) : Tensor();
  return out;
}

Tensor Dense::backward_input(Tensor dout, Backend& backend) {
  check_shape(dout, output_shape(input_shape_), "dense backward");
  Tensor din = Tensor::uninitialized(input_shape_);
  const Tensor& w = params_[0].value;
  backend.dense_backward_input(batch_, in_f_, out_f_, dout.data(), w.data(), din.data(), {w.content_id(), 0});
  return din;
}

void Dense::backward_params(const Tensor& dout, Backend& backend) {
  if (input_.shape() != input_shape_ || input_shape_.empty())
    throw Error("dense: backward_params needs a forward pass in training mode first");
  check_shape(dout, output_shape(input_shape_), "dense backward");
  backend.dense_backward_params(batch_, in_f_, out_f_, input_.data(), dout.data(),
                                params_[0].grad.data(), params_[1].grad.data());
}

// The product with the weights, without the bias.
Tensor Dense::forward_tangent(const Tensor& din, Backend& backend) {
  check_shape(din, input_shape_, "dense tangent");
  Tensor dout = Tensor::uninitialized(output_shape(input_shape_));
  if (zero_bias_.size() != out_f_) zero_bias_ = Tensor({out_f_});
  const Tensor& w = params_[0].value;
  const Tensor& b = zero_bias_;
  backend.dense_forward(batch_, in_f_, out_f_, din.data(), w.data(), b.data(), dout.data(),
                        {w.content_id(), b.content_id()});
  return dout;
}

}  // namespace igscope
