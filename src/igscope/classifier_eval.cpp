#include "igscope/classifier_eval.h"

#include <cstring>

#include "igscope/error.h"

namespace igscope {

Tensor dataset_batch(const Model& model, const Dataset& data, int64_t begin, int64_t n) {
  const int64_t per = data.size() > 0 ? data.images.size() / data.size() : 0;
  Tensor x(model.batch_input_shape(n));
  if (x.size() != n * per || begin < 0 || begin + n > data.size())
    throw Error("data set images " + shape_to_string(data.images.shape()) + " do not fit the model input " +
                shape_to_string(model.batch_input_shape(1)));
  std::memcpy(x.data(), data.images.data() + begin * per, static_cast<size_t>(n * per) * sizeof(float));
  return x;
}

std::vector<int> argmax_rows(const Tensor& logits) {
  const int64_t n = logits.dim(0), k = logits.dim(1);
  std::vector<int> out(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    int best = 0;
    for (int64_t j = 1; j < k; ++j)
      if (logits[i * k + j] > logits[i * k + best]) best = static_cast<int>(j);
    out[static_cast<size_t>(i)] = best;
  }
  return out;
}

ClassificationReport evaluate_classifier(Model& model, Backend& backend, const Dataset& data, int64_t batch_size) {
  if (data.size() == 0) throw Error("cannot evaluate on an empty data set");
  const int64_t k = model.num_outputs();
  ClassificationReport r;
  r.class_names = model.class_names().empty() ? data.class_names : model.class_names();
  r.confusion.assign(static_cast<size_t>(k), std::vector<int64_t>(static_cast<size_t>(k), 0));
  for (int64_t b = 0; b < data.size(); b += batch_size) {
    const Tensor x = dataset_batch(model, data, b, std::min(batch_size, data.size() - b));
    for (int p : argmax_rows(model.forward(x, backend, Mode::Eval))) r.predictions.push_back(p);
  }
  for (int64_t i = 0; i < data.size(); ++i) {
    const int truth = data.labels[static_cast<size_t>(i)], pred = r.predictions[static_cast<size_t>(i)];
    if (truth < 0 || truth >= k) throw Error("label " + std::to_string(truth) + " outside the model's classes");
    ++r.confusion[static_cast<size_t>(truth)][static_cast<size_t>(pred)];
    r.correct += truth == pred;
  }
  r.total = data.size();
  r.accuracy = static_cast<double>(r.correct) / static_cast<double>(r.total);
  for (int64_t c = 0; c < k; ++c) {
    int64_t predicted_c = 0, true_c = 0;
    for (int64_t j = 0; j < k; ++j) {
      predicted_c += r.confusion[static_cast<size_t>(j)][static_cast<size_t>(c)];
      true_c += r.confusion[static_cast<size_t>(c)][static_cast<size_t>(j)];
    }
    const double tp = static_cast<double>(r.confusion[static_cast<size_t>(c)][static_cast<size_t>(c)]);
    r.precision.push_back(predicted_c ? tp / static_cast<double>(predicted_c) : 0.0);
    r.recall.push_back(true_c ? tp / static_cast<double>(true_c) : 0.0);
  }
  return r;
}

nlohmann::json ClassificationReport::to_json() const {
  nlohmann::json classes = nlohmann::json::array();
  for (size_t c = 0; c < precision.size(); ++c)
    classes.push_back({{"class", c < class_names.size() ? class_names[c] : std::to_string(c)},
                       {"precision", precision[c]},
                       {"recall", recall[c]}});
  return {{"accuracy", accuracy}, {"correct", correct}, {"total", total}, {"classes", classes}, {"confusion", confusion}};
}

}  // namespace igscope
