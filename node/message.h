// The units of work that travel through a node: a Call (one decoded request
// and the frames it came in) and a Reply (the frames to send back).
//
// Frames are zmq::message_t and are moved, never copied: the envelope frames
// of a request become the envelope frames of its reply, and the request's
// body frame stays alive in the Call because the decoded Request points into
// it.
#pragma once

#include <msgpack/sbuffer.hpp>
#include <vector>
#include <zmq.hpp>

#include "common/protocol.h"

namespace todo::node {

// Every frame before the body: the ROUTER identity, any frames a router
// prepended, and the empty delimiter if the client sent one. Opaque; echoed.
using Envelope = std::vector<zmq::message_t>;

// msgpack::sbuffer starts at 8 KiB by default; most replies are tens of
// bytes, so reply buffers start small and grow by doubling when needed.
constexpr size_t kReplyInitialBytes = 128;
inline msgpack::sbuffer NewReplyBuffer() { return msgpack::sbuffer(kReplyInitialBytes); }

struct Reply {
  Envelope envelope;
  msgpack::sbuffer body{0};  // no allocation until written or moved into
};

struct Call {
  Envelope envelope;
  zmq::message_t body;        // owns the bytes `request` points into
  protocol::Request request;  // decoded and validated
};

}  // namespace todo::node
