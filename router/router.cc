#include "router/router.h"

#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <random>

#include "common/io/listen.h"
#include "common/io/security/curve.h"

namespace todo::router {
namespace {

using std::chrono::milliseconds;

// Frames a client may send in one message (envelope + body; the identity
// frame ZeroMQ adds is not one of them).
constexpr size_t kMaxFrames = 16;
// What a forwarded request holds in the router besides its body and
// envelope, as counted against --max-inflight-mb: its InflightEntry with
// the envelope's strings, its hash-map node and deadline slot, and the head
// frame sent to the node.
constexpr size_t kEntryOverheadBytes = 320;
// Messages read from the frontend, and from each node, per wake-up.
constexpr int kFrontendBurst = 256;
constexpr int kNodeBurst = 512;
// The poll never sleeps longer than this.
constexpr milliseconds kMaxPollWait{100};
// "not primary" answers: tried again this many times at most, after these
// back-offs when the map still names the node that refused.
constexpr uint8_t kMaxNotPrimaryTries = 6;
constexpr milliseconds kNotPrimaryBackoff{20};
constexpr milliseconds kNotPrimaryBackoffMax{320};
// Frontend: queue bounds per client (a frame bigger than
// protocol::kMaxFrameBytes drops the client's connection).
constexpr int kFrontendSndHwm = 100000;
constexpr int kFrontendRcvHwm = 10000;
// Per-node DEALER: messages queued for a node at most (then `overloaded`;
// to a node that takes batches, requests outstanding at most), and replies
// queued for the loop.
constexpr int kNodeSndHwm = 32768;
constexpr int kNodeRcvHwm = 100000;
// Frame 0 of a message to or from a node: a forwarded request's head, 'R',
// the 8-byte big-endian sequence number, then the client's identity (its
// first envelope frame, folded in so a message carries one frame less each
// way); or a heartbeat: 'H' then an 8-byte big-endian token.
constexpr char kRequestTag = 'R';
constexpr size_t kSeqBytes = 8;
constexpr size_t kHeadBytes = 1 + kSeqBytes;  // before the identity
// Initial size of a reply the router builds itself (msgpack's default is 8 KiB).
constexpr size_t kReplyBufferBytes = 256;
// An internal (guest) identity: a 0 byte, the secret, the token. A ZeroMQ
// peer's identity is either libzmq's (5 bytes, 0 first) or its own choice,
// which would have to guess the secret.
constexpr size_t kInternalIdentityBytes = 1 + 8 + 8;
// After the last request in flight is answered, a draining loop waits this
// long at most for the guest to send its answers.
constexpr milliseconds kGuestFlushGrace{1000};

void PutBigEndian(uint64_t v, unsigned char* out) {
  for (int i = 7; i >= 0; --i) {
    out[i] = static_cast<unsigned char>(v & 0xff);
    v >>= 8;
  }
}

// Writes a forwarded request's head ('R', seq, the client's identity) to
// `out`, which has room for kHeadBytes + identity.size().
void PutHead(uint64_t seq, std::string_view identity, unsigned char* out) {
  out[0] = static_cast<unsigned char>(kRequestTag);
  PutBigEndian(seq, out + 1);
  std::memcpy(out + kHeadBytes, identity.data(), identity.size());
}

uint64_t GetBigEndian(const unsigned char* in) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | in[i];
  return v;
}

void FreeBuffer(void* data, void*) { std::free(data); }

// A message that takes over the buffer of `body` (no copy).
zmq::message_t ToMessage(msgpack::sbuffer& body) {
  size_t n = body.size();
  char* data = body.release();
  return zmq::message_t(data, n, FreeBuffer, nullptr);
}

std::string_view View(const zmq::message_t& m) {
  return std::string_view(static_cast<const char*>(m.data()), m.size());
}

int64_t Millis(TimePoint::duration d) {
  return std::chrono::duration_cast<milliseconds>(d).count();
}

// True if the endpoint asks the OS for a port ("tcp://host:0", ":*").
bool HasWildcardPort(const std::string& endpoint) {
  return endpoint.rfind("tcp://", 0) == 0 && (endpoint.ends_with(":0") || endpoint.ends_with(":*"));
}

// Sends frames[first..] as one message to the client named by frames[first]
// (the identity frame), the last frame without SNDMORE. Never blocks: a
// client that is gone or not reading loses the reply, which is counted.
bool SendFrames(zmq::socket_t& socket, std::vector<zmq::message_t>& frames, size_t first,
                uint64_t* unroutable) {
  try {
    for (size_t i = first; i < frames.size(); ++i) {
      auto flags = zmq::send_flags::dontwait;
      if (i + 1 < frames.size()) flags = flags | zmq::send_flags::sndmore;
      if (!socket.send(frames[i], flags)) {
        ++*unroutable;  // the client's queue is full
        return false;
      }
    }
    return true;
  } catch (const zmq::error_t&) {
    ++*unroutable;  // EHOSTUNREACH: the client is gone
    return false;
  }
}

// A DEALER to one node.
std::unique_ptr<zmq::socket_t> MakeBackend(zmq::context_t& ctx) {
  auto s = std::make_unique<zmq::socket_t>(ctx, zmq::socket_type::dealer);
  s->set(zmq::sockopt::immediate, 1);  // no queueing for a node not connected
  s->set(zmq::sockopt::linger, 0);
  s->set(zmq::sockopt::reconnect_ivl, 100);
  s->set(zmq::sockopt::reconnect_ivl_max, 1000);
  // ZMTP heartbeats: a connection whose peer vanished without a FIN (a cut
  // link, a dead host) is dropped and re-dialled within seconds, instead
  // of waiting for TCP's backed-off retransmissions.
  s->set(zmq::sockopt::heartbeat_ivl, 500);
  s->set(zmq::sockopt::heartbeat_timeout, 2000);
  s->set(zmq::sockopt::heartbeat_ttl, 4000);
  s->set(zmq::sockopt::sndhwm, kNodeSndHwm);
  s->set(zmq::sockopt::rcvhwm, kNodeRcvHwm);
  return s;
}

}  // namespace

Router::Router(const RouterOptions& options, zmq::context_t* ctx)
    : options_(options),
      name_(options.name.empty() ? options.listen : options.name),
      frontend_(*ctx, zmq::socket_type::router),
      specs_(options.nodes),
      rendezvous_(NodeNames(options.nodes)),
      ctx_(ctx),
      nodes_(options.nodes.size(),
             NodeHealthOptions{milliseconds(options.heartbeat_ms),
                               milliseconds(options.down_after_ms)},
             Clock::now()),
      inflight_(options.max_inflight),
      outstanding_(options.nodes.size(), 0),
      batching_(options.nodes.size(), 0),
      pending_(options.nodes.size()) {
  std::random_device rd;
  guest_secret_ = (uint64_t{rd()} << 32) ^ rd();
  frontend_.set(zmq::sockopt::router_mandatory, 1);
  frontend_.set(zmq::sockopt::sndhwm, kFrontendSndHwm);
  frontend_.set(zmq::sockopt::rcvhwm, kFrontendRcvHwm);
  frontend_.set(zmq::sockopt::maxmsgsize, protocol::kMaxFrameBytes);
  frontend_.set(zmq::sockopt::linger, 1000);  // let the last replies out at exit
  for (size_t i = 0; i < options.nodes.size(); ++i) backends_.push_back(MakeBackend(*ctx));
  hop_batch::EncodeBatchPing(heartbeat_body_);  // {"op": "ping", "batch": N}
  if (options.replicated()) view_ = std::make_unique<io::ClusterView>();
}

Router::~Router() {
  if (watcher_) watcher_->Stop();  // before its eventfd goes
  if (view_fd_ >= 0) close(view_fd_);
}

Status Router::Start() {
  // CurveZMQ, if configured (--curve-secret): CURVE server to clients.
  if (Status s = security::SecureServerSocket(frontend_, options_.curve); !s.ok()) return s;
  // An ipc:// path another process serves is refused, not taken over.
  if (Status s = io::CheckZmqEndpointFree(options_.listen); !s.ok()) return s;
  try {
    frontend_.bind(options_.listen);
  } catch (const zmq::error_t& e) {
    return Status::Internal("cannot bind " + options_.listen + ": " + e.what());
  }
  if (options_.name.empty() && HasWildcardPort(options_.listen)) {
    name_ = frontend_.get(zmq::sockopt::last_endpoint);
  }
  if (options_.replicated()) {
    view_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (view_fd_ < 0) return Status::Internal("eventfd failed");
    auto endpoints = io::ParseEtcdEndpointList(options_.etcd);
    if (!endpoints.ok()) return endpoints.status();
    auto etcd = io::EtcdClient::Create(*endpoints, io::EtcdClient::Options{});
    if (!etcd.ok()) return etcd.status();
    etcd_ = std::move(etcd).value();
    watcher_ = std::make_unique<io::ClusterWatcher>(
        etcd_.get(), options_.cluster_name, view_.get(),
        [fd = view_fd_](const std::shared_ptr<const io::ClusterSnapshot>&) {
          uint64_t one = 1;
          (void)!write(fd, &one, sizeof one);
        });
    watcher_->Start();
    return Status::Ok();
  }
  for (size_t i = 0; i < backends_.size(); ++i) {
    const NodeSpec& n = specs_[i];
    // CurveZMQ: CURVE client of the node, with the router's own keypair.
    if (Status s = security::SecureClientSocket(*backends_[i], options_.curve, n.server_key);
        !s.ok()) {
      return s;
    }
    try {
      backends_[i]->connect(n.endpoint);
    } catch (const zmq::error_t& e) {
      return Status::Internal("cannot connect to node '" + n.name + "' at " + n.endpoint + ": " +
                              e.what());
    }
  }
  return Status::Ok();
}

// --- Replicated mode: the map from etcd ---

size_t Router::EnsureNode(const cluster::NodeInfo& info, TimePoint now) {
  const std::string& name = info.name;
  const std::string& endpoint = info.endpoint;
  // CurveZMQ: the node's key is the one it announced in etcd.
  std::optional<security::CurveKey> key;
  if (!info.curve_key.empty()) {
    if (auto k = security::DecodeZ85Key(info.curve_key); k.ok()) key = *k;
  }
  auto it = node_index_.find(name);
  size_t i;
  if (it == node_index_.end()) {
    i = nodes_.Add(now);
    backends_.push_back(MakeBackend(*ctx_));
    NodeSpec spec;
    spec.name = name;
    spec.endpoint = endpoint;
    spec.server_key = key;
    specs_.push_back(std::move(spec));
    outstanding_.push_back(0);
    batching_.push_back(0);
    pending_.emplace_back();
    node_index_[name] = i;
  } else {
    i = it->second;
    if (specs_[i].endpoint == endpoint && specs_[i].server_key == key) return i;
    // Moved, or a new key: a fresh connection (requests in flight on the old
    // one expire), v1 until the node's pong says it takes batches.
    FlushBatch(i);
    backends_[i] = MakeBackend(*ctx_);
    batching_[i] = 0;
    specs_[i].endpoint = endpoint;
    specs_[i].server_key = key;
  }
  if (options_.curve.enabled() && !key) {
    // Never plaintext beside CURVE: the node stays unreachable (its lists
    // answer unavailable) until it runs with a key.
    spdlog::error(
        "node '{}' at {} runs without CurveZMQ and this router with it: not connecting (give "
        "every node --curve-secret, or none)",
        name, endpoint);
    return i;
  }
  if (!options_.curve.enabled() && key) {
    spdlog::warn(
        "node '{}' at {} runs with CurveZMQ and this router without: it will not answer (start "
        "the router with --curve-secret, its key on the nodes' --curve-allow)",
        name, endpoint);
  }
  if (Status s = security::SecureClientSocket(*backends_[i], options_.curve, key); !s.ok()) {
    spdlog::error("node '{}': {}", name, s.message());
    return i;
  }
  try {
    backends_[i]->connect(endpoint);
    spdlog::info("node '{}' at {}{}", name, endpoint,
                 key && options_.curve.enabled() ? " (CURVE)" : "");
  } catch (const zmq::error_t& e) {
    spdlog::error("cannot connect to node '{}' at {}: {}", name, endpoint, e.what());
  }
  return i;
}

void Router::ApplyView(TimePoint now) {
  uint64_t v;
  (void)!read(view_fd_, &v, sizeof v);
  const uint64_t version = view_->version();
  if (version == view_seen_) return;
  view_seen_ = version;
  auto snap = view_->Get();
  for (const auto& [name, info] : snap->alive) EnsureNode(info, now);
  // A node whose lease is gone is fenced (or dead): it acknowledges nothing
  // more. Its requests in flight are answered now, `timeout` (outcome
  // unknown: it may have applied them), not at their deadline, so clients
  // retry at once (with a request id, safely) against the new primary.
  if (snap_) {
    for (const auto& [name, info] : snap_->alive) {
      if (snap->alive.contains(name)) continue;
      auto it = node_index_.find(name);
      if (it == node_index_.end()) continue;
      expired_.clear();
      if (inflight_.TakeNode(static_cast<uint32_t>(it->second), &expired_) == 0) continue;
      spdlog::info("node '{}' lost its lease: {} requests in flight to it answered timeout", name,
                   expired_.size());
      AnswerTimeouts(now, "node '" + name +
                              "' lost its etcd lease (dead or cut off) with the "
                              "request in flight; it may or may not have been applied");
    }
  }
  if (snap->map && (!snap_ || snap_->map != snap->map || snap_->alive != snap->alive)) {
    const cluster::ClusterMap& map = *snap->map;
    primary_.assign(map.partitions, -1);
    for (uint32_t p = 0; p < map.partitions; ++p) {
      const std::string& primary = map.parts[p].primary();
      auto it = node_index_.find(primary);
      if (snap->alive.contains(primary) && it != node_index_.end() &&
          map.parts[p].IsInSync(primary)) {
        primary_[p] = static_cast<int64_t>(it->second);
      }
    }
    if (!snap_ || snap_->map != snap->map) {
      ++map_version_;
      spdlog::info("map version {} (etcd revision {}): {} partitions", map.version,
                   snap->map_revision, map.partitions);
    }
  }
  if (!snap->map && snap->map_error.empty() && !said_no_cluster_) {
    said_no_cluster_ = true;
    spdlog::warn("cluster '{}' is not initialized in etcd ({}): run todo-admin init; waiting",
                 options_.cluster_name, io::ClusterKeys(options_.cluster_name).map);
  }
  snap_ = std::move(snap);
  // Requests parked on a "not primary" answer go out again if the map now
  // names another primary.
  std::vector<Parked> parked;
  parked.swap(parked_);
  parked_next_ = TimePoint::max();
  for (const Parked& p : parked) {
    if (InflightEntry* e = inflight_.Find(p.seq)) {
      const int64_t node = e->partition < primary_.size() ? primary_[e->partition] : -1;
      if (node >= 0 && static_cast<uint32_t>(node) == e->node) {
        Park(p.seq, p.retry_at);  // the same primary still: its back-off runs on
      } else {
        Resend(p.seq, now, false);
      }
    }
  }
}

void Router::RetryParked(TimePoint now) {
  if (parked_.empty() || now < parked_next_) return;
  std::vector<Parked> parked;
  parked.swap(parked_);
  parked_next_ = TimePoint::max();
  for (const Parked& p : parked) {
    if (p.retry_at <= now) {
      Resend(p.seq, now, true);
    } else {
      Park(p.seq, p.retry_at);
    }
  }
}

int64_t Router::PrimaryOf(const protocol::Request& request, uint32_t* partition, std::string* why) {
  if (!snap_ || !snap_->map) {
    if (snap_ && !snap_->map_error.empty()) {
      *why = "no valid cluster map (the one in etcd is malformed: " + snap_->map_error + ")";
    } else if (snap_) {  // etcd was read: ApplyView takes published snapshots only
      *why = "no cluster map yet (cluster '" + options_.cluster_name +
             "' is not initialized in etcd: todo-admin init)";
    } else {
      *why = "no cluster map yet (etcd " + options_.etcd + " not read)";
    }
    return -1;
  }
  const cluster::ClusterMap& map = *snap_->map;
  *partition = map.PartitionOfList(request.list);
  const int64_t i = primary_[*partition];
  if (i < 0) {
    const cluster::Partition& part = map.parts[*partition];
    *why = "partition " + std::to_string(*partition) + " has no primary with a lease: '" +
           part.primary() + "' is down" +
           (part.IsInSync(part.primary()) ? " (failover in progress, or no in-sync copy alive)"
                                          : " and no replica in sync is alive");
  }
  return i;
}

bool Router::RetryNotPrimary(InflightEntry& entry, TimePoint now) {
  if (entry.not_primary_tries >= kMaxNotPrimaryTries || !view_) return false;
  ++entry.not_primary_tries;
  ++counters_.not_primary_retries;
  const bool moved = entry.partition < primary_.size() && primary_[entry.partition] >= 0 &&
                     static_cast<uint32_t>(primary_[entry.partition]) != entry.node;
  if (moved) {
    Resend(entry.seq, now, false);  // our map already names another primary
  } else {
    // Our map still names the node that refused: a hand-off in progress,
    // our map behind, or the node's behind ours. Again at the next map or
    // after a back-off (20 ms doubling, at most 320 ms), within the deadline.
    Park(entry.seq, now + std::min(kNotPrimaryBackoff * (1 << (entry.not_primary_tries - 1)),
                                   kNotPrimaryBackoffMax));
  }
  return true;
}

void Router::Resend(uint64_t seq, TimePoint now, bool same_ok) {
  InflightEntry* e = inflight_.Find(seq);
  if (e == nullptr) return;  // answered (timeout) meanwhile
  std::string why;
  uint32_t partition = e->partition;
  int64_t node = -1;
  if (snap_ && snap_->map && partition < primary_.size()) node = primary_[partition];
  if (!same_ok && node >= 0 && static_cast<uint32_t>(node) == e->node) {
    Park(seq, now + kNotPrimaryBackoff);  // the same primary still
    return;
  }
  if (node < 0 || !nodes_.Routable(static_cast<size_t>(node))) {
    // As a fresh request would be: unavailable (nothing was applied: the
    // node that got it was not primary).
    std::optional<InflightEntry> done = inflight_.Complete(seq);
    std::vector<zmq::message_t> frames;
    for (const std::string& f : done->envelope) frames.emplace_back(f.data(), f.size());
    msgpack::sbuffer reply(kReplyBufferBytes);
    protocol::EncodeError(
        reply, done->id.view(), ErrorCode::kUnavailable,
        "partition " + std::to_string(partition) + " is changing primaries; not applied, retry");
    frames.push_back(ToMessage(reply));
    ++counters_.replies_by_code[static_cast<size_t>(ErrorCode::kUnavailable)];
    SendFrames(frontend_, frames, 0, &counters_.unroutable_sends);
    return;
  }
  const std::string& identity = e->envelope.front();
  zmq::message_t head(kHeadBytes + identity.size());
  PutHead(seq, identity, static_cast<unsigned char*>(head.data()));
  zmq::socket_t& backend = *backends_[static_cast<size_t>(node)];
  bool sent = false;
  try {
    if (backend.send(head, zmq::send_flags::sndmore | zmq::send_flags::dontwait)) {
      sent = true;
      for (size_t i = 1; i < e->envelope.size(); ++i) {
        zmq::message_t f(e->envelope[i].data(), e->envelope[i].size());
        (void)backend.send(f, zmq::send_flags::sndmore | zmq::send_flags::dontwait);
      }
      zmq::message_t body;
      if (e->body) body.copy(*e->body);
      (void)backend.send(body, zmq::send_flags::dontwait);
    }
  } catch (const zmq::error_t&) {
    sent = false;
  }
  if (!sent) {
    Park(seq, now + kNotPrimaryBackoff);  // tried again; its deadline holds
    return;
  }
  --outstanding_[e->node];
  e->node = static_cast<uint32_t>(node);
  e->map_version = map_version_;
  ++outstanding_[e->node];
  ++counters_.forwarded;
  (void)now;
}

// --- Replies to clients ---

void Router::ReplyFromRouter(msgpack::sbuffer& reply, ErrorCode code) {
  ++counters_.replies_by_code[static_cast<size_t>(code)];
  frames_.back() = ToMessage(reply);  // the envelope stays, the request body goes
  SendToClient(frames_);
}

bool Router::SendToClient(std::vector<zmq::message_t>& frames) {
  const zmq::message_t& identity = frames.front();
  if (identity.size() == kInternalIdentityBytes && guest_ != nullptr) {
    const auto* p = static_cast<const unsigned char*>(identity.data());
    if (p[0] == 0 && GetBigEndian(p + 1) == guest_secret_) {
      guest_->OnReply(GetBigEndian(p + 9), View(frames.back()));
      return true;
    }
  }
  return SendFrames(frontend_, frames, 0, &counters_.unroutable_sends);
}

void Router::Submit(uint64_t token, zmq::message_t body) {
  unsigned char id[kInternalIdentityBytes];
  id[0] = 0;
  PutBigEndian(guest_secret_, id + 1);
  PutBigEndian(token, id + 9);
  frames_.clear();
  frames_.emplace_back(id, sizeof id);
  frames_.push_back(std::move(body));
  HandleRequest(Clock::now());
}

void Router::ReplyError(const protocol::RequestId& id, ErrorCode code, std::string_view message) {
  msgpack::sbuffer reply(kReplyBufferBytes);
  protocol::EncodeError(reply, id, code, message);
  ReplyFromRouter(reply, code);
}

// --- Requests ---

void Router::ReadFrontend(TimePoint now) {
  for (int n = 0; n < kFrontendBurst; ++n) {
    zmq::message_t first;
    if (!frontend_.recv(first, zmq::recv_flags::dontwait)) return;
    frames_.clear();
    bool more = first.more();
    frames_.push_back(std::move(first));
    zmq::message_t last;
    size_t dropped = 0;  // frames past the limit, freed as read
    while (more) {
      zmq::message_t part;
      (void)frontend_.recv(part);  // the rest of a multipart message is already here
      more = part.more();
      if (frames_.size() < kMaxFrames + 1) {
        frames_.push_back(std::move(part));
      } else {
        last = std::move(part);
        ++dropped;
      }
    }
    if (frames_.size() < 2) {
      ++counters_.dropped_requests;  // no body: nothing to answer
      continue;
    }
    // Frames the client sent: all but its identity, dropped ones included.
    const size_t sent = frames_.size() - 1 + dropped;
    size_t envelope_bytes = 0;
    for (size_t i = 1; i + 1 < frames_.size(); ++i) envelope_bytes += frames_[i].size();
    std::string refusal;
    if (sent > kMaxFrames) {
      refusal = "message has " + std::to_string(sent) + " frames, more than the " +
                std::to_string(kMaxFrames) + " allowed";
    } else if (envelope_bytes > protocol::kMaxEnvelopeBytes) {
      refusal = "routing envelope (the frames before the body) is " +
                std::to_string(envelope_bytes) + " bytes, more than the " +
                std::to_string(protocol::kMaxEnvelopeBytes) + " allowed";
    }
    if (!refusal.empty()) {
      // Answer the identity alone (nothing of the envelope is kept or
      // echoed), echoing the id if the body has one.
      if (dropped > 0) frames_.back() = std::move(last);
      zmq::message_t body = std::move(frames_.back());
      frames_.resize(1);
      frames_.push_back(std::move(body));
      auto decoded = protocol::DecodeRequest(View(frames_.back()));
      ++counters_.bad_requests;
      ReplyError(decoded.id, ErrorCode::kBadRequest, refusal);
      continue;
    }
    HandleRequest(now);
  }
}

void Router::HandleRequest(TimePoint now) {
  // Views into the body stay valid until frames_.back() is replaced or sent.
  auto decoded = protocol::DecodeRequest(View(frames_.back()));
  if (!decoded.status.ok()) {
    ++counters_.bad_requests;
    ReplyError(decoded.id, decoded.status.code(), decoded.status.message());
    return;
  }
  const protocol::Request& req = decoded.request;
  ++counters_.requests_by_op[static_cast<size_t>(req.op)];
  const protocol::RequestId& id = req.id;
  switch (req.op) {
    case protocol::Op::kPing: {
      msgpack::sbuffer reply(kReplyBufferBytes);
      protocol::EncodePing(reply, id, "router", name_);
      ReplyFromRouter(reply, ErrorCode::kOk);
      return;
    }
    case protocol::Op::kLocate: {
      msgpack::sbuffer reply(kReplyBufferBytes);
      if (!options_.replicated()) {
        protocol::EncodeLocate(reply, id, rendezvous_.nodes()[rendezvous_.Owner(req.list)]);
      } else if (!snap_ || !snap_->map) {
        protocol::EncodeError(reply, id, ErrorCode::kUnavailable, "no cluster map yet");
      } else {
        const uint32_t p = snap_->map->PartitionOfList(req.list);
        const cluster::Partition& part = snap_->map->parts[p];
        protocol::EncodeLocateReplicated(reply, id, part.primary(), part.replicas, p, part.epoch);
      }
      ReplyFromRouter(reply, ErrorCode::kOk);
      return;
    }
    case protocol::Op::kMap: {
      msgpack::sbuffer reply(kReplyBufferBytes);
      if (!options_.replicated()) {
        protocol::EncodeError(reply, id, ErrorCode::kUnknownOp,
                              "map is answered in replicated mode only (this router is static)");
      } else if (!snap_ || !snap_->map) {
        protocol::EncodeError(reply, id, ErrorCode::kUnavailable, "no cluster map yet");
      } else {
        std::vector<std::pair<std::string_view, std::string_view>> nodes;
        // Members only (a live non-member serves nothing).
        for (const auto& [n, info] : snap_->alive) {
          if (snap_->map->IsMember(n)) nodes.emplace_back(n, info.endpoint);
        }
        std::vector<protocol::MapPart> parts;
        for (const cluster::Partition& p : snap_->map->parts)
          parts.push_back({p.primary(), p.epoch});
        protocol::EncodeMap(reply, id, snap_->map->partitions, cluster::kHashName,
                            snap_->map->version, nodes, parts);
      }
      ReplyFromRouter(reply, ErrorCode::kOk);
      return;
    }
    case protocol::Op::kStats: {
      msgpack::sbuffer reply(kReplyBufferBytes);
      EncodeRouterStats(reply, id, *this);
      ReplyFromRouter(reply, ErrorCode::kOk);
      return;
    }
    default:
      break;  // forwarded: no reply buffer is needed here
  }
  size_t owner;
  uint32_t partition = 0;
  if (options_.replicated()) {
    std::string why;
    const int64_t i = PrimaryOf(req, &partition, &why);
    if (i < 0) {
      ReplyError(id, ErrorCode::kUnavailable, why);
      return;
    }
    owner = static_cast<size_t>(i);
  } else {
    owner = rendezvous_.Owner(req.list);
  }
  if (!nodes_.Routable(owner)) {
    const NodeSpec& n = specs_[owner];
    ReplyError(id, ErrorCode::kUnavailable,
               "node '" + n.name + "' (" + n.endpoint + ") that owns the list is down: not heard " +
                   "from for " + std::to_string(Millis(now - nodes_.last_heard(owner))) + " ms");
    return;
  }
  if (inflight_.full()) {
    ReplyError(id, ErrorCode::kOverloaded,
               "router has " + std::to_string(inflight_.size()) +
                   " requests in flight (--max-inflight); retry later");
    return;
  }
  if (inflight_.bytes() > (uint64_t{options_.max_inflight_mb} << 20)) {
    ReplyError(id, ErrorCode::kOverloaded,
               "router holds " + std::to_string(inflight_.bytes() >> 20) +
                   " MiB of requests in flight (--max-inflight-mb); retry later");
    return;
  }
  Forward(owner, req, partition, now);
}

void Router::Forward(size_t node, const protocol::Request& request, uint32_t partition,
                     TimePoint now) {
  if (batching_[node] && outstanding_[node] >= static_cast<size_t>(kNodeSndHwm)) {
    // ZeroMQ's queue bound counts messages, and a batch is one message for
    // up to 64 requests: to a node that takes batches the same bound counts
    // requests, so a node that stopped reading still fills its queue at
    // kNodeSndHwm requests and the rest are told `overloaded` at once.
    const auto [code, message] = QueueRefusal(node);
    ReplyError(request.id, code, message);
    return;
  }
  InflightEntry entry;
  entry.seq = next_seq_++;
  entry.deadline = now + milliseconds(options_.timeout_ms);
  entry.node = static_cast<uint32_t>(node);
  entry.op = request.op;
  entry.id = OwnedRequestId::From(request.id);
  entry.envelope.reserve(frames_.size() - 1);
  size_t bytes = kEntryOverheadBytes;
  for (size_t i = 0; i + 1 < frames_.size(); ++i) {
    entry.envelope.emplace_back(View(frames_[i]));
    bytes += frames_[i].size();
  }
  bytes += frames_.back().size();  // the body, until the node answers
  entry.bytes = static_cast<uint32_t>(bytes);
  if (options_.replicated()) {
    // Kept (a reference, not a copy) for one more try on "not primary".
    entry.body.emplace();
    entry.body->copy(frames_.back());
    entry.map_version = map_version_;
    entry.partition = partition;
  }
  const uint64_t seq = entry.seq;
  if (!inflight_.Insert(std::move(entry))) {  // left as it was when refused
    ReplyError(entry.id.view(), ErrorCode::kInternal, "router could not record the request");
    return;
  }
  const zmq::message_t& identity = frames_.front();
  if (batching_[node]) {
    // Into this pass's batch for the node: [head][envelope...][body] as one
    // record, the head built in place.
    unsigned char head[kHeadBytes + 256];
    const size_t n = frames_.size();
    size_t record_bytes = kHeadBytes + identity.size();
    for (size_t i = 1; i < n; ++i) record_bytes += frames_[i].size();
    PendingBatch& batch = pending_[node];
    if (!batch.writer.Fits(n, record_bytes) && !batch.writer.empty()) FlushBatch(node);
    if (identity.size() <= 256 && batch.writer.Fits(n, record_bytes)) {
      PutHead(seq, View(identity), head);
      std::array<std::string_view, hop_batch::kMaxRecordFrames> record;
      record[0] =
          std::string_view(reinterpret_cast<const char*>(head), kHeadBytes + identity.size());
      for (size_t i = 1; i < n; ++i) record[i] = View(frames_[i]);
      batch.writer.Add(record.data(), n);
      batch.seqs.push_back(seq);
      batches_pending_ = true;
      ++outstanding_[node];
      ++counters_.forwarded;
      return;
    }
    // Too big for a batch: on its own, as v1.
  }
  // The head: 'R', seq, the client's identity (a ROUTER identity is 1-255
  // bytes, so the head stays small: zmq keeps up to 33 bytes inline).
  zmq::message_t head(kHeadBytes + identity.size());
  PutHead(seq, View(identity), static_cast<unsigned char*>(head.data()));
  zmq::socket_t& backend = *backends_[node];
  bool sent = false;
  try {
    // A DEALER takes a whole message or none of it: only the first frame can
    // fail (EAGAIN: queue full, or no connection with ZMQ_IMMEDIATE).
    if (backend.send(head, zmq::send_flags::sndmore | zmq::send_flags::dontwait)) {
      sent = true;
      for (size_t i = 1; i < frames_.size(); ++i) {
        auto flags = zmq::send_flags::dontwait;
        if (i + 1 < frames_.size()) flags = flags | zmq::send_flags::sndmore;
        (void)backend.send(frames_[i], flags);  // moves the frame: the body is not copied
      }
    }
  } catch (const zmq::error_t& e) {
    spdlog::error("send to node '{}' failed: {}", specs_[node].name, e.what());
  }
  if (!sent) {
    const OwnedRequestId id = std::move(inflight_.Complete(seq)->id);
    const auto [code, message] = QueueRefusal(node);
    ReplyError(id.view(), code, message);
    return;
  }
  ++outstanding_[node];
  ++counters_.forwarded;
}

std::pair<ErrorCode, std::string> Router::QueueRefusal(size_t node) const {
  const NodeSpec& n = specs_[node];
  // A full queue, or no connection (ZMQ_IMMEDIATE)? ZeroMQ tells the sender
  // how far the reader has got only every HWM/2 messages, so a queue can
  // report full once it holds half its HWM: with fewer than that
  // outstanding, the node is not connected.
  if (outstanding_[node] < static_cast<size_t>(kNodeSndHwm / 2)) {
    return {ErrorCode::kUnavailable, "node '" + n.name + "' (" + n.endpoint +
                                         ") that owns the list is not connected (down or "
                                         "restarting)"};
  }
  return {ErrorCode::kOverloaded, "node '" + n.name + "' (" + n.endpoint + ") has " +
                                      std::to_string(outstanding_[node]) +
                                      " requests queued; retry later"};
}

void Router::FlushBatch(size_t node) {
  PendingBatch& batch = pending_[node];
  if (batch.writer.empty()) return;
  zmq::message_t marker(hop_batch::kMarker.data(), hop_batch::kMarker.size());
  zmq::message_t blob(batch.writer.blob().data(), batch.writer.blob().size());
  batch.writer.Clear();
  zmq::socket_t& backend = *backends_[node];
  bool sent = false;
  try {
    if (backend.send(marker, zmq::send_flags::sndmore | zmq::send_flags::dontwait)) {
      sent = true;
      (void)backend.send(blob, zmq::send_flags::dontwait);
    }
  } catch (const zmq::error_t& e) {
    spdlog::error("send to node '{}' failed: {}", specs_[node].name, e.what());
  }
  if (sent) {
    ++counters_.batches_sent;
    batch.seqs.clear();
    return;
  }
  // Refused whole: each request is answered as Forward answers a refused one.
  const auto [code, message] = QueueRefusal(node);
  std::vector<zmq::message_t> frames;
  for (uint64_t seq : batch.seqs) {
    std::optional<InflightEntry> e = inflight_.Complete(seq);
    if (!e) continue;
    --outstanding_[node];
    --counters_.forwarded;
    msgpack::sbuffer reply(kReplyBufferBytes);
    protocol::EncodeError(reply, e->id.view(), code, message);
    ++counters_.replies_by_code[static_cast<size_t>(code)];
    frames.clear();
    for (const std::string& f : e->envelope) frames.emplace_back(f.data(), f.size());
    frames.push_back(ToMessage(reply));
    SendToClient(frames);
  }
  batch.seqs.clear();
}

// --- Node replies and heartbeats ---

void Router::ReadNode(size_t node, TimePoint now) {
  zmq::socket_t& backend = *backends_[node];
  for (int n = 0; n < kNodeBurst; ++n) {
    zmq::message_t first;
    if (!backend.recv(first, zmq::recv_flags::dontwait)) return;
    frames_.clear();
    bool more = first.more();
    frames_.push_back(std::move(first));
    bool too_many = false;
    while (more) {
      zmq::message_t part;
      (void)backend.recv(part);
      more = part.more();
      if (frames_.size() < kMaxFrames + 1) {
        frames_.push_back(std::move(part));
      } else {
        too_many = true;
      }
    }
    if (too_many) {
      ++counters_.bad_node_messages;
      continue;
    }
    HandleNodeMessage(node, now);
  }
}

void Router::HandleNodeMessage(size_t node, TimePoint now) {
  if (auto t = nodes_.Heard(node, now)) NoteTransition(*t, now);
  const zmq::message_t& head = frames_.front();
  if (hop_batch::IsHeartbeatHead(View(head))) {
    // The pong says whether the node takes hop batches (now).
    const bool batching = frames_.size() == 2 && hop_batch::PongBatchLimit(View(frames_[1])) > 0;
    if (batching != (batching_[node] != 0)) {
      spdlog::info("node '{}' {} hop batches", specs_[node].name,
                   batching ? "takes" : "does not take");
      FlushBatch(node);
      batching_[node] = batching ? 1 : 0;
    }
    return;
  }
  if (View(head) == hop_batch::kMarker) {
    if (frames_.size() != 2) {
      ++counters_.bad_node_messages;
      return;
    }
    batch_in_ = std::move(frames_[1]);
    Status s = hop_batch::DecodeBatch(View(batch_in_), &records_);
    if (!s.ok()) {
      ++counters_.bad_node_messages;
      // A node that does not know batches answers one with an error (its
      // envelope: the marker); its requests are left to their deadline.
      if (batching_[node]) {
        spdlog::warn(
            "node '{}' refused a hop batch ({}): v1 from now on until its pong says "
            "otherwise; the batch's requests will time out",
            specs_[node].name, s.message());
        batching_[node] = 0;
      }
      return;
    }
    ++counters_.batches_received;
    for (const hop_batch::Record& r : records_) {
      frames_.clear();
      for (size_t i = 0; i < r.n; ++i) frames_.emplace_back(r.frames[i].data(), r.frames[i].size());
      HandleNodeReply(node, now);
    }
    records_.clear();
    batch_in_.rebuild();
    return;
  }
  HandleNodeReply(node, now);
}

void Router::HandleNodeReply(size_t node, TimePoint now) {
  const zmq::message_t& head = frames_.front();
  if (head.size() <= kHeadBytes || View(head)[0] != kRequestTag || frames_.size() < 2) {
    ++counters_.bad_node_messages;
    return;
  }
  const auto* h = static_cast<const unsigned char*>(head.data());
  uint64_t seq = GetBigEndian(h + 1);
  if (options_.replicated()) {
    // "not primary" (the map moved): forwarded once more to the new primary.
    InflightEntry* live = inflight_.Find(seq);
    if (live != nullptr && live->not_primary_tries < kMaxNotPrimaryTries &&
        protocol::PeekReplyCode(View(frames_.back())) == ErrorCode::kUnavailable) {
      auto header = protocol::DecodeReplyHeader(View(frames_.back()));
      if (header.ok() && header->message.rfind(protocol::kNotPrimaryPrefix, 0) == 0 &&
          RetryNotPrimary(*live, now)) {
        return;
      }
    }
  }
  std::optional<InflightEntry> entry = inflight_.Complete(seq);
  if (!entry) {
    ++counters_.late_replies_dropped;  // its deadline passed; the client had `timeout`
    spdlog::debug("late reply {} from node '{}' dropped", seq, specs_[node].name);
    return;
  }
  --outstanding_[entry->node];
  counters_.forwarded_by_op.Record(
      entry->op, protocol::PeekReplyCode(View(frames_.back())),
      now - (entry->deadline - milliseconds(options_.timeout_ms)));  // received -> now
  // Unfold the client's identity from the head: [identity][envelope...][reply].
  frames_.front() = zmq::message_t(h + kHeadBytes, head.size() - kHeadBytes);
  if (SendToClient(frames_)) {
    ++counters_.replies_forwarded;
  }
}

void Router::ExpireDeadlines(TimePoint now) {
  expired_.clear();
  if (inflight_.Expire(now, &expired_) == 0) return;
  AnswerTimeouts(now, "");
}

void Router::AnswerTimeouts(TimePoint now, const std::string& why) {
  std::vector<zmq::message_t> frames;
  for (InflightEntry& e : expired_) {
    --outstanding_[e.node];
    ++counters_.timeouts;
    ++counters_.replies_by_code[static_cast<size_t>(ErrorCode::kTimeout)];
    counters_.forwarded_by_op.Record(e.op, ErrorCode::kTimeout,
                                     now - (e.deadline - milliseconds(options_.timeout_ms)));
    const NodeSpec& n = specs_[e.node];
    msgpack::sbuffer reply(kReplyBufferBytes);
    protocol::EncodeError(reply, e.id.view(), ErrorCode::kTimeout,
                          !why.empty() ? why
                                       : "no reply from node '" + n.name + "' (" + n.endpoint +
                                             ") within the " + std::to_string(options_.timeout_ms) +
                                             " ms deadline; the operation may or may not have "
                                             "been applied");
    frames.clear();
    for (const std::string& f : e.envelope) frames.emplace_back(f.data(), f.size());
    frames.push_back(ToMessage(reply));
    spdlog::debug("request {} ({}) to node '{}' timed out", e.seq, protocol::OpName(e.op), n.name);
    SendToClient(frames);
  }
  expired_.clear();
}

void Router::NoteTransition(const NodeTransition& t, TimePoint now) {
  const NodeSpec& n = specs_[t.node];
  if (t.to == NodeState::kDown) {
    ++counters_.node_down;
    spdlog::warn("node '{}' ({}) is DOWN: not heard from for {} ms{}", n.name, n.endpoint,
                 Millis(now - nodes_.last_heard(t.node)),
                 nodes_.ever_heard(t.node) ? "" : " (never heard since start)");
    // Batches again only once its pong says so (it may come back as a
    // build that does not take them).
    FlushBatch(t.node);
    batching_[t.node] = 0;
  } else {
    ++counters_.node_up;
    spdlog::info("node '{}' ({}) is UP{}", n.name, n.endpoint,
                 t.from == NodeState::kDown ? " again" : "");
  }
}

void Router::SendHeartbeats() {
  for (size_t i = 0; i < backends_.size(); ++i) {
    unsigned char head[hop_batch::kHeartbeatHeadBytes];
    head[0] = static_cast<unsigned char>(hop_batch::kHeartbeatTag);
    PutBigEndian(nodes_.NextHeartbeatToken(i), head + 1);
    zmq::message_t head_frame(head, hop_batch::kHeartbeatHeadBytes);
    zmq::message_t body(heartbeat_body_.data(), heartbeat_body_.size());
    try {
      if (backends_[i]->send(head_frame, zmq::send_flags::sndmore | zmq::send_flags::dontwait)) {
        (void)backends_[i]->send(body, zmq::send_flags::dontwait);
        ++counters_.heartbeats_sent;
      } else {
        ++counters_.heartbeats_unsent;  // not connected: silence will mark it down
      }
    } catch (const zmq::error_t&) {
      ++counters_.heartbeats_unsent;
    }
  }
}

void Router::TendNodes(TimePoint now) {
  transitions_.clear();
  nodes_.CheckSilence(now, &transitions_);
  for (const NodeTransition& t : transitions_) NoteTransition(t, now);
  if (!nodes_.HeartbeatDue(now)) return;
  SendHeartbeats();
  nodes_.HeartbeatsSent(now);
}

// --- The loop ---

size_t Router::AwaitNodes(milliseconds max) {
  const size_t n_nodes = backends_.size();
  std::vector<zmq::pollitem_t> items(n_nodes);
  for (size_t i = 0; i < n_nodes; ++i) {
    items[i] = {static_cast<void*>(*backends_[i]), 0, ZMQ_POLLIN, 0};
  }
  const TimePoint deadline = Clock::now() + max;
  // Re-send heartbeats often while connections come up (a heartbeat sent
  // before the connection exists is not queued).
  TimePoint next_beat = Clock::now();
  for (;;) {
    size_t heard = 0;
    for (size_t i = 0; i < n_nodes; ++i) heard += nodes_.ever_heard(i) ? 1 : 0;
    TimePoint now = Clock::now();
    if (heard == n_nodes || now >= deadline) return heard;
    if (now >= next_beat) {
      SendHeartbeats();
      next_beat = now + milliseconds(20);
    }
    zmq::poll(items.data(), items.size(), milliseconds(10));
    now = Clock::now();
    for (size_t i = 0; i < n_nodes; ++i) {
      if (items[i].revents & ZMQ_POLLIN) ReadNode(i, now);
    }
  }
}

void Router::Run(int signal_fd) {
  // items: the signalfd, the frontend, the view's eventfd (replicated
  // mode; else an inert slot), the guest's fd (the HTTP server; else an
  // inert slot), then one DEALER per node. Rebuilt when the replicated mode
  // adds a node.
  constexpr size_t kFirstNode = 4;
  std::vector<zmq::pollitem_t> items;
  bool& draining = draining_;
  std::optional<TimePoint> guest_flush_until;
  auto build_items = [&] {
    items.assign(kFirstNode + backends_.size(), zmq::pollitem_t{});
    items[0] = {nullptr, signal_fd, static_cast<short>(draining ? 0 : ZMQ_POLLIN), 0};
    items[1] = {static_cast<void*>(frontend_), 0, static_cast<short>(draining ? 0 : ZMQ_POLLIN), 0};
    items[2] = {nullptr, view_fd_ >= 0 ? view_fd_ : signal_fd,
                static_cast<short>(view_fd_ >= 0 ? ZMQ_POLLIN : 0), 0};
    items[3] = {nullptr, guest_ ? guest_->poll_fd() : signal_fd,
                static_cast<short>(guest_ ? ZMQ_POLLIN : 0), 0};
    for (size_t i = 0; i < backends_.size(); ++i) {
      items[kFirstNode + i] = {static_cast<void*>(*backends_[i]), 0, ZMQ_POLLIN, 0};
    }
  };
  if (view_fd_ >= 0) ApplyView(Clock::now());
  build_items();
  TendNodes(Clock::now());  // the first heartbeats go out at once
  for (;;) {
    TimePoint now = Clock::now();
    TimePoint wake = std::min(now + kMaxPollWait, nodes_.NextEvent());
    if (auto d = inflight_.NextDeadline()) wake = std::min(wake, *d);
    if (!parked_.empty()) wake = std::min(wake, parked_next_);
    milliseconds wait = std::max(milliseconds(0), std::chrono::ceil<milliseconds>(wake - now));
    try {
      zmq::poll(items.data(), items.size(), wait);
    } catch (const zmq::error_t& e) {
      if (e.num() != EINTR) throw;
      continue;
    }
    if (!draining && (items[0].revents & ZMQ_POLLIN)) {
      signalfd_siginfo si;
      ssize_t got = read(signal_fd, &si, sizeof si);
      spdlog::info("{}: no more requests; draining {} in flight (at most {} ms)",
                   got == sizeof si ? strsignal(static_cast<int>(si.ssi_signo)) : "signal",
                   inflight_.size(), options_.timeout_ms);
      draining = true;
      items[0].events = 0;
      items[1].events = 0;  // stop reading requests
      if (guest_) guest_->StopReading();
    }
    now = Clock::now();
    if (view_fd_ >= 0 && (items[2].revents & ZMQ_POLLIN)) {
      ApplyView(now);
      // A node that moved got a new socket (EnsureNode): the items must not
      // keep pointing at the old one, which is gone.
      build_items();
    }
    for (size_t i = 0; i + kFirstNode < items.size(); ++i) {
      if (items[kFirstNode + i].revents & ZMQ_POLLIN) ReadNode(i, now);
    }
    if (!draining && (items[1].revents & ZMQ_POLLIN)) ReadFrontend(now);
    FlushBatches();  // what this pass forwarded, at once
    now = Clock::now();
    ExpireDeadlines(now);
    RetryParked(now);
    TendNodes(now);
    // After the replies above: the guest reads new requests (submitting
    // them) and sends the answers that are ready.
    if (guest_) {
      guest_->Serve((items[3].revents & ZMQ_POLLIN) != 0);
      FlushBatches();
    }
    if (publish_ && now >= next_publish_) {
      publish_(*this);
      next_publish_ = now + kPublishEvery;
    }
    if (draining && inflight_.size() == 0) {
      if (!guest_ || guest_->Idle()) return;
      if (!guest_flush_until) guest_flush_until = now + kGuestFlushGrace;
      if (now >= *guest_flush_until) return;  // a client that doesn't read
    }
    if (items.size() != kFirstNode + backends_.size()) build_items();
  }
}

std::string Router::CountersSummary() const {
  const RouterCounters& c = counters_;
  std::string s = "requests:";
  auto add = [&s](std::string_view name, uint64_t v) {
    s.append(" ").append(name).append("=").append(std::to_string(v));
  };
  for (size_t i = 0; i < c.requests_by_op.size(); ++i) {
    add(protocol::OpName(static_cast<protocol::Op>(i)), c.requests_by_op[i]);
  }
  add("bad", c.bad_requests);
  add("dropped", c.dropped_requests);
  s.append(";");
  add("forwarded", c.forwarded);
  add("node_replies", c.replies_forwarded);
  s.append("; own replies:");
  for (size_t i = 0; i < c.replies_by_code.size(); ++i) {
    add(ErrorCodeName(static_cast<ErrorCode>(i)), c.replies_by_code[i]);
  }
  s.append(";");
  add("timeouts", c.timeouts);
  add("late_replies_dropped", c.late_replies_dropped);
  add("not_primary_retries", c.not_primary_retries);
  add("unroutable_sends", c.unroutable_sends);
  add("bad_node_messages", c.bad_node_messages);
  add("batches_sent", c.batches_sent);
  add("batches_received", c.batches_received);
  s.append("; heartbeats");
  add("sent", c.heartbeats_sent);
  add("unsent", c.heartbeats_unsent);
  s.append("; node transitions");
  add("up", c.node_up);
  add("down", c.node_down);
  return s;
}

}  // namespace todo::router
