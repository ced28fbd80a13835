#include "tests/bench/zmq_connection.h"

#include <random>

#include "common/protocol.h"

namespace todo::bench {

namespace protocol = todo::protocol;

namespace {

// One per process: rids of two runs never meet, even on the same lists.
uint64_t ProcessNonce() {
  static const uint64_t nonce = [] {
    std::random_device rd;
    return (uint64_t{rd()} << 32) ^ rd();
  }();
  return nonce;
}

}  // namespace

StatusOr<std::unique_ptr<ZmqConnection>> ZmqConnection::Open(zmq::context_t& ctx,
                                                             const std::string& endpoint, int hwm,
                                                             const ZmqCurveKeys* curve, bool rids,
                                                             uint32_t index) {
  try {
    zmq::socket_t socket(ctx, zmq::socket_type::dealer);
    socket.set(zmq::sockopt::linger, 0);
    socket.set(zmq::sockopt::sndhwm, hwm);
    socket.set(zmq::sockopt::rcvhwm, hwm);
    if (curve != nullptr) {  // CurveZMQ (--curve-server-key, --curve-key)
      socket.set(zmq::sockopt::curve_serverkey, zmq::buffer(curve->server_key));
      socket.set(zmq::sockopt::curve_publickey, zmq::buffer(curve->own.public_key));
      socket.set(zmq::sockopt::curve_secretkey, zmq::buffer(curve->own.secret_key));
    }
    socket.connect(endpoint);
    return std::unique_ptr<ZmqConnection>(new ZmqConnection(std::move(socket), rids, index));
  } catch (const zmq::error_t& e) {
    return Status(ErrorCode::kUnavailable, "cannot connect to " + endpoint + ": " + e.what());
  }
}

ZmqConnection::ZmqConnection(zmq::socket_t socket, bool rids, uint32_t index)
    : socket_(std::move(socket)), rids_(rids), rid_(index) {}

RidMaker::RidMaker(uint32_t index) : base_(ProcessNonce() ^ (uint64_t{index} << 40)) {}

std::string_view RidMaker::Next() {
  // xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx: the base, then the counter.
  static constexpr char kHex[] = "0123456789abcdef";
  const uint64_t hi = base_, lo = ++count_;
  int nibble = 0;
  for (int i = 0; i < 36; ++i) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      rid_[i] = '-';
      continue;
    }
    const uint64_t word = nibble < 16 ? hi : lo;
    const int shift = 60 - 4 * (nibble % 16);
    rid_[i] = kHex[(word >> shift) & 15];
    ++nibble;
  }
  return std::string_view(rid_, sizeof rid_);
}

protocol::Request ToRequest(const BenchRequest& b, uint64_t tag) {
  protocol::Request r;
  r.id = protocol::RequestId::Uint(tag);
  r.list = b.list;
  switch (b.op) {
    case BenchOp::kAdd:
      r.op = protocol::Op::kAddEntry;
      r.date = b.date;
      r.title = b.title;
      break;
    case BenchOp::kEntries:
      r.op = protocol::Op::kEntries;
      r.date = b.date;
      break;
    case BenchOp::kEntriesAll:
      r.op = protocol::Op::kEntries;
      break;
    case BenchOp::kUpdate:
      r.op = protocol::Op::kUpdateEntry;
      r.entry_id = b.entry_id;
      r.date = b.date;
      r.title = b.title;
      break;
    case BenchOp::kDelete:
      r.op = protocol::Op::kDeleteEntry;
      r.entry_id = b.entry_id;
      break;
    case BenchOp::kPing:
      r.op = protocol::Op::kPing;
      break;
  }
  return r;
}

Connection::SendResult ZmqConnection::Send(const BenchRequest& b, uint64_t tag) {
  protocol::Request r = ToRequest(b, tag);
  if (rids_ && protocol::IsMutating(r.op)) {
    r.rid = rid_.Next();
  }
  out_.clear();
  protocol::EncodeRequest(out_, r);
  try {
    auto sent =
        socket_.send(zmq::const_buffer(out_.data(), out_.size()), zmq::send_flags::dontwait);
    return sent ? SendResult::kSent : SendResult::kWouldBlock;
  } catch (const zmq::error_t&) {
    return SendResult::kFailed;
  }
}

zmq_pollitem_t ZmqConnection::PollItem() {
  return zmq_pollitem_t{socket_.handle(), 0, ZMQ_POLLIN, 0};
}

size_t ZmqConnection::Receive(std::vector<Completion>* out, size_t max) {
  size_t n = 0;
  while (n < max) {
    auto got = socket_.recv(in_, zmq::recv_flags::dontwait);
    if (!got) break;
    if (in_.more()) {
      // We never send a delimiter, so a reply has exactly one frame; skip
      // every frame of a multi-frame message and count it once.
      while (in_.more() && socket_.recv(in_, zmq::recv_flags::none)) {
      }
      ++stray_;
      continue;
    }
    auto header = protocol::DecodeReplyHeader(std::string_view(in_.data<char>(), in_.size()));
    if (!header.ok() || header->id_kind != protocol::RequestId::Kind::kUint) {
      ++stray_;
      continue;
    }
    Outcome outcome = Outcome::kOk;
    if (!header->ok) {
      // A failure must name its code; one that doesn't is not understood.
      outcome =
          header->code == ErrorCode::kOk ? Outcome::kBadReply : OutcomeFromErrorCode(header->code);
    }
    out->push_back({header->id_uint, outcome});
    ++n;
  }
  return n;
}

}  // namespace todo::bench
