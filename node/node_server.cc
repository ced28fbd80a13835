#include "node/node_server.h"

#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <cstring>
#include <string>

#include "common/cluster/map.h"
#include "common/io/listen.h"
#include "common/io/process.h"
#include "common/io/security/curve.h"
#include "node/metrics.h"

namespace todo::node {
namespace {

// Frames a peer may send in one message (envelope + body; the identity
// frame ZeroMQ adds is not one of them); more is a bad request.
constexpr size_t kMaxFrames = 32;
// The envelope bytes a peer may send: a client's (kMaxEnvelopeBytes), or a
// router's head ('R', 8-byte seq, its client's identity of up to 255 bytes)
// followed by its client's envelope.
constexpr size_t kMaxEnvelopeBytes = protocol::kMaxEnvelopeBytes + 9 + 255;
// Evictions in one sweep after which freed memory is returned to the OS.
constexpr size_t kTrimAfterEvictions = 1000;
// Messages read per wake-up before replies get a turn.
constexpr int kReadBurst = 512;
// Messages per stage of a burst (see ReadBurst).
constexpr size_t kStage = 32;
// What a request in flight holds besides its body, as counted against
// --max-inflight-mb: its 200-byte Call (envelope, body message, decoded
// request), the envelope's four frames on the heap (256 bytes), and a slot
// in its mailbox's vector (a Call, with up to as much again spare).
constexpr size_t kCallOverheadBytes = 640;

// A msgpack map's first byte: fixmap (0x80-0x8f), map 16 (0xde), map 32 (0xdf).
bool LooksLikeRequestBody(const zmq::message_t& m) {
  if (m.size() == 0) return false;
  const auto b = static_cast<const uint8_t*>(m.data())[0];
  return (b >= 0x80 && b <= 0x8f) || b == 0xde || b == 0xdf;
}
}  // namespace

NodeServer::NodeServer(const NodeOptions& options, zmq::context_t* ctx, Registry* registry,
                       ReplyQueue* replies, FlightMeter* flight,
                       const ReplicatedServing* replicated)
    : options_(options),
      socket_(*ctx, zmq::socket_type::router),
      registry_(registry),
      replies_(replies),
      flight_(flight),
      replicated_(replicated) {
  stage_.reserve(kStage);
  stage_hashes_.reserve(kStage);
  socket_.set(zmq::sockopt::router_mandatory, 1);
  socket_.set(zmq::sockopt::sndhwm, 100000);
  // Requests a connection may have queued before the socket loop reads
  // them (then TCP pushes back on the sender): they are not yet counted
  // against --max-inflight-mb, so few enough that a flood of 1 KB bodies on
  // one connection holds ~13 MB here, not 130. The loop reads 512 a turn.
  socket_.set(zmq::sockopt::rcvhwm, 10000);
  // A bigger frame drops the peer's connection unread (see PROTOCOL.md);
  // up to this size (128 KiB) an oversized body is answered bad_request.
  socket_.set(zmq::sockopt::maxmsgsize, protocol::kMaxFrameBytes);
  socket_.set(zmq::sockopt::linger, 2000);
}

Status NodeServer::Bind() {
  // CurveZMQ, if configured (--curve-secret): a CURVE server socket.
  if (Status s = security::SecureServerSocket(socket_, options_.curve); !s.ok()) return s;
  // An ipc:// path another process serves is refused, not taken over.
  if (Status s = io::CheckZmqEndpointFree(options_.listen); !s.ok()) return s;
  try {
    socket_.bind(options_.listen);
  } catch (const zmq::error_t& e) {
    return Status::Internal("cannot bind " + options_.listen + ": " + e.what());
  }
  return Status::Ok();
}

void NodeServer::SendReply(Envelope& envelope, zmq::message_t& body,
                           std::chrono::steady_clock::time_point now) {
  if (metrics_ != nullptr) {
    metrics_->OnReply(
        envelope.trace, body,
        now == std::chrono::steady_clock::time_point{} ? std::chrono::steady_clock::now() : now);
  }
  try {
    for (size_t i = 0; i < envelope.size(); ++i) {
      if (!socket_.send(envelope[i], zmq::send_flags::sndmore | zmq::send_flags::dontwait)) {
        ++counters_.replies_dropped;  // the client's pipe is full
        return;
      }
    }
    socket_.send(body, zmq::send_flags::dontwait);
    ++counters_.replies_sent;
  } catch (const zmq::error_t& e) {
    ++counters_.replies_dropped;  // EHOSTUNREACH: the client is gone
  }
}

void NodeServer::SendError(Envelope& envelope, const protocol::RequestId& id, const Status& s) {
  zmq::message_t body = EncodeBody([&](msgpack::sbuffer& b) { protocol::EncodeError(b, id, s); });
  SendReply(envelope, body);
}

bool NodeServer::Admit(Call& call, std::string_view body_bytes,
                       std::chrono::steady_clock::time_point now) {
  ++counters_.requests;
  auto decoded = protocol::DecodeRequest(body_bytes);
  if (!decoded.status.ok()) {
    ++counters_.bad_requests;
    SendError(call.envelope, decoded.id, decoded.status);
    return false;
  }
  call.request = decoded.request;
  if (metrics_ != nullptr) {
    call.envelope.trace.op = static_cast<uint8_t>(call.request.op);
    call.envelope.trace.received = now;
  }
  zmq::message_t body;
  switch (call.request.op) {
    case protocol::Op::kStats:
      body = EncodeBody([&](msgpack::sbuffer& b) {
        if (metrics_ != nullptr) {
          metrics_->EncodeStats(b, call.request.id, *this);
        } else {
          protocol::EncodeError(b, call.request.id, ErrorCode::kUnknownOp, "stats is off");
        }
      });
      SendReply(call.envelope, body);
      return false;
    case protocol::Op::kPing:
      body = EncodeBody([&](msgpack::sbuffer& b) {
        // A router's heartbeat that asks for hop batches is told this node
        // takes them.
        const bool heartbeat =
            call.envelope.size() >= 2 &&
            hop_batch::IsHeartbeatHead(std::string_view(
                static_cast<const char*>(call.envelope[1].data()), call.envelope[1].size()));
        const bool batch = heartbeat && hop_batch::PingAsksBatch(body_bytes);
        protocol::EncodePing(b, call.request.id, "node", options_.name,
                             batch ? hop_batch::kMaxRecords : 0);
      });
      SendReply(call.envelope, body);
      return false;
    case protocol::Op::kLocate:
      body = EncodeBody([&](msgpack::sbuffer& b) { EncodeLocate(b, call); });
      SendReply(call.envelope, body);
      return false;
    case protocol::Op::kMap:
      body = EncodeBody([&](msgpack::sbuffer& b) { EncodeMapReply(b, call); });
      SendReply(call.envelope, body);
      return false;
    default:
      return true;
  }
}

void NodeServer::EncodeLocate(msgpack::sbuffer& b, const Call& call) const {
  if (replicated_ == nullptr) {
    protocol::EncodeLocate(b, call.request.id, options_.name);
    return;
  }
  auto snap = replicated_->view->Get();
  if (!snap->map) {
    protocol::EncodeError(b, call.request.id, ErrorCode::kUnavailable,
                          "no cluster map yet (etcd not reached)");
    return;
  }
  const uint32_t p = snap->map->PartitionOfList(call.request.list);
  const cluster::Partition& part = snap->map->parts[p];
  protocol::EncodeLocateReplicated(b, call.request.id, part.primary(), part.replicas, p,
                                   part.epoch);
}

void NodeServer::EncodeMapReply(msgpack::sbuffer& b, const Call& call) const {
  if (replicated_ == nullptr) {
    protocol::EncodeError(
        b, call.request.id, ErrorCode::kUnknownOp,
        "map is answered in replicated mode only (this node runs in static mode)");
    return;
  }
  auto snap = replicated_->view->Get();
  if (!snap->map) {
    protocol::EncodeError(b, call.request.id, ErrorCode::kUnavailable,
                          "no cluster map yet (etcd not reached)");
    return;
  }
  std::vector<std::pair<std::string_view, std::string_view>> nodes;
  // Members only: a live node that is not one (yet, or any more) serves
  // nothing, so a client must not be sent to it.
  for (const auto& [name, info] : snap->alive) {
    if (snap->map->IsMember(name)) nodes.emplace_back(name, info.endpoint);
  }
  std::vector<protocol::MapPart> parts;
  parts.reserve(snap->map->parts.size());
  for (const cluster::Partition& p : snap->map->parts) parts.push_back({p.primary(), p.epoch});
  protocol::EncodeMap(b, call.request.id, snap->map->partitions, cluster::kHashName,
                      snap->map->version, nodes, parts);
}

Status NodeServer::CheckServing(Call& call, std::chrono::steady_clock::time_point now) {
  const uint32_t p = cluster::PartitionOf(call.request.list, replicated_->partitions);
  const uint64_t term = replicated_->table->serving(p);
  if (term == 0) {
    std::string who;
    auto snap = replicated_->view->Get();
    if (snap->map && p < snap->map->parts.size()) {
      const cluster::Partition& part = snap->map->parts[p];
      who =
          " (its primary is '" + part.primary() + "' at epoch " + std::to_string(part.epoch) + ")";
    }
    return Status(ErrorCode::kUnavailable,
                  std::string(protocol::kNotPrimaryPrefix) + std::to_string(p) + who);
  }
  if (!replicated_->table->lease_valid(now)) {
    return Status(ErrorCode::kUnavailable,
                  "node is fenced: its etcd lease is not current, so it can't prove it is still "
                  "primary for partition " +
                      std::to_string(p));
  }
  call.partition = p;
  call.term = term;
  return Status::Ok();
}

void NodeServer::Dispatch(Call& call, uint64_t hash, std::chrono::steady_clock::time_point now) {
  if (replicated_ != nullptr) {
    if (Status s = CheckServing(call, now); !s.ok()) {
      SendError(call.envelope, call.request.id, s);
      return;
    }
  }
  if (inflight_ >= options_.max_inflight) {
    ++counters_.overloaded;
    SendError(call.envelope, call.request.id,
              Status::Overloaded("node has " + std::to_string(inflight_) +
                                 " requests in flight (--max-inflight)"));
    return;
  }
  if (flight_->requests_over()) {
    ++counters_.overloaded;
    SendError(call.envelope, call.request.id, flight_->RequestsRefusal());
    return;
  }
  ListActor* actor = registry_->Get(call.request.list, hash, now);
  if (actor == nullptr) {
    ++counters_.overloaded;
    SendError(call.envelope, call.request.id,
              Status::Overloaded("too many live lists (--max-lists), none idle"));
    return;
  }
  // A read the actor can answer right now, as it would answer it posted,
  // is answered here: no mailbox, no worker, no reply queue.
  if (call.request.op == protocol::Op::kEntries) {
    zmq::message_t body;
    if (actor->TryAnswerRead(call, now, &body)) {
      ++counters_.fast_reads;
      fast_.push_back(Reply{std::move(call.envelope), std::move(body)});
      return;
    }
  }
  // The body, the envelope, and about what their Call takes around them (a
  // Call, a mailbox slot, the frames' descriptors): under a flood of small
  // requests their count, not their bodies, is what fills memory.
  size_t envelope_bytes = 0;
  for (const zmq::message_t& f : call.envelope) envelope_bytes += f.size();
  // A batched request's body is its record (trace.request_bytes until
  // now), not the whole batch its Call shares.
  const size_t body_bytes =
      call.envelope.trace.batch ? call.envelope.trace.request_bytes : call.body.size();
  const uint32_t bytes = static_cast<uint32_t>(body_bytes + envelope_bytes + kCallOverheadBytes);
  call.envelope.trace.request_bytes = bytes;
  // A write the actor can take right now without the disk is handled here
  // as well, exactly as its worker would: no mailbox, no worker wake-up.
  // Its write is queued with the stage's others (SubmitInlineWrites) and
  // answered through the reply queue like any write; an immediate answer
  // (e.g. a full writer queue) goes out with the fast reads.
  if (actor->CanHandleInline(call)) {
    store::ShardWriter* writer = &actor->writer();
    auto slot = std::find_if(inline_writes_.begin(), inline_writes_.end(),
                             [&](const auto& w) { return w.first == writer; });
    if (slot == inline_writes_.end()) {
      inline_writes_.emplace_back(writer, std::vector<store::WriteOp>{});
      slot = inline_writes_.end() - 1;
    }
    const size_t queued = slot->second.size();
    actor->HandleInline(call, &fast_, &slot->second);
    ++counters_.inline_writes;
    if (slot->second.size() > queued) {
      inline_pending_ = true;
      ++inflight_;
      flight_->requests.fetch_add(bytes, std::memory_order_relaxed);
    }
    return;
  }
  // The writes handled here so far go to their writers before anything is
  // posted: a worker's write of a list (e.g. a read behind an inline add)
  // must queue behind that list's inline writes.
  SubmitInlineWrites();
  if (!actor->Post(call)) {
    ++counters_.overloaded;
    SendError(call.envelope, call.request.id,
              Status::Overloaded("the list's mailbox is full (--mailbox)"));
    return;
  }
  ++inflight_;
  flight_->requests.fetch_add(bytes, std::memory_order_relaxed);
}

bool NodeServer::ReadMessage(Call* call) {
  zmq::message_t first;
  if (!socket_.recv(first, zmq::recv_flags::dontwait)) return false;
  Envelope& frames = call->envelope;
  frames.clear();
  frames.reserve(4);  // identity + body from a client; + seq + client identity from a router
  bool more = first.more();
  frames.push_back(std::move(first));
  size_t dropped = 0;
  while (more) {
    zmq::message_t part;
    (void)socket_.recv(part);  // the rest of a multipart message is already here
    more = part.more();
    if (frames.size() < kMaxFrames + 1) {
      frames.push_back(std::move(part));
    } else {
      ++dropped;  // freed at once
    }
  }
  if (frames.size() < 2) {  // a ROUTER always gives identity + body
    frames.clear();
    return true;
  }
  // Frames the peer sent: all but the identity, dropped ones included.
  const size_t sent = frames.size() - 1 + dropped;
  size_t envelope_bytes = 0;
  for (size_t i = 1; i + 1 < frames.size(); ++i) envelope_bytes += frames[i].size();
  std::string refusal;
  if (sent > kMaxFrames) {
    refusal = "message has " + std::to_string(sent) + " frames, more than the " +
              std::to_string(kMaxFrames) + " allowed";
  } else if (envelope_bytes > kMaxEnvelopeBytes) {
    refusal = "routing envelope (the frames before the body) is " + std::to_string(envelope_bytes) +
              " bytes, more than the " + std::to_string(kMaxEnvelopeBytes) + " allowed";
  }
  if (!refusal.empty()) {
    ++counters_.requests;
    ++counters_.bad_requests;
    frames.resize(1);  // the identity, so the client still hears back, briefly
    SendError(frames, {}, Status::BadRequest(refusal));
    frames.clear();
    return true;
  }
  call->body = std::move(frames.back());
  frames.pop_back();
  return true;
}

bool NodeServer::NextCall(Call* call, std::string_view* body) {
  if (batch_next_ >= batch_records_.size()) {
    if (!ReadMessage(call)) return false;
    Envelope& frames = call->envelope;
    if (frames.size() != 2 || frames[1].size() != hop_batch::kMarker.size() ||
        std::memcmp(frames[1].data(), hop_batch::kMarker.data(), hop_batch::kMarker.size()) != 0) {
      *body = call->body_view();  // v1 (or dropped: no envelope)
      return true;
    }
    // A hop batch: checked whole before any record is used (the records
    // view batch_in_, so it is moved there first).
    batch_in_ = std::move(call->body);
    Status s = hop_batch::DecodeBatch(
        std::string_view(static_cast<const char*>(batch_in_.data()), batch_in_.size()),
        &batch_records_);
    if (!s.ok() && LooksLikeRequestBody(batch_in_)) {
      // Not a batch: a client's request whose envelope happens to be the
      // marker (a DEALER with that routing id behind a proxy). Envelopes
      // are opaque (protocol.md), so it is served as v1 serves any other.
      // A request body is a msgpack map, whose first byte can't start a
      // batch (a record's frame count, 2-17), so no batch is misread as a
      // request, nor a request as a batch.
      call->body = std::move(batch_in_);
      *body = call->body_view();
      return true;
    }
    if (!s.ok()) {
      batch_in_.rebuild();
      ++counters_.requests;
      ++counters_.bad_requests;
      ++counters_.bad_batches;
      if ((counters_.bad_batches & (counters_.bad_batches - 1)) == 0) {  // 1, 2, 4, ...
        spdlog::warn("malformed hop batch ({} so far): {}", counters_.bad_batches, s.message());
      }
      SendError(frames, {}, s);
      frames.clear();
      *body = {};
      return true;
    }
    ++counters_.batches_in;
    batch_from_ = std::move(frames[0]);
    batch_next_ = 0;
  }
  const hop_batch::Record& r = batch_records_[batch_next_++];
  Envelope& envelope = call->envelope;
  envelope.clear();
  envelope.reserve(r.n);
  envelope.emplace_back().copy(batch_from_);
  for (size_t i = 0; i + 1 < r.n; ++i)
    envelope.emplace_back(r.frames[i].data(), r.frames[i].size());
  envelope.trace.batch = true;
  envelope.trace.request_bytes = static_cast<uint32_t>(r.body().size());
  // The body stays in the batch's message, shared (a reference, not a copy,
  // unless the batch is small enough for zmq to keep inline).
  call->body.copy(batch_in_);
  const size_t offset =
      static_cast<size_t>(r.body().data() - static_cast<const char*>(batch_in_.data()));
  *body = std::string_view(static_cast<const char*>(call->body.data()) + offset, r.body().size());
  if (batch_next_ == batch_records_.size()) {
    batch_records_.clear();
    batch_next_ = 0;
    batch_in_.rebuild();
  }
  return true;
}

void NodeServer::ReadBurst() {
  // One clock read per burst: the messages of a burst arrived together.
  const auto now = std::chrono::steady_clock::now();
  // In stages of kStage messages: read and decode them all, then look up
  // their actors' buckets, then dispatch. The registry's table and the
  // actors are mostly cold (thousands of lists); asking for all of a stage's
  // lines before touching any lets their cache misses overlap instead of
  // stalling one request at a time.
  int read = 0;
  bool more = true;
  while (more && read < kReadBurst) {
    stage_.clear();
    stage_hashes_.clear();
    while (stage_.size() < kStage && read < kReadBurst) {
      stage_.emplace_back();
      Call& call = stage_.back();
      std::string_view body;
      if (!NextCall(&call, &body)) {
        stage_.pop_back();
        more = false;
        break;
      }
      ++read;
      if (call.envelope.empty() || !Admit(call, body, now)) {
        stage_.pop_back();  // answered (or dropped) already
        continue;
      }
      const uint64_t hash = Registry::HashName(call.request.list);
      registry_->Prefetch(hash);
      stage_hashes_.push_back(hash);
    }
    for (size_t i = 0; i < stage_.size(); ++i) {
      registry_->PrefetchActor(stage_hashes_[i]);
    }
    for (size_t i = 0; i < stage_.size(); ++i) Dispatch(stage_[i], stage_hashes_[i], now);
    SubmitInlineWrites();
    if (!fast_.empty()) SendFastReplies();
  }
}

void NodeServer::SubmitInlineWrites() {
  if (!inline_pending_) return;
  for (auto& [writer, writes] : inline_writes_) writer->Submit(writes);  // empties them
  inline_pending_ = false;
}

void NodeServer::SendFastReplies() {
  // A write that completed before its list's read was answered here had its
  // reply queued before its completion was seen (ShardWriter pushes, then
  // counts it done): those go first.
  if (replies_->HasReplies()) SendReplies();
  const auto now = metrics_ != nullptr ? std::chrono::steady_clock::now()
                                       : std::chrono::steady_clock::time_point{};
  for (Reply& r : fast_) {
    if (r.envelope.trace.batch) {
      BatchReply(r, now);
    } else {
      SendReply(r.envelope, r.body, now);
    }
  }
  fast_.clear();
  if (reply_batches_pending_) FlushReplyBatches();
}

void NodeServer::BatchReply(Reply& reply, std::chrono::steady_clock::time_point now) {
  Envelope& envelope = reply.envelope;
  std::array<std::string_view, hop_batch::kMaxRecordFrames> frames;
  const size_t n = envelope.size();  // the head and envelope frames after the identity, the body
  size_t bytes = reply.body.size();
  if (n < 2 || n > hop_batch::kMaxRecordFrames) {
    SendReply(envelope, reply.body, now);
    return;
  }
  for (size_t i = 1; i < n; ++i) {
    frames[i - 1] =
        std::string_view(static_cast<const char*>(envelope[i].data()), envelope[i].size());
    bytes += envelope[i].size();
  }
  frames[n - 1] = std::string_view(static_cast<const char*>(reply.body.data()), reply.body.size());
  ReplyBatch* batch = nullptr;
  for (ReplyBatch& b : reply_batches_) {
    if (b.identity.size() == envelope[0].size() &&
        std::memcmp(b.identity.data(), envelope[0].data(), b.identity.size()) == 0) {
      batch = &b;
    }
  }
  if (batch == nullptr) {
    batch = &reply_batches_.emplace_back();
    batch->identity.copy(envelope[0]);
  }
  if (!batch->writer.Fits(n, bytes)) {
    FlushReplyBatch(*batch);
    if (!batch->writer.Fits(n, bytes)) {  // too big for any batch: on its own
      SendReply(envelope, reply.body, now);
      return;
    }
  }
  if (metrics_ != nullptr) {
    metrics_->OnReply(
        envelope.trace, reply.body,
        now == std::chrono::steady_clock::time_point{} ? std::chrono::steady_clock::now() : now);
  }
  batch->writer.Add(frames.data(), n);
  reply_batches_pending_ = true;
}

void NodeServer::FlushReplyBatches() {
  reply_batches_pending_ = false;
  for (ReplyBatch& b : reply_batches_) FlushReplyBatch(b);
  // A router that went away leaves an empty batch behind: forget those
  // once there are more than a few.
  if (reply_batches_.size() > 8) {
    std::erase_if(reply_batches_, [](const ReplyBatch& b) { return b.writer.empty(); });
  }
}

void NodeServer::FlushReplyBatch(ReplyBatch& b) {
  if (b.writer.empty()) return;
  const size_t count = b.writer.count();
  zmq::message_t identity;
  identity.copy(b.identity);
  zmq::message_t marker(hop_batch::kMarker.data(), hop_batch::kMarker.size());
  zmq::message_t blob(b.writer.blob().data(), b.writer.blob().size());
  b.writer.Clear();
  try {
    if (socket_.send(identity, zmq::send_flags::sndmore | zmq::send_flags::dontwait) &&
        socket_.send(marker, zmq::send_flags::sndmore | zmq::send_flags::dontwait)) {
      socket_.send(blob, zmq::send_flags::dontwait);
      counters_.replies_sent += count;
      ++counters_.batches_out;
    } else {
      counters_.replies_dropped += count;  // the router's pipe is full
    }
  } catch (const zmq::error_t&) {
    counters_.replies_dropped += count;  // EHOSTUNREACH: the router is gone
  }
}

void NodeServer::SendReplies() {
  replies_->Drain(&drained_);
  const auto now = metrics_ != nullptr ? std::chrono::steady_clock::now()
                                       : std::chrono::steady_clock::time_point{};
  int64_t bytes = 0;
  for (auto& r : drained_) {
    bytes += r.envelope.trace.request_bytes;
    if (r.envelope.trace.batch) {
      BatchReply(r, now);
    } else {
      SendReply(r.envelope, r.body, now);
    }
  }
  if (reply_batches_pending_) FlushReplyBatches();
  inflight_ -= drained_.size();
  flight_->requests.fetch_sub(bytes, std::memory_order_relaxed);
  drained_.clear();
}

void NodeServer::Run(int signal_fd, std::chrono::milliseconds drain_timeout) {
  using Clock = std::chrono::steady_clock;
  const auto evict_every = std::chrono::milliseconds(
      std::clamp<int64_t>(static_cast<int64_t>(options_.idle_timeout_s * 250), 10, 1000));
  auto next_evict = Clock::now() + evict_every;
  Clock::time_point next_publish{};  // metrics snapshot
  bool draining = false;
  Clock::time_point drain_deadline;
  for (;;) {
    zmq::pollitem_t items[3] = {
        {nullptr, replies_->fd(), ZMQ_POLLIN, 0},
        {nullptr, signal_fd, ZMQ_POLLIN, 0},
        {static_cast<void*>(socket_), 0, ZMQ_POLLIN, 0},
    };
    int n_items = draining ? 2 : 3;
    // Records of a hop batch not yet taken (a burst ended inside it) are
    // taken now, without waiting for the socket.
    const bool batch_left = batch_next_ < batch_records_.size();
    zmq::poll(items, n_items,
              std::chrono::milliseconds(batch_left && !draining ? 0
                                        : draining              ? 50
                                                                : 200));
    if (items[0].revents & ZMQ_POLLIN) SendReplies();
    if (!draining && (items[1].revents & ZMQ_POLLIN)) {
      signalfd_siginfo si;
      ssize_t got = read(signal_fd, &si, sizeof si);
      spdlog::info("signal {}: draining {} requests in flight",
                   got == sizeof si ? strsignal(static_cast<int>(si.ssi_signo)) : "?", inflight_);
      draining = true;
      drain_deadline = Clock::now() + drain_timeout;
    }
    if (!draining && ((items[2].revents & ZMQ_POLLIN) || batch_left)) ReadBurst();
    auto now = Clock::now();
    if (draining) {
      if (inflight_ == 0) return;
      if (now >= drain_deadline) {
        spdlog::warn("drain deadline passed with {} requests in flight", inflight_);
        return;
      }
    }
    if (now >= next_evict) {
      size_t evicted = registry_->EvictIdle(now);
      if (evicted > 0) spdlog::debug("evicted {} idle lists, {} live", evicted, registry_->size());
      // After a large eviction, hand the freed memory back to the OS: the
      // allocator keeps freed memory otherwise (tcmalloc in its page heap,
      // glibc in its per-thread arenas), and idle lists should leave
      // memory for real.
      // Lists shed for memory are freed on the worker threads, so the same.
      const uint64_t sheds = registry_->shed_requests();
      if (evicted >= kTrimAfterEvictions || sheds - sheds_at_trim_ >= kTrimAfterEvictions) {
        io::ReleaseFreeMemory();
        sheds_at_trim_ = sheds;
      }
      next_evict = now + evict_every;
    }
    if (metrics_ != nullptr && now >= next_publish) {
      metrics_->Publish(*this);
      next_publish = now + NodeMetrics::kPublishEvery;
    }
  }
}

}  // namespace todo::node
