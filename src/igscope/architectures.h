#pragma once
// The architectures igscope knows by name, as architecture JSON (see model.h).
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace igscope {

// fashion_cnn_v1: conv3x3 1->32 pad 1, ReLU, maxpool 2; conv3x3 32->64 pad 1,
// ReLU, maxpool 2; conv3x3 64->128 pad 1, ReLU; dropout 0.25; flatten (6272);
// dense 128, ReLU; dropout 0.5; dense 10 (logits). Input 28x28x1 in [0, 1].
// fashion_cnn_smelu: the same with SmeLU (beta 0.5) in place of every ReLU.
// diabetes_mlp: input [10] (standardised features), dense 64, SmeLU (beta
// 0.5), dense 1: a regressor for scikit-learn's diabetes data.
nlohmann::json named_architecture(const std::string& name);  // throws Error if unknown
std::vector<std::string> architecture_names();

}  // namespace igscope
