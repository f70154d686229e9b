#include "progress.h"

#include <cstdio>
#include <unistd.h>

namespace igscope::tools {

Progress::Progress() : tty_(isatty(fileno(stderr)) != 0), last_plain_(std::chrono::steady_clock::now()) {}

void Progress::update(double fraction, const std::string& text) {
  if (tty_) {
    constexpr int kWidth = 24;
    const int filled = static_cast<int>(fraction * kWidth + 0.5);
    std::string bar(static_cast<size_t>(kWidth), ' ');
    for (int i = 0; i < filled && i < kWidth; ++i) bar[static_cast<size_t>(i)] = '#';
    std::fprintf(stderr, "\r[%s] %3d%% %s\033[K", bar.c_str(), static_cast<int>(fraction * 100), text.c_str());
    std::fflush(stderr);
    return;
  }
  const auto now = std::chrono::steady_clock::now();
  if (std::chrono::duration<double>(now - last_plain_).count() < 10.0) return;
  last_plain_ = now;
  std::fprintf(stderr, "%3d%% %s\n", static_cast<int>(fraction * 100), text.c_str());
}

void Progress::finish(const std::string& text) {
  if (tty_) std::fprintf(stderr, "\r\033[K");
  std::fprintf(stderr, "%s\n", text.c_str());
  std::fflush(stderr);
  last_plain_ = std::chrono::steady_clock::now();
}

std::string format_duration(double seconds) {
  const long s = static_cast<long>(seconds + 0.5);
  char buf[32];
  if (s >= 3600) std::snprintf(buf, sizeof buf, "%ldh%02ldm", s / 3600, (s / 60) % 60);
  else if (s >= 60) std::snprintf(buf, sizeof buf, "%ldm%02lds", s / 60, s % 60);
  else std::snprintf(buf, sizeof buf, "%lds", s);
  return buf;
}

}  // namespace igscope::tools
