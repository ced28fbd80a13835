// What todo-bench sends: the op mix, the list names, dates and titles, and a
// deterministic request stream per connection.
//
// Determinism: a connection's stream depends only on --seed, the connection's
// index and the workload flags, never on timing or on replies, so two runs
// with the same flags send the same requests in the same order on each
// connection (how many of them depends on the server's speed).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/date.h"
#include "common/status.h"
#include "tests/bench/connection.h"

namespace todo::bench {

// Relative weights of the five load ops, from "--mix add=70,entries=30".
struct Mix {
  std::array<uint32_t, kNumLoadOps> weights{};  // indexed by BenchOp
  uint32_t total = 0;

  bool Has(BenchOp op) const { return weights[static_cast<int>(op)] > 0; }
  // "add=70,entries=30" (only the ops with a weight, in BenchOp order).
  std::string ToString() const;
};

// Parses "op=weight[,op=weight...]" with ops add, entries, entries_all,
// update, delete and integer weights 0..1000000; at least one weight > 0, no
// op twice.
StatusOr<Mix> ParseMix(std::string_view text);

// xoshiro256**, seeded through splitmix64. Small, fast, and the same on
// every platform.
class Rng {
 public:
  explicit Rng(uint64_t seed);
  uint64_t Next();
  // Uniform in [0, n) (Lemire's multiply-shift; the bias is below 2^-32 for
  // the n used here). Requires n > 0.
  uint64_t Below(uint64_t n);

 private:
  std::array<uint64_t, 4> s_;
};

struct WorkloadOptions {
  uint32_t lists = 10000;  // list names prefix0 .. prefix<lists-1>
  std::string list_prefix = "bench-";
  uint32_t dates = 30;        // distinct dates, from 2026-01-01 on
  uint32_t title_bytes = 24;  // every title has exactly this many bytes
  uint32_t preload = 0;       // entries added to every list before the run
  Mix mix;
};

// The immutable part, shared by every thread: names, dates, title bytes.
class Workload {
 public:
  // Title windows start at one of this many offsets into the title pool.
  static constexpr uint32_t kTitleOffsets = 64;

  // Requires options validated (lists, dates, title_bytes >= 1).
  explicit Workload(WorkloadOptions options);

  const WorkloadOptions& options() const { return options_; }
  std::string_view ListName(uint32_t index) const;
  Date DateAt(uint32_t index) const { return dates_[index]; }
  // A title of exactly title_bytes printable ASCII bytes; `variant` picks
  // one of kTitleOffsets windows into a pool.
  std::string_view Title(uint32_t variant) const;
  // The k-th preload add (k < preload) of a list.
  BenchRequest PreloadRequest(uint32_t list, uint32_t k) const;
  // The one request --touch-lists sends to a list: entries, no date.
  BenchRequest TouchRequest(uint32_t list) const;

 private:
  WorkloadOptions options_;
  std::string names_;                // all names, back to back
  std::vector<uint32_t> name_ends_;  // end offset of each name in names_
  std::vector<Date> dates_;
  std::string title_pool_;
};

// One connection's request stream for the timed run.
class RequestStream {
 public:
  // `workload` must outlive the stream. Streams of different connections
  // are independent: the generator is seeded from (seed, connection).
  RequestStream(const Workload& workload, uint64_t seed, uint32_t connection);

  // The next request. Its views point into the Workload.
  //  - the list is uniform over all lists;
  //  - dates are uniform over the --dates dates, titles over the variants;
  //  - update and delete pick an entry id uniform in [1, preload + n], n
  //    being the adds this connection has generated for that list so far.
  //    Such an id exists when the lists started empty (this connection's own
  //    earlier adds reach the list before the update does), unless a delete
  //    or a failed add took it away.
  BenchRequest Next();

 private:
  const Workload& workload_;
  Rng rng_;
  bool track_adds_;
  std::vector<uint32_t> adds_;  // per list; only with update/delete in the mix
};

}  // namespace todo::bench
