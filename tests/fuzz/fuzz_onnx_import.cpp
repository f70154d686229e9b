// libFuzzer harness: any bytes through the ONNX importer. An igscope::Error
// is the expected answer to bad input; any other exception, a crash, a leak
// or undefined behaviour is a finding.
#include <cstddef>
#include <cstdint>

#include "igscope/backend/reference.h"
#include "igscope/error.h"
#include "igscope/import/onnx_import.h"
#include "igscope/model.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    igscope::Model model = igscope::import_onnx(data, size, {});
    // What loads must also run: one forward pass of a zero image, where
    // it is cheap enough for the fuzzer's pace.
    if (model.multiply_adds() < 2000000) {
      igscope::ReferenceBackend backend;
      model.forward(igscope::Tensor(model.batch_input_shape(1)), backend);
    }
  } catch (const igscope::Error&) {
  }
  return 0;
}
