#include "igscope/backend/backend.h"

#include "igscope/backend/reference.h"
#ifndef __EMSCRIPTEN__
#include "igscope/backend/eigen.h"
#endif
#include "igscope/error.h"

namespace igscope {

std::unique_ptr<Backend> make_backend(const std::string& name, int threads) {
  if (name == "reference") return std::make_unique<ReferenceBackend>();
#ifndef __EMSCRIPTEN__
  if (name == "eigen") return std::make_unique<EigenBackend>(threads);
#endif
  throw Error("unknown backend '" + name + "' (available: " + available_backends() + ")");
}

std::string available_backends() {
#ifndef __EMSCRIPTEN__
  return "eigen, reference";
#else
  return "reference";
#endif
}

std::string default_backend() {
#ifndef __EMSCRIPTEN__
  return "eigen";
#else
  return "reference";
#endif
}

}  // namespace igscope
