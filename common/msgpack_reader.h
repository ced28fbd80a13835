// MsgpackReader: a bounds-checked reader of raw msgpack bytes, for the hot
// paths that take a few known fields without building msgpack objects (the
// node's request scanner, the router's book replies). Every method returns
// false on what it does not take -- another type, or bytes that end too
// soon; the Peek* methods never move, and after a false from any other the
// reader is not to be used further (callers fall back to msgpack-c's
// parser, which says what was wrong). Strings view the input, which must outlive them. Pure: no
// I/O.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace todo {

class MsgpackReader {
 public:
  explicit MsgpackReader(std::string_view b) : p_(b.data()), end_(b.data() + b.size()) {}
  bool done() const { return p_ == end_; }

  bool Map(uint64_t* n) {
    if (!Need(1)) return false;
    const uint8_t t = Byte(0);
    if ((t & 0xf0) == 0x80) return Skip(1), *n = t & 0x0f, true;
    if (t == 0xde) return Skip(1) && Number(2, n);
    if (t == 0xdf) return Skip(1) && Number(4, n);
    return false;
  }
  bool Array(uint64_t* n) {
    if (!Need(1)) return false;
    const uint8_t t = Byte(0);
    if ((t & 0xf0) == 0x90) return Skip(1), *n = t & 0x0f, true;
    if (t == 0xdc) return Skip(1) && Number(2, n);
    if (t == 0xdd) return Skip(1) && Number(4, n);
    return false;
  }
  bool PeekStr() const { return Need(1) && StrLenBytes(Byte(0)) >= 0; }
  bool PeekStrOrBin() const {
    return Need(1) && (StrLenBytes(Byte(0)) >= 0 || BinLenBytes(Byte(0)) >= 0);
  }
  bool PeekBool() const { return Need(1) && (Byte(0) == 0xc2 || Byte(0) == 0xc3); }
  // A non-negative integer (positive fixint, uint 8/16/32/64).
  bool Uint(uint64_t* v) {
    if (!Need(1)) return false;
    const uint8_t t = Byte(0);
    if (t <= 0x7f) return Skip(1), *v = t, true;
    if (t < 0xcc || t > 0xcf) return false;
    return Skip(1) && Number(size_t{1} << (t - 0xcc), v);
  }
  bool Bool(bool* b) {
    if (!PeekBool()) return false;
    *b = Byte(0) == 0xc3;
    return Skip(1);
  }
  // A str (or, with `bin`, a bin) into *s, viewing the input.
  bool Str(std::string_view* s, bool bin = false) {
    if (!Need(1)) return false;
    const uint8_t t = Byte(0);
    uint64_t len = 0;
    if ((t & 0xe0) == 0xa0) {
      len = t & 0x1f;
      Skip(1);
    } else {
      int bytes = StrLenBytes(t);
      if (bytes < 0 && bin) bytes = BinLenBytes(t);
      if (bytes <= 0 || !Skip(1) || !Number(static_cast<size_t>(bytes), &len)) return false;
    }
    if (!Need(len)) return false;
    *s = std::string_view(p_, static_cast<size_t>(len));
    p_ += len;
    return true;
  }
  // Skips one whole value (nested ones too; each step eats a byte, so a
  // lying count ends at the input's end).
  bool SkipValue() {
    uint64_t values = 1;
    while (values > 0) {
      --values;
      if (!Need(1)) return false;
      const uint8_t t = Byte(0);
      Skip(1);
      uint64_t len = 0;
      if (t <= 0x7f || t >= 0xe0 || t == 0xc0 || t == 0xc2 || t == 0xc3) continue;
      if (t <= 0x8f) {
        values += 2 * uint64_t{t & 0x0fu};
      } else if (t <= 0x9f) {
        values += t & 0x0fu;
      } else if (t <= 0xbf) {
        if (!Skip(t & 0x1fu)) return false;
      } else {
        switch (t) {
          case 0xc4:
          case 0xd9:
            if (!Number(1, &len) || !Skip(len)) return false;
            break;
          case 0xc5:
          case 0xda:
            if (!Number(2, &len) || !Skip(len)) return false;
            break;
          case 0xc6:
          case 0xdb:
            if (!Number(4, &len) || !Skip(len)) return false;
            break;
          case 0xc7:
            if (!Number(1, &len) || !Skip(len + 1)) return false;
            break;
          case 0xc8:
            if (!Number(2, &len) || !Skip(len + 1)) return false;
            break;
          case 0xc9:
            if (!Number(4, &len) || !Skip(len + 1)) return false;
            break;
          case 0xcc:
          case 0xd0:
            if (!Skip(1)) return false;
            break;
          case 0xcd:
          case 0xd1:
            if (!Skip(2)) return false;
            break;
          case 0xca:
          case 0xce:
          case 0xd2:
            if (!Skip(4)) return false;
            break;
          case 0xcb:
          case 0xcf:
          case 0xd3:
            if (!Skip(8)) return false;
            break;
          case 0xd4:
            if (!Skip(2)) return false;
            break;
          case 0xd5:
            if (!Skip(3)) return false;
            break;
          case 0xd6:
            if (!Skip(5)) return false;
            break;
          case 0xd7:
            if (!Skip(9)) return false;
            break;
          case 0xd8:
            if (!Skip(17)) return false;
            break;
          case 0xdc:
            if (!Number(2, &len)) return false;
            values += len;
            break;
          case 0xdd:
            if (!Number(4, &len)) return false;
            values += len;
            break;
          case 0xde:
            if (!Number(2, &len)) return false;
            values += 2 * len;
            break;
          case 0xdf:
            if (!Number(4, &len)) return false;
            values += 2 * len;
            break;
          default:
            return false;  // 0xc1: never used
        }
      }
    }
    return true;
  }

  // The next byte (the type tag), not consumed.
  bool Peek(uint8_t* tag) const {
    if (!Need(1)) return false;
    *tag = Byte(0);
    return true;
  }
  // Moves past `n` bytes.
  bool Skip(uint64_t n) {
    if (!Need(n)) return false;
    p_ += n;
    return true;
  }
  // A big-endian unsigned integer of `bytes` bytes (a length or a value
  // after its tag).
  bool Number(size_t bytes, uint64_t* v) {
    if (!Need(bytes)) return false;
    *v = 0;
    for (size_t i = 0; i < bytes; ++i) *v = (*v << 8) | Byte(i);
    p_ += bytes;
    return true;
  }

 private:
  // How many bytes give a str's (a bin's) length after its tag: 0 for a
  // fixstr; -1 if the tag is not one.
  static int StrLenBytes(uint8_t t) {
    if ((t & 0xe0) == 0xa0) return 0;
    if (t == 0xd9) return 1;
    if (t == 0xda) return 2;
    if (t == 0xdb) return 4;
    return -1;
  }
  static int BinLenBytes(uint8_t t) {
    if (t == 0xc4) return 1;
    if (t == 0xc5) return 2;
    if (t == 0xc6) return 4;
    return -1;
  }
  bool Need(uint64_t n) const { return static_cast<uint64_t>(end_ - p_) >= n; }
  uint8_t Byte(size_t i) const { return static_cast<uint8_t>(p_[i]); }

  const char* p_;
  const char* end_;
};

}  // namespace todo
