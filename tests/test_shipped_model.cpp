// A guard that the committed model files are the trained ones: accuracy on
// the first 500 Fashion-MNIST test images must be above 90%.
#include <catch2/catch.hpp>

#include "igscope/backend/backend.h"
#include "igscope/classifier_eval.h"
#include "igscope/data/fashion_mnist.h"
#include "igscope/model.h"

using namespace igscope;

TEST_CASE("the shipped models are trained (> 90% on 500 test images)", "[shipped]") {
  const Dataset test = load_fashion_mnist("test").slice(0, 500);
  auto backend = make_backend(default_backend());
  for (const std::string name : {"fashion_cnn_v1", "fashion_cnn_smelu", "fashion_resnet", "fashion_vit"}) {
    Model model = load_model(std::string(IGSCOPE_SOURCE_DIR) + "/model_weights/" + name + ".safetensors");
    CHECK(model.name() == name);
    const ClassificationReport r = evaluate_classifier(model, *backend, test);
    INFO(name << " accuracy on 500 test images: " << r.accuracy);
    CHECK(r.accuracy > 0.90);
  }
}
