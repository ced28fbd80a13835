// InflightTable: the router's deadline table — every request forwarded to a
// node and not yet answered, keyed by the router's sequence number.
//
// Design: every deadline is "now + one constant timeout" read from a steady
// clock, so requests expire in the order they were sent. The table is a
// FIFO of (seq, deadline) in that order plus a hash map seq -> entry:
//   insert   push_back + map insert              O(1)
//   complete map erase; pop finished slots off the front   O(1) amortized
//   expire   pop from the front while due        O(1) per expired entry
// A completed request leaves its slot in the FIFO until it reaches the
// front; when such slots outnumber the bound, the FIFO is compacted in one
// pass (amortized O(1)), so memory stays bounded by the capacity even when
// one old request is stuck behind many completed ones.
// At most `capacity` entries live at once; past that the caller answers
// `overloaded`. An entry leaves the table exactly once — completed or
// expired — which is what makes "exactly one reply per request" hold: a
// reply whose seq is no longer here is late and is dropped.
// Pure (no clock, no sockets, no threads); not thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>
#include <zmq.hpp>

#include "common/protocol.h"
#include "router/node_table.h"

namespace todo::router {

// A request id that owns its bytes (a decoded RequestId points into the
// request's body, which the router forwards and so cannot keep).

using protocol::OwnedRequestId;

struct InflightEntry {
  uint64_t seq = 0;    // the router's sequence number, unique per router run
  TimePoint deadline;  // when the client gets `timeout` instead
  uint32_t node = 0;   // index of the node it was sent to
  protocol::Op op = protocol::Op::kPing;
  OwnedRequestId id;                  // echoed in a timeout reply
  std::vector<std::string> envelope;  // the client's frames before the body, identity first
  // Replicated mode: a reference to the request's body (a ZeroMQ message
  // shares its buffer) and the map version it was routed by, so a "not
  // primary" answer can be forwarded again, to the new primary. Empty in
  // static mode (an optional: moving or dropping an empty one costs no
  // libzmq call, and an entry moves several times).
  std::optional<zmq::message_t> body;
  uint64_t map_version = 0;
  uint32_t partition = 0;
  uint8_t not_primary_tries = 0;  // "not primary" answers retried so far
  uint32_t bytes = 0;             // what the request holds, counted in bytes()
};

class InflightTable {
 public:
  // At most `capacity` (>= 1) entries at once.
  explicit InflightTable(size_t capacity);

  size_t size() const { return entries_.size(); }
  size_t capacity() const { return capacity_; }
  bool full() const { return entries_.size() >= capacity_; }
  // The sum of the live entries' `bytes`.
  uint64_t bytes() const { return bytes_; }

  // Adds `entry` (moved from only if added). Returns false, and adds nothing, if the table is full,
  // the seq is already present, or the deadline is earlier than one already inserted (deadlines
  // must not decrease).
  bool Insert(InflightEntry&& entry);

  // The live entry for `seq`, or nullptr (its deadline stays as it was).
  InflightEntry* Find(uint64_t seq);

  // Removes and returns the entry for `seq`; nullopt if there is none (never
  // inserted, already completed, or already expired).
  std::optional<InflightEntry> Complete(uint64_t seq);

  // Removes every entry sent to `node`, appending them to *taken (O(size):
  // for rare events, such as a node known dead). Returns how many.
  size_t TakeNode(uint32_t node, std::vector<InflightEntry>* taken);

  // Removes every entry whose deadline is <= now, earliest first, appending
  // them to *expired. Returns how many.
  size_t Expire(TimePoint now, std::vector<InflightEntry>* expired);

  // The earliest deadline of a live entry; nullopt if the table is empty.
  std::optional<TimePoint> NextDeadline() const;

  // FIFO slots, live or finished (for tests of the memory bound).
  size_t slots() const { return order_.size(); }

 private:
  struct Slot {
    uint64_t seq;
    TimePoint deadline;
  };
  // Pops finished slots off the front, so the front is live or the FIFO is
  // empty.
  void PopFinished();
  void CompactIfSparse();

  const size_t capacity_;
  std::deque<Slot> order_;  // by deadline, ascending
  std::unordered_map<uint64_t, InflightEntry> entries_;
  std::optional<TimePoint> last_deadline_;
  uint64_t bytes_ = 0;
};

}  // namespace todo::router
