#include "igscope/attribution/target.h"

#include <algorithm>
#include <cmath>

#include "igscope/error.h"

namespace igscope {

void TargetFunction::evaluate_values(const Tensor& x, std::vector<double>& values) {
  Tensor grads;
  evaluate(x, values, grads);
}

std::string target_output_name(TargetOutput output) {
  return output == TargetOutput::Logit ? "logit" : "probability";
}

TargetOutput parse_target_output(const std::string& name) {
  if (name == "logit") return TargetOutput::Logit;
  if (name == "probability") return TargetOutput::Probability;
  throw Error("unknown target output '" + name + "' (known: logit, probability)");
}

ModelTarget::ModelTarget(Model& model, Backend& backend, int64_t target_class, TargetOutput output)
    : model_(model), backend_(backend), target_(target_class), output_(output) {
  const int64_t k = model.num_outputs();
  if (target_class < 0 || target_class >= k)
    throw Error("target class " + std::to_string(target_class) + " is out of range: the model has " +
                std::to_string(k) + " outputs (classes 0.." + std::to_string(k - 1) + ")");
  if (output == TargetOutput::Probability && model.num_layers() > 0) {
    const std::string last = model.layer(model.num_layers() - 1).type();
    if (last == "softmax" || last == "log_softmax")
      throw Error("the model already ends in " + last +
                  "; explain its output as it is (logit) instead of applying softmax again");
  }
}

void ModelTarget::target_values(const Tensor& out, std::vector<double>& values, Tensor* seed) const {
  const int64_t batch = out.dim(0), k = out.size() / std::max<int64_t>(batch, 1);
  values.resize(static_cast<size_t>(batch));
  if (seed) *seed = Tensor(out.shape());
  std::vector<double> p(static_cast<size_t>(k));
  for (int64_t n = 0; n < batch; ++n) {
    const float* row = out.data() + n * k;
    if (output_ == TargetOutput::Logit) {
      values[static_cast<size_t>(n)] = row[target_];
      if (seed) (*seed)[n * k + target_] = 1.0f;
      continue;
    }
    // p = softmax(row) in double; dp_t/dz_j = p_t (delta_tj - p_j).
    const double mx = *std::max_element(row, row + k);
    double z = 0.0;
    for (int64_t j = 0; j < k; ++j) z += (p[static_cast<size_t>(j)] = std::exp(static_cast<double>(row[j]) - mx));
    for (auto& v : p) v /= z;
    const double pt = p[static_cast<size_t>(target_)];
    values[static_cast<size_t>(n)] = pt;
    if (seed)
      for (int64_t j = 0; j < k; ++j)
        (*seed)[n * k + j] = static_cast<float>(pt * ((j == target_ ? 1.0 : 0.0) - p[static_cast<size_t>(j)]));
  }
}

void ModelTarget::throw_if_cancelled() const {
  if (cancelled_ && cancelled_()) throw Cancelled();
}

void ModelTarget::evaluate(const Tensor& x, std::vector<double>& values, Tensor& grads) {
  throw_if_cancelled();
  const Tensor out = model_.forward(x, backend_, Mode::Eval);
  Tensor seed;
  target_values(out, values, &seed);
  grads = model_.backward(seed, backend_);
}

void ModelTarget::evaluate_values(const Tensor& x, std::vector<double>& values) {
  throw_if_cancelled();
  target_values(model_.forward(x, backend_, Mode::Eval), values, nullptr);
}

void FunctionTarget::evaluate(const Tensor& x, std::vector<double>& values, Tensor& grads) {
  const int64_t per = shape_numel(shape_);
  const int64_t batch = x.size() / std::max<int64_t>(per, 1);
  values.resize(static_cast<size_t>(batch));
  grads = Tensor(x.shape());
  for (int64_t n = 0; n < batch; ++n) values[static_cast<size_t>(n)] = fn_(x.data() + n * per, grads.data() + n * per);
}

std::vector<double> model_outputs(Model& model, Backend& backend, const Tensor& input) {
  check_sample(input, model.input_shape(), "the input");
  Tensor x = input;
  x.reshape(model.batch_input_shape(1));
  const Tensor out = model.forward(x, backend, Mode::Eval);
  return std::vector<double>(out.data(), out.data() + out.size());
}

int64_t predicted_class(Model& model, Backend& backend, const Tensor& input) {
  const std::vector<double> out = model_outputs(model, backend, input);
  return std::max_element(out.begin(), out.end()) - out.begin();
}

void evaluate_in_chunks(TargetFunction& f, int64_t count, int64_t batch_size, const FillPoint& fill,
                        const ConsumePoint& consume, bool grads) {
  if (batch_size < 1) throw Error("the batch size must be at least 1, got " + std::to_string(batch_size));
  const Shape shape = f.input_shape();
  const int64_t per = shape_numel(shape);
  std::vector<double> values;
  Tensor g;
  for (int64_t begin = 0; begin < count; begin += batch_size) {
    const int64_t b = std::min(batch_size, count - begin);
    Shape batch_shape{b};
    batch_shape.insert(batch_shape.end(), shape.begin(), shape.end());
    Tensor x(batch_shape);
    for (int64_t i = 0; i < b; ++i) fill(begin + i, x.data() + i * per);
    if (grads) {
      f.evaluate(x, values, g);
    } else {
      f.evaluate_values(x, values);
    }
    if (static_cast<int64_t>(values.size()) != b || (grads && g.size() != x.size()))
      throw Error("the target function returned " + std::to_string(values.size()) + " values for a batch of " +
                  std::to_string(b));
    for (int64_t i = 0; i < b; ++i)
      consume(begin + i, values[static_cast<size_t>(i)], grads ? g.data() + i * per : nullptr);
  }
}

Shape sample_batch_shape(const Shape& shape) {
  Shape s{1};
  s.insert(s.end(), shape.begin(), shape.end());
  return s;
}

void check_sample(const Tensor& t, const Shape& shape, const std::string& what) {
  if (t.shape() != shape && t.shape() != sample_batch_shape(shape))
    throw Error(what + " has shape " + shape_to_string(t.shape()) + " but one input sample has shape " +
                shape_to_string(shape));
  for (int64_t i = 0; i < t.size(); ++i)
    if (!std::isfinite(t[i]))
      throw Error(what + " holds a non-finite value (" + std::to_string(t[i]) + ") at flat index " +
                  std::to_string(i));
}

std::vector<double> softmax(const std::vector<double>& outputs) {
  std::vector<double> p;
  if (outputs.empty()) return p;
  const double mx = *std::max_element(outputs.begin(), outputs.end());
  double z = 0.0;
  for (double v : outputs) z += std::exp(v - mx);
  for (double v : outputs) p.push_back(std::exp(v - mx) / z);
  return p;
}

}  // namespace igscope
