// ReplIo: the replication stream's sockets, on one thread ("todo-repl").
//
// Design (zguide: one socket per thread, threads talk over queues): a ROUTER
// bound on --repl-listen receives the streams of the primaries this node
// backs up (probe, append, chunk, end) and carries its answers back (state,
// ack); one DEALER per peer, with routing id = this node's name, carries the
// streams this node sends as a primary and brings the peers' answers back.
// The thread only moves bytes: it decodes each frame (common/cluster/
// repl_wire.h), splits its messages by shard and posts them to the shard
// writers, which own every replication decision; the writers hand it frames
// to send through Send(), which is thread-safe and wakes it (an eventfd).
//
// Bounds: frames from a socket are at most --repl-max-frame bytes
// (ZMQ_MAXMSGSIZE); frames queued to send are counted per peer and Send()
// refuses past `max_queued_bytes` (the writer then treats that session as
// broken and restarts it later); a writer whose inbox holds more than its
// bound stops this thread reading (TCP pushes back on the peer). A peer
// that can't be written to (its ZeroMQ queue full) keeps its frames here,
// retried on POLLOUT.
//
// CurveZMQ (options.curve enabled, i.e. the node runs with --curve-secret):
// the ROUTER is a CURVE server with the node's keypair, its ZAP handler (on
// this socket's context, started by the caller) letting in the node's
// --curve-allow keys, which then must list the other nodes; each DEALER is
// a CURVE client with the node's keypair expecting the peer's announced
// public key. A peer that announces no key is not connected to (logged):
// never plaintext beside CURVE.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include "common/io/security/curve.h"
#include "common/status.h"
#include "node/replication/shard_inbox.h"

namespace todo::node {

class ReplIo {
 public:
  struct Options {
    std::string listen;                  // the endpoint to bind (tcp://HOST:0 picks a port)
    std::string self;                    // this node's name (the DEALERs' routing id)
    size_t max_queued_bytes = 64 << 20;  // per peer, frames waiting to be sent
    int64_t max_frame_bytes = 64 << 20;  // inbound frames at most
    security::CurveConfig curve;         // enabled: CURVE both ways (above)
  };
  // Where a peer's replication port is, and the CURVE key it proves ("" if
  // it runs plaintext).
  struct PeerAddress {
    std::string endpoint;
    std::string curve_key;  // Z85
    bool operator==(const PeerAddress&) const = default;
  };
  enum class Via : uint8_t {
    kDealer,  // to a backup, on our DEALER to it
    kRouter,  // to a primary, back on our ROUTER
  };

  ReplIo(Options options, zmq::context_t* ctx);
  ~ReplIo();  // Stop()s
  ReplIo(const ReplIo&) = delete;
  ReplIo& operator=(const ReplIo&) = delete;

  // Binds the ROUTER (before Start). The endpoint actually bound (the port
  // chosen for :0) is endpoint().
  Status Bind();
  const std::string& endpoint() const { return bound_; }
  // Where incoming messages go, one inbox per shard (before Start).
  void SetInboxes(std::vector<ShardInbox*> inboxes) { inboxes_ = std::move(inboxes); }
  void Start();
  void Stop();

  // Thread-safe. The peers' replication addresses (from the live nodes'
  // announcements): DEALERs are connected to new ones, closed for gone or
  // changed ones.
  void SetPeers(std::map<std::string, PeerAddress> peers);
  // Thread-safe. Queues a frame for `peer`; false (nothing queued) if the
  // peer has more than max_queued_bytes waiting, or is unknown (kDealer).
  bool Send(const std::string& peer, Via via, std::string frame);
  // Thread-safe. Bytes queued for `peer` on its DEALER (flow control of
  // snapshots).
  size_t queued_bytes(const std::string& peer) const;

  struct Counters {
    std::atomic<uint64_t> frames_in{0}, frames_out{0}, bytes_in{0}, bytes_out{0};
    std::atomic<uint64_t> bad_frames{0}, refused_sends{0};
  };
  const Counters& counters() const { return counters_; }

 private:
  struct Outgoing {
    std::string peer;
    Via via;
    std::string frame;
  };
  struct Peer {
    PeerAddress address;
    std::unique_ptr<zmq::socket_t> dealer;
    std::deque<std::string> pending;  // frames not yet accepted by ZeroMQ
  };

  void Loop();
  void Wake();
  // Takes the frames Send() queued (if the eventfd said so) and sends them.
  void TakeOutgoing(bool woken);
  void Flush(const std::string& name, Peer& peer);
  void ReadRouter();
  void ReadDealer(const std::string& name, Peer& peer);
  // Decodes a frame and gathers its messages by shard (posted by PostGathered).
  void Dispatch(const std::string& peer, bool from_backup, zmq::message_t& frame);
  // Posts what Dispatch gathered: one lock and one wake-up per shard.
  void PostGathered();
  void ApplyPeers();

  const Options options_;
  zmq::context_t* const ctx_;
  zmq::socket_t router_;
  std::string bound_;
  std::vector<ShardInbox*> inboxes_;
  int wake_fd_ = -1;
  std::thread thread_;
  std::atomic<bool> stop_{false};

  mutable std::mutex mu_;
  std::vector<Outgoing> outgoing_;                   // guarded by mu_
  std::map<std::string, size_t> queued_;             // guarded by mu_: bytes per peer
  std::map<std::string, PeerAddress> wanted_peers_;  // guarded by mu_
  bool peers_changed_ = false;                       // guarded by mu_
  bool signalled_ = false;                           // guarded by mu_
  std::map<std::string, Peer> peers_;                // loop thread only
  std::vector<std::pair<std::string, std::string>> router_pending_;  // loop thread only
  std::vector<std::vector<ReplEvent>> gathered_;  // loop thread only: by shard, not yet posted
  Counters counters_;
};

}  // namespace todo::node
