#include "igscope/architectures.h"

#include "igscope/error.h"

namespace igscope {

using nlohmann::json;

nlohmann::json named_architecture(const std::string& name) {
  if (name == "fashion_cnn_v1") {
    return json::parse(R"({
      "name": "fashion_cnn_v1",
      "input": [28, 28, 1],
      "classes": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                  "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"],
      "layers": [
        {"type": "conv2d", "out_channels": 32, "kernel": [3, 3], "stride": [1, 1], "padding": [1, 1]},
        {"type": "relu"},
        {"type": "maxpool2d", "kernel": [2, 2], "stride": [2, 2]},
        {"type": "conv2d", "out_channels": 64, "kernel": [3, 3], "stride": [1, 1], "padding": [1, 1]},
        {"type": "relu"},
        {"type": "maxpool2d", "kernel": [2, 2], "stride": [2, 2]},
        {"type": "conv2d", "out_channels": 128, "kernel": [3, 3], "stride": [1, 1], "padding": [1, 1]},
        {"type": "relu"},
        {"type": "dropout", "p": 0.25},
        {"type": "flatten"},
        {"type": "dense", "out_features": 128},
        {"type": "relu"},
        {"type": "dropout", "p": 0.5},
        {"type": "dense", "out_features": 10}
      ]
    })");
  }
  throw Error("unknown architecture '" + name + "' (known: fashion_cnn_v1)");
}

std::vector<std::string> architecture_names() { return {"fashion_cnn_v1"}; }

}  // namespace igscope
