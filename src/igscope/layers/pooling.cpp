#include "igscope/layers/pooling.h"

#include <set>
#include <tuple>

#include "igscope/error.h"
#include "igscope/layers/avgpool2d.h"
#include "igscope/layers/maxpool2d.h"

namespace igscope {

namespace {

int64_t read_int(const nlohmann::json& v, const std::string& what) {
  if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > (1 << 20))
    throw Error(what + " must be a non-negative integer, got " + v.dump());
  return v.get<int64_t>();
}

// An int or [h, w], as PyTorch's kernel_size / stride / padding.
std::pair<int64_t, int64_t> read_pair(const nlohmann::json& spec, const char* key, const std::string& type) {
  const nlohmann::json& v = spec[key];
  const std::string what = type + ": '" + key + "'";
  if (v.is_array()) {
    if (v.size() != 2) throw Error(what + " must be an integer or [h, w], got " + v.dump());
    return {read_int(v[0], what), read_int(v[1], what)};
  }
  const int64_t x = read_int(v, what);
  return {x, x};
}

bool read_bool(const nlohmann::json& spec, const char* key, bool fallback, const std::string& type) {
  if (!spec.contains(key)) return fallback;
  if (!spec[key].is_boolean()) throw Error(type + ": '" + key + "' must be true or false, got " + spec[key].dump());
  return spec[key].get<bool>();
}

void refuse_other_keys(const nlohmann::json& spec, const std::string& type, const std::set<std::string>& keys) {
  for (const auto& item : spec.items()) {
    if (item.key() == "type" || keys.count(item.key())) continue;
    std::string known;
    for (const std::string& k : keys) known += (known.empty() ? "" : ", ") + k;
    throw Error(type + " takes " + (known.empty() ? std::string("no parameters") : "only " + known) + ", got '" +
                item.key() + "'");
  }
}

}  // namespace

void PoolWindow::check(const std::string& type) const {
  if (kernel_h < 1 || kernel_w < 1 || stride_h < 1 || stride_w < 1)
    throw Error(type + ": kernel and stride must be >= 1");
  if (pad_h < 0 || pad_w < 0) throw Error(type + ": padding must be >= 0");
  if (2 * pad_h > kernel_h || 2 * pad_w > kernel_w)
    throw Error(type + ": padding " + std::to_string(pad_h) + "x" + std::to_string(pad_w) +
                " must be at most half the kernel " + std::to_string(kernel_h) + "x" + std::to_string(kernel_w) +
                " (as in PyTorch)");
}

Pool2dGeometry PoolWindow::geometry(const Shape& in, const std::string& type) const {
  if (in.size() != 4) throw Error(type + ": expected input [N, H, W, C], got " + shape_to_string(in));
  if (in[1] + 2 * pad_h < kernel_h || in[2] + 2 * pad_w < kernel_w)
    throw Error(type + ": input " + shape_to_string(in) + (pad_h || pad_w ? " with its padding" : "") +
                " is smaller than the window");
  Pool2dGeometry g;
  g.batch = in[0];
  g.in_h = in[1];
  g.in_w = in[2];
  g.channels = in[3];
  g.kernel_h = kernel_h;
  g.kernel_w = kernel_w;
  g.stride_h = stride_h;
  g.stride_w = stride_w;
  g.pad_h = pad_h;
  g.pad_w = pad_w;
  g.ceil_mode = ceil_mode;
  return g;
}

void PoolWindow::write(nlohmann::json& j, bool always) const {
  j["kernel"] = {kernel_h, kernel_w};
  j["stride"] = {stride_h, stride_w};
  if (always || pad_h != 0 || pad_w != 0) j["padding"] = {pad_h, pad_w};
  if (always || ceil_mode) j["ceil_mode"] = ceil_mode;
}

PoolWindow PoolWindow::read(const nlohmann::json& spec, const std::string& type) {
  if (!spec.contains("kernel")) throw Error(type + ": missing 'kernel'");
  PoolWindow w;
  std::tie(w.kernel_h, w.kernel_w) = read_pair(spec, "kernel", type);
  if (spec.contains("stride")) std::tie(w.stride_h, w.stride_w) = read_pair(spec, "stride", type);
  else std::tie(w.stride_h, w.stride_w) = std::pair{w.kernel_h, w.kernel_w};
  if (spec.contains("padding")) std::tie(w.pad_h, w.pad_w) = read_pair(spec, "padding", type);
  w.ceil_mode = read_bool(spec, "ceil_mode", false, type);
  w.check(type);
  return w;
}

bool is_pooling_type(const std::string& type) {
  return type == "maxpool2d" || type == "avgpool2d" || type == "global_avgpool";
}

std::unique_ptr<Layer> make_pooling_layer(const nlohmann::json& spec, const Shape& in) {
  const std::string type = spec.at("type").get<std::string>();
  if (!is_pooling_type(type)) throw Error("'" + type + "' is not a pooling layer");
  if (in.size() != 4) throw Error(type + " needs image input [H, W, C], got " + shape_to_string(in));
  if (type == "global_avgpool") {
    refuse_other_keys(spec, type, {});
    return std::make_unique<GlobalAvgPool>();
  }
  if (type == "maxpool2d") {
    refuse_other_keys(spec, type, {"kernel", "stride", "padding", "ceil_mode"});
    return std::make_unique<MaxPool2d>(PoolWindow::read(spec, type));
  }
  refuse_other_keys(spec, type, {"kernel", "stride", "padding", "ceil_mode", "count_include_pad"});
  return std::make_unique<AvgPool2d>(PoolWindow::read(spec, type), read_bool(spec, "count_include_pad", true, type));
}

}  // namespace igscope
