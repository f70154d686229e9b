#include "igscope/attribution/conductance.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>

#include "igscope/attribution/path.h"
#include "igscope/error.h"

namespace igscope {

namespace {

struct Setup {
  Tensor x;                   // [1, input shape...]
  std::vector<Tensor> bases;  // each [1, input shape...]
  QuadratureRule rule;
  size_t layer = 0;
};

Setup prepare(Model& model, const Tensor& input, const std::vector<Tensor>& baselines, const ConductanceRequest& r) {
  check_ig_options(r.integration);
  if (baselines.empty()) throw Error("conductance needs at least one baseline");
  if (r.layer >= model.num_layers())
    throw Error("layer " + std::to_string(r.layer) + " is out of range: the model has " +
                std::to_string(model.num_layers()) + " layers (0.." + std::to_string(model.num_layers() - 1) + ")");
  Setup s;
  check_sample(input, model.input_shape(), "the input");
  s.x = input;
  s.x.reshape(model.batch_input_shape(1));
  for (size_t k = 0; k < baselines.size(); ++k) {
    check_sample(baselines[k], model.input_shape(),
                 baselines.size() == 1 ? "the baseline" : "baseline " + std::to_string(k));
    Tensor b = baselines[k];
    b.reshape(model.batch_input_shape(1));
    s.bases.push_back(std::move(b));
  }
  s.rule = quadrature_rule(r.integration.quadrature, r.integration.steps);
  s.layer = r.layer;
  return s;
}

// F at the input and at every baseline (forward passes only).
void endpoint_values(Model& model, Backend& backend, const Setup& s, const ModelTarget& f, double& f_input,
                     double& f_baseline) {
  const int64_t per = s.x.size();
  Tensor batch(model.batch_input_shape(static_cast<int64_t>(s.bases.size()) + 1));
  std::copy(s.x.data(), s.x.data() + per, batch.data());
  for (size_t k = 0; k < s.bases.size(); ++k)
    std::copy(s.bases[k].data(), s.bases[k].data() + per, batch.data() + static_cast<int64_t>(k + 1) * per);
  std::vector<double> values;
  f.target_values(model.forward(batch, backend, Mode::Eval), values, nullptr);
  f_input = values[0];
  f_baseline = 0.0;
  for (size_t k = 1; k < values.size(); ++k) f_baseline += values[k];
  f_baseline /= static_cast<double>(s.bases.size());
}

// Walks every baseline's path in chunks. For each chunk: the forward pass,
// the tangent dy/dalpha of node l's output y (through node l's ancestors),
// and the backward pass down to node l for dF/dy. Calls on_chunk(baseline index, weights, y_grad, tangent)
// with y_grad = dF/dy and tangent = dy/dalpha, [b, unit shape...], and
// per-point quadrature weights (already divided by the number of baselines).
void throw_if_cancelled(const ConductanceRequest& r) {
  if (r.cancelled && r.cancelled()) throw Cancelled();
}

template <typename OnChunk>
int64_t walk_paths(Model& model, Backend& backend, const Setup& s, const ModelTarget& f, const ConductanceRequest& r,
                   bool need_tangent, OnChunk on_chunk) {
  const int64_t batch_size = r.integration.batch_size;
  const size_t l = s.layer;
  const int64_t per = s.x.size();
  const int64_t count = static_cast<int64_t>(s.rule.size());
  const double share = 1.0 / static_cast<double>(s.bases.size());
  int64_t evaluations = 0;
  std::vector<double> velocity(static_cast<size_t>(per)), values;
  for (size_t k_base = 0; k_base < s.bases.size(); ++k_base) {
    const StraightPath path(s.bases[k_base], s.x);
    path.velocity(0.0, velocity.data());
    for (int64_t begin = 0; begin < count; begin += batch_size) {
      throw_if_cancelled(r);
      const int64_t b = std::min(batch_size, count - begin);
      Tensor pts(model.batch_input_shape(b)), dirs;
      if (need_tangent) dirs = Tensor(model.batch_input_shape(b));
      std::vector<double> weights(static_cast<size_t>(b));
      for (int64_t i = 0; i < b; ++i) {
        const size_t k = static_cast<size_t>(begin + i);
        path.point(s.rule.nodes[k], pts.data() + i * per);
        weights[static_cast<size_t>(i)] = s.rule.weights[k] * share;
        if (need_tangent)
          for (int64_t j = 0; j < per; ++j) dirs[i * per + j] = static_cast<float>(velocity[static_cast<size_t>(j)]);
      }
      const Tensor out = model.forward(pts, backend);
      Tensor tangent;
      if (need_tangent) tangent = model.tangent_to(dirs, backend, l);
      Tensor seed;
      f.target_values(out, values, &seed);
      const Tensor y_grad = model.backward_to(seed, backend, l);
      on_chunk(k_base, weights, y_grad, tangent);
      evaluations += b;
    }
  }
  return evaluations;
}

}  // namespace

double LayerConductance::relative_gap() const {
  const double delta = std::abs(f_input - f_baseline);
  return delta > 0.0 ? std::abs(gap) / delta : (gap == 0.0 ? 0.0 : std::numeric_limits<double>::infinity());
}

LayerConductance layer_conductance(Model& model, Backend& backend, const Tensor& input,
                                   const std::vector<Tensor>& baselines, const ConductanceRequest& r) {
  const Setup s = prepare(model, input, baselines, r);
  const ModelTarget f(model, backend, r.target, r.output);
  LayerConductance c;
  c.layer = s.layer;
  c.unit_shape = model.layer_output_shape(s.layer);
  const int64_t units = shape_numel(c.unit_shape);
  std::vector<double> accum(static_cast<size_t>(units), 0.0);
  c.evaluations = walk_paths(model, backend, s, f, r, true,
                             [&](size_t, const std::vector<double>& w, const Tensor& g, const Tensor& t) {
                               for (size_t i = 0; i < w.size(); ++i) {
                                 const float* gi = g.data() + static_cast<int64_t>(i) * units;
                                 const float* ti = t.data() + static_cast<int64_t>(i) * units;
                                 for (int64_t j = 0; j < units; ++j)
                                   accum[static_cast<size_t>(j)] +=
                                       w[i] * static_cast<double>(gi[j]) * static_cast<double>(ti[j]);
                               }
                             });
  throw_if_cancelled(r);
  endpoint_values(model, backend, s, f, c.f_input, c.f_baseline);
  c.evaluations += static_cast<int64_t>(s.bases.size()) + 1;
  c.units = Tensor(c.unit_shape);
  const int64_t channels = c.unit_shape.size() == 3 ? c.unit_shape[2] : units;
  c.channels.assign(static_cast<size_t>(channels), 0.0);
  for (int64_t j = 0; j < units; ++j) {
    const double v = accum[static_cast<size_t>(j)];
    c.units[j] = static_cast<float>(v);
    c.channels[static_cast<size_t>(j % channels)] += v;
    c.sum += v;
  }
  c.gap = c.sum - (c.f_input - c.f_baseline);
  c.cut = model.is_cut(s.layer);
  return c;
}

NeuronConductance neuron_conductance(Model& model, Backend& backend, const Tensor& input,
                                     const std::vector<Tensor>& baselines, const ConductanceRequest& r, int64_t unit) {
  const Setup s = prepare(model, input, baselines, r);
  const int64_t units = shape_numel(model.layer_output_shape(s.layer));
  if (unit < 0 || unit >= units)
    throw Error("unit " + std::to_string(unit) + " is out of range: layer " + std::to_string(s.layer) + " has " +
                std::to_string(units) + " units per sample (0.." + std::to_string(units - 1) + ")");
  const ModelTarget f(model, backend, r.target, r.output);
  const int64_t per = s.x.size();
  NeuronConductance c;
  c.layer = s.layer;
  c.unit = unit;
  // Per baseline: sum_k w_k dF/dy_j dy_j/dx at the path points; times (x - x') below.
  std::vector<std::vector<double>> integral(s.bases.size(), std::vector<double>(static_cast<size_t>(per), 0.0));
  c.evaluations = walk_paths(model, backend, s, f, r, false,
                             [&](size_t k, const std::vector<double>& w, const Tensor& g, const Tensor&) {
                               Tensor seed(g.shape());
                               for (size_t i = 0; i < w.size(); ++i) {
                                 const int64_t at = static_cast<int64_t>(i) * units + unit;
                                 seed[at] = static_cast<float>(w[i] * static_cast<double>(g[at]));
                               }
                               const Tensor gx = model.backward_from(seed, backend, s.layer);
                               for (size_t i = 0; i < w.size(); ++i)
                                 for (int64_t j = 0; j < per; ++j)
                                   integral[k][static_cast<size_t>(j)] += gx[static_cast<int64_t>(i) * per + j];
                             });
  throw_if_cancelled(r);
  endpoint_values(model, backend, s, f, c.f_input, c.f_baseline);
  c.evaluations += static_cast<int64_t>(s.bases.size()) + 1;
  c.attributions = Tensor(s.x.shape());
  for (int64_t j = 0; j < per; ++j) {
    double v = 0.0;
    for (size_t k = 0; k < s.bases.size(); ++k)
      v += integral[k][static_cast<size_t>(j)] * (static_cast<double>(s.x[j]) - static_cast<double>(s.bases[k][j]));
    c.attributions[j] = static_cast<float>(v);
    c.conductance += v;
  }
  return c;
}

int64_t parse_unit(const std::string& text, const Shape& unit_shape) {
  std::vector<int64_t> coords;
  std::stringstream in(text);
  std::string part;
  const auto bad = [&](const std::string& why) {
    return Error("unit '" + text + "': " + why + " (the layer's output is " + shape_to_string(unit_shape) +
                 "; give one flat index or " + std::to_string(unit_shape.size()) + " comma-separated coordinates)");
  };
  while (std::getline(in, part, ',')) {
    if (part.empty() || part.size() > 12 || part.find_first_not_of("0123456789") != std::string::npos)
      throw bad("'" + part + "' is not a non-negative integer");
    coords.push_back(std::stoll(part));
  }
  if (coords.empty()) throw bad("empty");
  const int64_t total = shape_numel(unit_shape);
  if (coords.size() == 1) {
    if (coords[0] >= total) throw bad("index out of range (0.." + std::to_string(total - 1) + ")");
    return coords[0];
  }
  if (coords.size() != unit_shape.size()) throw bad("wrong number of coordinates");
  int64_t flat = 0;
  for (size_t d = 0; d < coords.size(); ++d) {
    if (coords[d] >= unit_shape[d])
      throw bad("coordinate " + std::to_string(d) + " is " + std::to_string(coords[d]) + ", past " +
                std::to_string(unit_shape[d] - 1));
    flat = flat * unit_shape[d] + coords[d];
  }
  return flat;
}

}  // namespace igscope
