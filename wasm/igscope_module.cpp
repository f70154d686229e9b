// The embind layer the web page's worker drives: load a model from bytes
// (an igscope model file, or an ONNX model converted by the core's importer),
// predict, explain (any method, baseline and quadrature the core has),
// cancel a computation in flight, layer conductance of a hidden layer, and
// IG of a tabular regressor (a second model slot) on raw feature rows. No model or attribution logic lives here
// or in JavaScript: requests and results are the core's own JSON
// (attribution/explanation_json.h). Every call returns a JSON string; a
// failure is {"error": "..."} with the core's message, a cancelled call
// {"cancelled": true}, so nothing the user does can abort the module.
#include <emscripten/bind.h>
#include <emscripten/val.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "igscope/attribution/conductance.h"
#include "igscope/attribution/explain.h"
#include "igscope/attribution/explanation_json.h"
#include "igscope/backend/simd.h"
#include "igscope/error.h"
#include "igscope/import/onnx_import.h"
#include "igscope/model.h"
#include "igscope/tabular_rows.h"

namespace {

using emscripten::val;
using nlohmann::json;
using igscope::Error;
using igscope::Tensor;

std::string error_json(const std::string& message) { return json{{"error", message}}.dump(); }

class Engine {
 public:
  // threads: 0 for one per core (at most the build's pre-started pool).
  explicit Engine(int threads) : backend_(std::make_unique<igscope::SimdBackend>(threads)) {}

  // {"threaded", "threads", "simd", "isa", "backend"}: what this build runs
  // ("isa": the simd kernels' instruction set, with relaxed SIMD or without).
  std::string build_info() const {
#ifdef __EMSCRIPTEN_PTHREADS__
    const bool threaded = true;
#else
    const bool threaded = false;
#endif
    return json{{"threaded", threaded},
                {"threads", backend_->threads()},
                {"simd", true},
                {"isa", igscope::SimdBackend::isa()},
                {"backend", backend_->name()},
                {"cores", std::thread::hardware_concurrency()}}
        .dump();
  }

  // The model file's bytes (.safetensors). On success: its architecture
  // JSON (name, input, classes, nodes) with "parameters" and "outputs". A bad
  // file leaves the current model.
  std::string load_model(const std::string& bytes) {
    return guarded([&] {
      return take_model(igscope::load_model_bytes(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
    });
  }

  // An ONNX model's bytes and the import options the user gave, as JSON:
  // {"inputRange": "0:1" | "0:255", "mean": "R,G,B", "std": "R,G,B",
  // "name": "...", "classes": [...]}, every field optional. The same
  // conversion as `igscope import`; on success, the model is loaded and its
  // architecture returned as load_model does. Weights in a side file
  // (external data) are refused: the page has only the one file.
  std::string import_onnx_model(const std::string& bytes, const std::string& options_json) {
    return guarded([&] {
      const json o = options_json.empty() ? json::object() : json::parse(options_json);
      if (!o.is_object()) throw Error("the ONNX import options must be a JSON object");
      auto text = [&](const char* key, const char* fallback) {
        if (!o.contains(key) || o[key].is_null()) return std::string(fallback);
        if (!o[key].is_string()) throw Error(std::string("the ONNX import option '") + key + "' must be a string");
        return o[key].get<std::string>();
      };
      igscope::OnnxImportOptions options =
          igscope::parse_onnx_import_options(text("inputRange", "0:1"), text("mean", ""), text("std", ""));
      options.name = text("name", "");
      if (o.contains("classes") && !o["classes"].is_null()) options.classes = o["classes"].get<std::vector<std::string>>();
      return take_model(igscope::import_onnx(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), options));
    });
  }

  // Model outputs, probabilities and the predicted class for one input.
  std::string predict(const val& pixels) {
    return guarded([&] {
      const Tensor x = input_tensor(pixels, "the input");
      const std::vector<double> outputs = igscope::model_outputs(*model_, *backend_, x);
      const auto predicted = std::max_element(outputs.begin(), outputs.end()) - outputs.begin();
      return json{{"outputs", outputs}, {"probabilities", igscope::softmax(outputs)}, {"predicted", predicted}};
    });
  }

  // A custom baseline image (the "image" baseline kind); null clears it.
  std::string set_baseline_image(const val& pixels) {
    return guarded([&] {
      if (pixels.isNull() || pixels.isUndefined()) {
        baseline_image_.reset();
      } else {
        baseline_image_ = input_tensor(pixels, "the custom baseline image");
      }
      return json{{"ok", true}};
    });
  }

  // Images [count, ...input shape] for the "mean" and "train:N" baselines.
  std::string set_dataset(const val& pixels) {
    return guarded([&] {
      require_model();
      const std::vector<float> v = emscripten::convertJSArrayToNumberVector<float>(pixels);
      const int64_t per = igscope::shape_numel(model_->input_shape());
      if (v.empty() || static_cast<int64_t>(v.size()) % per != 0)
        throw Error("the data set must hold a whole number of " + std::to_string(per) + "-value images, got " +
                    std::to_string(v.size()) + " values");
      igscope::Shape shape = model_->input_shape();
      shape.insert(shape.begin(), static_cast<int64_t>(v.size()) / per);
      dataset_ = Tensor(shape);
      std::copy(v.begin(), v.end(), dataset_->data());
      return json{{"images", shape[0]}};
    });
  }

  // request: the core's request JSON. should_stop: a JavaScript function
  // polled before every batch of model evaluations; when it returns true the
  // call ends with {"cancelled": true}.
  std::string explain(const val& pixels, const std::string& request, val should_stop) {
    return guarded([&] {
      const Tensor x = input_tensor(pixels, "the input");
      json parsed = json::parse(request, nullptr, false);
      if (parsed.is_discarded()) throw Error("request: not valid JSON");
      igscope::AttributionRequest req = igscope::request_from_json(parsed);
      if (should_stop.typeOf().as<std::string>() == "function")
        req.cancelled = [&should_stop] { return should_stop().as<bool>(); };
      igscope::BaselineSources sources;
      if (baseline_image_) sources.image = &*baseline_image_;
      if (dataset_) sources.dataset = &*dataset_;
      const auto t0 = std::chrono::steady_clock::now();
      const igscope::Explanation e = igscope::explain(*model_, *backend_, x, req, sources);
      const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      json j = igscope::explanation_json(e, req, *model_);
      j["milliseconds"] = ms;
      j["backend"] = backend_->name();
      return j;
    });
  }

  // The current model's nodes: [{index, id, inputs (node ids, "input" for
  // the model's input), cut (whether completeness holds there), description,
  // output_shape (per sample), parameters, multiply_adds}], for choosing the
  // node of conductance() and drawing the graph.
  std::string layers() {
    return guarded([&] {
      require_model();
      json list = json::array();
      const auto costs = model_->layer_costs();
      for (size_t i = 0; i < costs.size(); ++i)
        list.push_back({{"index", i},
                        {"id", costs[i].id},
                        {"inputs", costs[i].inputs},
                        {"cut", model_->is_cut(i)},
                        {"description", costs[i].description},
                        {"output_shape", costs[i].output_shape},
                        {"parameters", costs[i].parameters},
                        {"multiply_adds", costs[i].multiply_adds}});
      return json{{"layers", list}};
    });
  }

  // Layer conductance of the current model for one input. request: the
  // core's request JSON (target, output, baseline, quadrature, steps,
  // batch_size, seed) plus "layer", the layer's index. should_stop is polled
  // before every chunk of path points (ConductanceRequest::cancelled); when
  // it returns true the call ends with {"cancelled": true}. Result: the
  // core's conductance JSON (attribution/explanation_json.h: layer,
  // layer_description, unit_shape, target, target_name, baseline, steps,
  // channels, units, f_input, f_baseline, sum, gap, relative_gap,
  // evaluations, ...) plus milliseconds and backend.
  std::string conductance(const val& pixels, const std::string& request, val should_stop) {
    return guarded([&] {
      const Tensor x = input_tensor(pixels, "the input");
      json parsed = json::parse(request, nullptr, false);
      if (parsed.is_discarded() || !parsed.is_object()) throw Error("request: not a JSON object");
      require_model();
      if (!parsed.contains("layer") || !(parsed["layer"].is_number_unsigned() || parsed["layer"].is_string()))
        throw Error("request: 'layer' must be a node index or id");
      const size_t layer = model_->find_node(parsed["layer"].is_string() ? parsed["layer"].get<std::string>()
                                                                          : std::to_string(parsed["layer"].get<uint64_t>()));
      parsed.erase("layer");
      const igscope::AttributionRequest req = igscope::request_from_json(parsed);
      igscope::BaselineSources sources;
      if (baseline_image_) sources.image = &*baseline_image_;
      if (dataset_) sources.dataset = &*dataset_;
      const auto t0 = std::chrono::steady_clock::now();
      const std::vector<Tensor> baselines =
          igscope::make_baselines(igscope::parse_baseline_spec(req.baseline), x, req.range, sources, req.seed);
      igscope::ConductanceRequest creq;
      creq.layer = layer;
      creq.target = req.target < 0 ? igscope::predicted_class(*model_, *backend_, x) : req.target;
      creq.output = req.output;
      creq.integration = req.integration;
      if (should_stop.typeOf().as<std::string>() == "function")
        creq.cancelled = [&should_stop] { return should_stop().as<bool>(); };
      const igscope::LayerConductance c = igscope::layer_conductance(*model_, *backend_, x, baselines, creq);
      const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      json j = igscope::conductance_json(c, creq, req.baseline, *model_);
      j["milliseconds"] = ms;
      j["backend"] = backend_->name();
      return j;
    });
  }

  // A tabular regressor's file (.safetensors with "tabular" information),
  // held next to the image model. On success: {name, parameters, dataset,
  // target, features, mean, std}.
  std::string load_tabular_model(const std::string& bytes) {
    return guarded([&] {
      igscope::Model m = igscope::load_model_bytes(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
      if (!m.tabular()) throw Error("model '" + m.name() + "' has no tabular information (it is not a tabular model)");
      tabular_model_ = std::make_unique<igscope::Model>(std::move(m));
      tabular_dataset_.reset();
      const igscope::TabularInfo& info = *tabular_model_->tabular();
      return json{{"name", tabular_model_->name()}, {"parameters", tabular_model_->parameter_count()},
                  {"dataset", info.dataset},        {"target", info.target},
                  {"features", info.features},      {"mean", info.mean},
                  {"std", info.std}};
    });
  }

  // The tabular model's training rows in raw units, flat [N * F]: the core
  // standardises them; the mean and median baselines and the value range
  // come from them.
  std::string set_tabular_rows(const val& values) {
    return guarded([&] {
      require_tabular();
      const igscope::TabularInfo& info = *tabular_model_->tabular();
      const Tensor raw = igscope::raw_rows(info, emscripten::convertJSArrayToNumberVector<float>(values));
      Tensor rows = info.standardize(raw);
      tabular_range_ = igscope::standardized_range(rows);
      tabular_dataset_ = std::move(rows);
      return json{{"rows", raw.dim(0)}};
    });
  }

  // One raw feature row of the tabular model: the core standardises it and
  // explains the model's output. request: the core's request JSON (baseline
  // mean, median or constant:0 and the others, method, steps, quadrature).
  // Result: the core's explanation JSON plus features, raw (the row),
  // standardized (the input), baseline_raw (the mean baseline per feature in
  // raw units), prediction and milliseconds.
  std::string explain_tabular(const val& raw, const std::string& request, val should_stop) {
    return guarded([&] {
      require_tabular();
      igscope::Model& model = *tabular_model_;
      const igscope::TabularInfo& info = *model.tabular();
      const Tensor row = igscope::raw_rows(info, emscripten::convertJSArrayToNumberVector<float>(raw));
      if (row.dim(0) != 1) throw Error("the tabular input must be one row, got " + std::to_string(row.dim(0)));
      const Tensor standardized = info.standardize(row);
      Tensor x(model.batch_input_shape(1));
      std::copy(standardized.data(), standardized.data() + standardized.size(), x.data());
      json parsed = json::parse(request, nullptr, false);
      if (parsed.is_discarded()) throw Error("request: not valid JSON");
      igscope::AttributionRequest req = igscope::request_from_json(parsed);
      if (tabular_dataset_) req.range = *tabular_range_;
      if (should_stop.typeOf().as<std::string>() == "function")
        req.cancelled = [&should_stop] { return should_stop().as<bool>(); };
      igscope::BaselineSources sources;
      if (tabular_dataset_) sources.dataset = &*tabular_dataset_;
      const auto t0 = std::chrono::steady_clock::now();
      const igscope::Explanation e = igscope::explain(model, *backend_, x, req, sources);
      const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      json j = igscope::explanation_json(e, req, model);
      const int64_t f = static_cast<int64_t>(info.features.size());
      if (!e.baselines.empty()) {
        Tensor mean_baseline({1, f});
        for (const Tensor& b : e.baselines)
          for (int64_t i = 0; i < f; ++i) mean_baseline[i] += b[i] / static_cast<float>(e.baselines.size());
        const Tensor b = igscope::unstandardize(info, mean_baseline);
        j["baseline_raw"] = std::vector<float>(b.data(), b.data() + b.size());
      }
      j["features"] = info.features;
      j["raw"] = std::vector<float>(row.data(), row.data() + row.size());
      j["standardized"] = std::vector<float>(x.data(), x.data() + x.size());
      j["prediction"] = e.outputs.at(0);
      j["milliseconds"] = ms;
      j["backend"] = backend_->name();
      return j;
    });
  }

 private:
  template <typename F>
  std::string guarded(F&& f) {
    try {
      return f().dump();
    } catch (const igscope::Cancelled&) {
      return json{{"cancelled", true}}.dump();
    } catch (const std::exception& e) {
      return error_json(e.what());
    }
  }

  // Makes m the current model; its architecture JSON with the parameter
  // and output counts.
  json take_model(igscope::Model m) {
    model_ = std::make_unique<igscope::Model>(std::move(m));
    json j = model_->architecture();
    j["parameters"] = model_->parameter_count();
    j["outputs"] = model_->num_outputs();
    return j;
  }

  void require_model() const {
    if (!model_) throw Error("no model loaded");
  }

  void require_tabular() const {
    if (!tabular_model_) throw Error("no tabular model loaded");
  }

  // One sample from a Float32Array (or plain array) of the model's input size.
  Tensor input_tensor(const val& pixels, const std::string& what) const {
    require_model();
    if (pixels.isNull() || pixels.isUndefined()) throw Error(what + " is missing");
    const std::vector<float> v = emscripten::convertJSArrayToNumberVector<float>(pixels);
    const igscope::Shape shape = model_->batch_input_shape(1);
    Tensor t(shape);
    if (static_cast<int64_t>(v.size()) != t.size())
      throw Error(what + " has " + std::to_string(v.size()) + " values; the model takes " + std::to_string(t.size()) +
                  " (" + igscope::shape_to_string(model_->input_shape()) + ")");
    std::copy(v.begin(), v.end(), t.data());
    igscope::check_sample(t, model_->input_shape(), what);
    return t;
  }

  std::unique_ptr<igscope::SimdBackend> backend_;
  std::unique_ptr<igscope::Model> model_;
  std::optional<Tensor> baseline_image_;
  std::optional<Tensor> dataset_;
  std::unique_ptr<igscope::Model> tabular_model_;
  std::optional<Tensor> tabular_dataset_;  // the training rows, standardised
  std::optional<igscope::ValueRange> tabular_range_;
};

}  // namespace

EMSCRIPTEN_BINDINGS(igscope) {
  emscripten::class_<Engine>("Engine")
      .constructor<int>()
      .function("buildInfo", &Engine::build_info)
      .function("loadModel", &Engine::load_model)
      .function("importOnnxModel", &Engine::import_onnx_model)
      .function("predict", &Engine::predict)
      .function("setBaselineImage", &Engine::set_baseline_image)
      .function("setDataset", &Engine::set_dataset)
      .function("explain", &Engine::explain)
      .function("layers", &Engine::layers)
      .function("conductance", &Engine::conductance)
      .function("loadTabularModel", &Engine::load_tabular_model)
      .function("setTabularRows", &Engine::set_tabular_rows)
      .function("explainTabular", &Engine::explain_tabular);
}
