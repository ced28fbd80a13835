// The ZeroMQ backend of todo-bench: a DEALER socket speaking wire protocol v1
// to a router or a node. Requests are one body frame (no empty delimiter), so
// replies are one frame too; the request id is the driver's uint tag.
//
// Steady state costs no allocation of ours: the encode buffer and the receive
// message are reused (libzmq still copies each body it sends, and
// DecodeReplyHeader unpacks into a msgpack zone).
#pragma once

#include <memory>
#include <msgpack/sbuffer.hpp>
#include <string>
#include <string_view>
#include <zmq.hpp>

#include "common/protocol.h"
#include "common/status.h"
#include "tests/bench/bench_options.h"
#include "tests/bench/connection.h"

namespace todo::bench {

// The rids of connection `index`: 36 bytes in a uuid's shape, the first
// half from a per-process random nonce and the index, the second from a
// counter (incremented here). Shared with SmartConnection.
struct RidMaker {
  explicit RidMaker(uint32_t index);
  std::string_view Next();

 private:
  uint64_t base_;
  uint64_t count_ = 0;
  char rid_[36];
};

// The wire request for `b`, with id `tag` (no rid). Its views point into `b`.
protocol::Request ToRequest(const BenchRequest& b, uint64_t tag);

class ZmqConnection final : public Connection {
 public:
  // Creates a DEALER on `ctx`, connected to `endpoint` (connecting is
  // asynchronous: a missing server shows as requests never answered).
  // `hwm` bounds the messages queued in each direction. With `curve`, a
  // CURVE client of that server key with that keypair.
  // With `rids`, every write carries a fresh rid (request id), as the
  // Python client and `todo` send: 36 bytes in a uuid's shape, from a
  // per-process random nonce, the connection's index and a counter, so
  // no two writes of any run share one.
  static StatusOr<std::unique_ptr<ZmqConnection>> Open(zmq::context_t& ctx,
                                                       const std::string& endpoint, int hwm,
                                                       const ZmqCurveKeys* curve = nullptr,
                                                       bool rids = false, uint32_t index = 0);

  SendResult Send(const BenchRequest& request, uint64_t tag) override;
  zmq_pollitem_t PollItem() override;
  size_t Receive(std::vector<Completion>* out, size_t max) override;
  uint64_t stray_replies() const override { return stray_; }

 private:
  ZmqConnection(zmq::socket_t socket, bool rids, uint32_t index);

  zmq::socket_t socket_;
  const bool rids_;
  RidMaker rid_;
  msgpack::sbuffer out_;
  zmq::message_t in_;
  uint64_t stray_ = 0;
};

}  // namespace todo::bench
