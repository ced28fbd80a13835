// Calendar dates as the protocol writes them: "YYYY-MM-DD", a real Gregorian
// date, years 0001-9999. Pure.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace todo {

// A date packed as YYYYMMDD, so the natural integer order is date order.
struct Date {
  uint32_t packed = 0;

  int year() const { return static_cast<int>(packed / 10000); }
  int month() const { return static_cast<int>(packed / 100 % 100); }
  int day() const { return static_cast<int>(packed % 100); }
  friend bool operator==(Date a, Date b) { return a.packed == b.packed; }
  friend auto operator<=>(Date a, Date b) { return a.packed <=> b.packed; }
};

// True if y-m-d is a real Gregorian date with 1 <= y <= 9999.
bool IsValidDate(int year, int month, int day);

// Parses exactly "YYYY-MM-DD" (ten bytes, ASCII digits); nullopt if the text
// has another shape or names no real date (2026-02-29, 0000-01-01, ...).
std::optional<Date> ParseDate(std::string_view text);

// Only for a valid date (packed from ParseDate or IsValidDate).
std::optional<Date> MakeDate(int year, int month, int day);

// "YYYY-MM-DD".
std::string FormatDate(Date date);
// Writes the ten bytes of "YYYY-MM-DD" to out.
void FormatDateTo(Date date, char out[10]);

}  // namespace todo
