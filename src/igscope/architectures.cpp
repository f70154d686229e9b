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

const json& fashion_classes() {
  static const json classes = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                               "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
  return classes;
}

// A ResNet in the graph form with torchvision's module paths: a 3x3 stem
// (conv1, bn1, relu), then stages layer1, layer2, ... of basic blocks
// (conv3x3-bn-relu-conv3x3-bn, plus the shortcut, then relu). Stage s has
// blocks[s] blocks of widths[s] channels; its first block has stride
// strides[s]. Where a block changes the width or the resolution, its shortcut
// is layerS.B.downsample.0 (conv 1x1 with the block's stride) and .1
// (batchnorm), else the identity. Then avgpool (global), flatten and fc
// (dense 10, the logits).
json resnet(const std::string& name, int64_t stem_channels, const std::vector<int64_t>& widths,
            const std::vector<int>& blocks, const std::vector<int64_t>& strides) {
  json nodes = json::array();
  auto conv = [&](const std::string& id, const std::string& in, int64_t out, int64_t kernel, int64_t stride) {
    json n = {{"id", id}, {"type", "conv2d"}, {"inputs", {in}}, {"out_channels", out}, {"kernel", kernel}};
    if (stride != 1) n["stride"] = stride;
    if (kernel == 3) n["padding"] = 1;
    nodes.push_back(n);
  };
  auto node = [&](const std::string& id, const std::string& type, const std::vector<std::string>& in) {
    nodes.push_back({{"id", id}, {"type", type}, {"inputs", in}});
  };
  conv("conv1", "input", stem_channels, 3, 1);
  node("bn1", "batchnorm", {"conv1"});
  node("relu", "relu", {"bn1"});
  std::string x = "relu";
  int64_t channels = stem_channels;
  for (size_t s = 0; s < widths.size(); ++s) {
    for (int b = 0; b < blocks[s]; ++b) {
      const std::string p = "layer" + std::to_string(s + 1) + "." + std::to_string(b) + ".";
      const int64_t stride = b == 0 ? strides[s] : 1, width = widths[s];
      conv(p + "conv1", x, width, 3, stride);
      node(p + "bn1", "batchnorm", {p + "conv1"});
      node(p + "relu1", "relu", {p + "bn1"});
      conv(p + "conv2", p + "relu1", width, 3, 1);
      node(p + "bn2", "batchnorm", {p + "conv2"});
      std::string shortcut = x;
      if (stride != 1 || width != channels) {
        conv(p + "downsample.0", x, width, 1, stride);
        node(p + "downsample.1", "batchnorm", {p + "downsample.0"});
        shortcut = p + "downsample.1";
      }
      node(p + "add", "add", {p + "bn2", shortcut});
      node(p + "relu2", "relu", {p + "add"});
      x = p + "relu2";
      channels = width;
    }
  }
  node("avgpool", "global_avgpool", {x});
  node("flatten", "flatten", {"avgpool"});
  nodes.push_back({{"id", "fc"}, {"type", "dense"}, {"inputs", {"flatten"}}, {"out_features", 10}});
  return {{"name", name}, {"input", {28, 28, 1}}, {"classes", fashion_classes()}, {"output", "fc"}, {"nodes", nodes}};
}

// A vision transformer in the graph form, pre-norm (as torchvision's
// VisionTransformer): patch_embed (patch x patch pixels to dim features),
// class_token, pos_embed; then `depth` blocks blocks.B.: norm1, attn (heads),
// add1 (the residual), norm2, mlp.0 (dense mlp), mlp.1 (gelu), mlp.2 (dense
// dim), add2; then norm, select (the class token) and head (dense 10, the
// logits). The residual stream after each block (blocks.B.add2) is a cut.
json vit(const std::string& name, int64_t patch, int64_t dim, int depth, int64_t heads, int64_t mlp) {
  json nodes = json::array();
  auto node = [&](const std::string& id, const std::string& type, const std::vector<std::string>& in, json extra = {}) {
    json n = {{"id", id}, {"type", type}, {"inputs", in}};
    if (extra.is_object()) n.update(extra);
    nodes.push_back(n);
  };
  node("patch_embed", "patch_embed", {"input"}, {{"dim", dim}, {"patch", patch}});
  node("class_token", "class_token", {"patch_embed"});
  node("pos_embed", "position_embedding", {"class_token"});
  std::string x = "pos_embed";
  for (int b = 0; b < depth; ++b) {
    const std::string p = "blocks." + std::to_string(b) + ".";
    node(p + "norm1", "layernorm", {x});
    node(p + "attn", "attention", {p + "norm1"}, {{"heads", heads}});
    node(p + "add1", "add", {p + "attn", x});
    node(p + "norm2", "layernorm", {p + "add1"});
    node(p + "mlp.0", "dense", {p + "norm2"}, {{"out_features", mlp}});
    node(p + "mlp.1", "gelu", {p + "mlp.0"});
    node(p + "mlp.2", "dense", {p + "mlp.1"}, {{"out_features", dim}});
    node(p + "add2", "add", {p + "mlp.2", p + "add1"});
    x = p + "add2";
  }
  node("norm", "layernorm", {x});
  node("select", "select_token", {"norm"});
  node("head", "dense", {"select"}, {{"out_features", 10}});
  return {{"name", name}, {"input", {28, 28, 1}}, {"classes", fashion_classes()}, {"output", "head"}, {"nodes", nodes}};
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
  // A ResNet with batch normalisation and global average pooling (the graph form).
  // Stem conv 1 -> 32 at 28x28, then basic blocks at 14x14 (one, 32
  // channels), 7x7 (one, 64) and 4x4 (two, 128): the stem's resolution is the
  // costly one to train on (im2col traffic, batchnorm), so the stages start
  // halved, and depth is added where it is cheapest.
  if (name == "fashion_resnet") return resnet(name, 32, {32, 64, 128}, {1, 1, 2}, {2, 2, 2});
  // A vision transformer: 4x4 patches (49 tokens and the class token), 64
  // features, 6 blocks of 4 heads with an MLP of 128.
  if (name == "fashion_vit") return vit(name, 4, 64, 6, 4, 128);
  std::string known;
  for (const auto& n : architecture_names()) known += (known.empty() ? "" : ", ") + n;
  throw Error("unknown architecture '" + name + "' (known: " + known + ")");
}

std::vector<std::string> architecture_names() {
  return {"fashion_cnn_v1", "fashion_cnn_smelu", "fashion_resnet", "fashion_vit", "diabetes_mlp"};
}

}  // namespace igscope
