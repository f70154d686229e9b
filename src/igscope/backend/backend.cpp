#include "igscope/backend/backend.h"

#include "igscope/backend/reference.h"
#include "igscope/error.h"

namespace igscope {

std::unique_ptr<Backend> make_backend(const std::string& name) {
  if (name == "reference") return std::make_unique<ReferenceBackend>();
  throw Error("unknown backend '" + name + "' (available: " + available_backends() + ")");
}

std::string available_backends() { return "reference"; }

}  // namespace igscope
