// The per-thread engine of todo-bench: keeps a fixed window of requests in
// flight on each of its connections, enforces per-request deadlines and
// records outcomes and latencies.
//
// DESIGN. A bench thread owns a ThreadDriver and its connections; nothing in
// it is shared with other threads, so no lock is taken on the request path.
// One loop (Pump) serves every phase: top up each connection to `window`
// requests in flight, zmq_poll all connections at once (ZeroMQ sockets or
// plain file descriptors), take every available reply, and every 10 ms expire
// the requests past their deadline (client_timeout). Requests are tagged
// (generation << 32 | slot), so a reply to a request that already timed out
// is recognised as late and ignored. Phase changes are the caller's: the
// threads meet at barriers in todo_bench.cc between Handshake, Preload and
// Run, and Run's time points are the same for every thread.
//
// Memory is fixed after construction (but for a --smart connection's
// sockets, one per node): per connection a slot table of
// `window` entries; per thread one latency histogram per op.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "tests/bench/connection.h"
#include "tests/bench/histogram.h"
#include "tests/bench/workload.h"

namespace todo::bench {

// Nanoseconds on the steady clock.
int64_t NowNs();

// The timed run, in NowNs() time; the same for every thread.
struct Phases {
  int64_t warm_start_ns = 0;
  int64_t measure_start_ns = 0;  // replies before this are warmup, not counted
  int64_t measure_end_ns = 0;    // no request is sent at or after this
};

// What one thread (or, merged, the whole run) observed.
struct RunStats {
  // Latency, in nanoseconds, of successful replies received in the measured
  // window; one histogram per load op (merge them for "all").
  std::array<LatencyHistogram, kNumLoadOps> latency;
  // Requests that ended in the measured window, by op and outcome (a
  // client_timeout ends when it is detected).
  std::array<std::array<uint64_t, kNumOutcomes>, kNumLoadOps> outcomes{};
  uint64_t warmup_ok = 0;                        // successes during warmup
  std::array<uint64_t, kNumOutcomes> preload{};  // preload adds by outcome
  uint64_t late_replies = 0;                     // replies to requests that had timed out
  uint64_t stray_replies = 0;                    // replies matching no request (no id, undecodable)
  uint64_t redirected = 0;  // --smart: requests resent after "not primary"/unavailable (whole run)
  uint64_t unfinished = 0;  // still unanswered when the final drain gave up
  uint64_t broken_connections = 0;  // connections whose transport failed

  void Merge(const RunStats& other);
};

struct DriverOptions {
  uint32_t window = 32;                 // requests in flight per connection
  int64_t timeout_ns = 10'000'000'000;  // per-request deadline
};

class ThreadDriver {
 public:
  // `connections[i]` sends streams[i]'s requests. `workload` must outlive
  // the driver. Requires connections.size() == streams.size().
  ThreadDriver(const Workload& workload, DriverOptions options,
               std::vector<std::unique_ptr<Connection>> connections,
               std::vector<RequestStream> streams);

  // Pings every connection (re-pinging one whose ping timed out) until each
  // has had a reply or `deadline_ns` passes; returns how many had one. Any
  // matched reply counts, even an error.
  uint32_t Handshake(int64_t deadline_ns);

  // Sends `preload` adds to each of `lists` (window-pipelined over all
  // connections) and returns when each is answered or timed out. An add
  // refused with overloaded or unavailable (never applied, by the protocol)
  // is retried after a back-off, up to kPreloadAttempts times in all.
  // Final outcomes go to stats().preload.
  static constexpr uint32_t kPreloadAttempts = 20;
  void Preload(const std::vector<uint32_t>& lists);

  // --touch-lists: like Preload, but sends one TouchRequest (entries, no
  // date) to each of `lists`; outcomes also go to stats().preload.
  void Touch(const std::vector<uint32_t>& lists);

  // The timed run: sends from the streams until measure_end, then waits for
  // the requests still in flight (up to their deadlines) without counting them.
  void Run(const Phases& phases);

  // Meaningful after Run(); stray_replies is filled in by Run().
  const RunStats& stats() const { return stats_; }

 private:
  struct Slot {
    uint32_t gen = 0;
    bool busy = false;
    BenchOp op = BenchOp::kPing;
    int64_t sent_ns = 0;
    int64_t deadline_ns = 0;
    uint64_t cookie = 0;  // the source's own tag of the request
  };
  struct Conn {
    std::unique_ptr<Connection> connection;
    std::vector<Slot> slots;
    std::vector<uint32_t> free;           // slot indices, used as a stack
    std::optional<BenchRequest> pending;  // refused by the transport; sent first
    uint64_t pending_cookie = 0;
    bool blocked = false;
    bool broken = false;
  };

  // The phase-specific parts of Pump, as a small interface.
  class Source {
   public:
    virtual ~Source() = default;
    // The next request for connection `c`, or false to send nothing now.
    // *cookie (0 unless set) comes back in Done()'s slot.cookie.
    virtual bool Next(size_t c, BenchRequest* out, uint64_t* cookie) = 0;
    // A request ended (reply or client_timeout) at now_ns.
    virtual void Done(size_t c, const Slot& slot, Outcome outcome, int64_t now_ns) = 0;
    // True when Next() will never again return true.
    virtual bool Exhausted() const = 0;
  };

  // Runs the loop until `until_ns`, or until the source is exhausted and
  // nothing is in flight; each request gets `timeout_ns`.
  void Pump(Source& source, int64_t until_ns, int64_t timeout_ns);
  void TopUp(size_t c, Source& source, int64_t timeout_ns);
  void ExpireDue(Source& source, int64_t now_ns);
  // Preload and Touch: `per_list` requests to each of `lists`, made by
  // PreloadRequest (touch false) or TouchRequest (touch true).
  void Fill(const std::vector<uint32_t>& lists, uint32_t per_list, bool touch);

  const Workload& workload_;
  DriverOptions options_;
  std::vector<Conn> conns_;
  std::vector<RequestStream> streams_;
  std::vector<zmq_pollitem_t> items_;
  std::vector<uint32_t> item_conn_;   // items_[i] belongs to conns_[item_conn_[i]]
  std::vector<uint8_t> readable_;     // per connection: some item had input
  std::vector<uint32_t> item_first_;  // connection c's items: [item_first_[c], item_first_[c + 1])
  std::vector<Completion> completions_;
  uint64_t in_flight_ = 0;
  RunStats stats_;
};

}  // namespace todo::bench
