#include "node/replication/repl_io.h"

#include <poll.h>
#include <pthread.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cstring>
#include <optional>

#include "common/cluster/repl_wire.h"
#include "node/replication/shard_inbox.h"

namespace todo::node {
namespace {

constexpr int kPeerReadBurst = 256;
constexpr int kSndHwm = 10000;
constexpr int kRcvHwm = 10000;
constexpr std::chrono::milliseconds kMaxWait(100);

}  // namespace

ReplIo::ReplIo(Options options, zmq::context_t* ctx)
    : options_(std::move(options)), ctx_(ctx), router_(*ctx, zmq::socket_type::router) {
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  router_.set(zmq::sockopt::router_mandatory, 1);
  // A primary that restarts reconnects with the same routing id: the new
  // connection takes the name over.
  router_.set(zmq::sockopt::router_handover, 1);
  router_.set(zmq::sockopt::maxmsgsize, options_.max_frame_bytes);
  router_.set(zmq::sockopt::sndhwm, kSndHwm);
  router_.set(zmq::sockopt::rcvhwm, kRcvHwm);
  router_.set(zmq::sockopt::linger, 0);
}

ReplIo::~ReplIo() {
  Stop();
  if (wake_fd_ >= 0) close(wake_fd_);
}

Status ReplIo::Bind() {
  if (Status s = security::SecureServerSocket(router_, options_.curve); !s.ok()) return s;
  try {
    router_.bind(options_.listen);
    bound_ = router_.get(zmq::sockopt::last_endpoint);
  } catch (const zmq::error_t& e) {
    return Status::Internal("cannot bind the replication endpoint " + options_.listen + ": " +
                            e.what());
  }
  return Status::Ok();
}

void ReplIo::Start() {
  thread_ = std::thread([this] { Loop(); });
}

void ReplIo::Stop() {
  if (!thread_.joinable()) return;
  stop_.store(true);
  Wake();
  thread_.join();
}

void ReplIo::Wake() {
  uint64_t one = 1;
  (void)!write(wake_fd_, &one, sizeof one);
}

void ReplIo::SetPeers(std::map<std::string, PeerAddress> peers) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (peers == wanted_peers_) return;
    wanted_peers_ = std::move(peers);
    peers_changed_ = true;
  }
  Wake();
}

bool ReplIo::Send(const std::string& peer, Via via, std::string frame) {
  bool wake;
  {
    std::lock_guard<std::mutex> lock(mu_);
    size_t& q = queued_[peer];
    if (q + frame.size() > options_.max_queued_bytes) {
      counters_.refused_sends.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
    q += frame.size();
    wake = !signalled_;
    signalled_ = true;
    outgoing_.push_back(Outgoing{peer, via, std::move(frame)});
  }
  if (wake) Wake();
  return true;
}

size_t ReplIo::queued_bytes(const std::string& peer) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = queued_.find(peer);
  return it == queued_.end() ? 0 : it->second;
}

void ReplIo::ApplyPeers() {
  std::map<std::string, PeerAddress> wanted;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!peers_changed_) return;
    peers_changed_ = false;
    wanted = wanted_peers_;
  }
  for (auto it = peers_.begin(); it != peers_.end();) {
    auto w = wanted.find(it->first);
    if (w == wanted.end() || w->second != it->second.address) {
      spdlog::info("replication: peer '{}' ({}) gone", it->first, it->second.address.endpoint);
      size_t dropped = 0;
      for (const std::string& f : it->second.pending) dropped += f.size();
      {
        std::lock_guard<std::mutex> lock(mu_);
        queued_[it->first] -= std::min(queued_[it->first], dropped);
      }
      it = peers_.erase(it);
    } else {
      ++it;
    }
  }
  for (const auto& [name, address] : wanted) {
    if (name == options_.self || peers_.contains(name)) continue;
    const std::string& endpoint = address.endpoint;
    std::optional<security::CurveKey> server_key;
    if (options_.curve.enabled()) {
      if (address.curve_key.empty()) {
        spdlog::error(
            "replication: peer '{}' ({}) runs without CurveZMQ and this node with it: not "
            "connecting (give every node --curve-secret, or none)",
            name, endpoint);
        continue;
      }
      auto key = security::DecodeZ85Key(address.curve_key);
      if (!key.ok()) {  // ParseNodeInfo checked it; never expected
        spdlog::error("replication: peer '{}': bad curve_key: {}", name, key.status().message());
        continue;
      }
      server_key = *key;
    } else if (!address.curve_key.empty()) {
      spdlog::warn(
          "replication: peer '{}' ({}) runs with CurveZMQ and this node without: its "
          "replication port will not let this node in",
          name, endpoint);
    }
    Peer p;
    p.address = address;
    p.dealer = std::make_unique<zmq::socket_t>(*ctx_, zmq::socket_type::dealer);
    p.dealer->set(zmq::sockopt::routing_id, options_.self);
    p.dealer->set(zmq::sockopt::linger, 0);
    p.dealer->set(zmq::sockopt::sndhwm, kSndHwm);
    p.dealer->set(zmq::sockopt::rcvhwm, kRcvHwm);
    p.dealer->set(zmq::sockopt::maxmsgsize, options_.max_frame_bytes);
    p.dealer->set(zmq::sockopt::reconnect_ivl, 100);
    p.dealer->set(zmq::sockopt::reconnect_ivl_max, 1000);
    p.dealer->set(zmq::sockopt::heartbeat_ivl, 500);
    p.dealer->set(zmq::sockopt::heartbeat_timeout, 2000);
    p.dealer->set(zmq::sockopt::heartbeat_ttl, 4000);
    if (Status s = security::SecureClientSocket(*p.dealer, options_.curve, server_key); !s.ok()) {
      spdlog::error("replication: peer '{}': {}", name, s.message());
      continue;
    }
    try {
      p.dealer->connect(endpoint);
    } catch (const zmq::error_t& e) {
      spdlog::error("replication: cannot connect to peer '{}' at {}: {}", name, endpoint, e.what());
      continue;
    }
    spdlog::info("replication: peer '{}' at {}{}", name, endpoint, server_key ? " (CURVE)" : "");
    peers_.emplace(name, std::move(p));
  }
}

void ReplIo::TakeOutgoing(bool woken) {
  std::vector<Outgoing> out;
  if (woken) {
    // Read before taking the queue: a Send after the swap writes it again.
    uint64_t v;
    (void)!read(wake_fd_, &v, sizeof v);
    std::lock_guard<std::mutex> lock(mu_);
    out.swap(outgoing_);
    signalled_ = false;
  }
  for (Outgoing& o : out) {
    if (o.via == Via::kRouter) {
      router_pending_.emplace_back(std::move(o.peer), std::move(o.frame));
      continue;
    }
    auto it = peers_.find(o.peer);
    if (it == peers_.end()) {
      std::lock_guard<std::mutex> lock(mu_);
      queued_[o.peer] -= std::min(queued_[o.peer], o.frame.size());
      continue;  // unknown peer: dropped (its session times out and restarts)
    }
    it->second.pending.push_back(std::move(o.frame));
  }
  for (auto& [name, peer] : peers_) Flush(name, peer);
  // Answers to primaries: small; dropped if the primary is gone or full (it
  // probes again).
  for (auto& [peer, frame] : router_pending_) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      queued_[peer] -= std::min(queued_[peer], frame.size());
    }
    try {
      zmq::message_t id(peer.data(), peer.size());
      zmq::message_t body(frame.data(), frame.size());
      if (router_.send(id, zmq::send_flags::sndmore | zmq::send_flags::dontwait)) {
        (void)router_.send(body, zmq::send_flags::dontwait);
        counters_.frames_out.fetch_add(1, std::memory_order_relaxed);
        counters_.bytes_out.fetch_add(frame.size(), std::memory_order_relaxed);
      }
    } catch (const zmq::error_t&) {
      // EHOSTUNREACH: not connected (any more)
    }
  }
  router_pending_.clear();
}

void ReplIo::Flush(const std::string& name, Peer& peer) {
  size_t sent = 0;
  while (!peer.pending.empty()) {
    std::string& f = peer.pending.front();
    zmq::message_t m(f.data(), f.size());
    bool ok = false;
    try {
      ok = peer.dealer->send(m, zmq::send_flags::dontwait).has_value();
    } catch (const zmq::error_t&) {
      ok = false;
    }
    if (!ok) break;  // full: retried on POLLOUT
    sent += f.size();
    counters_.frames_out.fetch_add(1, std::memory_order_relaxed);
    counters_.bytes_out.fetch_add(f.size(), std::memory_order_relaxed);
    peer.pending.pop_front();
  }
  if (sent > 0) {
    std::lock_guard<std::mutex> lock(mu_);
    queued_[name] -= std::min(queued_[name], sent);
  }
}

void ReplIo::Dispatch(const std::string& peer, bool from_backup, zmq::message_t& frame) {
  counters_.frames_in.fetch_add(1, std::memory_order_relaxed);
  counters_.bytes_in.fetch_add(frame.size(), std::memory_order_relaxed);
  // Moved to the heap first, then decoded: the messages' views point into
  // its bytes, and a small frame (ZeroMQ keeps up to 33 bytes inside the
  // message object) would move with the object, leaving them dangling.
  auto shared = std::make_shared<zmq::message_t>(std::move(frame));
  std::vector<cluster::ReplMessage> msgs;
  Status s = cluster::DecodeReplFrame(
      std::string_view(static_cast<const char*>(shared->data()), shared->size()), &msgs);
  if (!s.ok()) {
    counters_.bad_frames.fetch_add(1, std::memory_order_relaxed);
    spdlog::warn("replication: bad frame from '{}' ({} bytes): {}", peer, shared->size(),
                 s.message());
    // The messages before the damage are still whole; the rest is dropped
    // (a gap the backup detects, or a probe the primary resends).
  }
  if (msgs.empty() || inboxes_.empty()) return;
  const size_t n = inboxes_.size();
  gathered_.resize(n);
  if (n == 1) {
    gathered_[0].push_back(
        ReplEvent{peer, from_backup, shared, std::move(msgs), nullptr, shared->size()});
    return;
  }
  std::vector<std::vector<cluster::ReplMessage>> by_shard(n);
  for (auto& m : msgs) by_shard[m.partition % n].push_back(std::move(m));
  for (size_t i = 0; i < n; ++i) {
    if (by_shard[i].empty()) continue;
    gathered_[i].push_back(ReplEvent{peer, from_backup, shared, std::move(by_shard[i]), nullptr,
                                     shared->size() / n + 1});
  }
}

void ReplIo::PostGathered() {
  for (size_t i = 0; i < gathered_.size() && i < inboxes_.size(); ++i) {
    inboxes_[i]->PostAll(gathered_[i]);
  }
}

void ReplIo::ReadRouter() {
  for (int i = 0; i < kPeerReadBurst; ++i) {
    zmq::message_t id;
    if (!router_.recv(id, zmq::recv_flags::dontwait)) return;
    std::vector<zmq::message_t> parts;
    bool more = id.more();
    while (more) {
      zmq::message_t part;
      (void)router_.recv(part);
      more = part.more();
      if (parts.size() < 2) parts.push_back(std::move(part));
    }
    if (parts.size() != 1) {
      counters_.bad_frames.fetch_add(1, std::memory_order_relaxed);
      continue;  // not [identity][frame]
    }
    Dispatch(std::string(static_cast<const char*>(id.data()), id.size()), false, parts[0]);
  }
}

void ReplIo::ReadDealer(const std::string& name, Peer& peer) {
  for (int i = 0; i < kPeerReadBurst; ++i) {
    zmq::message_t frame;
    if (!peer.dealer->recv(frame, zmq::recv_flags::dontwait)) return;
    if (frame.more()) {
      counters_.bad_frames.fetch_add(1, std::memory_order_relaxed);
      bool more = true;
      while (more) {
        zmq::message_t rest;
        (void)peer.dealer->recv(rest);
        more = rest.more();
      }
      continue;
    }
    Dispatch(name, true, frame);
  }
}

void ReplIo::Loop() {
  pthread_setname_np(pthread_self(), "todo-repl");
  std::vector<zmq::pollitem_t> items;
  std::vector<std::string> names;
  while (!stop_.load()) {
    ApplyPeers();
    // Reading stops while a shard's inbox is over its bound (TCP then
    // pushes back on the sender).
    bool full = false;
    for (ShardInbox* in : inboxes_) full = full || in->over();
    items.clear();
    names.clear();
    items.push_back({nullptr, wake_fd_, ZMQ_POLLIN, 0});
    items.push_back({static_cast<void*>(router_), 0, static_cast<short>(full ? 0 : ZMQ_POLLIN), 0});
    for (auto& [name, peer] : peers_) {
      short ev = full ? 0 : ZMQ_POLLIN;
      if (!peer.pending.empty()) ev |= ZMQ_POLLOUT;
      items.push_back({static_cast<void*>(*peer.dealer), 0, ev, 0});
      names.push_back(name);
    }
    try {
      zmq::poll(items.data(), items.size(), full ? std::chrono::milliseconds(5) : kMaxWait);
    } catch (const zmq::error_t& e) {
      if (e.num() != EINTR) spdlog::error("replication: poll failed: {}", e.what());
      continue;
    }
    TakeOutgoing((items[0].revents & ZMQ_POLLIN) != 0);
    if (items[1].revents & ZMQ_POLLIN) ReadRouter();
    for (size_t i = 0; i < names.size(); ++i) {
      auto it = peers_.find(names[i]);
      if (it == peers_.end()) continue;
      if (items[2 + i].revents & ZMQ_POLLOUT) Flush(it->first, it->second);
      if (items[2 + i].revents & ZMQ_POLLIN) ReadDealer(it->first, it->second);
    }
    // Everything this poll brought, one hand-off per shard.
    PostGathered();
  }
}

}  // namespace todo::node
