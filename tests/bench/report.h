// todo-bench's results: the process's CPU use, and the summary as a human
// table or as one JSON object.
#pragma once

#include <string>

#include "tests/bench/bench_options.h"
#include "tests/bench/driver.h"

namespace todo::bench {

struct CpuTimes {
  double user_s = 0;
  double sys_s = 0;
  double total_s() const { return user_s + sys_s; }
};

// User and system CPU seconds of this process so far (all threads).
CpuTimes ProcessCpu();

struct BenchSummary {
  const BenchOptions* options = nullptr;
  RunStats stats;         // merged over threads
  double preload_s = 0;   // wall time of the preload phase
  CpuTimes cpu_total;     // the whole process, at the end
  CpuTimes cpu_measured;  // during the measured window only
  // --smart: what the map gave ("map version 7: 3 nodes, 256 partitions"),
  // or why there was none (then every request went to --endpoint).
  bool smart_map = false;
  std::string smart_note;
};

// A compact table: throughput, errors by code, latency quantiles per op.
std::string FormatTable(const BenchSummary& summary);
// The same figures as one JSON object on one line (no trailing newline).
std::string FormatJson(const BenchSummary& summary);

// --touch-lists (the outcomes are in stats.preload, the time in preload_s):
// "todo-bench ENDPOINT: touched N lists in S s: K ok, F failed {code:n,...}\n",
// or one JSON object {"endpoint","backend","lists","touched_ok","touch_s",
// "errors","cpu"} (no trailing newline).
std::string FormatTouchLine(const BenchSummary& summary);
std::string FormatTouchJson(const BenchSummary& summary);

}  // namespace todo::bench
