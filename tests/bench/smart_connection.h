// todo-bench --smart: a connection that skips the router. It holds the
// cluster's partition map (the `map` op, common/PROTOCOL.md) and sends each
// request straight to its partition's primary, as Redis Cluster's and
// Kafka's clients do.
//
// DESIGN. One SmartConnection is one logical connection of the bench (one
// window of --window requests in flight, shared by every node it talks to):
// a DEALER to --endpoint (a router or any node: the map's source, pings, and
// the fallback for a partition whose primary is not in the map's live nodes)
// plus one DEALER per live node, opened when the map first names it. So
// --connections x --window requests are in flight in all, as without
// --smart, however many nodes there are.
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
// Threading: one thread (its driver's), like every Connection. Memory: a
// per-slot copy of the encoded request (slots are the driver's, at most
// --window), reused across requests.
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

class SmartConnection final : public Connection {
 public:
  static constexpr int64_t kMapMinIntervalNs = 50'000'000;  // between two map requests
  static constexpr int64_t kMapRefreshNs = 1'000'000'000;   // a map request at least this often
  static constexpr uint32_t kMaxRedirects = 12;             // resends of one request

  // `map` is the map fetched at start (FetchMap). `hwm`, `rids` and `index`
  // as for ZmqConnection::Open.
  static StatusOr<std::unique_ptr<SmartConnection>> Open(zmq::context_t& ctx,
                                                         const std::string& endpoint, int hwm,
                                                         const SmartMap& map, bool rids,
                                                         uint32_t index);

  SendResult Send(const BenchRequest& request, uint64_t tag) override;
  zmq_pollitem_t PollItem() override;  // the endpoint's socket
  void AppendPollItems(std::vector<zmq_pollitem_t>* out) override;
  // Parked resends, or the periodic map request, due: they need Receive().
  bool HasTimers() const override;
  void NoteReady(const zmq_pollitem_t* items, size_t n) override;
  size_t Receive(std::vector<Completion>* out, size_t max) override;
  uint64_t stray_replies() const override { return stray_; }
  uint64_t redirected() const override { return redirected_; }

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
    uint64_t tag = 0;
    std::string body;  // the encoded request, for a resend
    uint32_t partition = 0;
    bool routed = false;  // has a partition (not a ping)
    bool resendable = false;
    uint32_t redirects = 0;
  };
  struct Parked {
    int64_t due_ns;
    uint64_t tag;
  };

  SmartConnection(zmq::context_t& ctx, zmq::socket_t endpoint_socket, std::string endpoint, int hwm,
                  bool rids, uint32_t index);
  void Install(const SmartMap& map);
  // The peer for a partition (0: the endpoint).
  size_t PeerOf(uint32_t partition) const;
  void RequestMap(int64_t now_ns, bool force);
  void ResendDue(int64_t now_ns);

  zmq::context_t& ctx_;
  const int hwm_;
  const bool rids_;
  RidMaker rid_;
  std::vector<Peer> peers_;  // [0] is --endpoint
  std::unordered_map<std::string, size_t> peer_by_name_;
  std::vector<uint32_t> route_;  // partition -> peer index
  uint64_t map_version_ = 0;
  int64_t last_map_request_ns_ = 0;
  bool map_in_flight_ = false;
  size_t map_source_ = 0;         // the peer asked for the map (--endpoint unless it is silent)
  std::vector<SlotState> slots_;  // index = the tag's low 32 bits
  std::deque<Parked> parked_;
  std::vector<uint8_t> ready_;  // per peer: had input at the last poll (NoteReady)
  msgpack::sbuffer out_;
  zmq::message_t in_;
  uint64_t stray_ = 0, redirected_ = 0, direct_ = 0, fallback_ = 0;
};

}  // namespace todo::bench
