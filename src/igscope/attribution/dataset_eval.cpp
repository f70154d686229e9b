#include "igscope/attribution/dataset_eval.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>

#include "igscope/error.h"
#include "igscope/statistics.h"

namespace igscope {

namespace {

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

Tensor image_sample(const Dataset& data, int64_t i, const Shape& batch_shape) {
  Tensor x(batch_shape);
  const int64_t per = data.images.size() / data.size();
  if (x.size() != per)
    throw Error("data set images " + shape_to_string(data.images.shape()) + " do not fit the model input " +
                shape_to_string(batch_shape));
  std::memcpy(x.data(), data.images.data() + i * per, static_cast<size_t>(per) * sizeof(float));
  return x;
}

Tensor mean_of(const std::vector<Tensor>& ts) {
  Tensor m(ts.front().shape());
  for (const Tensor& t : ts)
    for (int64_t i = 0; i < m.size(); ++i) m[i] += t[i] / static_cast<float>(ts.size());
  return m;
}

// JSON has no NaN or infinity: they travel as null.
nlohmann::json number(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); }
double read_number(const nlohmann::json& j) {
  return j.is_null() ? std::nan("") : j.get<double>();
}

}  // namespace

nlohmann::json AttributionEvalConfig::to_json() const {
  return {{"methods", methods},
          {"baselines", baselines},
          {"target", request.target},
          {"output", target_output_name(request.output)},
          {"steps", request.integration.steps},
          {"quadrature", quadrature_name(request.integration.quadrature)},
          {"seed", request.seed},
          {"curve_steps", curve_steps},
          {"infidelity_samples", infidelity.samples},
          {"infidelity_sigma", infidelity.sigma},
          {"sensitivity_samples", sensitivity.samples},
          {"sensitivity_radius", sensitivity.radius}};
}

Shard parse_shard(const std::string& spec) {
  const size_t slash = spec.find('/');
  auto digits = [](const std::string& s) { return !s.empty() && s.size() < 10 && s.find_first_not_of("0123456789") == std::string::npos; };
  if (slash == std::string::npos || !digits(spec.substr(0, slash)) || !digits(spec.substr(slash + 1)))
    throw Error("--shard must be i/n with 0 <= i < n, got '" + spec + "'");
  Shard s{std::stoll(spec.substr(0, slash)), std::stoll(spec.substr(slash + 1))};
  if (s.count < 1 || s.index >= s.count) throw Error("--shard must be i/n with 0 <= i < n, got '" + spec + "'");
  return s;
}

AttributionEvalResults evaluate_attributions(Model& model, Backend& backend, const Dataset& data,
                                             const AttributionEvalConfig& config, const Shard& shard,
                                             const std::function<void(const EvalProgress&)>& on_progress,
                                             const BaselineSources& sources) {
  if (config.methods.empty() || config.baselines.empty()) throw Error("attribution eval needs methods and baselines");
  if (config.curve_steps < 1) throw Error("curve steps must be >= 1");
  std::vector<Method> methods;
  for (const auto& m : config.methods) methods.push_back(parse_method(m));
  for (const auto& b : config.baselines) parse_baseline_spec(b);  // fail before any work

  AttributionEvalResults out;
  out.config = config.to_json();
  const auto t0 = std::chrono::steady_clock::now();
  double attribution_seconds = 0;
  int64_t total = 0, done = 0;
  for (int64_t i = 0; i < data.size(); ++i) total += shard.contains(i);

  for (int64_t i = 0; i < data.size(); ++i) {
    if (!shard.contains(i)) continue;
    const Tensor x = image_sample(data, i, model.batch_input_shape(1));
    ImageResult img;
    img.index = i;
    img.label = data.labels[static_cast<size_t>(i)];
    for (size_t mi = 0; mi < methods.size(); ++mi) {
      for (const std::string& baseline : config.baselines) {
        AttributionRequest req = config.request;
        req.method = methods[mi];
        req.baseline = baseline;
        req.seed = config.request.seed + static_cast<uint64_t>(i);  // per image: shards agree with one run
        const auto ta = std::chrono::steady_clock::now();
        const Explanation e = explain(model, backend, x, req, sources);
        const double spent = seconds_since(ta);
        attribution_seconds += spent;
        img.predicted = e.predicted;

        PairResult p;
        p.method = config.methods[mi];
        p.baseline = baseline;
        p.f_input = e.attribution.f_input;
        p.f_baseline = e.attribution.f_baseline;
        p.gap = e.attribution.gap;
        p.relative_gap = e.attribution.relative_gap();
        p.evaluations = e.attribution.evaluations;
        p.seconds = spent;

        // The reference the curves move features to: the baseline (the mean of several).
        std::vector<Tensor> refs = e.baselines;
        if (refs.empty()) refs = make_baselines(parse_baseline_spec(baseline), x, req.range, sources, req.seed);
        const Tensor reference = mean_of(refs);
        ModelTarget probability(model, backend, e.target, TargetOutput::Probability);
        p.deletion_auc = deletion_curve(probability, x, reference, e.attribution.values, config.curve_steps).auc;
        p.insertion_auc = insertion_curve(probability, x, reference, e.attribution.values, config.curve_steps).auc;
        ModelTarget attributed(model, backend, e.target, req.output);
        if (config.infidelity.samples > 0) {
          InfidelityOptions io = config.infidelity;
          io.seed = config.infidelity.seed + static_cast<uint64_t>(i);
          p.infidelity = infidelity(attributed, x, e.attribution.values, io);
        } else {
          p.infidelity = std::nan("");
        }
        if (config.sensitivity.samples > 0) {
          SensitivityOptions so = config.sensitivity;
          so.seed = config.sensitivity.seed + static_cast<uint64_t>(i);
          AttributionRequest fixed = req;
          fixed.target = e.target;
          p.sensitivity = max_sensitivity(
              [&](const Tensor& xp) {
                Tensor clipped = xp;
                for (int64_t k = 0; k < clipped.size(); ++k)
                  clipped[k] = static_cast<float>(std::clamp<double>(clipped[k], req.range.lo, req.range.hi));
                return explain(model, backend, clipped, fixed, sources).attribution.values;
              },
              x, e.attribution.values, so);
        } else {
          p.sensitivity = std::nan("");
        }
        img.pairs.push_back(std::move(p));
      }
    }
    out.images.push_back(std::move(img));
    ++done;
    if (on_progress) on_progress({done, total, static_cast<double>(done) / std::max(attribution_seconds, 1e-9)});
  }
  out.seconds = seconds_since(t0);
  return out;
}

nlohmann::json AttributionEvalResults::summary() const {
  int64_t correct = 0;
  double attribution_seconds = 0;
  struct Acc {
    std::vector<double> abs_gap, rel_gap, del, ins, infid, sens;
    int64_t evaluations = 0;
    double seconds = 0;
  };
  std::vector<std::pair<std::string, Acc>> pairs;  // in first-seen order
  for (const ImageResult& img : images) {
    correct += img.predicted == img.label;
    for (const PairResult& p : img.pairs) {
      const std::string key = p.method + " " + p.baseline;
      auto it = std::find_if(pairs.begin(), pairs.end(), [&](const auto& kv) { return kv.first == key; });
      if (it == pairs.end()) it = pairs.insert(pairs.end(), {key, Acc{}});
      Acc& a = it->second;
      if (std::isfinite(p.gap)) {
        a.abs_gap.push_back(std::abs(p.gap));
        a.rel_gap.push_back(p.relative_gap);
      }
      a.del.push_back(p.deletion_auc);
      a.ins.push_back(p.insertion_auc);
      if (std::isfinite(p.infidelity)) a.infid.push_back(p.infidelity);
      if (std::isfinite(p.sensitivity)) a.sens.push_back(p.sensitivity);
      a.evaluations += p.evaluations;
      a.seconds += p.seconds;
      attribution_seconds += p.seconds;
    }
  }
  nlohmann::json rows = nlohmann::json::array();
  for (const auto& [key, a] : pairs) {
    const size_t space = key.find(' ');
    int64_t under = 0;
    for (double r : a.rel_gap) under += r < 0.01;
    rows.push_back({{"method", key.substr(0, space)},
                    {"baseline", key.substr(space + 1)},
                    {"images", a.del.size()},
                    {"mean_abs_gap", number(mean(a.abs_gap))},
                    {"median_relative_gap", number(percentile(a.rel_gap, 50))},
                    {"p95_relative_gap", number(percentile(a.rel_gap, 95))},
                    {"fraction_gap_under_1pct",
                     number(a.rel_gap.empty() ? std::nan("") : static_cast<double>(under) / static_cast<double>(a.rel_gap.size()))},
                    {"deletion_auc", number(mean(a.del))},
                    {"insertion_auc", number(mean(a.ins))},
                    {"infidelity", number(mean(a.infid))},
                    {"max_sensitivity", number(mean(a.sens))},
                    {"attribution_images_per_second", number(static_cast<double>(a.del.size()) / a.seconds)},
                    {"evaluations_per_image", a.del.empty() ? 0.0 : static_cast<double>(a.evaluations) / static_cast<double>(a.del.size())}});
  }
  const double n = static_cast<double>(images.size());
  return {{"images", images.size()},
          {"accuracy", number(images.empty() ? std::nan("") : static_cast<double>(correct) / n)},
          {"attribution_seconds", attribution_seconds},
          {"attribution_images_per_second", number(n / attribution_seconds)},
          {"seconds", seconds},
          {"images_per_second", number(n / seconds)},
          {"pairs", rows}};
}

nlohmann::json AttributionEvalResults::to_json() const {
  nlohmann::json recs = nlohmann::json::array();
  for (const ImageResult& img : images) {
    nlohmann::json ps = nlohmann::json::array();
    for (const PairResult& p : img.pairs)
      ps.push_back({{"method", p.method}, {"baseline", p.baseline}, {"f_input", number(p.f_input)},
                    {"f_baseline", number(p.f_baseline)}, {"gap", number(p.gap)}, {"relative_gap", number(p.relative_gap)},
                    {"deletion_auc", number(p.deletion_auc)}, {"insertion_auc", number(p.insertion_auc)},
                    {"infidelity", number(p.infidelity)}, {"max_sensitivity", number(p.sensitivity)},
                    {"evaluations", p.evaluations}, {"seconds", p.seconds}});
    recs.push_back({{"index", img.index}, {"label", img.label}, {"predicted", img.predicted}, {"pairs", ps}});
  }
  return {{"config", config}, {"seconds", seconds}, {"summary", summary()}, {"images", recs}};
}

AttributionEvalResults AttributionEvalResults::from_json(const nlohmann::json& j) {
  try {
    AttributionEvalResults r;
    r.config = j.at("config");
    r.seconds = j.at("seconds").get<double>();
    for (const auto& im : j.at("images")) {
      ImageResult img;
      img.index = im.at("index").get<int64_t>();
      img.label = im.at("label").get<int>();
      img.predicted = im.at("predicted").get<int64_t>();
      for (const auto& p : im.at("pairs")) {
        PairResult pr;
        pr.method = p.at("method").get<std::string>();
        pr.baseline = p.at("baseline").get<std::string>();
        pr.f_input = read_number(p.at("f_input"));
        pr.f_baseline = read_number(p.at("f_baseline"));
        pr.gap = read_number(p.at("gap"));
        pr.relative_gap = read_number(p.at("relative_gap"));
        pr.deletion_auc = read_number(p.at("deletion_auc"));
        pr.insertion_auc = read_number(p.at("insertion_auc"));
        pr.infidelity = read_number(p.at("infidelity"));
        pr.sensitivity = read_number(p.at("max_sensitivity"));
        pr.evaluations = p.at("evaluations").get<int64_t>();
        pr.seconds = p.at("seconds").get<double>();
        img.pairs.push_back(std::move(pr));
      }
      r.images.push_back(std::move(img));
    }
    return r;
  } catch (const nlohmann::json::exception& e) {
    throw Error(std::string("not an igscope attribution-eval result: ") + e.what());
  }
}

AttributionEvalResults merge_attribution_results(const std::vector<AttributionEvalResults>& parts) {
  if (parts.empty()) throw Error("nothing to merge");
  AttributionEvalResults merged;
  merged.config = parts.front().config;
  for (const auto& p : parts) {
    if (p.config != merged.config) throw Error("cannot merge results of different configurations");
    merged.images.insert(merged.images.end(), p.images.begin(), p.images.end());
    merged.seconds += p.seconds;
  }
  std::sort(merged.images.begin(), merged.images.end(),
            [](const ImageResult& a, const ImageResult& b) { return a.index < b.index; });
  for (size_t i = 1; i < merged.images.size(); ++i)
    if (merged.images[i].index == merged.images[i - 1].index)
      throw Error("image " + std::to_string(merged.images[i].index) + " appears in more than one part");
  return merged;
}

}  // namespace igscope
