// The units of work that travel through a node: a Call (one decoded request
// and the frames it came in) and a Reply (the frames to send back).
//
// Frames are zmq::message_t and are moved, never copied: the envelope frames
// of a request become the envelope frames of its reply. The request's body
// frame stays alive in the Call because the decoded Request points into it.
// A body of up to 33 bytes lives inside the zmq_msg_t itself and so moves
// with it: Call's move operations re-point the Request's views at the new
// place, so no body is ever copied to keep the views valid.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <msgpack/sbuffer.hpp>
#include <new>
#include <vector>
#include <zmq.hpp>

#include "common/protocol.h"
#include "common/status.h"

namespace todo::node {

// Every frame before the body: the ROUTER identity, any frames a router
// prepended, and the empty delimiter if the client sent one. Opaque; echoed.
// It also carries the request's Trace, which moves with the frames from the
// Call to its Reply, so the socket loop can count and time every reply
// (node/metrics.h), and give back the bytes it counted for the request
// (FlightMeter::requests), without the actors or writers knowing.
struct Envelope : std::vector<zmq::message_t> {
  using std::vector<zmq::message_t>::vector;
  using std::vector<zmq::message_t>::operator=;

  struct Trace {
    static constexpr uint8_t kNoOp = 0xff;             // the request did not decode
    uint8_t op = kNoOp;                                // a protocol::Op
    uint32_t request_bytes = 0;                        // counted in FlightMeter::requests
    std::chrono::steady_clock::time_point received{};  // zero: not timed
    // Came in a router's hop batch (common/hop_batch.h): the reply goes
    // back in one too.
    bool batch = false;
  };
  Trace trace;
};

// The bytes a node holds, each kind against --max-inflight-mb: the
// requests inside it (`requests`: refused at the door while over), and the
// large read replies it has not yet handed to the kernel (`replies`: large
// reads refused while over). So a flood of big requests can't grow the
// node's memory, and neither can reads of big lists by clients that don't
// read their replies; a client that stalls holds up only other large reads
// (until it reads or disconnects), never small requests. Any thread.
struct FlightMeter {
  std::atomic<int64_t> requests{0};
  std::atomic<int64_t> replies{0};
  int64_t budget = 0;  // bytes, for each; 0: no limit

  bool requests_over() const {
    return budget > 0 && requests.load(std::memory_order_relaxed) > budget;
  }
  bool replies_over() const {
    return budget > 0 && replies.load(std::memory_order_relaxed) > budget;
  }
  // The answers to a request refused while one is over.
  Status RequestsRefusal() const {
    return Status::Overloaded("node holds " +
                              std::to_string(requests.load(std::memory_order_relaxed) >> 20) +
                              " MiB of requests (--max-inflight-mb)");
  }
  Status RepliesRefusal() const {
    return Status::Overloaded(
        "node holds " + std::to_string(replies.load(std::memory_order_relaxed) >> 20) +
        " MiB of large replies its clients have not read yet (--max-inflight-mb)");
  }
};

// Reply bodies from this size on are counted in a FlightMeter (when given
// one) from their encoding until ZeroMQ frees them, after the send.
inline constexpr size_t kLargeReplyBytes = 16 * 1024;

namespace detail {
// A counted body's allocation: its size, then the bytes ZeroMQ sends.
inline constexpr size_t kCountedHeader = 16;
inline void FreeCounted(void* data, void* hint) {
  char* block = static_cast<char*>(data) - kCountedHeader;
  size_t n;
  std::memcpy(&n, block, sizeof n);
  static_cast<FlightMeter*>(hint)->replies.fetch_sub(static_cast<int64_t>(n),
                                                     std::memory_order_relaxed);
  std::free(block);
}
}  // namespace detail

// Encodes a reply body by calling encode(msgpack::sbuffer&) on a per-thread
// scratch buffer and copying the bytes into a zmq message: one allocation
// for a reply (none for one of up to 33 bytes, which zmq keeps inline),
// instead of a buffer plus zmq's descriptor for it. A body of
// kLargeReplyBytes or more is counted in `large` (if given) until freed.
template <typename F>
zmq::message_t EncodeBody(F&& encode, FlightMeter* large = nullptr) {
  constexpr size_t kKeep = 64 * 1024;  // don't hold on to a huge scratch buffer
  thread_local msgpack::sbuffer scratch(1024);
  scratch.clear();
  encode(scratch);
  const size_t n = scratch.size();
  zmq::message_t body;
  if (large != nullptr && n >= kLargeReplyBytes) {
    char* block = static_cast<char*>(std::malloc(detail::kCountedHeader + n));
    if (block == nullptr) throw std::bad_alloc();
    std::memcpy(block, &n, sizeof n);
    std::memcpy(block + detail::kCountedHeader, scratch.data(), n);
    large->replies.fetch_add(static_cast<int64_t>(n), std::memory_order_relaxed);
    body = zmq::message_t(block + detail::kCountedHeader, n, &detail::FreeCounted, large);
  } else {
    body = zmq::message_t(scratch.data(), n);
  }
  if (n > kKeep) scratch = msgpack::sbuffer(1024);
  return body;
}

struct Reply {
  Envelope envelope;
  zmq::message_t body;
};

struct Call {
  Envelope envelope;
  zmq::message_t body;        // owns the bytes `request` points into
  protocol::Request request;  // decoded and validated
  // Replicated mode: the list's partition and the leader epoch this node
  // served it under when the request was admitted (0 in static mode).
  uint32_t partition = 0;
  uint64_t term = 0;

  Call() = default;
  Call(Call&& other) noexcept { *this = std::move(other); }
  Call& operator=(Call&& other) noexcept;
  Call(const Call&) = delete;
  Call& operator=(const Call&) = delete;

  std::string_view body_view() const {
    return std::string_view(static_cast<const char*>(body.data()), body.size());
  }
};

inline Call& Call::operator=(Call&& other) noexcept {
  const char* from = static_cast<const char*>(other.body.data());
  const size_t n = other.body.size();
  envelope = std::move(other.envelope);
  body = std::move(other.body);
  request = other.request;
  partition = other.partition;
  term = other.term;
  const char* to = static_cast<const char*>(body.data());
  if (from != to) {
    auto rebase = [&](std::string_view& v) {
      if (!v.empty() && v.data() >= from && v.data() < from + n) {
        v = std::string_view(to + (v.data() - from), v.size());
      }
    };
    rebase(request.list);
    rebase(request.id.str_value);
    rebase(request.rid);
    if (request.title) rebase(*request.title);
  }
  return *this;
}

}  // namespace todo::node
