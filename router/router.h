// Router: the router's single-threaded poll loop — the only code that
// touches its sockets.
//
// Design: one frontend ROUTER socket (clients) and one DEALER per node,
// polled together with a signalfd. The loop
//   - reads client requests in bursts, decodes just enough to route them,
//     answers `ping`, `locate` and every malformed request itself, answers
//     `unavailable` at once for a list whose owner is down, and forwards the
//     rest to the owner's DEALER as ['R' seq identity][rest of the client's
//     envelope...][body]: the client's identity frame folds into the head,
//     so a message has one frame less to and from the node; the other
//     frames are moved (the body is never copied);
//   - reads node replies ['R' seq identity][envelope...][reply], finds seq
//     in the InflightTable and sends [identity][envelope...][reply] to the
//     client; a seq that is no
//     longer there (its deadline passed) is a late reply and is dropped, so
//     a client never hears twice;
//   - expires deadlines: the poll sleeps at most until the earliest deadline,
//     and an expired request is answered `timeout`;
//   - sends heartbeats ['H' + token][ping] to every node on the NodeTable's
//     schedule; the node echoes them, and any message from a node counts as
//     hearing from it. A node silent for --down-after-ms is down.
// Hop batches (common/hop_batch.h): a node whose pong to the heartbeat
// says it takes them gets the requests that one pass of the loop forwards
// to it as one message (at most hop_batch::kMaxRecords / kMaxBytes each;
// flushed at the end of the pass, never held for more), and may answer in
// batches too; any other node gets v1 messages. A node that goes down, or
// answers a heartbeat without "batch", gets v1 until it says so again.
// Bounded: --max-inflight requests awaiting replies (then `overloaded`),
// per-node send queues (a full one, or a node with no connection, means
// `overloaded`), bursts per wake-up, frames per message, bytes per frame.
// On a signal the loop stops reading requests and runs until every request
// in flight is answered or expired (so at most --timeout-ms), then returns.
//
// A LoopGuest (the HTTP front end) runs on the loop's thread: its fd is
// polled beside the sockets, it is served after every wake-up, and it hands
// requests to Submit(), which treats each exactly like a ZeroMQ client's
// (same routing, bounds, deadlines and answers): the request's "identity"
// is an internal one that no ZeroMQ peer can present (a 0 byte, a random
// per-process secret, the guest's token), and a reply addressed to it goes
// to the guest's OnReply() instead of the frontend socket. No thread
// hand-off, no inproc socket, no copy of the body.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <msgpack/sbuffer.hpp>
#include <string>
#include <unordered_map>
#include <vector>
#include <zmq.hpp>

#include "common/hop_batch.h"
#include "common/io/cluster_view.h"
#include "common/io/cluster_watcher.h"
#include "common/io/etcd/client.h"
#include "common/protocol.h"
#include "common/rendezvous.h"
#include "router/inflight.h"
#include "router/metrics.h"
#include "router/node_table.h"
#include "router/options.h"

namespace todo::router {

// What the router did; logged at exit, kept for a later stats op.
struct RouterCounters {
  // Requests that decoded, by protocol::Op.
  std::array<uint64_t, protocol::kNumOps> requests_by_op{};
  // Requests answered bad_request or unknown_op by the router.
  uint64_t bad_requests = 0;
  // Messages dropped without a reply (no body to answer).
  uint64_t dropped_requests = 0;
  // Replies the router built itself, by ErrorCode (kOk: ping and locate).
  std::array<uint64_t, 8> replies_by_code{};
  uint64_t forwarded = 0;          // requests sent to a node
  uint64_t replies_forwarded = 0;  // node replies delivered to a client
  uint64_t timeouts = 0;
  uint64_t late_replies_dropped = 0;  // node replies after their deadline
  // Replicated mode: "not primary" answers sent on again (a move's hand-off,
  // a failover, a map behind).
  uint64_t not_primary_retries = 0;
  // Replies that could not be delivered: client gone (EHOSTUNREACH) or its
  // queue full.
  uint64_t unroutable_sends = 0;
  uint64_t bad_node_messages = 0;  // from a node, neither a reply nor a heartbeat echo
  uint64_t batches_sent = 0;       // hop batches of requests to nodes
  uint64_t batches_received = 0;   // hop batches of replies from nodes
  uint64_t heartbeats_sent = 0;
  uint64_t heartbeats_unsent = 0;  // node not connected or its queue full
  uint64_t node_up = 0;            // transitions to up
  uint64_t node_down = 0;          // transitions to down
  // Replies to forwarded requests by op and code, and their latency.
  ForwardedStats forwarded_by_op;
};

// Something the router's loop serves on its own thread (the HTTP front end).
// Every call comes from the loop's thread.
class LoopGuest {
 public:
  virtual ~LoopGuest() = default;
  // An fd polled for input beside the sockets.
  virtual int poll_fd() const = 0;
  // After every wake-up; `ready` if poll_fd() was readable. May Submit().
  virtual void Serve(bool ready) = 0;
  // The reply to the request submitted with `token` (the router's own, a
  // node's, or `timeout`): exactly one per Submit(), maybe during it. Must
  // not Submit().
  virtual void OnReply(uint64_t token, std::string_view reply_body) = 0;
  // The router is draining: take no new requests.
  virtual void StopReading() = 0;
  // Nothing left to send.
  virtual bool Idle() const = 0;
};

class Router {
 public:
  // `ctx` must outlive the router.
  Router(const RouterOptions& options, zmq::context_t* ctx);
  ~Router();
  Router(const Router&) = delete;
  Router& operator=(const Router&) = delete;

  // Binds the frontend and connects one DEALER per node (static mode), or
  // starts following the cluster in etcd (replicated mode: DEALERs are
  // connected as nodes appear); internal with the reason on failure.
  Status Start();

  // Serves until `signal_fd` becomes readable, then drains (every request in
  // flight answered or expired) and returns.
  void Run(int signal_fd);

  // Before Run(): heartbeats the nodes until each has answered or `max`
  // passed, so that the first requests don't find the connections still
  // being set up. Requests that arrive meanwhile wait in the frontend queue.
  // Returns how many nodes answered.
  size_t AwaitNodes(std::chrono::milliseconds max);

  // The name `ping` reports: --name, else the bound endpoint.
  const std::string& name() const { return name_; }
  const RouterCounters& counters() const { return counters_; }
  const RouterOptions& options() const { return options_; }
  // Before Run(): `publish` is called from the loop every kPublishEvery
  // (the metrics snapshot; see router/metrics.h).
  void SetPublisher(std::function<void(const Router&)> publish) { publish_ = std::move(publish); }
  // Before Run(): the guest (must outlive Run()).
  void SetGuest(LoopGuest* guest) { guest_ = guest; }
  // From the guest, on the loop's thread: handles `body` (one encoded
  // request) exactly as if a ZeroMQ client had sent it; the reply goes to
  // guest->OnReply(token, ...), maybe before this returns.
  void Submit(uint64_t token, zmq::message_t body);
  // True while the loop takes requests (false once it drains).
  bool serving() const { return !draining_; }
  const NodeTable& nodes() const { return nodes_; }
  // The nodes by index (static: the configured ones; replicated: every node
  // seen in etcd so far, in the order first seen).
  const std::vector<NodeSpec>& node_specs() const { return specs_; }
  // Replicated mode: the cluster as last seen (null in static mode).
  std::shared_ptr<const io::ClusterSnapshot> cluster() const {
    return view_ ? view_->Get() : nullptr;
  }
  size_t inflight() const { return inflight_.size(); }
  // One line summing the counters, for the log.
  std::string CountersSummary() const;

 private:
  void ReadFrontend(TimePoint now);
  void HandleRequest(TimePoint now);
  void Forward(size_t node, const protocol::Request& request, uint32_t partition, TimePoint now);
  void ReadNode(size_t node, TimePoint now);
  void HandleNodeMessage(size_t node, TimePoint now);
  // A reply in frames_ ([head][envelope...][reply]), v1 or from a batch.
  void HandleNodeReply(size_t node, TimePoint now);
  // Sends the hop batch begun for `node` (every node's: FlushBatches); a
  // batch the node's queue refuses is answered as Forward answers a refused
  // request.
  void FlushBatch(size_t node);
  // What a request to `node` whose queue takes no more is answered:
  // `overloaded` with many outstanding, else `unavailable` (not connected).
  std::pair<ErrorCode, std::string> QueueRefusal(size_t node) const;
  void FlushBatches() {
    if (!batches_pending_) return;
    batches_pending_ = false;
    for (size_t i = 0; i < pending_.size(); ++i) FlushBatch(i);
  }
  void ExpireDeadlines(TimePoint now);
  // Answers `timeout` for every entry in expired_ (with `why`, or the
  // deadline's message if empty), then empties it.
  void AnswerTimeouts(TimePoint now, const std::string& why);
  // Replicated mode: the owner of a list (the partition's primary) as a node
  // index, or -1 with *why set (no map yet, the primary has no lease).
  int64_t PrimaryOf(const protocol::Request& request, uint32_t* partition, std::string* why);
  // Takes in a new snapshot from etcd: new nodes get a DEALER, moved ones a
  // new connection, and the partition -> primary table is rebuilt; parked
  // requests go out again.
  void ApplyView(TimePoint now);
  // The node's index; connects (again) when it is new, moved or has a new
  // CURVE key, and not at all when CURVE is on here and the node has no key.
  size_t EnsureNode(const cluster::NodeInfo& info, TimePoint now);
  // A node answered "not primary" (nothing applied): forward it again, at
  // once if the map names another primary, else parked until a newer map
  // arrives or a short back-off ends (a new primary that has not yet seen
  // the map that names it refuses too). At most kMaxNotPrimaryTries times,
  // within its deadline. True if the reply was taken care of so.
  bool RetryNotPrimary(InflightEntry& entry, TimePoint now);
  // Sends a parked request to its partition's primary. With !same_ok, a
  // request whose primary is still the node that refused it stays parked.
  void Resend(uint64_t seq, TimePoint now, bool same_ok);
  void Park(uint64_t seq, TimePoint retry_at) {
    parked_.push_back(Parked{seq, retry_at});
    parked_next_ = std::min(parked_next_, retry_at);
  }
  // Resends the parked requests whose back-off has ended.
  void RetryParked(TimePoint now);
  void TendNodes(TimePoint now);
  void SendHeartbeats();
  void NoteTransition(const NodeTransition& t, TimePoint now);

  // Answers the request in frames_ with `reply`, echoing its envelope
  // (every frame before the body); counts the reply under `code`.
  void ReplyFromRouter(msgpack::sbuffer& reply, ErrorCode code);
  void ReplyError(const protocol::RequestId& id, ErrorCode code, std::string_view message);
  // Sends frames[0..] ([identity][envelope...][reply]) to their client: the
  // guest if the identity is an internal one, else the frontend socket.
  bool SendToClient(std::vector<zmq::message_t>& frames);

  const RouterOptions options_;
  std::string name_;
  zmq::socket_t frontend_;
  std::vector<std::unique_ptr<zmq::socket_t>> backends_;  // one DEALER per node
  std::vector<NodeSpec> specs_;                           // by node index
  Rendezvous rendezvous_;
  // Replicated mode.
  zmq::context_t* const ctx_;
  std::unique_ptr<io::EtcdClient> etcd_;
  std::unique_ptr<io::ClusterView> view_;
  std::unique_ptr<io::ClusterWatcher> watcher_;
  int view_fd_ = -1;                                 // eventfd: the watcher saw a change
  uint64_t view_seen_ = 0;                           // view_->version() applied
  std::shared_ptr<const io::ClusterSnapshot> snap_;  // applied
  uint64_t map_version_ = 0;                         // raised with every map applied
  bool said_no_cluster_ = false;                     // the "not initialized" warning, once
  std::vector<int64_t> primary_;                     // partition -> node index (-1: none)
  std::unordered_map<std::string, size_t> node_index_;
  struct Parked {
    uint64_t seq;
    TimePoint retry_at;  // resent then (or at a newer map naming another primary)
  };
  std::vector<Parked> parked_;                // bounded by inflight_ (each is one of its entries)
  TimePoint parked_next_ = TimePoint::max();  // the earliest retry_at (or later)
  NodeTable nodes_;
  InflightTable inflight_;
  // Forwarded requests per node still awaiting a reply or their deadline. A
  // failed send to a node with fewer outstanding than its queue bound means
  // the node is not connected (ZMQ_IMMEDIATE), not that its queue is full.
  std::vector<size_t> outstanding_;
  // Per node: whether it takes hop batches (its last pong said so), and the
  // batch begun for it in this pass with the seqs in it.
  std::vector<uint8_t> batching_;
  struct PendingBatch {
    hop_batch::BatchWriter writer;
    std::vector<uint64_t> seqs;
  };
  std::vector<PendingBatch> pending_;
  bool batches_pending_ = false;
  std::vector<hop_batch::Record> records_;  // a batch of replies being taken
  zmq::message_t batch_in_;                 // its message
  uint64_t next_seq_ = 1;
  RouterCounters counters_;
  std::vector<zmq::message_t> frames_;  // the message being handled
  std::vector<InflightEntry> expired_;
  std::vector<NodeTransition> transitions_;
  msgpack::sbuffer heartbeat_body_;  // {"op":"ping"}
  std::function<void(const Router&)> publish_;
  TimePoint next_publish_{};
  LoopGuest* guest_ = nullptr;
  uint64_t guest_secret_ = 0;  // in every internal identity
  bool draining_ = false;
};

}  // namespace todo::router
