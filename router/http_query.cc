#include "router/http_query.h"

namespace todo::router::http {
namespace {

int Hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The value of `n` hex digits at s[i..], or -1.
long HexAt(std::string_view s, size_t i, size_t n) {
  if (i + n > s.size()) return -1;
  long v = 0;
  for (size_t k = 0; k < n; ++k) {
    int h = Hex(s[i + k]);
    if (h < 0) return -1;
    v = v * 16 + h;
  }
  return v;
}

void AppendUtf8(std::string& out, long cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0xD800 || cp >= 0xE000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
  // A lone surrogate encodes to nothing (as httplib's to_utf8 does).
}

}  // namespace

std::string DecodeUrl(std::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '%' && i + 1 < s.size()) {
      if (s[i + 1] == 'u') {
        long cp = HexAt(s, i + 2, 4);
        if (cp >= 0) {
          AppendUtf8(out, cp);
          i += 5;
          continue;
        }
      } else if (long v = HexAt(s, i + 1, 2); v >= 0) {
        out += static_cast<char>(v);
        i += 2;
        continue;
      }
      out += c;
    } else if (plus_is_space && c == '+') {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out;
}

std::string TargetPath(std::string_view target) {
  return DecodeUrl(target.substr(0, target.find('?')), false);
}

}  // namespace todo::router::http
