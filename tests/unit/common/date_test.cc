#include "common/date.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <string>

namespace todo {
namespace {

TEST(IsValidDateTest, LeapYearRules) {
  EXPECT_TRUE(IsValidDate(2024, 2, 29));   // divisible by 4
  EXPECT_FALSE(IsValidDate(2026, 2, 29));  // not divisible by 4
  EXPECT_FALSE(IsValidDate(1900, 2, 29));  // divisible by 100, not 400
  EXPECT_TRUE(IsValidDate(2000, 2, 29));   // divisible by 400
  EXPECT_TRUE(IsValidDate(2400, 2, 29));
  EXPECT_FALSE(IsValidDate(2100, 2, 29));
  EXPECT_TRUE(IsValidDate(4, 2, 29));
  EXPECT_FALSE(IsValidDate(1, 2, 29));
  EXPECT_TRUE(IsValidDate(2026, 2, 28));
  EXPECT_FALSE(IsValidDate(2024, 2, 30));
}

TEST(IsValidDateTest, MonthLengths) {
  const int kDays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  for (int m = 1; m <= 12; ++m) {
    EXPECT_TRUE(IsValidDate(2026, m, kDays[m - 1])) << m;
    EXPECT_FALSE(IsValidDate(2026, m, kDays[m - 1] + 1)) << m;
    EXPECT_FALSE(IsValidDate(2026, m, 0)) << m;
  }
}

TEST(IsValidDateTest, Ranges) {
  EXPECT_TRUE(IsValidDate(1, 1, 1));
  EXPECT_TRUE(IsValidDate(9999, 12, 31));
  EXPECT_FALSE(IsValidDate(0, 1, 1));
  EXPECT_FALSE(IsValidDate(10000, 1, 1));
  EXPECT_FALSE(IsValidDate(-1, 1, 1));
  EXPECT_FALSE(IsValidDate(2026, 0, 1));
  EXPECT_FALSE(IsValidDate(2026, 13, 1));
  EXPECT_FALSE(IsValidDate(2026, -1, 1));
  EXPECT_FALSE(IsValidDate(2026, 1, -1));
  EXPECT_FALSE(IsValidDate(2026, 1, 32));
}

TEST(MakeDateTest, PacksYyyymmdd) {
  auto d = MakeDate(2026, 3, 7);
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->packed, 20260307u);
  EXPECT_EQ(d->year(), 2026);
  EXPECT_EQ(d->month(), 3);
  EXPECT_EQ(d->day(), 7);
  EXPECT_FALSE(MakeDate(2026, 2, 29).has_value());
  EXPECT_FALSE(MakeDate(0, 1, 1).has_value());
}

TEST(DateTest, OrderIsCalendarOrder) {
  auto a = *ParseDate("2025-12-31");
  auto b = *ParseDate("2026-01-01");
  auto c = *ParseDate("2026-01-02");
  EXPECT_LT(a, b);
  EXPECT_LT(b, c);
  EXPECT_EQ(b, *ParseDate("2026-01-01"));
  EXPECT_NE(a, c);
}

TEST(ParseDateTest, AcceptsValidDates) {
  for (const char* s : {"0001-01-01", "9999-12-31", "2024-02-29", "2000-02-29", "2400-02-29",
                        "2026-01-01", "2026-12-31", "1970-01-01"}) {
    auto d = ParseDate(s);
    ASSERT_TRUE(d.has_value()) << s;
    EXPECT_EQ(FormatDate(*d), s);
  }
}

TEST(ParseDateTest, RefusesDatesThatDoNotExist) {
  for (const char* s : {"2026-02-29", "1900-02-29", "2100-02-29", "0000-01-01", "0000-12-31",
                        "2026-13-01", "2026-00-01", "2026-01-00", "2026-01-32", "2026-04-31",
                        "2026-06-31", "2026-09-31", "2026-11-31", "2026-99-99"}) {
    EXPECT_FALSE(ParseDate(s).has_value()) << s;
  }
}

TEST(ParseDateTest, RefusesOtherShapes) {
  for (const char* s : {"",
                        "2026-1-01",
                        "2026-01-1",
                        "26-01-01",
                        "2026/01/01",
                        "2026.01.01",
                        "20260101",
                        "2026-01-01 ",
                        " 2026-01-01",
                        "2026-01-01\n",
                        "2026-01-01T00:00",
                        "2026-01-011",
                        "10000-01-01",
                        "+026-01-01",
                        "-026-01-01",
                        "2026-+1-01",
                        "2026-01-+1",
                        "2026- 1-01",
                        "2026-01- 1",
                        "202a-01-01",
                        "2026-0a-01",
                        "2026-01-0a",
                        "2026_01_01",
                        "2026-01--1",
                        "2026--01-01",
                        "x",
                        "YYYY-MM-DD",
                        "２０２６-01-01"}) {
    EXPECT_FALSE(ParseDate(s).has_value()) << "'" << s << "'";
  }
}

TEST(ParseDateTest, RefusesEmbeddedAndTrailingNul) {
  EXPECT_FALSE(ParseDate(std::string("2026-01-01\0", 11)).has_value());
  EXPECT_FALSE(ParseDate(std::string("2026-01\0001", 10)).has_value());
  EXPECT_FALSE(ParseDate(std::string("\0\0\0\0-\0\0-\0\0", 10)).has_value());
  // A view shorter than the buffer it points into reads only its own bytes.
  std::string_view longer = "2026-01-01XYZ";
  EXPECT_TRUE(ParseDate(longer.substr(0, 10)).has_value());
}

TEST(ParseDateTest, RefusesEveryNonDigitInEveryDigitPosition) {
  const std::string good = "2026-05-17";
  for (size_t pos : {0u, 1u, 2u, 3u, 5u, 6u, 8u, 9u}) {
    for (int c = 0; c < 256; ++c) {
      if (c >= '0' && c <= '9') continue;
      std::string s = good;
      s[pos] = static_cast<char>(c);
      EXPECT_FALSE(ParseDate(s).has_value()) << "pos " << pos << " byte " << c;
    }
  }
  for (size_t pos : {4u, 7u}) {
    for (int c = 0; c < 256; ++c) {
      if (c == '-') continue;
      std::string s = good;
      s[pos] = static_cast<char>(c);
      EXPECT_FALSE(ParseDate(s).has_value()) << "pos " << pos << " byte " << c;
    }
  }
}

// Every (month, day) of whole years, leap or not, with the 100/400 rules: the
// valid ones round-trip through ParseDate/FormatDate and count 365 or 366.
TEST(ParseDateTest, EveryDayOfWholeYearsRoundTrips) {
  struct Year {
    int year;
    int days;
  };
  for (Year y : {Year{1, 365}, Year{4, 366}, Year{1900, 365}, Year{2000, 366}, Year{2024, 366},
                 Year{2026, 365}, Year{2100, 365}, Year{2400, 366}, Year{9999, 365}}) {
    int valid = 0;
    Date prev{};
    for (int m = 1; m <= 12; ++m) {
      for (int d = 1; d <= 31; ++d) {
        char text[11];
        std::snprintf(text, sizeof text, "%04d-%02d-%02d", y.year, m, d);
        auto parsed = ParseDate(text);
        EXPECT_EQ(parsed.has_value(), IsValidDate(y.year, m, d)) << text;
        if (!parsed) continue;
        ++valid;
        EXPECT_EQ(FormatDate(*parsed), text);
        char out[10];
        FormatDateTo(*parsed, out);
        EXPECT_EQ(std::string(out, 10), text);
        EXPECT_EQ(parsed->year(), y.year);
        EXPECT_EQ(parsed->month(), m);
        EXPECT_EQ(parsed->day(), d);
        EXPECT_LT(prev, *parsed) << text;  // packed order is calendar order
        prev = *parsed;
      }
    }
    EXPECT_EQ(valid, y.days) << y.year;
  }
}

TEST(FormatDateTest, PadsWithZeros) {
  EXPECT_EQ(FormatDate(*MakeDate(1, 1, 1)), "0001-01-01");
  EXPECT_EQ(FormatDate(*MakeDate(12, 3, 4)), "0012-03-04");
  EXPECT_EQ(FormatDate(*MakeDate(999, 10, 10)), "0999-10-10");
  EXPECT_EQ(FormatDate(*MakeDate(9999, 12, 31)), "9999-12-31");
}

}  // namespace
}  // namespace todo
