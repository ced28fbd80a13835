#include "common/utf8.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>

namespace todo {
namespace {

std::string Bytes(std::initializer_list<int> bytes) {
  std::string s;
  for (int b : bytes) s.push_back(static_cast<char>(b));
  return s;
}

// The shortest UTF-8 form of a code point (also for surrogates, which makes
// the CESU-style bytes that a strict validator must refuse).
std::string Encode(uint32_t cp) {
  std::string s;
  if (cp < 0x80) {
    s.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    s.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    s.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    s.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    s.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    s.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    s.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    s.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    s.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    s.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
  return s;
}

// A textbook reference validator, written differently from the one under
// test: decode the code point, then check minimal length, surrogates, range.
bool ReferenceValid(std::string_view s) {
  const auto* b = reinterpret_cast<const uint8_t*>(s.data());
  size_t n = s.size(), i = 0;
  while (i < n) {
    uint8_t c = b[i];
    size_t len;
    uint32_t cp;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + len > n) return false;
    for (size_t k = 1; k < len; ++k) {
      if ((b[i + k] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (b[i + k] & 0x3F);
    }
    static constexpr uint32_t kMin[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += len;
  }
  return true;
}

TEST(Utf8Test, EmptyAndAscii) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("buy milk"));
  std::string all_ascii;
  for (int c = 0; c < 0x80; ++c) all_ascii.push_back(static_cast<char>(c));
  EXPECT_TRUE(IsValidUtf8(all_ascii));
}

TEST(Utf8Test, NulIsAllowed) {
  EXPECT_TRUE(IsValidUtf8(std::string("\0", 1)));
  EXPECT_TRUE(IsValidUtf8(std::string("a\0b\0", 4)));
}

TEST(Utf8Test, ValidOneToFourByteCharacters) {
  EXPECT_TRUE(IsValidUtf8("\x7F"));              // U+007F
  EXPECT_TRUE(IsValidUtf8("\xC2\x80"));          // U+0080
  EXPECT_TRUE(IsValidUtf8("\xC3\xA9"));          // é
  EXPECT_TRUE(IsValidUtf8("\xDF\xBF"));          // U+07FF
  EXPECT_TRUE(IsValidUtf8("\xE0\xA0\x80"));      // U+0800
  EXPECT_TRUE(IsValidUtf8("\xE2\x82\xAC"));      // €
  EXPECT_TRUE(IsValidUtf8("\xED\x9F\xBF"));      // U+D7FF
  EXPECT_TRUE(IsValidUtf8("\xEE\x80\x80"));      // U+E000
  EXPECT_TRUE(IsValidUtf8("\xEF\xBF\xBF"));      // U+FFFF
  EXPECT_TRUE(IsValidUtf8("\xF0\x90\x80\x80"));  // U+10000
  EXPECT_TRUE(IsValidUtf8("\xF0\x9F\x98\x80"));  // 😀
  EXPECT_TRUE(IsValidUtf8("\xF4\x8F\xBF\xBF"));  // U+10FFFF
  EXPECT_TRUE(IsValidUtf8("a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80z"));
}

TEST(Utf8Test, Overlongs) {
  EXPECT_FALSE(IsValidUtf8("\xC0\x80"));          // NUL, 2 bytes
  EXPECT_FALSE(IsValidUtf8("\xC0\xAF"));          // '/', 2 bytes
  EXPECT_FALSE(IsValidUtf8("\xC1\xBF"));          // U+007F, 2 bytes
  EXPECT_FALSE(IsValidUtf8("\xE0\x80\x80"));      // NUL, 3 bytes
  EXPECT_FALSE(IsValidUtf8("\xE0\x9F\xBF"));      // U+07FF, 3 bytes
  EXPECT_FALSE(IsValidUtf8("\xF0\x80\x80\x80"));  // NUL, 4 bytes
  EXPECT_FALSE(IsValidUtf8("\xF0\x8F\xBF\xBF"));  // U+FFFF, 4 bytes
}

TEST(Utf8Test, Surrogates) {
  EXPECT_FALSE(IsValidUtf8("\xED\xA0\x80"));              // U+D800
  EXPECT_FALSE(IsValidUtf8("\xED\xAF\xBF"));              // U+DBFF
  EXPECT_FALSE(IsValidUtf8("\xED\xB0\x80"));              // U+DC00
  EXPECT_FALSE(IsValidUtf8("\xED\xBF\xBF"));              // U+DFFF
  EXPECT_FALSE(IsValidUtf8("\xED\xA0\xBD\xED\xB8\x80"));  // CESU-8 pair
  for (uint32_t cp = 0xD800; cp <= 0xDFFF; ++cp) ASSERT_FALSE(IsValidUtf8(Encode(cp))) << cp;
}

TEST(Utf8Test, AboveMaxCodePoint) {
  EXPECT_FALSE(IsValidUtf8("\xF4\x90\x80\x80"));  // U+110000
  EXPECT_FALSE(IsValidUtf8("\xF5\x80\x80\x80"));
  EXPECT_FALSE(IsValidUtf8("\xF7\xBF\xBF\xBF"));      // U+1FFFFF
  EXPECT_FALSE(IsValidUtf8("\xF8\x88\x80\x80\x80"));  // 5-byte form
  EXPECT_FALSE(IsValidUtf8("\xFC\x84\x80\x80\x80\x80"));
  EXPECT_FALSE(IsValidUtf8("\xFE"));
  EXPECT_FALSE(IsValidUtf8("\xFF"));
}

TEST(Utf8Test, TruncatedSequences) {
  EXPECT_FALSE(IsValidUtf8("\xC3"));
  EXPECT_FALSE(IsValidUtf8("\xE2\x82"));
  EXPECT_FALSE(IsValidUtf8("\xE2"));
  EXPECT_FALSE(IsValidUtf8("\xF0\x9F\x98"));
  EXPECT_FALSE(IsValidUtf8("\xF0\x9F"));
  EXPECT_FALSE(IsValidUtf8("\xF0"));
  EXPECT_FALSE(IsValidUtf8("abc\xC3"));
  // A sequence cut short by a following ASCII byte or a new lead byte.
  EXPECT_FALSE(
      IsValidUtf8("\xC3"
                  "a"));
  EXPECT_FALSE(
      IsValidUtf8("\xE2\x82"
                  "a"));
  EXPECT_FALSE(
      IsValidUtf8("\xF0\x9F\x98"
                  "a"));
  EXPECT_FALSE(IsValidUtf8("\xE2\xC3\xA9"));
  // A view must not read past its end into the bytes that follow it.
  std::string_view cut = std::string_view("\xE2\x82\xAC", 3).substr(0, 2);
  EXPECT_FALSE(IsValidUtf8(cut));
}

TEST(Utf8Test, LoneContinuationBytes) {
  for (int c = 0x80; c <= 0xBF; ++c) {
    EXPECT_FALSE(IsValidUtf8(Bytes({c}))) << c;
    EXPECT_FALSE(IsValidUtf8(Bytes({'a', c}))) << c;
  }
  EXPECT_FALSE(IsValidUtf8("\xC3\xA9\xA9"));  // one continuation too many
}

TEST(Utf8Test, EveryScalarValueRoundTrips) {
  for (uint32_t cp = 0; cp <= 0x10FFFF; ++cp) {
    if (cp >= 0xD800 && cp <= 0xDFFF) continue;
    ASSERT_TRUE(IsValidUtf8(Encode(cp))) << std::hex << cp;
  }
}

// Every one- and two-byte string, every three-byte string, and four-byte
// strings over every lead and second byte with edge values after them: the
// validator agrees with the reference.
TEST(Utf8Test, AgreesWithReferenceOnAllShortStrings) {
  std::string s;
  for (int a = 0; a < 256; ++a) {
    s = Bytes({a});
    ASSERT_EQ(IsValidUtf8(s), ReferenceValid(s)) << a;
    for (int b = 0; b < 256; ++b) {
      s = Bytes({a, b});
      ASSERT_EQ(IsValidUtf8(s), ReferenceValid(s)) << a << " " << b;
    }
  }
  s.assign(3, '\0');
  for (int a = 0x80; a < 256; ++a) {  // an ASCII first byte leaves a 2-byte case
    for (int b = 0; b < 256; ++b) {
      for (int c = 0; c < 256; ++c) {
        s[0] = static_cast<char>(a);
        s[1] = static_cast<char>(b);
        s[2] = static_cast<char>(c);
        ASSERT_EQ(IsValidUtf8(s), ReferenceValid(s)) << a << " " << b << " " << c;
      }
    }
  }
  const int kEdges[] = {0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xF4, 0xFF};
  s.assign(4, '\0');
  for (int a = 0xC0; a < 256; ++a) {
    for (int b = 0; b < 256; ++b) {
      for (int c : kEdges) {
        for (int d : kEdges) {
          s[0] = static_cast<char>(a);
          s[1] = static_cast<char>(b);
          s[2] = static_cast<char>(c);
          s[3] = static_cast<char>(d);
          ASSERT_EQ(IsValidUtf8(s), ReferenceValid(s)) << a << " " << b << " " << c << " " << d;
        }
      }
    }
  }
}

}  // namespace
}  // namespace todo
