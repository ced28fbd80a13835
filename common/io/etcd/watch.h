// EtcdWatch: a watch of one key or a key range in etcd, on a thread of its
// own, that survives the loss of the etcd member it streams from.
//
// Design: the thread POSTs a create_request to /v3/watch on one endpoint
// (HttpStream) and reads the gateway's stream, one JSON object a line,
// handing each batch of events to the callback. When the stream breaks (the
// member dies, answers garbage, or fails a probe) the thread reports it,
// pauses (50 ms doubling to max_backoff), and reconnects to the next
// endpoint with start_revision = the revision after the last event it
// delivered: no event is lost, none delivered twice (etcd delivers all the
// events of one revision in one message). While the stream is idle, every
// probe_interval the thread probes its endpoint with a linearizable read
// (which needs the raft leader) on a second connection: a frozen member, or
// one cut off from the others, would otherwise leave the watch silent
// forever. The probe reads the watched key written last: if its revision is
// one the stream has not delivered, at this probe and still at the next,
// the stream has fallen silent while etcd moved on, and it is dropped and
// reopened from the last revision delivered (a safety net: nothing should
// stall a healthy stream, but a watch that misses the cluster's map
// freezes a node's view of it). (etcd's own progress notifications come
// every 10 minutes by default; they are not requested.) If the revision to resume from has
// been compacted, the watch reports it and ends: the owner re-reads what it
// watches (e.g. GetPrefix) and starts a new watch at that read's
// revision + 1.
//
// Threads: the callback runs on the watch's thread, one call at a time, in
// revision order; while it runs the stream is not read (the socket buffers,
// then etcd). Stop() (and the destructor) wakes every wait through an
// eventfd and joins: it returns once a callback in progress has returned.
// Called from the callback, Stop() only asks the thread to end (the
// destructor, on another thread, joins it); never destroy the watch from
// its callback.
//
// Bounds: one message of the stream at most max_message_bytes (else the
// stream is dropped and reopened, a kConnectionLost).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "common/io/etcd/client.h"
#include "common/io/etcd/types.h"
#include "common/status.h"

namespace todo::io {

struct WatchUpdate {
  enum class Kind {
    kEvents,          // events: one or more, in revision order
    kConnected,       // the stream is up at `endpoint` (first time and after each reconnect)
    kConnectionLost,  // the stream at `endpoint` broke (status says why); reconnecting
    kCompacted,       // revision = etcd's compact revision; the watch has ended
    kFailed,          // etcd refused the watch (status says why); the watch has ended
  };
  Kind kind = Kind::kEvents;
  std::vector<Event> events;
  int64_t revision = 0;  // kEvents: the store's revision; kCompacted: the compact revision
  std::string endpoint;
  Status status;
};

class EtcdWatch {
 public:
  struct Options {
    std::string key;
    std::string range_end;       // "" = the key alone (see Prefix())
    int64_t start_revision = 0;  // 0 = from now
    // Idle time after which the endpoint is probed.
    std::chrono::milliseconds probe_interval{2000};
    // Connecting and each probe: this long at most. 0 = the client's
    // attempt_timeout.
    std::chrono::milliseconds attempt_timeout{0};
    std::chrono::milliseconds max_backoff{1000};
    size_t max_message_bytes = 64u << 20;

    // Every key starting with `prefix`.
    static Options Prefix(std::string prefix, int64_t start_revision = 0);
  };
  using Callback = std::function<void(const WatchUpdate&)>;

  // `client` (its endpoints and options) must outlive the watch.
  EtcdWatch(EtcdClient* client, Options options, Callback callback);
  ~EtcdWatch();  // Stop()
  EtcdWatch(const EtcdWatch&) = delete;
  EtcdWatch& operator=(const EtcdWatch&) = delete;

  // Starts the thread. internal if no eventfd or thread. Call once.
  Status Start();
  // Ends the watch; see the design note for when it returns. Idempotent.
  void Stop();

  // The revision the watch resumes from (after the last event delivered);
  // 0 before the first connection of a watch started "from now".
  int64_t next_revision() const { return next_revision_.load(std::memory_order_acquire); }
  // True once the thread has ended (Stop, compaction or failure).
  bool ended() const { return ended_.load(std::memory_order_acquire); }

 private:
  enum class End { kReconnect, kStop };
  void Loop();
  // One stream on endpoint `index` until it breaks (*why) or must end.
  End StreamOnce(size_t index, Status* why);
  // Handles one line; kStop for compaction or failure, *why for a broken stream.
  bool HandleLine(const std::string& line, size_t index, bool* created, End* end, Status* why);
  // The mod_revision of the watched key written last (0: none), read
  // linearizably from `ep`.
  StatusOr<int64_t> Probe(const EtcdEndpoint& ep);
  void Report(WatchUpdate update);
  // Sleeps up to `d`; true if asked to stop meanwhile.
  bool SleepUnlessStopped(std::chrono::milliseconds d);
  std::chrono::milliseconds attempt_timeout() const;

  EtcdClient* const client_;
  const Options options_;
  const Callback callback_;
  int stop_fd_ = -1;  // eventfd: written by Stop()
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> ended_{false};
  std::atomic<int64_t> next_revision_{0};
  bool connected_once_ = false;  // the thread's: a stream was created since the last pause
};

}  // namespace todo::io
