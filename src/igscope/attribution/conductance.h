#pragma once
// Conductance (Dhamdhere, Yan & Sundararajan 2018, "How important is a
// neuron?"): how much of Integrated Gradients flows through a hidden unit.
// For a hidden unit y_j (an output value of node l) on the straight path
// gamma(alpha) = x' + alpha (x - x'):
//
//   Cond_j = integral_0^1 dF/dy_j(gamma(alpha)) * d y_j(gamma(alpha))/dalpha dalpha
//
// and neuron conductance splits it over the input features:
//
//   NeuronCond_{j,i} = (x_i - x'_i) integral_0^1 dF/dy_j * dy_j/dx_i dalpha,
//   sum_i NeuronCond_{j,i} = Cond_j.
//
// Where node l is a cut of the graph (every path from the input to F
// crosses it: Model::is_cut), the chain rule gives sum_j dF/dy_j dy_j/dalpha
// = dF/dalpha at every alpha, so the node's conductances sum to F(x) - F(x')
// (completeness at the node), and with the same quadrature rule their sum
// equals the sum of the IG attributions. At a node that paths bypass (the
// inside of a residual block), dF/dy_j holds the other paths fixed and the
// sum is only the share of F's change that flows through the node.
//
// Computed with the hand-written passes: the forward pass, the forward
// tangent dy/dalpha = J_y (x - x') through node l's ancestors, the backward
// pass down to node l for dF/dy; neuron conductance runs the backward pass
// from dF/dy_j at unit j alone through node l's ancestors. Path points go
// through in chunks of batch_size, with the quadrature rules of IG.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "igscope/attribution/ig.h"
#include "igscope/attribution/target.h"
#include "igscope/backend/backend.h"
#include "igscope/model.h"

namespace igscope {

struct ConductanceRequest {
  size_t layer = 0;   // the node whose outputs are the hidden units (Model::find_node)
  int64_t target = 0; // the class whose output F is
  TargetOutput output = TargetOutput::Logit;
  IGOptions integration;  // quadrature, steps, batch size
  // Polled before every chunk of path points (and the endpoint pass); when
  // it returns true the computation throws Cancelled. Empty: never.
  std::function<bool()> cancelled;
};

struct LayerConductance {
  size_t layer = 0;
  Shape unit_shape;                 // the layer's output for one sample: [H, W, C] or [F]
  Tensor units;                     // conductance of every unit, in unit_shape
  std::vector<double> channels;     // per channel: summed over positions ([H, W, C]), or per unit ([F])
  double f_input = 0.0, f_baseline = 0.0;  // F(x), mean F(x') over the baselines
  double sum = 0.0;                 // sum of all units' conductances
  double gap = 0.0;                 // sum - (F(x) - F(x')): the completeness gap at the node
  bool cut = true;                  // whether completeness applies (Model::is_cut): else gap is no error
  int64_t evaluations = 0;          // path points evaluated (forward, tangent and backward passes)
  double relative_gap() const;
};

struct NeuronConductance {
  size_t layer = 0;
  int64_t unit = 0;                // flat index into the layer's output for one sample
  Tensor attributions;             // per input feature, [1, input shape...]
  double conductance = 0.0;        // sum of the attributions: the unit's conductance
  double f_input = 0.0, f_baseline = 0.0;
  int64_t evaluations = 0;
};

// With several baselines, every result is the mean over the baselines.
// Throws Error for a layer or unit out of range, a target out of range, bad
// steps or batch size, or an input or baseline that is not one finite sample
// of the model's input shape, or a layer without a forward tangent; throws
// Cancelled when request.cancelled says so.
LayerConductance layer_conductance(Model& model, Backend& backend, const Tensor& input,
                                   const std::vector<Tensor>& baselines, const ConductanceRequest& request);
NeuronConductance neuron_conductance(Model& model, Backend& backend, const Tensor& input,
                                     const std::vector<Tensor>& baselines, const ConductanceRequest& request,
                                     int64_t unit);

// A unit's flat index from its coordinates in the layer's output shape
// ("h,w,c" for [H, W, C], "f" for [F]), or from one flat index ("1234").
// Throws Error naming the shape when the text does not fit it.
int64_t parse_unit(const std::string& text, const Shape& unit_shape);

}  // namespace igscope
