#include "igscope/backend/backend.h"

#include "igscope/backend/reference.h"
#include "igscope/backend/simd.h"
#ifndef __EMSCRIPTEN__
#include "igscope/backend/eigen.h"
#endif
#include "igscope/error.h"

namespace igscope {

std::unique_ptr<Backend> make_backend(const std::string& name, int threads) {
  if (threads < 0) throw Error("backend threads must be >= 0 (0: one per core), got " + std::to_string(threads));
  if (name == "reference") return std::make_unique<ReferenceBackend>();
  if (name == "simd") return std::make_unique<SimdBackend>(threads);
#ifndef __EMSCRIPTEN__
  if (name == "eigen") return std::make_unique<EigenBackend>(threads);
#endif
  throw Error("unknown backend '" + name + "' (available: " + available_backends() + ")");
}

std::string available_backends() {
#ifndef __EMSCRIPTEN__
  return "eigen, reference, simd";
#else
  return "reference, simd";
#endif
}

std::string default_backend() {
#ifndef __EMSCRIPTEN__
  return "eigen";
#else
  return "simd";
#endif
}

}  // namespace igscope
