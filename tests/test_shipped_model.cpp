// A guard that the committed model file is the trained one: accuracy on the
// first 500 Fashion-MNIST test images must be above 90%.
#include <catch2/catch.hpp>

#include "igscope/backend/backend.h"
#include "igscope/classifier_eval.h"
#include "igscope/data/fashion_mnist.h"
#include "igscope/model.h"

using namespace igscope;

TEST_CASE("the shipped fashion_cnn_v1 is trained (> 90% on 500 test images)", "[shipped]") {
  Model model = load_model(std::string(IGSCOPE_SOURCE_DIR) + "/model_weights/fashion_cnn_v1.safetensors");
  CHECK(model.name() == "fashion_cnn_v1");
  const Dataset test = load_fashion_mnist("test").slice(0, 500);
  auto backend = make_backend(default_backend());
  const ClassificationReport r = evaluate_classifier(model, *backend, test);
  INFO("accuracy on 500 test images: " << r.accuracy);
  CHECK(r.accuracy > 0.90);
}
