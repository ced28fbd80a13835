// The backend interface of todo-bench: one client connection that can send a
// request tagged by the caller and report completed requests by tag.
//
// The driver (driver.h) owns the window, the deadlines and the statistics; a
// backend only translates a BenchRequest into its wire format and replies
// back into an Outcome. The ZeroMQ backend (zmq_connection.h) speaks the
// todo protocol to a router or a node; the Redis backend (redis_connection.h:
// hiredis, pipelined on a non-blocking socket) implements the same interface,
// polling on its file descriptor, which zmq_poll accepts next to ZeroMQ
// sockets.
//
// Threading: a Connection is used by one thread only (its driver's).
#pragma once

#include <zmq.h>

#include <array>
#include <cstdint>
#include <string_view>
#include <vector>

#include "common/date.h"
#include "common/status.h"

namespace todo::bench {

// What the bench asks for. kPing is only used to check that a server answers.
enum class BenchOp : uint8_t { kAdd, kEntries, kEntriesAll, kUpdate, kDelete, kPing };
constexpr int kNumLoadOps = 5;  // kAdd..kDelete, the ops of a --mix
// The ops of a --mix, in BenchOp order.
inline constexpr std::array<BenchOp, kNumLoadOps> kLoadOps = {
    BenchOp::kAdd, BenchOp::kEntries, BenchOp::kEntriesAll, BenchOp::kUpdate, BenchOp::kDelete};

// "add", "entries", "entries_all", "update", "delete", "ping".
std::string_view BenchOpName(BenchOp op);

// One request. The views must stay valid until Send() returns.
struct BenchRequest {
  BenchOp op = BenchOp::kPing;
  std::string_view list;   // every op but kPing
  Date date;               // kAdd, kEntries, kUpdate
  std::string_view title;  // kAdd, kUpdate
  uint64_t entry_id = 0;   // kUpdate, kDelete
};

// How a request ended: success, an error code of the protocol, or one of the
// bench's own (kClientTimeout: no reply before the deadline; kBadReply: a
// reply that matched the request but could not be understood).
enum class Outcome : uint8_t {
  kOk,
  kBadRequest,
  kUnknownOp,
  kNotFound,
  kOverloaded,
  kUnavailable,
  kTimeout,
  kInternal,
  kClientTimeout,
  kBadReply,
};
constexpr int kNumOutcomes = 10;

// "ok", the wire code names ("bad_request", ...), "client_timeout", "bad_reply".
std::string_view OutcomeName(Outcome outcome);
Outcome OutcomeFromErrorCode(ErrorCode code);

// A finished request: the caller's tag and how it ended.
struct Completion {
  uint64_t tag = 0;
  Outcome outcome = Outcome::kOk;
};

class Connection {
 public:
  enum class SendResult : uint8_t {
    kSent,        // queued; a Completion with this tag will follow (or never)
    kWouldBlock,  // the transport is full: retry the same request later
    kFailed,      // the connection is broken
  };

  virtual ~Connection() = default;

  // Queues one request, tagged so its Completion can be matched. Never blocks.
  virtual SendResult Send(const BenchRequest& request, uint64_t tag) = 0;
  // Pushes queued requests to the transport after a batch of Send() calls
  // (a pipelining backend writes its buffer here). Never blocks.
  virtual Status Flush() { return Status::Ok(); }
  // What to poll: a ZeroMQ socket or a file descriptor, with ZMQ_POLLIN set;
  // the driver adds ZMQ_POLLOUT when it has requests the transport refused.
  virtual zmq_pollitem_t PollItem() = 0;
  // Every item to poll, appended to *out (none is allowed: a connection
  // whose sockets another connection polls); a backend with several
  // sockets (SmartConnection) overrides it. Receive() is called when any
  // has input.
  virtual void AppendPollItems(std::vector<zmq_pollitem_t>* out) { out->push_back(PollItem()); }
  // Before each Receive(): the items AppendPollItems() gave, with their
  // revents from the last poll, so a backend with several sockets reads
  // only those with input.
  virtual void NoteReady(const zmq_pollitem_t* /*items*/, size_t /*n*/) {}
  // True if Receive() must also be called when nothing came in (a backend
  // with timers of its own: resends, a periodic request). The driver polls
  // at least every 10 ms.
  virtual bool HasTimers() const { return false; }
  // True if the backend holds output it could not write yet (the driver then
  // polls for ZMQ_POLLOUT and calls Flush() when writable).
  virtual bool WantsWrite() const { return false; }
  // Appends up to `max` completions that are available now to *out, without
  // blocking; returns how many it appended. Replies that match no tag (no id,
  // undecodable) are counted in stray_replies() instead.
  virtual size_t Receive(std::vector<Completion>* out, size_t max) = 0;
  // Replies received that could not be matched to any request.
  virtual uint64_t stray_replies() const = 0;
  // Requests the backend sent again on its own (todo-bench --smart: after a
  // "not primary" or `unavailable`, to the primary of a refreshed map).
  virtual uint64_t redirected() const { return 0; }
};

}  // namespace todo::bench
