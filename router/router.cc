#include "router/router.h"

#include <spdlog/spdlog.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "common/io/security/curve.h"

namespace todo::router {
namespace {

using std::chrono::milliseconds;

// Frames per client message at most, identity and body included.
constexpr size_t kMaxFrames = 16;
// Messages read from the frontend, and from each node, per wake-up.
constexpr int kFrontendBurst = 256;
constexpr int kNodeBurst = 512;
// The poll never sleeps longer than this.
constexpr milliseconds kMaxPollWait{100};
// Frontend: bytes per frame at most (a bigger frame drops the peer) and
// queue bounds per client.
constexpr int64_t kMaxFrameBytes = int64_t{8} << 20;
constexpr int kFrontendSndHwm = 100000;
constexpr int kFrontendRcvHwm = 10000;
// Per-node DEALER: messages queued for a node at most (then `overloaded`),
// and replies queued for the loop.
constexpr int kNodeSndHwm = 32768;
constexpr int kNodeRcvHwm = 100000;
// Frame 0 of a message to or from a node: a forwarded request's head, 'R',
// the 8-byte big-endian sequence number, then the client's identity (its
// first envelope frame, folded in so a message carries one frame less each
// way); or a heartbeat: 'H' then an 8-byte big-endian token.
constexpr char kRequestTag = 'R';
constexpr size_t kSeqBytes = 8;
constexpr size_t kHeadBytes = 1 + kSeqBytes;  // before the identity
constexpr size_t kHeartbeatBytes = 9;
constexpr char kHeartbeatTag = 'H';
// Initial size of a reply the router builds itself (msgpack's default is 8 KiB).
constexpr size_t kReplyBufferBytes = 256;

void PutBigEndian(uint64_t v, unsigned char* out) {
  for (int i = 7; i >= 0; --i) {
    out[i] = static_cast<unsigned char>(v & 0xff);
    v >>= 8;
  }
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

}  // namespace

Router::Router(const RouterOptions& options, zmq::context_t* ctx)
    : options_(options),
      name_(options.name.empty() ? options.listen : options.name),
      frontend_(*ctx, zmq::socket_type::router),
      rendezvous_(NodeNames(options.nodes)),
      nodes_(options.nodes.size(),
             NodeHealthOptions{milliseconds(options.heartbeat_ms),
                               milliseconds(options.down_after_ms)},
             Clock::now()),
      inflight_(options.max_inflight),
      outstanding_(options.nodes.size(), 0) {
  frontend_.set(zmq::sockopt::router_mandatory, 1);
  frontend_.set(zmq::sockopt::sndhwm, kFrontendSndHwm);
  frontend_.set(zmq::sockopt::rcvhwm, kFrontendRcvHwm);
  frontend_.set(zmq::sockopt::maxmsgsize, kMaxFrameBytes);
  frontend_.set(zmq::sockopt::linger, 1000);  // let the last replies out at exit
  for (size_t i = 0; i < options.nodes.size(); ++i) {
    auto s = std::make_unique<zmq::socket_t>(*ctx, zmq::socket_type::dealer);
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
    backends_.push_back(std::move(s));
  }
  protocol::Request ping;
  ping.op = protocol::Op::kPing;
  protocol::EncodeRequest(heartbeat_body_, ping);
}

Router::~Router() = default;

Status Router::Start() {
  // CurveZMQ, if configured (--curve-secret): CURVE server to clients.
  if (Status s = security::SecureServerSocket(frontend_, options_.curve); !s.ok()) return s;
  try {
    frontend_.bind(options_.listen);
    for (const std::string& e : options_.internal_endpoints) frontend_.bind(e);  // HTTP front end
  } catch (const zmq::error_t& e) {
    return Status::Internal("cannot bind " + options_.listen + ": " + e.what());
  }
  if (options_.name.empty() && HasWildcardPort(options_.listen)) {
    name_ = frontend_.get(zmq::sockopt::last_endpoint);
  }
  for (size_t i = 0; i < backends_.size(); ++i) {
    const NodeSpec& n = options_.nodes[i];
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

// --- Replies to clients ---

void Router::ReplyFromRouter(msgpack::sbuffer& reply, ErrorCode code) {
  ++counters_.replies_by_code[static_cast<size_t>(code)];
  frames_.back() = ToMessage(reply);  // the envelope stays, the request body goes
  SendFrames(frontend_, frames_, 0, &counters_.unroutable_sends);
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
    bool too_many = false;
    while (more) {
      zmq::message_t part;
      (void)frontend_.recv(part);  // the rest of a multipart message is already here
      more = part.more();
      if (frames_.size() < kMaxFrames) {
        frames_.push_back(std::move(part));
      } else {
        last = std::move(part);
        too_many = true;
      }
    }
    if (frames_.size() < 2) {
      ++counters_.dropped_requests;  // no body: nothing to answer
      continue;
    }
    if (too_many) {
      // Answer the identity alone, echoing the id if the body has one.
      frames_.resize(1);
      frames_.push_back(std::move(last));
      auto decoded = protocol::DecodeRequest(View(frames_.back()));
      ++counters_.bad_requests;
      ReplyError(decoded.id, ErrorCode::kBadRequest,
                 "too many frames (more than " + std::to_string(kMaxFrames) + ")");
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
      protocol::EncodeLocate(reply, id, rendezvous_.nodes()[rendezvous_.Owner(req.list)]);
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
  size_t owner = rendezvous_.Owner(req.list);
  if (!nodes_.Routable(owner)) {
    const NodeSpec& n = options_.nodes[owner];
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
  Forward(owner, req, now);
}

void Router::Forward(size_t node, const protocol::Request& request, TimePoint now) {
  InflightEntry entry;
  entry.seq = next_seq_++;
  entry.deadline = now + milliseconds(options_.timeout_ms);
  entry.node = static_cast<uint32_t>(node);
  entry.op = request.op;
  entry.id = OwnedRequestId::From(request.id);
  entry.envelope.reserve(frames_.size() - 1);
  for (size_t i = 0; i + 1 < frames_.size(); ++i) entry.envelope.emplace_back(View(frames_[i]));
  const uint64_t seq = entry.seq;
  OwnedRequestId id = entry.id;
  if (!inflight_.Insert(std::move(entry))) {
    ReplyError(id.view(), ErrorCode::kInternal, "router could not record the request");
    return;
  }
  // The head: 'R', seq, the client's identity (a ROUTER identity is 1-255
  // bytes, so the head stays small: zmq keeps up to 33 bytes inline).
  const zmq::message_t& identity = frames_.front();
  zmq::message_t head(kHeadBytes + identity.size());
  auto* h = static_cast<unsigned char*>(head.data());
  h[0] = static_cast<unsigned char>(kRequestTag);
  PutBigEndian(seq, h + 1);
  std::memcpy(h + kHeadBytes, identity.data(), identity.size());
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
    spdlog::error("send to node '{}' failed: {}", options_.nodes[node].name, e.what());
  }
  if (!sent) {
    inflight_.Complete(seq);
    const NodeSpec& n = options_.nodes[node];
    // A full queue, or no connection (ZMQ_IMMEDIATE)? ZeroMQ tells the
    // sender how far the reader has got only every HWM/2 messages, so a
    // queue can report full once it holds half its HWM: with fewer than
    // that outstanding, the node is not connected.
    if (outstanding_[node] < static_cast<size_t>(kNodeSndHwm / 2)) {
      ReplyError(id.view(), ErrorCode::kUnavailable,
                 "node '" + n.name + "' (" + n.endpoint +
                     ") that owns the list is not connected (down or restarting)");
    } else {
      ReplyError(id.view(), ErrorCode::kOverloaded,
                 "node '" + n.name + "' (" + n.endpoint + ") has " +
                     std::to_string(outstanding_[node]) + " requests queued; retry later");
    }
    return;
  }
  ++outstanding_[node];
  ++counters_.forwarded;
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
  if (head.size() == kHeartbeatBytes && View(head)[0] == kHeartbeatTag) return;
  if (head.size() <= kHeadBytes || View(head)[0] != kRequestTag || frames_.size() < 2) {
    ++counters_.bad_node_messages;
    return;
  }
  const auto* h = static_cast<const unsigned char*>(head.data());
  uint64_t seq = GetBigEndian(h + 1);
  std::optional<InflightEntry> entry = inflight_.Complete(seq);
  if (!entry) {
    ++counters_.late_replies_dropped;  // its deadline passed; the client had `timeout`
    spdlog::debug("late reply {} from node '{}' dropped", seq, options_.nodes[node].name);
    return;
  }
  --outstanding_[entry->node];
  counters_.forwarded_by_op.Record(
      entry->op, protocol::PeekReplyCode(View(frames_.back())),
      now - (entry->deadline - milliseconds(options_.timeout_ms)));  // received -> now
  // Unfold the client's identity from the head: [identity][envelope...][reply].
  frames_.front() = zmq::message_t(h + kHeadBytes, head.size() - kHeadBytes);
  if (SendFrames(frontend_, frames_, 0, &counters_.unroutable_sends)) {
    ++counters_.replies_forwarded;
  }
}

void Router::ExpireDeadlines(TimePoint now) {
  expired_.clear();
  if (inflight_.Expire(now, &expired_) == 0) return;
  std::vector<zmq::message_t> frames;
  for (InflightEntry& e : expired_) {
    --outstanding_[e.node];
    ++counters_.timeouts;
    ++counters_.replies_by_code[static_cast<size_t>(ErrorCode::kTimeout)];
    counters_.forwarded_by_op.Record(e.op, ErrorCode::kTimeout,
                                     now - (e.deadline - milliseconds(options_.timeout_ms)));
    const NodeSpec& n = options_.nodes[e.node];
    msgpack::sbuffer reply(kReplyBufferBytes);
    protocol::EncodeError(reply, e.id.view(), ErrorCode::kTimeout,
                          "no reply from node '" + n.name + "' (" + n.endpoint + ") within the " +
                              std::to_string(options_.timeout_ms) +
                              " ms deadline; the operation may or may not have been applied");
    frames.clear();
    for (const std::string& f : e.envelope) frames.emplace_back(f.data(), f.size());
    frames.push_back(ToMessage(reply));
    spdlog::debug("request {} ({}) to node '{}' timed out", e.seq, protocol::OpName(e.op), n.name);
    SendFrames(frontend_, frames, 0, &counters_.unroutable_sends);
  }
}

void Router::NoteTransition(const NodeTransition& t, TimePoint now) {
  const NodeSpec& n = options_.nodes[t.node];
  if (t.to == NodeState::kDown) {
    ++counters_.node_down;
    spdlog::warn("node '{}' ({}) is DOWN: not heard from for {} ms{}", n.name, n.endpoint,
                 Millis(now - nodes_.last_heard(t.node)),
                 nodes_.ever_heard(t.node) ? "" : " (never heard since start)");
  } else {
    ++counters_.node_up;
    spdlog::info("node '{}' ({}) is UP{}", n.name, n.endpoint,
                 t.from == NodeState::kDown ? " again" : "");
  }
}

void Router::SendHeartbeats() {
  for (size_t i = 0; i < backends_.size(); ++i) {
    unsigned char head[kHeartbeatBytes];
    head[0] = static_cast<unsigned char>(kHeartbeatTag);
    PutBigEndian(nodes_.NextHeartbeatToken(i), head + 1);
    zmq::message_t head_frame(head, kHeartbeatBytes);
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
  const size_t n_nodes = backends_.size();
  std::vector<zmq::pollitem_t> items(2 + n_nodes);
  items[0] = {nullptr, signal_fd, ZMQ_POLLIN, 0};
  items[1] = {static_cast<void*>(frontend_), 0, ZMQ_POLLIN, 0};
  for (size_t i = 0; i < n_nodes; ++i) {
    items[2 + i] = {static_cast<void*>(*backends_[i]), 0, ZMQ_POLLIN, 0};
  }
  bool draining = false;
  TendNodes(Clock::now());  // the first heartbeats go out at once
  for (;;) {
    TimePoint now = Clock::now();
    TimePoint wake = std::min(now + kMaxPollWait, nodes_.NextEvent());
    if (auto d = inflight_.NextDeadline()) wake = std::min(wake, *d);
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
    }
    now = Clock::now();
    for (size_t i = 0; i < n_nodes; ++i) {
      if (items[2 + i].revents & ZMQ_POLLIN) ReadNode(i, now);
    }
    if (!draining && (items[1].revents & ZMQ_POLLIN)) ReadFrontend(now);
    now = Clock::now();
    ExpireDeadlines(now);
    TendNodes(now);
    if (publish_ && now >= next_publish_) {
      publish_(*this);
      next_publish_ = now + kPublishEvery;
    }
    if (draining && inflight_.size() == 0) return;
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
  add("unroutable_sends", c.unroutable_sends);
  add("bad_node_messages", c.bad_node_messages);
  s.append("; heartbeats");
  add("sent", c.heartbeats_sent);
  add("unsent", c.heartbeats_unsent);
  s.append("; node transitions");
  add("up", c.node_up);
  add("down", c.node_down);
  return s;
}

}  // namespace todo::router
