#include "igscope/layers/layer.h"

#include "igscope/error.h"

namespace igscope {

void check_shape(const Tensor& t, const Shape& expected, const std::string& what) {
  if (t.shape() != expected)
    throw Error(what + ": expected shape " + shape_to_string(expected) + ", got " +
                shape_to_string(t.shape()));
}

Tensor Layer::forward_tangent(const Tensor& /*din*/, Backend& /*backend*/) {
  throw Error("layer type '" + type() + "' has no forward tangent (Jacobian-vector product)");
}

}  // namespace igscope
