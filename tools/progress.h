#pragma once
// A progress display for long commands: on a terminal one line redrawn in
// place with a bar; otherwise plain lines, at most one every few seconds, so
// logs stay readable.
#include <chrono>
#include <string>

namespace igscope::tools {

class Progress {
 public:
  Progress();  // writes to stderr; detects whether it is a terminal
  // fraction in [0, 1] of the current unit of work; text follows the bar.
  void update(double fraction, const std::string& text);
  // Ends the current line with a final message (always printed).
  void finish(const std::string& text);

 private:
  bool tty_;
  std::chrono::steady_clock::time_point last_plain_;
};

// "1m05s", "12s", "1h02m"
std::string format_duration(double seconds);

}  // namespace igscope::tools
