#pragma once
// Errors raised by the igscope core. Every failure the user can cause (a bad
// file, a bad parameter) is reported as an igscope::Error with a message that
// says what was wrong and where.
#include <stdexcept>
#include <string>

namespace igscope {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Thrown when the caller asked for a computation in flight to stop (a web
// page whose controls changed while it ran). Not a failure.
class Cancelled : public Error {
 public:
  Cancelled() : Error("cancelled") {}
};

}  // namespace igscope
