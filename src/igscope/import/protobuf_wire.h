#pragma once
// The protobuf wire format, read without a schema compiler: one reader that
// builds for the native tools and for WebAssembly alike (Debian's libprotobuf
// is native only). A message is a sequence of fields, each a key (field
// number << 3 | wire type) followed by a varint (type 0), 8 bytes (1), a
// length-prefixed byte string (2: strings, bytes, sub-messages, packed
// repeated numbers) or 4 bytes (5). Every read is bounds-checked: a truncated
// field, a length past the end, a varint longer than 10 bytes, a deprecated
// group (types 3, 4) or a field read as the wrong wire type is a WireError
// that names the message and the byte offset in the file.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "igscope/error.h"

namespace igscope::protobuf {

class WireError : public Error {
 public:
  using Error::Error;
};

enum class WireType : uint8_t { Varint = 0, Fixed64 = 1, Bytes = 2, StartGroup = 3, EndGroup = 4, Fixed32 = 5 };

// A view of one message's bytes; the bytes must outlive the reader.
class Reader {
 public:
  // `what` names the message in errors ("ModelProto.graph"); `base` is the
  // offset of data[0] in the file.
  Reader(const uint8_t* data, size_t size, std::string what, size_t base = 0);

  // Reads the next field's key; false at the end of the message. After it
  // returns true, read the field's value exactly once with one of the calls
  // below, or skip() it.
  bool next();
  uint32_t field() const { return field_; }
  WireType wire_type() const { return type_; }

  uint64_t varint();        // wire type 0
  int64_t int64();          // wire type 0, as int64 (two's complement)
  int32_t int32();          // wire type 0, must fit in 32 bits
  bool boolean();           // wire type 0
  float fixed32_float();    // wire type 5
  double fixed64_double();  // wire type 1
  std::string_view bytes();  // wire type 2
  std::string string() { return std::string(bytes()); }
  Reader message(const std::string& what);  // wire type 2, parsed as a message
  void skip();  // any wire type but groups

  // Repeated numeric fields, packed (wire type 2) or one value per field.
  void append(std::vector<int64_t>& out);   // int64 / int32 / enum varints
  void append(std::vector<uint64_t>& out);  // uint64 varints
  void append(std::vector<float>& out);     // float (fixed32)
  void append(std::vector<double>& out);    // double (fixed64)

  const std::string& what() const { return what_; }
  size_t offset() const { return base_ + pos_; }  // in the file

 private:
  [[noreturn]] void fail(const std::string& message) const;
  void expect(WireType type) const;
  uint64_t raw_varint();
  const uint8_t* take(size_t n);  // n bytes at the cursor, bounds-checked

  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
  std::string what_;
  size_t base_;
  uint32_t field_ = 0;
  WireType type_ = WireType::Varint;
  size_t key_offset_ = 0;
};

}  // namespace igscope::protobuf
