// The embind layer the web page's worker drives: load a model from bytes,
// predict, explain (any method, baseline and quadrature the core has), and
// cancel a computation in flight. No model or attribution logic lives here
// or in JavaScript: requests and results are the core's own JSON
// (attribution/explanation_json.h). Every call returns a JSON string; a
// failure is {"error": "..."} with the core's message, a cancelled call
// {"cancelled": true}, so nothing the user does can abort the module.
#include <emscripten/bind.h>
#include <emscripten/val.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "igscope/attribution/explain.h"
#include "igscope/attribution/explanation_json.h"
#include "igscope/backend/simd.h"
#include "igscope/error.h"
#include "igscope/model.h"

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

  // {"threaded", "threads", "simd", "backend"}: what this build runs.
  std::string build_info() const {
#ifdef __EMSCRIPTEN_PTHREADS__
    const bool threaded = true;
#else
    const bool threaded = false;
#endif
    return json{{"threaded", threaded},
                {"threads", backend_->threads()},
                {"simd", true},
                {"backend", backend_->name()},
                {"cores", std::thread::hardware_concurrency()}}
        .dump();
  }

  // The model file's bytes (.safetensors). On success: its architecture
  // JSON (name, input, classes, layers). A bad file leaves the current model.
  std::string load_model(const std::string& bytes) {
    return guarded([&] {
      igscope::Model m = igscope::load_model_bytes(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
      model_ = std::make_unique<igscope::Model>(std::move(m));
      json j = model_->architecture();
      j["parameters"] = model_->parameter_count();
      return j;
    });
  }

  // Model outputs, probabilities and the predicted class for one input.
  std::string predict(const val& pixels) {
    return guarded([&] {
      const Tensor x = input_tensor(pixels, "the input");
      igscope::AttributionRequest req;
      req.method = igscope::Method::Gradient;
      const igscope::Explanation e = igscope::explain(*model_, *backend_, x, req);
      return json{{"outputs", e.outputs}, {"probabilities", e.probabilities}, {"predicted", e.predicted}};
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

  void require_model() const {
    if (!model_) throw Error("no model loaded");
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
};

}  // namespace

EMSCRIPTEN_BINDINGS(igscope) {
  emscripten::class_<Engine>("Engine")
      .constructor<int>()
      .function("buildInfo", &Engine::build_info)
      .function("loadModel", &Engine::load_model)
      .function("predict", &Engine::predict)
      .function("setBaselineImage", &Engine::set_baseline_image)
      .function("setDataset", &Engine::set_dataset)
      .function("explain", &Engine::explain);
}
