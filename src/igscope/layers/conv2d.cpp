#include "igscope/layers/conv2d.h"

#include <utility>

#include "igscope/error.h"

namespace igscope {

Conv2d::Conv2d(int64_t in_channels, int64_t out_channels, int64_t kernel_h, int64_t kernel_w,
               int64_t stride_h, int64_t stride_w, int64_t pad_h, int64_t pad_w, int64_t groups,
               int64_t dilation_h, int64_t dilation_w)
    : in_c_(in_channels), out_c_(out_channels), kh_(kernel_h), kw_(kernel_w), sh_(stride_h),
      sw_(stride_w), ph_(pad_h), pw_(pad_w), groups_(groups), dh_(dilation_h), dw_(dilation_w) {
  if (in_c_ < 1 || out_c_ < 1 || kh_ < 1 || kw_ < 1 || sh_ < 1 || sw_ < 1 || ph_ < 0 || pw_ < 0)
    throw Error("conv2d: channels, kernel and stride must be >= 1 and padding >= 0");
  if (dh_ < 1 || dw_ < 1)
    throw Error("conv2d: dilation must be >= 1, got " + std::to_string(dh_) + "x" + std::to_string(dw_));
  if (groups_ < 1 || in_c_ % groups_ != 0 || out_c_ % groups_ != 0)
    throw Error("conv2d: groups (" + std::to_string(groups_) + ") must be >= 1 and divide the input channels (" +
                std::to_string(in_c_) + ") and out_channels (" + std::to_string(out_c_) + ")");
  const Shape w_shape{out_c_, in_c_ / groups_, kh_, kw_};
  params_.push_back({"weight", Tensor(w_shape), Tensor(w_shape)});
  params_.push_back({"bias", Tensor({out_c_}), Tensor({out_c_})});
}

nlohmann::json Conv2d::to_json() const {
  nlohmann::json j = {{"type", type()},
                      {"out_channels", out_c_},
                      {"kernel", {kh_, kw_}},
                      {"stride", {sh_, sw_}},
                      {"padding", {ph_, pw_}}};
  // Only when not 1, so that the architecture JSON of a model without them stays as it was.
  if (groups_ != 1) j["groups"] = groups_;
  if (dh_ != 1 || dw_ != 1) j["dilation"] = {dh_, dw_};
  return j;
}

Conv2dGeometry Conv2d::geometry(const Shape& in) const {
  if (in.size() != 4 || in[3] != in_c_)
    throw Error("conv2d: expected input [N, H, W, " + std::to_string(in_c_) + "], got " +
                shape_to_string(in));
  Conv2dGeometry g;
  g.batch = in[0];
  g.in_h = in[1];
  g.in_w = in[2];
  g.in_c = in_c_;
  g.out_c = out_c_;
  g.kernel_h = kh_;
  g.kernel_w = kw_;
  g.stride_h = sh_;
  g.stride_w = sw_;
  g.pad_h = ph_;
  g.pad_w = pw_;
  g.groups = groups_;
  g.dilation_h = dh_;
  g.dilation_w = dw_;
  if (g.in_h + 2 * ph_ < g.extent_h() || g.in_w + 2 * pw_ < g.extent_w())
    throw Error("conv2d: input " + shape_to_string(in) + " is smaller than the kernel" +
                (g.dilated() ? " (dilated: " + std::to_string(g.extent_h()) + "x" + std::to_string(g.extent_w()) + ")"
                             : std::string()));
  return g;
}

Shape Conv2d::output_shape(const Shape& in) const {
  const Conv2dGeometry g = geometry(in);
  return {g.batch, g.out_h(), g.out_w(), g.out_c};
}

int64_t Conv2d::multiply_adds(const Shape& in) const {
  const Conv2dGeometry g = geometry(in);
  return g.out_h() * g.out_w() * out_c_ * (in_c_ / groups_) * kh_ * kw_;
}

Tensor Conv2d::forward(Tensor in, Backend& backend, Mode mode) {
  const Conv2dGeometry g = geometry(in.shape());
  Tensor out = Tensor::uninitialized(output_shape(in.shape()));
  const Tensor& w = params_[0].value;
  const Tensor& b = params_[1].value;
  backend.conv2d_forward(g, in.data(), w.data(), b.data(), out.data(), {w.content_id(), b.content_id()});
  input_shape_ = in.shape();
  input_ = mode == Mode::Train ? std::move(in) : Tensor();
  return out;
}

Tensor Conv2d::backward_input(Tensor dout, Backend& backend) {
  const Conv2dGeometry g = geometry(input_shape_);
  check_shape(dout, output_shape(input_shape_), "conv2d backward");
  Tensor din = Tensor::uninitialized(input_shape_);
  const Tensor& w = params_[0].value;
  backend.conv2d_backward_input(g, dout.data(), w.data(), din.data(), {w.content_id(), 0});
  return din;
}

void Conv2d::backward_params(const Tensor& dout, Backend& backend) {
  if (input_.shape() != input_shape_)
    throw Error("conv2d: backward_params needs a forward pass in training mode first");
  const Conv2dGeometry g = geometry(input_shape_);
  check_shape(dout, output_shape(input_shape_), "conv2d backward");
  backend.conv2d_backward_params(g, input_.data(), dout.data(), params_[0].grad.data(),
                                 params_[1].grad.data());
}

// The convolution without its bias.
Tensor Conv2d::forward_tangent(const Tensor& din, Backend& backend) {
  check_shape(din, input_shape_, "conv2d tangent");
  const Conv2dGeometry g = geometry(input_shape_);
  Tensor dout(output_shape(input_shape_));
  if (zero_bias_.size() != out_c_) zero_bias_ = Tensor({out_c_});
  const Tensor& w = params_[0].value;
  const Tensor& b = zero_bias_;
  backend.conv2d_forward(g, din.data(), w.data(), b.data(), dout.data(), {w.content_id(), b.content_id()});
  return dout;
}

}  // namespace igscope
