// NodeServer: the socket loop — the only thread that touches the node's
// ROUTER socket.
//
// Design: one poll over three fds: the ROUTER socket, the ReplyQueue's
// eventfd (replies from workers and writers) and a signalfd (SIGTERM/SIGINT).
// Requests are read in bursts, decoded and validated here (a bad request is
// answered at once, with its envelope echoed), `ping` and `locate` are
// answered here, and every list op is posted to its list actor through the
// registry, except a read that its list's actor can answer at once on this
// thread (ListActor::TryAnswerRead: idle actor, list loaded, no write in
// flight), which skips the mailbox, a worker and the reply queue, and a
// write that its idle actor can take without reading the disk first
// (ListActor::CanHandleInline: an add with the list's counter known, an
// update or delete with the list loaded, a rid the filter has never seen),
// which is handled here as its worker would and skips the mailbox and the
// worker: the writes of a stage go to their shard writers together, and
// always before anything else is posted, so a list's later requests queue
// behind them. Everything
// posted is counted in flight until its one reply is sent; past
// --max-inflight, a full mailbox or a full registry, the request is answered
// `overloaded` at once. Replies are sent with DONTWAIT and ROUTER_MANDATORY:
// a reply to a vanished or non-reading client is dropped and counted, never
// blocking the loop.
// A router that asks for it in its heartbeat ping (and is told yes in the
// pong) may send hop batches: many requests in one message (common/
// hop_batch.h). The loop checks a whole batch before using any of it, then
// takes its records one by one exactly like v1 messages; the replies to
// batched requests that one pass of the loop sends are gathered per router
// into batches too (never waiting for more). Plain v1 messages are served
// as before, from routers and clients alike.
// On a signal the loop stops reading requests, keeps sending replies until
// nothing is in flight (bounded by a drain deadline), and returns.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <utility>
#include <vector>
#include <zmq.hpp>

#include "common/hop_batch.h"
#include "common/io/cluster_view.h"
#include "node/message.h"
#include "node/options.h"
#include "node/registry.h"
#include "node/replication/partition_table.h"
#include "node/reply_queue.h"
#include "node/store/shard_writer.h"

namespace todo::node {

class NodeMetrics;

// Replicated mode: what the socket loop needs to admit a request (a list's
// partition must be served by this node right now) and to answer `locate`
// and `map`. All pointers outlive the server.
struct ReplicatedServing {
  PartitionTable* table = nullptr;
  io::ClusterView* view = nullptr;
  uint32_t partitions = 0;
};

struct NodeCounters {
  uint64_t requests = 0;
  uint64_t bad_requests = 0;
  uint64_t overloaded = 0;
  uint64_t replies_sent = 0;
  uint64_t replies_dropped = 0;  // client gone or not reading
  uint64_t fast_reads = 0;       // reads answered on the socket loop (ListActor::TryAnswerRead)
  uint64_t inline_writes = 0;    // writes handled on the socket loop (ListActor::HandleInline)
  uint64_t batches_in = 0;       // hop batches of requests taken (common/hop_batch.h)
  uint64_t batches_out = 0;      // hop batches of replies sent
  uint64_t bad_batches = 0;      // hop batches refused whole (malformed)
};

class NodeServer {
 public:
  // All pointers must outlive the server.
  NodeServer(const NodeOptions& options, zmq::context_t* ctx, Registry* registry,
             ReplyQueue* replies, FlightMeter* flight,
             const ReplicatedServing* replicated = nullptr);

  // Binds the ROUTER socket; internal with the reason if it can't.
  Status Bind();

  // Serves until `signal_fd` becomes readable, then drains (at most
  // `drain_timeout`) and returns.
  void Run(int signal_fd, std::chrono::milliseconds drain_timeout);

  const NodeCounters& counters() const { return counters_; }
  // Before Run(): counts and times every reply, publishes snapshots and
  // answers `stats` (without it, `stats` is unknown_op). Not owned.
  void SetMetrics(NodeMetrics* metrics) { metrics_ = metrics; }
  size_t inflight() const { return inflight_; }

 private:
  void ReadBurst();
  // Reads one message into *call (envelope and body); false if none is
  // waiting. A message with too many frames is answered here (and *call
  // left without a body).
  bool ReadMessage(Call* call);
  // The next request: the next record of the hop batch being taken, else
  // the next message (a batch's first record, if it is one). *body: the
  // request's body (inside call->body). False if no message is waiting.
  bool NextCall(Call* call, std::string_view* body);
  // Decodes and validates the call, answers what the socket loop answers
  // itself (bad requests, ping, locate, stats); true if the call is for a
  // list actor. `body`: the request's bytes, inside call.body.
  bool Admit(Call& call, std::string_view body, std::chrono::steady_clock::time_point now);
  // Posts an admitted call to its list's actor (or answers overloaded).
  void Dispatch(Call& call, uint64_t hash, std::chrono::steady_clock::time_point now);
  // `now`: the send time for the metrics (default: read the clock).
  void SendReply(Envelope& envelope, zmq::message_t& body,
                 std::chrono::steady_clock::time_point now = {});
  void SendError(Envelope& envelope, const protocol::RequestId& id, const Status& s);
  void SendReplies();
  // A reply to a batched request: into its router's reply batch (sent at
  // once if full). FlushReplyBatches sends every batch begun.
  void BatchReply(Reply& reply, std::chrono::steady_clock::time_point now);
  void FlushReplyBatches();
  struct ReplyBatch;
  void FlushReplyBatch(ReplyBatch& batch);
  // Sends the reads answered on this thread in the last stage (fast_), after
  // the replies the workers and writers have queued, so a write's reply
  // still goes before that of a read that shows it.
  void SendFastReplies();
  // Replicated mode: the answer to a list request this node can't serve
  // now (not primary, or fenced), or OK with call.partition/term set.
  Status CheckServing(Call& call, std::chrono::steady_clock::time_point now);
  void EncodeLocate(msgpack::sbuffer& b, const Call& call) const;
  void EncodeMapReply(msgpack::sbuffer& b, const Call& call) const;

  const NodeOptions options_;
  zmq::socket_t socket_;
  Registry* const registry_;
  ReplyQueue* const replies_;
  FlightMeter* const flight_;                  // its `requests`: bytes of the requests inside
  const ReplicatedServing* const replicated_;  // null in static mode
  size_t inflight_ = 0;
  uint64_t sheds_at_trim_ = 0;  // registry's shed requests at the last ReleaseFreeMemory
  NodeCounters counters_;
  NodeMetrics* metrics_ = nullptr;
  std::vector<Reply> drained_;
  std::vector<Reply> fast_;  // reads answered on this thread, not yet sent
  // Writes handled on this thread in the current stage, not yet submitted:
  // one entry per shard writer that has some (a handful at most).
  std::vector<std::pair<store::ShardWriter*, std::vector<store::WriteOp>>> inline_writes_;
  bool inline_pending_ = false;  // inline_writes_ holds some
  // Queues each shard writer's inline writes (one Submit per writer).
  void SubmitInlineWrites();
  // One stage of a burst: calls read, decoded and not yet posted, with their
  // list names' hashes (reused; emptied after each stage).
  std::vector<Call> stage_;
  std::vector<uint64_t> stage_hashes_;
  // The hop batch being taken: its message (the records' bodies stay in
  // it, shared by their Calls), its sender and its records (views into it).
  zmq::message_t batch_in_;
  zmq::message_t batch_from_;
  std::vector<hop_batch::Record> batch_records_;
  size_t batch_next_ = 0;
  // Replies to batched requests, one batch per router (a handful).
  struct ReplyBatch {
    zmq::message_t identity;
    hop_batch::BatchWriter writer;
  };
  std::vector<ReplyBatch> reply_batches_;
  bool reply_batches_pending_ = false;
};

}  // namespace todo::node
