#pragma once
// Whole files that may be gzip-compressed (the data sets Debian ships).
#include <cstdint>
#include <string>
#include <vector>

namespace igscope {

// The file's decompressed content (zlib detects gzip; a plain file passes
// through). Throws Error naming the file when it is missing or unreadable.
std::vector<uint8_t> read_maybe_gzip(const std::string& path);

}  // namespace igscope
