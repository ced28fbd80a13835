#include "tests/bench/smart_connection.h"

#include <algorithm>
#include <msgpack.hpp>
#include <unordered_set>

#include "common/cluster/map.h"
#include "common/protocol.h"
#include "tests/bench/driver.h"

namespace todo::bench {

namespace protocol = todo::protocol;

namespace {

// The id of our own `map` requests (the driver's requests have uint ids).
constexpr std::string_view kMapId = "todo-bench-map";
// Resend back-off after an `unavailable`: 5 ms doubling to 500 ms; with
// kMaxRedirects resends, about 3 s in all (a failover takes about 2.5 s).
constexpr int64_t kBackoffNs = 5'000'000;
constexpr int64_t kBackoffMaxNs = 500'000'000;

const msgpack::object* Find(const msgpack::object& m, std::string_view key) {
  if (m.type != msgpack::type::MAP) return nullptr;
  for (uint32_t i = 0; i < m.via.map.size; ++i) {
    const msgpack::object_kv& kv = m.via.map.ptr[i];
    if (kv.key.type == msgpack::type::STR &&
        std::string_view(kv.key.via.str.ptr, kv.key.via.str.size) == key) {
      return &kv.val;
    }
  }
  return nullptr;
}

bool IsStr(const msgpack::object* o) { return o != nullptr && o->type == msgpack::type::STR; }
bool IsUint(const msgpack::object* o) {
  return o != nullptr && o->type == msgpack::type::POSITIVE_INTEGER;
}
std::string StrOf(const msgpack::object& o) { return std::string(o.via.str.ptr, o.via.str.size); }

void EncodeMapRequest(msgpack::sbuffer& out) {
  protocol::Request r;
  r.op = protocol::Op::kMap;
  r.id = protocol::RequestId::Str(kMapId);
  out.clear();
  protocol::EncodeRequest(out, r);
}

zmq::socket_t Dealer(zmq::context_t& ctx, const std::string& endpoint, int hwm) {
  zmq::socket_t socket(ctx, zmq::socket_type::dealer);
  socket.set(zmq::sockopt::linger, 0);
  socket.set(zmq::sockopt::sndhwm, hwm);
  socket.set(zmq::sockopt::rcvhwm, hwm);
  socket.connect(endpoint);
  return socket;
}

}  // namespace

StatusOr<SmartMap> ParseMapReply(std::string_view body) {
  auto header = protocol::DecodeReplyHeader(body);
  if (!header.ok()) return header.status();
  if (!header->ok) return Status(header->code, header->message);
  try {
    msgpack::object_handle oh = msgpack::unpack(body.data(), body.size());
    const msgpack::object* result = Find(oh.get(), "result");
    if (result == nullptr || result->type != msgpack::type::MAP) {
      return Status::BadRequest("map reply: result is not a map");
    }
    const msgpack::object* partitions = Find(*result, "partitions");
    const msgpack::object* version = Find(*result, "version");
    const msgpack::object* nodes = Find(*result, "nodes");
    const msgpack::object* parts = Find(*result, "parts");
    if (!IsUint(partitions) || partitions->via.u64 < 1 || partitions->via.u64 > 65536) {
      return Status::BadRequest("map reply: partitions is not a uint 1-65536");
    }
    if (!IsUint(version)) return Status::BadRequest("map reply: version is not a uint");
    if (nodes == nullptr || nodes->type != msgpack::type::MAP) {
      return Status::BadRequest("map reply: nodes is not a map");
    }
    if (parts == nullptr || parts->type != msgpack::type::ARRAY ||
        parts->via.array.size != partitions->via.u64) {
      return Status::BadRequest("map reply: parts is not an array of `partitions` entries");
    }
    SmartMap map;
    map.version = version->via.u64;
    map.partitions = static_cast<uint32_t>(partitions->via.u64);
    for (uint32_t i = 0; i < nodes->via.map.size; ++i) {
      const msgpack::object_kv& kv = nodes->via.map.ptr[i];
      if (!IsStr(&kv.key) || !IsStr(&kv.val)) {
        return Status::BadRequest("map reply: nodes must map str names to str endpoints");
      }
      map.nodes.emplace_back(StrOf(kv.key), StrOf(kv.val));
    }
    for (uint32_t p = 0; p < map.partitions; ++p) {
      const msgpack::object& part = parts->via.array.ptr[p];
      if (part.type != msgpack::type::ARRAY || part.via.array.size < 2 ||
          !IsStr(&part.via.array.ptr[0]) || !IsUint(&part.via.array.ptr[1])) {
        return Status::BadRequest("map reply: parts[" + std::to_string(p) +
                                  "] is not [primary, epoch]");
      }
      map.primary.push_back(StrOf(part.via.array.ptr[0]));
      map.epoch.push_back(part.via.array.ptr[1].via.u64);
    }
    return map;
  } catch (const std::exception& e) {
    return Status::BadRequest(std::string("map reply: ") + e.what());
  }
}

StatusOr<SmartMap> FetchMap(zmq::context_t& ctx, const std::string& endpoint, int timeout_ms) {
  try {
    zmq::socket_t socket = Dealer(ctx, endpoint, 1000);
    msgpack::sbuffer out;
    EncodeMapRequest(out);
    socket.send(zmq::const_buffer(out.data(), out.size()), zmq::send_flags::dontwait);
    const int64_t deadline = NowNs() + int64_t{timeout_ms} * 1'000'000;
    for (;;) {
      const int64_t left_ms = (deadline - NowNs()) / 1'000'000;
      if (left_ms <= 0) break;
      zmq_pollitem_t item{socket.handle(), 0, ZMQ_POLLIN, 0};
      if (zmq_poll(&item, 1, static_cast<long>(left_ms)) <= 0) continue;
      zmq::message_t in;
      if (!socket.recv(in, zmq::recv_flags::dontwait) || in.more()) continue;
      auto header = protocol::DecodeReplyHeader(std::string_view(in.data<char>(), in.size()));
      if (!header.ok() || header->id_kind != protocol::RequestId::Kind::kStr ||
          header->id_str != kMapId) {
        continue;
      }
      return ParseMapReply(std::string_view(in.data<char>(), in.size()));
    }
    return Status(ErrorCode::kTimeout, "no answer to `map` from " + endpoint + " within " +
                                           std::to_string(timeout_ms) + " ms");
  } catch (const zmq::error_t& e) {
    return Status(ErrorCode::kUnavailable, "cannot connect to " + endpoint + ": " + e.what());
  }
}

StatusOr<std::unique_ptr<SmartHub>> SmartHub::Open(zmq::context_t& ctx, const std::string& endpoint,
                                                   int hwm, const SmartMap& map, uint32_t window) {
  try {
    zmq::socket_t socket = Dealer(ctx, endpoint, hwm);
    std::unique_ptr<SmartHub> hub(new SmartHub(ctx, std::move(socket), endpoint, hwm, window));
    hub->Install(map);
    return hub;
  } catch (const zmq::error_t& e) {
    return Status(ErrorCode::kUnavailable, "cannot connect to " + endpoint + ": " + e.what());
  }
}

SmartHub::SmartHub(zmq::context_t& ctx, zmq::socket_t endpoint_socket, std::string endpoint,
                   int hwm, uint32_t window)
    : ctx_(ctx), hwm_(hwm), window_(window), last_map_request_ns_(NowNs()) {
  peers_.push_back(Peer{"", std::move(endpoint), std::move(endpoint_socket)});
}

uint32_t SmartHub::Attach() {
  queues_.emplace_back();
  queues_.back().reserve(window_);
  slots_.resize(queues_.size() * window_);
  return static_cast<uint32_t>(queues_.size() - 1);
}

void SmartHub::Install(const SmartMap& map) {
  std::unordered_set<std::string_view> live;
  for (const auto& [name, endpoint] : map.nodes) {
    live.insert(name);
    auto it = peer_by_name_.find(name);
    if (it != peer_by_name_.end() && peers_[it->second].endpoint == endpoint) continue;
    try {
      // A new node, or one that moved: a new socket (an old one stays
      // polled, for the replies still on their way).
      peers_.push_back(Peer{name, endpoint, Dealer(ctx_, endpoint, hwm_)});
      peer_by_name_[name] = peers_.size() - 1;
    } catch (const zmq::error_t&) {
      peer_by_name_.erase(name);  // its partitions go through the endpoint
    }
  }
  route_.assign(map.partitions, 0);
  for (uint32_t p = 0; p < map.partitions; ++p) {
    if (!live.contains(map.primary[p])) continue;  // no live primary: the endpoint
    auto it = peer_by_name_.find(map.primary[p]);
    if (it != peer_by_name_.end()) route_[p] = static_cast<uint32_t>(it->second);
  }
  map_version_ = map.version;
}

size_t SmartHub::PeerOf(uint32_t partition) const {
  return partition < route_.size() ? route_[partition] : 0;
}

Connection::SendResult SmartHub::Send(uint32_t k, const BenchRequest& b, uint64_t tag,
                                      RidMaker* rid) {
  // The tag's generation, and the slot made unique in the hub.
  const uint32_t g = k * window_ + static_cast<uint32_t>(tag);
  if (static_cast<uint32_t>(tag) >= window_ || g >= slots_.size()) {
    return Connection::SendResult::kFailed;  // not a tag of this connection's window
  }
  const uint64_t wire = (tag >> 32 << 32) | g;
  protocol::Request r = ToRequest(b, wire);
  if (rid != nullptr && protocol::IsMutating(r.op)) r.rid = rid->Next();
  out_.clear();
  protocol::EncodeRequest(out_, r);
  const bool routed = b.op != BenchOp::kPing;
  const uint32_t partition =
      routed ? cluster::PartitionOf(b.list, static_cast<uint32_t>(route_.size())) : 0;
  const size_t peer = routed ? PeerOf(partition) : 0;
  try {
    auto sent = peers_[peer].socket.send(zmq::const_buffer(out_.data(), out_.size()),
                                         zmq::send_flags::dontwait);
    if (!sent) return Connection::SendResult::kWouldBlock;
  } catch (const zmq::error_t&) {
    return Connection::SendResult::kFailed;
  }
  (peer == 0 ? fallback_ : direct_) += routed;
  SlotState& st = slots_[g];
  st.wire = wire;
  st.body.assign(out_.data(), out_.size());
  st.partition = partition;
  st.routed = routed;
  st.resendable = routed && (!protocol::IsMutating(r.op) || !r.rid.empty());
  st.redirects = 0;
  return Connection::SendResult::kSent;
}

zmq_pollitem_t SmartHub::PollItem() {
  return zmq_pollitem_t{peers_[0].socket.handle(), 0, ZMQ_POLLIN, 0};
}

void SmartHub::AppendPollItems(std::vector<zmq_pollitem_t>* out) {
  for (Peer& peer : peers_) out->push_back({peer.socket.handle(), 0, ZMQ_POLLIN, 0});
}

void SmartHub::NoteReady(const zmq_pollitem_t* items, size_t n) {
  // items[i] is peers_[i] (AppendPollItems); a peer added since is read.
  ready_.assign(peers_.size(), 1);
  for (size_t i = 0; i < n && i < ready_.size(); ++i) {
    ready_[i] = (items[i].revents & ZMQ_POLLIN) != 0;
  }
}

bool SmartHub::HasTimers() const {
  return !parked_.empty() || NowNs() - last_map_request_ns_ >= kMapRefreshNs;
}

void SmartHub::RequestMap(int64_t now_ns, bool force) {
  const int64_t since = now_ns - last_map_request_ns_;
  if (since < kMapMinIntervalNs) return;
  if (map_in_flight_) {
    if (since < kMapRefreshNs) return;
    // No answer within a second: ask the next peer (a live node answers
    // `map` too, so a dead --endpoint doesn't leave us without a map).
    map_source_ = (map_source_ + 1) % peers_.size();
  } else if (!force && since < kMapRefreshNs) {
    return;
  }
  EncodeMapRequest(out_);
  try {
    if (peers_[map_source_].socket.send(zmq::const_buffer(out_.data(), out_.size()),
                                        zmq::send_flags::dontwait)) {
      map_in_flight_ = true;
      last_map_request_ns_ = now_ns;
    }
  } catch (const zmq::error_t&) {
  }
}

void SmartHub::ResendDue(int64_t now_ns) {
  for (size_t n = parked_.size(); n > 0; --n) {
    Parked p = parked_.front();
    parked_.pop_front();
    const uint32_t g = static_cast<uint32_t>(p.wire);
    if (g >= slots_.size() || slots_[g].wire != p.wire) continue;  // the slot moved on
    if (p.due_ns > now_ns) {
      parked_.push_back(p);
      continue;
    }
    const SlotState& st = slots_[g];
    const size_t peer = PeerOf(st.partition);
    bool sent = false;
    try {
      sent = static_cast<bool>(peers_[peer].socket.send(
          zmq::const_buffer(st.body.data(), st.body.size()), zmq::send_flags::dontwait));
    } catch (const zmq::error_t&) {
    }
    if (!sent) {
      parked_.push_back({now_ns + 1'000'000, p.wire});  // full: again in a millisecond
      continue;
    }
    ++(peer == 0 ? fallback_ : direct_);
  }
}

void SmartHub::Deliver(uint64_t wire, Outcome outcome) {
  const uint32_t g = static_cast<uint32_t>(wire);
  const uint32_t k = g / window_;
  if (k >= queues_.size()) {
    ++stray_;
    return;
  }
  // Back to the driver's tag: its generation, the connection's own slot.
  queues_[k].push_back({(wire >> 32 << 32) | (g % window_), outcome});
}

size_t SmartHub::Take(uint32_t k, std::vector<Completion>* out, size_t max) {
  std::vector<Completion>& q = queues_[k];
  const size_t n = std::min(max, q.size());
  out->insert(out->end(), q.begin(), q.begin() + static_cast<std::ptrdiff_t>(n));
  q.erase(q.begin(), q.begin() + static_cast<std::ptrdiff_t>(n));
  return n;
}

void SmartHub::Pump() {
  int64_t now = NowNs();
  RequestMap(now, /*force=*/false);  // the periodic refresh (or a retry elsewhere)
  if (!parked_.empty()) ResendDue(now);
  // Bounded: at most every request in flight in the hub, per call.
  size_t budget = slots_.size() + 16;
  for (size_t i = 0; i < peers_.size() && budget > 0; ++i) {
    if (i < ready_.size() && !ready_[i]) continue;  // nothing came in on it
    zmq::socket_t& socket = peers_[i].socket;
    while (budget > 0) {
      auto got = socket.recv(in_, zmq::recv_flags::dontwait);
      if (!got) break;
      --budget;
      if (in_.more()) {  // we never send a delimiter: not a reply of ours
        while (in_.more() && socket.recv(in_, zmq::recv_flags::none)) {
        }
        ++stray_;
        continue;
      }
      const std::string_view body(in_.data<char>(), in_.size());
      auto header = protocol::DecodeReplyHeader(body);
      if (!header.ok()) {
        ++stray_;
        continue;
      }
      if (header->id_kind == protocol::RequestId::Kind::kStr && header->id_str == kMapId) {
        map_in_flight_ = false;
        auto map = ParseMapReply(body);
        if (map.ok() && map->version != map_version_) Install(*map);
        continue;
      }
      if (header->id_kind != protocol::RequestId::Kind::kUint) {
        ++stray_;
        continue;
      }
      const uint64_t wire = header->id_uint;
      Outcome outcome = Outcome::kOk;
      if (!header->ok) {
        outcome = header->code == ErrorCode::kOk ? Outcome::kBadReply
                                                 : OutcomeFromErrorCode(header->code);
      }
      const uint32_t g = static_cast<uint32_t>(wire);
      if (outcome == Outcome::kUnavailable && g < slots_.size()) {
        SlotState& st = slots_[g];
        // "not primary" promises nothing was applied, whatever the op (a
        // router resends those too); another `unavailable` (fenced, no
        // primary yet) is resent only if it is a read or carries a rid.
        const bool not_primary = header->message.starts_with(protocol::kNotPrimaryPrefix);
        if (st.wire == wire && st.routed && (st.resendable || not_primary) &&
            st.redirects < kMaxRedirects) {
          // Refresh the map, and send it again to whoever the map then names.
          ++st.redirects;
          ++redirected_;
          parked_.push_back(
              {now + std::min(kBackoffNs << (st.redirects - 1), kBackoffMaxNs), wire});
          RequestMap(now, /*force=*/true);
          continue;
        }
      }
      Deliver(wire, outcome);
    }
  }
}

SmartConnection::SmartConnection(std::shared_ptr<SmartHub> hub, bool rids, uint32_t index)
    : hub_(std::move(hub)), k_(hub_->Attach()), rids_(rids), rid_(index) {}

}  // namespace todo::bench
