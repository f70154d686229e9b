#include "igscope/train/regression.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "igscope/error.h"
#include "igscope/layers/dense.h"
#include "igscope/random.h"
#include "igscope/train/adam.h"
#include "igscope/train/mse.h"

namespace igscope {

std::vector<RegressionEpoch> train_regressor(Model& model, Backend& backend, const Tensor& x, const std::vector<double>& y,
                                             const RegressionOptions& o,
                                             const std::function<void(const RegressionEpoch&)>& on_epoch) {
  if (o.epochs < 1) throw Error("epochs must be >= 1");
  if (o.batch_size < 1) throw Error("batch size must be >= 1");
  if (!(o.lr > 0.0) || !std::isfinite(o.lr)) throw Error("learning rate must be a positive number");
  if (!(o.weight_decay >= 0.0) || !std::isfinite(o.weight_decay)) throw Error("weight decay must be a number >= 0");
  if (x.rank() != 2 || x.dim(0) != static_cast<int64_t>(y.size()) || y.size() < 2)
    throw Error("training needs rows [N, F] with N >= 2 and N targets, got " + shape_to_string(x.shape()) + " and " +
                std::to_string(y.size()));
  if (model.num_outputs() != 1 || model.num_layers() == 0)
    throw Error("a regressor needs exactly one output, the model has " + std::to_string(model.num_outputs()));
  auto* last = dynamic_cast<Dense*>(&model.layer(model.num_layers() - 1));
  if (!last) throw Error("a regressor must end in a dense layer (its scaling is folded into it)");

  const double y_mean = std::accumulate(y.begin(), y.end(), 0.0) / static_cast<double>(y.size());
  double var = 0.0;
  for (double v : y) var += (v - y_mean) * (v - y_mean);
  const double y_std = std::sqrt(var / static_cast<double>(y.size()));
  if (!(y_std > 0.0)) throw Error("the targets are constant");

  const int64_t n = x.dim(0), f = x.dim(1);
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  Rng rng(o.seed);
  Adam adam(model, o.lr);
  model.seed_dropout(o.seed);
  const int64_t steps_per_epoch = (n + o.batch_size - 1) / o.batch_size;
  const double total_steps = static_cast<double>(steps_per_epoch * o.epochs);
  int64_t step = 0;
  std::vector<RegressionEpoch> history;
  for (int epoch = 1; epoch <= o.epochs; ++epoch) {
    for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[static_cast<size_t>(rng.below(i))]);
    double loss_sum = 0.0;
    for (int64_t b = 0; b < n; b += o.batch_size) {
      const int64_t e = std::min(n, b + o.batch_size);
      Tensor xb({e - b, f}), yb({e - b, 1});
      for (int64_t k = b; k < e; ++k) {
        const int64_t row = order[static_cast<size_t>(k)];
        std::copy(x.data() + row * f, x.data() + (row + 1) * f, xb.data() + (k - b) * f);
        yb[k - b] = static_cast<float>((y[static_cast<size_t>(row)] - y_mean) / y_std);
      }
      const double progress = static_cast<double>(step) / total_steps;
      adam.set_lr(o.lr * (o.final_lr_fraction +
                          (1.0 - o.final_lr_fraction) * 0.5 * (1.0 + std::cos(3.141592653589793 * progress))));
      model.zero_grad();
      const MseResult mse = mean_squared_error(model.forward(xb, backend, Mode::Train), yb);
      if (!std::isfinite(mse.loss)) throw Error("training diverged (loss is not finite) at epoch " + std::to_string(epoch));
      model.backward(mse.doutput, backend, /*accumulate_params=*/true);
      if (o.weight_decay > 0.0)
        for (auto& np : model.named_parameters())
          if (np.param->suffix == "weight")
            for (int64_t i = 0; i < np.param->value.size(); ++i)
              np.param->grad[i] += static_cast<float>(o.weight_decay * np.param->value[i]);
      adam.step();
      ++step;
      loss_sum += mse.loss * static_cast<double>(e - b);
    }
    history.push_back({epoch, loss_sum / static_cast<double>(n)});
    if (on_epoch) on_epoch(history.back());
  }
  // Fold y = y_mean + y_std * out into the last layer.
  Tensor& w = last->weight();
  Tensor& bias = last->bias();
  for (int64_t i = 0; i < w.size(); ++i) w[i] = static_cast<float>(w[i] * y_std);
  bias[0] = static_cast<float>(bias[0] * y_std + y_mean);
  return history;
}

std::vector<double> predict_rows(Model& model, Backend& backend, const Tensor& x) {
  const Tensor out = model.forward(x, backend, Mode::Eval);
  if (out.size() != x.dim(0))
    throw Error("the model gives " + std::to_string(out.size()) + " outputs for " + std::to_string(x.dim(0)) +
                " rows; a regressor has one output");
  return std::vector<double>(out.data(), out.data() + out.size());
}

}  // namespace igscope
