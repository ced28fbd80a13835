// The replication stream between nodes: what a primary sends its backups
// and what they answer. Pure codec (msgpack), no I/O.
//
// Transport (node/replication/): each node binds one ROUTER for the streams
// it receives as a backup, and connects one DEALER (routing id = its node
// name) to each peer it leads partitions for. A ZeroMQ message is one frame
// holding one or more messages, each a msgpack array whose first element is
// its type; a primary batches everything of one group commit for one
// backup into one frame. Per partition the stream is ordered (one writer
// produces it, one connection carries it).
//
//   primary -> backup                        backup -> primary
//   [1 probe, p, le, session]                [2 state, p, le, session, applied_epoch,
//                                               applied_seq, complete, refused]
//   [3 append, p, le, session, first_seq,    [4 ack, p, le, session, seq, complete]
//      [record, ...]]
//   [5 chunk, p, le, session, first, from,
//      to, [key, value, key, value, ...]]
//   [6 end, p, le, session, at_epoch, at_seq]
//
// le: the leader epoch the primary serves under. A record is the
// node/store Mutations encoding of one write (possibly with the keys a
// snapshot in progress has not reached left out). A chunk is the whole
// content of the partition's key range [from, to) ("" to: its end).
#pragma once

#include <cstdint>
#include <msgpack/sbuffer.hpp>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace todo::cluster {

enum class ReplType : uint8_t {
  kProbe = 1,
  kState = 2,
  kAppend = 3,
  kAck = 4,
  kChunk = 5,
  kEnd = 6,
};

// One message, decoded. Byte fields point into the frame.
struct ReplMessage {
  ReplType type = ReplType::kProbe;
  uint32_t partition = 0;
  uint64_t leader_epoch = 0;
  uint64_t session = 0;
  // state: applied position; end: at; ack: seq (in b); append: first_seq (in b)
  uint64_t a = 0;
  uint64_t b = 0;
  bool flag1 = false;                   // state: complete; ack: complete; chunk: first
  bool flag2 = false;                   // state: refused
  std::string_view from, to;            // chunk
  std::vector<std::string_view> items;  // append: records; chunk: key, value, ...
};

void EncodeProbe(msgpack::sbuffer& out, uint32_t p, uint64_t le, uint64_t session);
void EncodeState(msgpack::sbuffer& out, uint32_t p, uint64_t le, uint64_t session,
                 uint64_t applied_epoch, uint64_t applied_seq, bool complete, bool refused);
// Appends the head of an append message for `n` records; the caller then
// packs each record with AppendRecord, exactly n times.
void BeginAppend(msgpack::sbuffer& out, uint32_t p, uint64_t le, uint64_t session,
                 uint64_t first_seq, uint32_t n);
void AppendRecord(msgpack::sbuffer& out, std::string_view record);
void EncodeAck(msgpack::sbuffer& out, uint32_t p, uint64_t le, uint64_t session, uint64_t seq,
               bool complete);
// The same pattern for a chunk of `n` key/value pairs (2n AppendRecord calls).
void BeginChunk(msgpack::sbuffer& out, uint32_t p, uint64_t le, uint64_t session, bool first,
                std::string_view from, std::string_view to, uint32_t n);
void EncodeEnd(msgpack::sbuffer& out, uint32_t p, uint64_t le, uint64_t session, uint64_t at_epoch,
               uint64_t at_seq);

// Decodes every message of a frame into *out (cleared first). Views point
// into `frame`. An error (bad_request) names what is malformed; then *out
// holds the messages before it.
Status DecodeReplFrame(std::string_view frame, std::vector<ReplMessage>* out);

}  // namespace todo::cluster
