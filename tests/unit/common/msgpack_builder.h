// Test helper: msgpack bodies built by hand with msgpack::packer, so the
// decoder tests do not depend on EncodeRequest.
//
//   std::string body = Body({{"op", "add_entry"}, {"id", U(7)}, {"list", Bin("x")}});
//
// A V is one packed msgpack value; a const char* or std::string converts to
// a str. Map/Arr nest values; Raw inserts bytes verbatim.
#pragma once

#include <cstdint>
#include <cstring>
#include <msgpack.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/protocol.h"

namespace todo::test_msgpack {

using Packer = msgpack::packer<msgpack::sbuffer>;

class V {
 public:
  V(const char* s) : V(std::string_view(s)) {}         // NOLINT: str by design
  V(const std::string& s) : V(std::string_view(s)) {}  // NOLINT
  V(std::string_view s) {                              // NOLINT
    Pack([&](Packer& pk) {
      pk.pack_str(static_cast<uint32_t>(s.size()));
      pk.pack_str_body(s.data(), static_cast<uint32_t>(s.size()));
    });
  }
  template <typename F>
  static V Packed(F f) {
    V v;
    v.Pack(f);
    return v;
  }
  static V Raw(std::string bytes) {
    V v;
    v.bytes_ = std::move(bytes);
    return v;
  }
  const std::string& bytes() const { return bytes_; }

 private:
  V() = default;
  template <typename F>
  void Pack(F f) {
    msgpack::sbuffer buf;
    Packer pk(buf);
    f(pk);
    bytes_.assign(buf.data(), buf.size());
  }
  std::string bytes_;
};

inline V U(uint64_t v) {
  return V::Packed([&](Packer& pk) { pk.pack_uint64(v); });
}
// A signed integer in the smallest encoding msgpack-c picks.
inline V I(int64_t v) {
  return V::Packed([&](Packer& pk) { pk.pack_int64(v); });
}
// A signed integer forced into the int8 / int64 encodings (0xd0 / 0xd3), as
// some clients send even non-negative values.
inline V Int8(int8_t v) {
  return V::Packed([&](Packer& pk) { pk.pack_fix_int8(v); });
}
inline V Int64(int64_t v) {
  return V::Packed([&](Packer& pk) { pk.pack_fix_int64(v); });
}
inline V Bin(std::string_view s) {
  return V::Packed([&](Packer& pk) {
    pk.pack_bin(static_cast<uint32_t>(s.size()));
    pk.pack_bin_body(s.data(), static_cast<uint32_t>(s.size()));
  });
}
inline V Nil() {
  return V::Packed([](Packer& pk) { pk.pack_nil(); });
}
inline V Bool(bool b) {
  return V::Packed([&](Packer& pk) { b ? pk.pack_true() : pk.pack_false(); });
}
// Floats are written by hand: msgpack-c's pack_double/pack_float write an
// integral value (1.0) as an integer.
inline V F64(double d) {
  uint64_t bits;
  std::memcpy(&bits, &d, sizeof bits);
  std::string s(1, '\xcb');
  for (int i = 7; i >= 0; --i) s.push_back(static_cast<char>(bits >> (8 * i)));
  return V::Raw(s);
}
inline V F32(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof bits);
  std::string s(1, '\xca');
  for (int i = 3; i >= 0; --i) s.push_back(static_cast<char>(bits >> (8 * i)));
  return V::Raw(s);
}
inline V Ext(int8_t type, std::string_view data) {
  return V::Packed([&](Packer& pk) {
    pk.pack_ext(data.size(), type);
    pk.pack_ext_body(data.data(), static_cast<uint32_t>(data.size()));
  });
}
// A str of `n` bytes 'x'.
inline V StrOf(size_t n, char c = 'x') { return V(std::string(n, c)); }

inline V Map(const std::vector<std::pair<V, V>>& kvs) {
  std::string bytes =
      V::Packed([&](Packer& pk) { pk.pack_map(static_cast<uint32_t>(kvs.size())); }).bytes();
  for (const auto& [k, v] : kvs) bytes += k.bytes() + v.bytes();
  return V::Raw(std::move(bytes));
}
inline V Arr(const std::vector<V>& items) {
  std::string bytes =
      V::Packed([&](Packer& pk) { pk.pack_array(static_cast<uint32_t>(items.size())); }).bytes();
  for (const auto& v : items) bytes += v.bytes();
  return V::Raw(std::move(bytes));
}
// `levels` arrays of one element each around a 0: nesting depth `levels`.
inline V Nest(int levels) { return V::Raw(std::string(levels, '\x91') + '\x00'); }

// The bytes of a top-level map.
inline std::string Body(const std::vector<std::pair<V, V>>& kvs) { return Map(kvs).bytes(); }

}  // namespace todo::test_msgpack
