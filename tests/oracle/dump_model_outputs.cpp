// For the PyTorch oracle: loads a model and a batch of raw float32 NHWC
// inputs, and writes JSON with the logits and, per sample, the gradient of
// one chosen logit with respect to the input (reference backend, or the one
// named).
//
//   dump_model_outputs MODEL INPUT.f32 BATCH TARGETS(comma-separated) OUT.json [BACKEND]
//   dump_model_outputs --backends     (prints the backends of this build, comma-separated)
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "igscope/backend/backend.h"
#include "igscope/model.h"
#include "igscope/safetensors.h"

int main(int argc, char** argv) {
  if (argc == 2 && std::string(argv[1]) == "--backends") {
    std::printf("%s\n", igscope::available_backends().c_str());
    return 0;
  }
  if (argc != 6 && argc != 7) {
    std::fprintf(stderr, "usage: %s MODEL INPUT.f32 BATCH TARGETS OUT.json [BACKEND]\n", argv[0]);
    return 2;
  }
  try {
    igscope::Model model = igscope::load_model(argv[1]);
    const int64_t batch = std::stoll(argv[3]);
    igscope::Tensor x(model.batch_input_shape(batch));
    const std::vector<uint8_t> bytes = igscope::read_file_bytes(argv[2]);
    if (bytes.size() != static_cast<size_t>(x.size()) * 4) throw igscope::Error("input size mismatch");
    std::memcpy(x.data(), bytes.data(), bytes.size());
    std::vector<int64_t> targets;
    std::stringstream ss(argv[4]);
    for (std::string t; std::getline(ss, t, ',');) targets.push_back(std::stoll(t));
    if (static_cast<int64_t>(targets.size()) != batch) throw igscope::Error("one target per sample");

    const std::unique_ptr<igscope::Backend> owned = igscope::make_backend(argc == 7 ? argv[6] : "reference");
    igscope::Backend& backend = *owned;
    const igscope::Tensor logits = model.forward(x, backend);
    const int64_t k = logits.dim(1);
    igscope::Tensor seed(logits.shape());
    for (int64_t n = 0; n < batch; ++n) seed[n * k + targets[static_cast<size_t>(n)]] = 1.0f;
    const igscope::Tensor grad = model.backward(seed, backend);

    nlohmann::json out;
    out["logits"] = std::vector<float>(logits.data(), logits.data() + logits.size());
    out["grad"] = std::vector<float>(grad.data(), grad.data() + grad.size());
    std::ofstream(argv[5]) << out.dump();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "dump_model_outputs: %s\n", e.what());
    return 1;
  }
  return 0;
}
