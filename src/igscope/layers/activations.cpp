#include "igscope/layers/activations.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "igscope/error.h"

namespace igscope {

namespace {

constexpr double kSqrtHalf = 0.70710678118654752440;     // 1 / sqrt(2)
constexpr double kInvSqrt2Pi = 0.39894228040143267794;   // 1 / sqrt(2 pi)
constexpr double kSqrt2OverPi = 0.79788456080286535588;  // sqrt(2 / pi)
constexpr double kGeluCubic = 0.044715;

double sigmoid(double x) {
  if (x >= 0) return 1.0 / (1.0 + std::exp(-x));
  const double e = std::exp(x);
  return e / (1.0 + e);
}

struct Row {
  ActivationKind kind;
  const char* type;
  double (*value)(double x, double slope);
  double (*derivative)(double x, double slope);
};

// One row per function: forward next to its derivative.
const Row kTable[] = {
    {ActivationKind::Sigmoid, "sigmoid", [](double x, double) { return sigmoid(x); },
     [](double x, double) {
       const double s = sigmoid(x);
       return s * (1.0 - s);
     }},
    {ActivationKind::Tanh, "tanh", [](double x, double) { return std::tanh(x); },
     [](double x, double) {
       const double t = std::tanh(x);
       return 1.0 - t * t;
     }},
    {ActivationKind::Gelu, "gelu", [](double x, double) { return 0.5 * x * (1.0 + std::erf(x * kSqrtHalf)); },
     [](double x, double) { return 0.5 * (1.0 + std::erf(x * kSqrtHalf)) + x * kInvSqrt2Pi * std::exp(-0.5 * x * x); }},
    {ActivationKind::GeluTanh, "gelu",
     [](double x, double) { return 0.5 * x * (1.0 + std::tanh(kSqrt2OverPi * (x + kGeluCubic * x * x * x))); },
     [](double x, double) {
       const double t = std::tanh(kSqrt2OverPi * (x + kGeluCubic * x * x * x));
       return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * kSqrt2OverPi * (1.0 + 3.0 * kGeluCubic * x * x);
     }},
    {ActivationKind::Silu, "silu", [](double x, double) { return x * sigmoid(x); },
     [](double x, double) {
       const double s = sigmoid(x);
       return s * (1.0 + x * (1.0 - s));
     }},
    {ActivationKind::LeakyRelu, "leaky_relu", [](double x, double slope) { return x > 0 ? x : slope * x; },
     [](double x, double slope) { return x > 0 ? 1.0 : slope; }},
    {ActivationKind::Relu6, "relu6", [](double x, double) { return std::min(std::max(x, 0.0), 6.0); },
     [](double x, double) { return x > 0 && x < 6 ? 1.0 : 0.0; }},
    {ActivationKind::Hardswish, "hardswish",
     [](double x, double) { return x * std::min(std::max(x + 3.0, 0.0), 6.0) / 6.0; },
     [](double x, double) { return x < -3 ? 0.0 : x <= 3 ? x / 3.0 + 0.5 : 1.0; }},
    {ActivationKind::Hardsigmoid, "hardsigmoid",
     [](double x, double) { return std::min(std::max(x + 3.0, 0.0), 6.0) / 6.0; },
     [](double x, double) { return x > -3 && x < 3 ? 1.0 / 6.0 : 0.0; }},
};

const Row& row(ActivationKind kind) {
  for (const Row& r : kTable)
    if (r.kind == kind) return r;
  throw Error("activation: unknown kind");
}

}  // namespace

Activation::Activation(ActivationKind kind, double negative_slope) : kind_(kind), slope_(negative_slope) {
  if (kind == ActivationKind::LeakyRelu && !std::isfinite(negative_slope))
    throw Error("leaky_relu: 'negative_slope' must be a finite number, got " + std::to_string(negative_slope));
}

std::string Activation::type() const { return row(kind_).type; }

nlohmann::json Activation::to_json() const {
  nlohmann::json j = {{"type", type()}};
  if (kind_ == ActivationKind::Gelu) j["approximate"] = "none";
  if (kind_ == ActivationKind::GeluTanh) j["approximate"] = "tanh";
  if (kind_ == ActivationKind::LeakyRelu) j["negative_slope"] = slope_;
  return j;
}

double Activation::value(double x) const { return row(kind_).value(x, slope_); }
double Activation::derivative(double x) const { return row(kind_).derivative(x, slope_); }

Tensor Activation::forward(Tensor in, Backend& /*backend*/, Mode /*mode*/) {
  const Row& r = row(kind_);
  Tensor out = Tensor::uninitialized(in.shape());
  const float* x = in.data();
  float* y = out.data();
  for (int64_t i = 0; i < in.size(); ++i) y[i] = static_cast<float>(r.value(x[i], slope_));
  input_ = std::move(in);
  return out;
}

Tensor Activation::backward_input(Tensor dout, Backend& /*backend*/) {
  check_shape(dout, input_.shape(), type() + " backward");
  const Row& r = row(kind_);
  Tensor din = Tensor::uninitialized(dout.shape());
  const float* x = input_.data();
  const float* g = dout.data();
  float* d = din.data();
  for (int64_t i = 0; i < dout.size(); ++i) d[i] = static_cast<float>(static_cast<double>(g[i]) * r.derivative(x[i], slope_));
  return din;
}

Tensor Activation::forward_tangent(const Tensor& din, Backend& backend) { return backward_input(din, backend); }

const std::vector<std::string>& activation_types() {
  static const std::vector<std::string> types = {"sigmoid",    "tanh",  "gelu",      "silu",       "leaky_relu",
                                                 "relu6",      "hardswish", "hardsigmoid"};
  return types;
}

bool is_activation_type(const std::string& type) {
  const auto& t = activation_types();
  return std::find(t.begin(), t.end(), type) != t.end();
}

std::unique_ptr<Layer> make_activation(const nlohmann::json& spec) {
  const std::string type = spec.at("type").get<std::string>();
  if (!is_activation_type(type)) throw Error("'" + type + "' is not an activation");
  const char* parameter = type == "gelu" ? "approximate" : type == "leaky_relu" ? "negative_slope" : nullptr;
  for (const auto& [key, value] : spec.items()) {
    if (key == "type" || (parameter && key == parameter)) continue;
    throw Error(type + " takes " + (parameter ? std::string("only '") + parameter + "'" : std::string("no parameters")) +
                ", got '" + key + "'");
  }
  if (type == "gelu") {
    const nlohmann::json a = spec.value("approximate", nlohmann::json("none"));
    if (!a.is_string() || (a != "none" && a != "tanh"))
      throw Error("gelu: 'approximate' must be \"none\" (erf) or \"tanh\", got " + a.dump());
    return std::make_unique<Activation>(a == "tanh" ? ActivationKind::GeluTanh : ActivationKind::Gelu);
  }
  if (type == "leaky_relu") {
    const nlohmann::json s = spec.value("negative_slope", nlohmann::json(0.01));
    if (!s.is_number() || !std::isfinite(s.get<double>()))
      throw Error("leaky_relu: 'negative_slope' must be a finite number, got " + s.dump());
    return std::make_unique<Activation>(ActivationKind::LeakyRelu, s.get<double>());
  }
  for (const Row& r : kTable)
    if (type == r.type) return std::make_unique<Activation>(r.kind);
  throw Error("'" + type + "' is not an activation");
}

}  // namespace igscope
