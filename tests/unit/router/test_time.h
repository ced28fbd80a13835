// Injected times for the router's unit tests (no clock is read): kStart, an
// arbitrary steady_clock time, and At(ms), ms milliseconds after it.
#pragma once

#include <chrono>
#include <cstdint>

namespace todo::router::test_time {

using TimePoint = std::chrono::steady_clock::time_point;

inline const TimePoint kStart = TimePoint() + std::chrono::hours(1);

inline TimePoint At(int64_t ms) { return kStart + std::chrono::milliseconds(ms); }

}  // namespace todo::router::test_time
