#include "igscope/import/protobuf_wire.h"

#include <cstring>

namespace igscope::protobuf {

namespace {

const char* wire_type_name(WireType t) {
  switch (t) {
    case WireType::Varint: return "varint";
    case WireType::Fixed64: return "64-bit";
    case WireType::Bytes: return "length-delimited";
    case WireType::StartGroup: return "start-group";
    case WireType::EndGroup: return "end-group";
    case WireType::Fixed32: return "32-bit";
  }
  return "unknown";
}

}  // namespace

Reader::Reader(const uint8_t* data, size_t size, std::string what, size_t base)
    : data_(data), size_(size), what_(std::move(what)), base_(base) {}

void Reader::fail(const std::string& message) const {
  throw WireError("protobuf: " + what_ + ": " + message + " (at byte " + std::to_string(base_ + key_offset_) + ")");
}

const uint8_t* Reader::take(size_t n) {
  if (n > size_ - pos_)
    fail("field " + std::to_string(field_) + " needs " + std::to_string(n) + " bytes, " +
         std::to_string(size_ - pos_) + " left: the data is truncated or a length is corrupt");
  const uint8_t* p = data_ + pos_;
  pos_ += n;
  return p;
}

uint64_t Reader::raw_varint() {
  uint64_t value = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (pos_ >= size_) fail("truncated varint");
    const uint8_t b = data_[pos_++];
    if (shift == 63 && (b & 0x7e)) fail("varint overflows 64 bits");
    value |= static_cast<uint64_t>(b & 0x7f) << shift;
    if (!(b & 0x80)) return value;
  }
  fail("varint longer than 10 bytes");
}

bool Reader::next() {
  if (pos_ >= size_) return false;
  key_offset_ = pos_;
  const uint64_t key = raw_varint();
  const uint64_t number = key >> 3;
  const auto type = static_cast<uint8_t>(key & 7);
  if (number == 0 || number > 0x1fffffff) fail("invalid field number " + std::to_string(number));
  if (type > 5) fail("invalid wire type " + std::to_string(type));
  field_ = static_cast<uint32_t>(number);
  type_ = static_cast<WireType>(type);
  if (type_ == WireType::StartGroup || type_ == WireType::EndGroup)
    fail("field " + std::to_string(field_) + " is a group (wire type " + std::to_string(type) +
         "), which protobuf 3 files do not use");
  return true;
}

void Reader::expect(WireType type) const {
  if (type_ != type)
    throw WireError("protobuf: " + what_ + ": field " + std::to_string(field_) + " has wire type " +
                    wire_type_name(type_) + ", expected " + wire_type_name(type) + " (at byte " +
                    std::to_string(base_ + key_offset_) + ")");
}

uint64_t Reader::varint() {
  expect(WireType::Varint);
  return raw_varint();
}

int64_t Reader::int64() { return static_cast<int64_t>(varint()); }

int32_t Reader::int32() {
  const int64_t v = int64();
  // Negative int32 values are sign-extended to 64 bits on the wire.
  if (v < INT32_MIN || v > INT32_MAX) fail("field " + std::to_string(field_) + ": value does not fit in 32 bits");
  return static_cast<int32_t>(v);
}

bool Reader::boolean() { return varint() != 0; }

float Reader::fixed32_float() {
  expect(WireType::Fixed32);
  float f;
  std::memcpy(&f, take(4), 4);  // little-endian hosts only (x86-64, wasm)
  return f;
}

double Reader::fixed64_double() {
  expect(WireType::Fixed64);
  double d;
  std::memcpy(&d, take(8), 8);
  return d;
}

std::string_view Reader::bytes() {
  expect(WireType::Bytes);
  const uint64_t n = raw_varint();
  if (n > size_ - pos_)
    fail("field " + std::to_string(field_) + " declares " + std::to_string(n) + " bytes, " +
         std::to_string(size_ - pos_) + " left: the data is truncated or a length is corrupt");
  const uint8_t* p = take(static_cast<size_t>(n));
  return {reinterpret_cast<const char*>(p), static_cast<size_t>(n)};
}

Reader Reader::message(const std::string& what) {
  const std::string_view b = bytes();
  const size_t start = base_ + pos_ - b.size();
  return Reader(reinterpret_cast<const uint8_t*>(b.data()), b.size(), what, start);
}

void Reader::skip() {
  switch (type_) {
    case WireType::Varint: raw_varint(); return;
    case WireType::Fixed64: take(8); return;
    case WireType::Fixed32: take(4); return;
    case WireType::Bytes: bytes(); return;
    default: fail("cannot skip a group");
  }
}

void Reader::append(std::vector<int64_t>& out) {
  if (type_ == WireType::Varint) {
    out.push_back(int64());
    return;
  }
  Reader packed = message(what_ + " (packed field " + std::to_string(field_) + ")");
  while (packed.pos_ < packed.size_) out.push_back(static_cast<int64_t>(packed.raw_varint()));
}

void Reader::append(std::vector<uint64_t>& out) {
  if (type_ == WireType::Varint) {
    out.push_back(varint());
    return;
  }
  Reader packed = message(what_ + " (packed field " + std::to_string(field_) + ")");
  while (packed.pos_ < packed.size_) out.push_back(packed.raw_varint());
}

void Reader::append(std::vector<float>& out) {
  if (type_ == WireType::Fixed32) {
    out.push_back(fixed32_float());
    return;
  }
  const std::string_view b = bytes();
  if (b.size() % 4) fail("packed float field " + std::to_string(field_) + " is not a multiple of 4 bytes");
  if (b.empty()) return;
  const size_t n = b.size() / 4, old = out.size();
  out.resize(old + n);
  std::memcpy(out.data() + old, b.data(), b.size());
}

void Reader::append(std::vector<double>& out) {
  if (type_ == WireType::Fixed64) {
    out.push_back(fixed64_double());
    return;
  }
  const std::string_view b = bytes();
  if (b.size() % 8) fail("packed double field " + std::to_string(field_) + " is not a multiple of 8 bytes");
  if (b.empty()) return;
  const size_t n = b.size() / 8, old = out.size();
  out.resize(old + n);
  std::memcpy(out.data() + old, b.data(), b.size());
}

}  // namespace igscope::protobuf
