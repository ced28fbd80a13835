// The wire half of the harness: request values, reply decoding, clients.
#include <cstring>
#include <exception>
#include <sstream>
#include <zmq_addon.hpp>

#include "tests/integration/harness.h"

namespace todo::testing {

namespace {

using Clock = std::chrono::steady_clock;

constexpr int kSendTimeoutMs = 5000;

}  // namespace

// --- Values -------------------------------------------------------------------

Value::Value(long long v) {
  if (v < 0) {
    kind_ = Kind::kInt;
    int_ = v;
  } else {
    kind_ = Kind::kUint;
    uint_ = static_cast<unsigned long long>(v);
  }
}

Value Value::Nil() { return Value(); }

Value Value::Bool(bool b) {
  Value v;
  v.kind_ = Kind::kBool;
  v.bool_ = b;
  return v;
}

Value Value::Double(double d) {
  Value v;
  v.kind_ = Kind::kDouble;
  v.double_ = d;
  return v;
}

Value Value::Bin(std::string bytes) {
  Value v;
  v.kind_ = Kind::kBin;
  v.bytes_ = std::move(bytes);
  return v;
}

Value Value::Raw(std::string msgpack_bytes) {
  Value v;
  v.kind_ = Kind::kRaw;
  v.bytes_ = std::move(msgpack_bytes);
  return v;
}

void Value::PackTo(msgpack::sbuffer& out) const {
  msgpack::packer<msgpack::sbuffer> pk(out);
  switch (kind_) {
    case Kind::kNil:
      pk.pack_nil();
      break;
    case Kind::kBool:
      bool_ ? pk.pack_true() : pk.pack_false();
      break;
    case Kind::kInt:
      pk.pack_int64(int_);
      break;
    case Kind::kUint:
      pk.pack_uint64(uint_);
      break;
    case Kind::kDouble: {
      // Always a float64 on the wire: msgpack-cxx's pack_double would turn
      // an integral double into an int, hiding the type under test.
      uint64_t bits;
      std::memcpy(&bits, &double_, sizeof(bits));
      char bytes[9] = {static_cast<char>(0xcb)};
      for (int i = 0; i < 8; ++i) bytes[1 + i] = static_cast<char>(bits >> (56 - 8 * i));
      out.write(bytes, sizeof(bytes));
      break;
    }
    case Kind::kStr:
      pk.pack_str(static_cast<uint32_t>(bytes_.size()));
      pk.pack_str_body(bytes_.data(), static_cast<uint32_t>(bytes_.size()));
      break;
    case Kind::kBin:
      pk.pack_bin(static_cast<uint32_t>(bytes_.size()));
      pk.pack_bin_body(bytes_.data(), static_cast<uint32_t>(bytes_.size()));
      break;
    case Kind::kRaw:
      out.write(bytes_.data(), bytes_.size());
      break;
  }
}

std::string Pack(const Map& map) {
  msgpack::sbuffer out;
  msgpack::packer<msgpack::sbuffer> pk(out);
  pk.pack_map(static_cast<uint32_t>(map.size()));
  for (const auto& [k, v] : map) {
    k.PackTo(out);
    v.PackTo(out);
  }
  return std::string(out.data(), out.size());
}

std::string PackValue(const Value& value) {
  msgpack::sbuffer out;
  value.PackTo(out);
  return std::string(out.data(), out.size());
}

// --- Replies ------------------------------------------------------------------

Reply::Reply(std::vector<std::string> frames) : frames_(std::move(frames)) {
  const std::string& b = body();
  if (b.empty()) return;
  try {
    size_t off = 0;
    auto handle =
        std::make_shared<msgpack::object_handle>(msgpack::unpack(b.data(), b.size(), off));
    if (off == b.size()) {
      handle_ = std::move(handle);
      decoded_ = true;
    }
  } catch (const std::exception&) {
    decoded_ = false;
  }
}

const std::string& Reply::body() const {
  static const std::string kEmpty;
  return frames_.empty() ? kEmpty : frames_.back();
}

std::vector<std::string> Reply::envelope() const {
  if (frames_.empty()) return {};
  return std::vector<std::string>(frames_.begin(), frames_.end() - 1);
}

const msgpack::object& Reply::root() const {
  static const msgpack::object kNil;
  return decoded_ ? handle_->get() : kNil;
}

bool Reply::is_map() const { return decoded_ && root().type == msgpack::type::MAP; }

const msgpack::object* Reply::Get(std::string_view key) const {
  if (!is_map()) return nullptr;
  return MapGet(&root(), key);
}

bool Reply::ok() const { return AsBool(Get("ok")).value_or(false); }

std::string Reply::error_code() const { return AsStr(MapGet(Get("error"), "code")).value_or(""); }

std::string Reply::error_message() const {
  return AsStr(MapGet(Get("error"), "message")).value_or("");
}

const msgpack::object* Reply::result() const { return Get("result"); }

std::string Reply::ToString() const {
  std::ostringstream ss;
  if (frames_.size() > 1) {
    ss << "[" << frames_.size() - 1 << " envelope frame(s)] ";
  }
  if (decoded_) {
    ss << root();
  } else {
    ss << "<undecodable body of " << body().size() << " bytes>";
  }
  return ss.str();
}

const msgpack::object* MapGet(const msgpack::object* map, std::string_view key) {
  if (map == nullptr || map->type != msgpack::type::MAP) return nullptr;
  for (uint32_t i = 0; i < map->via.map.size; ++i) {
    const msgpack::object_kv& kv = map->via.map.ptr[i];
    if (kv.key.type == msgpack::type::STR &&
        std::string_view(kv.key.via.str.ptr, kv.key.via.str.size) == key) {
      return &kv.val;
    }
  }
  return nullptr;
}

std::optional<std::string> AsStr(const msgpack::object* o) {
  if (o == nullptr || o->type != msgpack::type::STR) return std::nullopt;
  return std::string(o->via.str.ptr, o->via.str.size);
}

std::optional<uint64_t> AsUint(const msgpack::object* o) {
  if (o == nullptr || o->type != msgpack::type::POSITIVE_INTEGER) return std::nullopt;
  return o->via.u64;
}

std::optional<bool> AsBool(const msgpack::object* o) {
  if (o == nullptr || o->type != msgpack::type::BOOLEAN) return std::nullopt;
  return o->via.boolean;
}

std::vector<const msgpack::object*> AsArray(const msgpack::object* o) {
  std::vector<const msgpack::object*> out;
  if (o == nullptr || o->type != msgpack::type::ARRAY) return out;
  for (uint32_t i = 0; i < o->via.array.size; ++i) out.push_back(&o->via.array.ptr[i]);
  return out;
}

std::string ToString(const msgpack::object* o) {
  if (o == nullptr) return "<absent>";
  std::ostringstream ss;
  ss << *o;
  return ss.str();
}

// --- Clients ------------------------------------------------------------------

Client::Client(std::string endpoint, Mode mode) : endpoint_(std::move(endpoint)), mode_(mode) {
  Open();
}

Client::~Client() {
  if (socket_) socket_->close();
}

void Client::Open() {
  const auto type = mode_ == Mode::kReq ? zmq::socket_type::req : zmq::socket_type::dealer;
  socket_ = std::make_unique<zmq::socket_t>(context_, type);
  socket_->set(zmq::sockopt::linger, 0);
  socket_->set(zmq::sockopt::sndhwm, 0);
  socket_->set(zmq::sockopt::rcvhwm, 0);
  socket_->set(zmq::sockopt::sndtimeo, kSendTimeoutMs);
  socket_->connect(endpoint_);
}

void Client::Reset() {
  socket_->close();
  Open();
}

bool Client::Send(const Map& request) { return SendBody(Pack(request)); }

bool Client::SendBody(std::string_view body) {
  if (mode_ == Mode::kDealerWithDelimiter) return SendFrames({"", std::string(body)});
  return SendFrames({std::string(body)});
}

bool Client::SendFrames(const std::vector<std::string>& frames) {
  try {
    for (size_t i = 0; i < frames.size(); ++i) {
      const auto flags = i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none;
      if (!socket_->send(zmq::buffer(frames[i].data(), frames[i].size()), flags)) return false;
    }
    return true;
  } catch (const zmq::error_t&) {
    return false;
  }
}

std::optional<Reply> Client::Recv(Millis timeout) {
  const auto deadline = Clock::now() + timeout;
  while (true) {
    std::vector<zmq::message_t> parts;
    try {
      auto n = zmq::recv_multipart(*socket_, std::back_inserter(parts), zmq::recv_flags::dontwait);
      if (n) {
        std::vector<std::string> frames;
        frames.reserve(parts.size());
        for (auto& m : parts) frames.push_back(m.to_string());
        return Reply(std::move(frames));
      }
    } catch (const zmq::error_t& e) {
      if (e.num() != EINTR) return std::nullopt;
    }
    auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now());
    if (left <= Millis(0)) return std::nullopt;
    zmq::pollitem_t item{socket_->handle(), 0, ZMQ_POLLIN, 0};
    try {
      zmq::poll(&item, 1, left);
    } catch (const zmq::error_t& e) {
      if (e.num() != EINTR) return std::nullopt;
    }
  }
}

std::optional<Reply> Client::Call(const Map& request, Millis timeout) {
  return CallBody(Pack(request), timeout);
}

std::optional<Reply> Client::CallBody(std::string_view body, Millis timeout) {
  if (!SendBody(body)) {
    if (mode_ == Mode::kReq) Reset();
    return std::nullopt;
  }
  auto reply = Recv(timeout);
  if (!reply && mode_ == Mode::kReq) Reset();
  return reply;
}

bool WaitUntilReady(const std::string& endpoint, Millis timeout, Process* process) {
  const auto deadline = Clock::now() + timeout;
  Client client(endpoint, Client::Mode::kDealer);
  uint64_t n = 0;
  while (Clock::now() < deadline) {
    if (process != nullptr && !process->Running()) return false;
    client.Send({{"op", "ping"}, {"id", ++n}});
    auto reply = client.Recv(Millis(200));
    if (reply && reply->ok()) return true;
  }
  return false;
}

}  // namespace todo::testing
