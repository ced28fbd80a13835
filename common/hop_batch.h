// Hop batches: several forwarded requests (router -> node) or several
// replies (node -> router) in one ZeroMQ message, an internal extension
// between our router and our nodes (common/PROTOCOL.md, "Router-node
// batches"). Clients never see it; a router uses it only with a node that
// said so in its answer to the router's heartbeat ping.
//
// A batch message is two frames after the ROUTER identity: kMarker, then one
// blob of records. A record is what a v1 message to or from a node carries
// after the identity: the router's head, any further envelope frames of the
// client, and the body, last. In the blob:
//   record = u8 frames (2..kMaxRecordFrames), then per frame a u32
//            big-endian length and the bytes
// and the blob is 1..kMaxRecords records, at most kMaxBytes in all.
//
// Pure: no I/O, no threads. BatchWriter builds a blob; DecodeBatch checks a
// whole blob before anything in it is used.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <msgpack/sbuffer.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace todo::hop_batch {

// A router's heartbeat head, the first frame of its ping to a node ('H',
// then an 8-byte token): the node answers batch pings only behind it, so a
// client's ping is always answered as v1 says.
inline constexpr char kHeartbeatTag = 'H';
inline constexpr size_t kHeartbeatHeadBytes = 9;
inline bool IsHeartbeatHead(std::string_view head) {
  return head.size() == kHeartbeatHeadBytes && head[0] == kHeartbeatTag;
}

// The frame that says "a batch follows" (where a v1 message has a router's
// head: 'R' or kHeartbeatTag first, never this byte).
inline constexpr std::string_view kMarker{"\xB7todo-batch/1", 13};
// Bounds of one batch (a sender never goes past them; a receiver refuses a
// blob that does). kMaxBytes stays under protocol::kMaxFrameBytes, so a
// batch is never dropped by ZMQ_MAXMSGSIZE.
inline constexpr size_t kMaxRecords = 64;
inline constexpr size_t kMaxBytes = 64 * 1024;
// Frames in one record: the head, up to 15 more envelope frames (a router
// takes at most 16 frames from a client), the body.
inline constexpr size_t kMaxRecordFrames = 17;
// Bytes a record takes besides its frames' bytes.
inline constexpr size_t RecordOverhead(size_t frames) { return 1 + 4 * frames; }

// The key a router's heartbeat ping carries to ask for batches, and the key
// a node's pong carries to agree (its value: the records it takes in one
// batch, kMaxRecords).
inline constexpr std::string_view kPingKey = "batch";

// One decoded record: views into the blob.
struct Record {
  std::array<std::string_view, kMaxRecordFrames> frames;
  size_t n = 0;  // 2..kMaxRecordFrames
  std::string_view head() const { return frames[0]; }
  std::string_view body() const { return frames[n - 1]; }
};

// Builds one blob. Not thread-safe; reuse after Clear().
class BatchWriter {
 public:
  // True if a record of `frames` frames holding `bytes` bytes in all can
  // still go into this batch (a first record always can, if it is within
  // the bounds at all).
  bool Fits(size_t frames, size_t bytes) const {
    return frames >= 2 && frames <= kMaxRecordFrames && count_ < kMaxRecords &&
           blob_.size() + RecordOverhead(frames) + bytes <= kMaxBytes;
  }
  // Appends one record; the caller checked Fits().
  void Add(const std::string_view* frames, size_t n);
  size_t count() const { return count_; }
  bool empty() const { return count_ == 0; }
  std::string_view blob() const { return blob_; }
  void Clear() {
    blob_.clear();
    count_ = 0;
  }

 private:
  std::string blob_;
  size_t count_ = 0;
};

// Decodes a whole blob into *records (cleared first; views into `blob`).
// bad_request, naming the fault and the record, if anything is out of
// bounds or the bytes end too soon or too late; *records is then empty.
Status DecodeBatch(std::string_view blob, std::vector<Record>* records);

// Heartbeats: the router's ping asking for batches ({"op": "ping",
// "batch": kMaxRecords}), whether a request body asks (a map with the key
// set to a positive integer), and the limit a pong grants (0: none, the
// node does not batch).
void EncodeBatchPing(msgpack::sbuffer& out);
bool PingAsksBatch(std::string_view request_body);
uint64_t PongBatchLimit(std::string_view reply_body);

}  // namespace todo::hop_batch
