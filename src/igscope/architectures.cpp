#include "igscope/architectures.h"

#include "igscope/error.h"

namespace igscope {

using nlohmann::json;

namespace {

// The classic Fashion-MNIST CNN: 3 conv, 2 max-pool, dropout, 2 dense, with
// `activation` after every conv and the hidden dense layer.
json fashion_cnn(const std::string& name, const json& activation) {
  json arch = json::parse(R"({
      "input": [28, 28, 1],
      "classes": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                  "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"],
      "layers": [
        {"type": "conv2d", "out_channels": 32, "kernel": [3, 3], "stride": [1, 1], "padding": [1, 1]},
        "activation",
        {"type": "maxpool2d", "kernel": [2, 2], "stride": [2, 2]},
        {"type": "conv2d", "out_channels": 64, "kernel": [3, 3], "stride": [1, 1], "padding": [1, 1]},
        "activation",
        {"type": "maxpool2d", "kernel": [2, 2], "stride": [2, 2]},
        {"type": "conv2d", "out_channels": 128, "kernel": [3, 3], "stride": [1, 1], "padding": [1, 1]},
        "activation",
        {"type": "dropout", "p": 0.25},
        {"type": "flatten"},
        {"type": "dense", "out_features": 128},
        "activation",
        {"type": "dropout", "p": 0.5},
        {"type": "dense", "out_features": 10}
      ]
    })");
  arch["name"] = name;
  for (auto& layer : arch["layers"])
    if (layer == "activation") layer = activation;
  return arch;
}

}  // namespace

nlohmann::json named_architecture(const std::string& name) {
  // ReLU: the first shipped network; its logit is piecewise linear along the
  // path, so IG's quadrature converges slowly (about 1/n for Gauss-Legendre).
  if (name == "fashion_cnn_v1") return fashion_cnn(name, {{"type", "relu"}});
  // SmeLU: the same network with a continuous gradient, so IG's quadrature
  // converges fast along the path (the shipped default).
  if (name == "fashion_cnn_smelu") return fashion_cnn(name, {{"type", "smelu"}, {"beta", 0.5}});
  // A small regressor for scikit-learn's diabetes data: 10 standardised features in, one number out.
  if (name == "diabetes_mlp")
    return {{"name", name},
            {"input", {10}},
            {"layers", json::array({{{"type", "dense"}, {"out_features", 64}},
                                    {{"type", "smelu"}, {"beta", 0.5}},
                                    {{"type", "dense"}, {"out_features", 1}}})}};
  throw Error("unknown architecture '" + name + "' (known: fashion_cnn_v1, fashion_cnn_smelu, diabetes_mlp)");
}

std::vector<std::string> architecture_names() { return {"fashion_cnn_v1", "fashion_cnn_smelu", "diabetes_mlp"}; }

}  // namespace igscope
