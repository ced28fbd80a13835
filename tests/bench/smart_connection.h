// todo-bench --smart: a connection that skips the router. It holds the
// cluster's partition map (the `map` op, common/PROTOCOL.md) and sends each
// request straight to its partition's primary, as Redis Cluster's and
// Kafka's clients do.
//
// DESIGN. A bench thread's SmartConnections share one SmartHub: a DEALER to
// --endpoint (a router or any node: the map's source, pings, and the
// fallback for a partition whose primary is not a live node) plus one
// DEALER per live node, opened when the map first names it. So a node sees
// one connection per bench thread carrying all of that thread's requests
// for it, as a router's link does and as Kafka's and Redis Cluster's
// clients keep one connection per broker; each SmartConnection keeps its own
// window of --window requests, so --connections x --window requests are in
// flight in all, as without --smart. (One socket per node per connection
// instead costs the nodes about a third more CPU per request: many shallow
// pipelines instead of a few deep ones.) A request's wire id is the
// driver's tag with its slot made unique in the hub (connection k's slot s
// is k x --window + s), and replies are sorted back to their connection.
//
// A reply "not primary" (an `unavailable` after a move or a failover:
// nothing was applied) to any request, or another `unavailable` (a fenced
// node, a partition with no primary yet) to a read or to a write that
// carries a rid, is not handed to the driver: the request is parked, the
// map is refreshed (at most once per kMapMinIntervalNs), and the request is
// sent again to the primary the map then names, after a back-off doubling
// from 5 ms to 500 ms (about 3 s in all, longer than a failover), up to
// kMaxRedirects times; each resend is counted in redirected(). A write
// without a rid gets any other `unavailable` as is. The map is also
// refreshed every kMapRefreshNs, so a changed epoch (a primary moved) is
// seen without a refusal.
//
// Threading: a hub and its connections belong to one thread (their
// driver's), like every Connection. Memory: a copy of the encoded request
// per slot (connections x --window of the thread), reused across requests,
// and a queue of completions per connection (at most its window).
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <msgpack/sbuffer.hpp>
#include <string>
#include <unordered_map>
#include <vector>
#include <zmq.hpp>

#include "common/status.h"
#include "tests/bench/bench_options.h"
#include "tests/bench/connection.h"
#include "tests/bench/zmq_connection.h"

namespace todo::bench {

// The `map` op's result, as a client needs it.
struct SmartMap {
  uint64_t version = 0;
  uint32_t partitions = 0;
  std::vector<std::pair<std::string, std::string>> nodes;  // live: name, endpoint
  std::vector<std::string> primary;                        // index = partition
  std::vector<uint64_t> epoch;                             // index = partition
};

// Parses a whole reply to a `map` request. The reply's error (e.g. unknown_op
// from a static-mode router or node) comes back as its Status; a malformed
// result is bad_request naming what was wrong.
StatusOr<SmartMap> ParseMapReply(std::string_view body);

// Asks `endpoint` for the map and waits up to timeout_ms for the answer.
StatusOr<SmartMap> FetchMap(zmq::context_t& ctx, const std::string& endpoint, int timeout_ms);

// The sockets, the map and the slots shared by a bench thread's
// SmartConnections (see the file comment).
class SmartHub {
 public:
  static constexpr int64_t kMapMinIntervalNs = 50'000'000;  // between two map requests
  static constexpr int64_t kMapRefreshNs = 1'000'000'000;   // a map request at least this often
  static constexpr uint32_t kMaxRedirects = 12;             // resends of one request

  // `map` is the map fetched at start (FetchMap); `window` the driver's
  // per-connection window; `hwm` bounds each socket's queues.
  static StatusOr<std::unique_ptr<SmartHub>> Open(zmq::context_t& ctx, const std::string& endpoint,
                                                  int hwm, const SmartMap& map, uint32_t window);

  // A new connection's index k (0, 1, ...).
  uint32_t Attach();
  // Sends connection k's request (a rid from `rid` on a write, if not null).
  Connection::SendResult Send(uint32_t k, const BenchRequest& request, uint64_t tag, RidMaker* rid);
  zmq_pollitem_t PollItem();  // the endpoint's socket
  void AppendPollItems(std::vector<zmq_pollitem_t>* out);
  void NoteReady(const zmq_pollitem_t* items, size_t n);
  // Parked resends, or the periodic map request, due.
  bool HasTimers() const;
  // Reads the sockets that had input (and sends what is due), sorting the
  // replies into the connections' queues.
  void Pump();
  bool HasQueued(uint32_t k) const { return !queues_[k].empty(); }
  // Moves up to `max` of connection k's completions to *out.
  size_t Take(uint32_t k, std::vector<Completion>* out, size_t max);
  uint64_t stray_replies() const { return stray_; }
  uint64_t redirected() const { return redirected_; }
  // Requests sent straight to a node, and to the endpoint (no primary known).
  uint64_t direct_sends() const { return direct_; }
  uint64_t fallback_sends() const { return fallback_; }

 private:
  struct Peer {
    std::string name;  // empty for the endpoint's socket
    std::string endpoint;
    zmq::socket_t socket;
  };
  struct SlotState {
    uint64_t wire = 0;  // the request's id on the wire
    std::string body;   // the encoded request, for a resend
    uint32_t partition = 0;
    bool routed = false;  // has a partition (not a ping)
    bool resendable = false;
    uint32_t redirects = 0;
  };
  struct Parked {
    int64_t due_ns;
    uint64_t wire;
  };

  SmartHub(zmq::context_t& ctx, zmq::socket_t endpoint_socket, std::string endpoint, int hwm,
           uint32_t window);
  void Install(const SmartMap& map);
  // The peer for a partition (0: the endpoint).
  size_t PeerOf(uint32_t partition) const;
  void RequestMap(int64_t now_ns, bool force);
  void ResendDue(int64_t now_ns);
  // The connection and the driver's tag of a wire id.
  void Deliver(uint64_t wire, Outcome outcome);

  zmq::context_t& ctx_;
  const int hwm_;
  const uint32_t window_;
  std::vector<Peer> peers_;  // [0] is --endpoint
  std::unordered_map<std::string, size_t> peer_by_name_;
  std::vector<uint32_t> route_;  // partition -> peer index
  uint64_t map_version_ = 0;
  int64_t last_map_request_ns_ = 0;
  bool map_in_flight_ = false;
  size_t map_source_ = 0;         // the peer asked for the map (--endpoint unless it is silent)
  std::vector<SlotState> slots_;  // index = the wire id's low 32 bits
  std::vector<std::vector<Completion>> queues_;  // per connection
  std::deque<Parked> parked_;
  std::vector<uint8_t> ready_;  // per peer: had input at the last poll (NoteReady)
  msgpack::sbuffer out_;
  zmq::message_t in_;
  uint64_t stray_ = 0, redirected_ = 0, direct_ = 0, fallback_ = 0;
};

// One connection of the bench over a thread's SmartHub. Connection 0 of a
// hub polls the hub's sockets and pumps them; the others are handed their
// replies through HasTimers() (true while their queue holds some), which
// the driver checks after connection 0's Receive in the same loop.
class SmartConnection final : public Connection {
 public:
  // `rids` and `index` as for ZmqConnection::Open.
  SmartConnection(std::shared_ptr<SmartHub> hub, bool rids, uint32_t index);

  SendResult Send(const BenchRequest& request, uint64_t tag) override {
    return hub_->Send(k_, request, tag, rids_ ? &rid_ : nullptr);
  }
  zmq_pollitem_t PollItem() override { return hub_->PollItem(); }
  void AppendPollItems(std::vector<zmq_pollitem_t>* out) override {
    if (k_ == 0) hub_->AppendPollItems(out);
  }
  void NoteReady(const zmq_pollitem_t* items, size_t n) override {
    if (k_ == 0) hub_->NoteReady(items, n);
  }
  bool HasTimers() const override { return hub_->HasQueued(k_) || (k_ == 0 && hub_->HasTimers()); }
  size_t Receive(std::vector<Completion>* out, size_t max) override {
    if (k_ == 0) hub_->Pump();
    return hub_->Take(k_, out, max);
  }
  // The hub's counts, reported once (by connection 0).
  uint64_t stray_replies() const override { return k_ == 0 ? hub_->stray_replies() : 0; }
  uint64_t redirected() const override { return k_ == 0 ? hub_->redirected() : 0; }

 private:
  std::shared_ptr<SmartHub> hub_;
  const uint32_t k_;
  const bool rids_;
  RidMaker rid_;
};

}  // namespace todo::bench
