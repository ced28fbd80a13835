// Wire protocol v1: strict request decoding and validation, reply encoding.
// Pure: no I/O, no threads. The description of what is implemented lives
// next to this file in PROTOCOL.md and agrees with shared/spec/protocol.md.
//
// Decoding is zero-copy: a decoded Request holds string_views into the body,
// so the body must outlive the Request. Decoding never allocates per key; it
// walks the msgpack bytes once with a visitor.
#pragma once

#include <cstdint>
#include <msgpack/sbuffer.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/date.h"
#include "common/status.h"
#include "common/todo_list.h"

namespace todo::protocol {

constexpr size_t kMaxBodyBytes = 64 * 1024;  // larger bodies: bad_request, not decoded
// ZMQ_MAXMSGSIZE of every socket that takes requests: a larger frame is
// never buffered (libzmq drops the connection sending it, unanswered).
// Twice the largest body, so a body a little over the limit still gets its
// bad_request.
constexpr int64_t kMaxFrameBytes = 2 * static_cast<int64_t>(kMaxBodyBytes);
// The bytes of the routing envelope a client may send (its frames before
// the body, after the identity ZeroMQ gives it): a few ZeroMQ identities
// (each at most 255 bytes) and a delimiter. More is a bad_request answered
// to the identity alone, and nothing of it is kept.
constexpr size_t kMaxEnvelopeBytes = 1024;
constexpr size_t kMaxListBytes = 255;
constexpr size_t kMaxTitleBytes = 1024;
constexpr size_t kMaxRidBytes = 64;  // a write's optional "rid": 1-64 bytes
constexpr int kMaxNesting = 32;      // deeper msgpack nesting is a bad_request

enum class Op : uint8_t {
  kAddEntry,
  kEntries,
  kUpdateEntry,
  kDeleteEntry,
  kLocate,
  kPing,
  kStats,
  kMap,  // replicated mode: the partition map (who is primary for what)
};
// How many ops there are: arrays indexed by Op have this size.
constexpr size_t kNumOps = 8;

std::string_view OpName(Op op);
std::optional<Op> ParseOp(std::string_view name);
// add_entry, update_entry, delete_entry.
bool IsMutating(Op op);
// Every op but ping and stats names a list.
bool NeedsList(Op op);

// The request's "id", echoed verbatim in the reply.
struct RequestId {
  enum class Kind : uint8_t { kNone, kUint, kStr };
  Kind kind = Kind::kNone;
  uint64_t uint_value = 0;
  std::string_view str_value;  // points into the body

  static RequestId None() { return {}; }
  static RequestId Uint(uint64_t v) { return {Kind::kUint, v, {}}; }
  static RequestId Str(std::string_view s) { return {Kind::kStr, 0, s}; }
};

// A RequestId that owns its bytes, for keeping past the body's lifetime.
struct OwnedRequestId {
  RequestId::Kind kind = RequestId::Kind::kNone;
  uint64_t uint_value = 0;
  std::string str_value;

  static OwnedRequestId From(const RequestId& id);
  // A view valid while this object lives and is unchanged.
  RequestId view() const;
};

// A validated request. Which fields are set depends on op (see PROTOCOL.md).
struct Request {
  Op op = Op::kPing;
  RequestId id;
  std::string_view list;                  // every op but ping
  std::optional<Date> date;               // add_entry; optional for entries, update_entry
  std::optional<std::string_view> title;  // add_entry; optional for update_entry
  uint64_t entry_id = 0;                  // update_entry, delete_entry
  // add_entry, update_entry, delete_entry: the optional request id that
  // makes a retried write happen once (1-64 bytes, any bytes); empty: none.
  std::string_view rid;
};

struct DecodeResult {
  // The id to echo in the reply; set whenever the body held a valid "id",
  // even when the request is otherwise bad.
  RequestId id;
  // OK, or the error to answer (bad_request or unknown_op), whose message
  // names the key and the rule.
  Status status;
  Request request;  // valid only if status.ok()
};

// Quotes client-supplied bytes for an error message: at most 64 bytes, in
// single quotes, non-printable bytes (and ' and \) as \xNN.
std::string QuoteForMessage(std::string_view s);

// Decodes and validates one request body. Never throws.
DecodeResult DecodeRequest(std::string_view body);

// --- Replies (node and router side). Each appends one whole reply map. ---
void EncodeError(msgpack::sbuffer& out, const RequestId& id, ErrorCode code,
                 std::string_view message);
void EncodeError(msgpack::sbuffer& out, const RequestId& id, const Status& status);
void EncodeAddResult(msgpack::sbuffer& out, const RequestId& id, uint64_t entry_id);
void EncodeEntries(msgpack::sbuffer& out, const RequestId& id,
                   const std::vector<EntryRef>& entries);
void EncodeEntry(msgpack::sbuffer& out, const RequestId& id, const EntryRef& entry);
void EncodeDeleted(msgpack::sbuffer& out, const RequestId& id, bool deleted);
void EncodeLocate(msgpack::sbuffer& out, const RequestId& id, std::string_view node);
// Replicated mode: {"node": primary, "replicas": [...], "partition": p, "epoch": e}.
void EncodeLocateReplicated(msgpack::sbuffer& out, const RequestId& id, std::string_view node,
                            const std::vector<std::string>& replicas, uint32_t partition,
                            uint64_t epoch);
// The `map` op's result: {"partitions": P, "hash": name, "version": v,
// "nodes": {name: endpoint, ...} (the live ones), "parts": [[primary,
// epoch], ...] (index = partition)}.
struct MapPart {
  std::string_view primary;
  uint64_t epoch = 0;
};
void EncodeMap(msgpack::sbuffer& out, const RequestId& id, uint32_t partitions,
               std::string_view hash, uint64_t version,
               const std::vector<std::pair<std::string_view, std::string_view>>& nodes,
               const std::vector<MapPart>& parts);
// The message of an `unavailable` reply from a node that is not the
// partition's primary starts with this (a router then refreshes its map
// and forwards once more).
inline constexpr std::string_view kNotPrimaryPrefix = "not primary for partition ";
// With `batch` > 0 (a node answering a router's heartbeat that asks for hop
// batches, common/hop_batch.h), the pong also carries "batch": that limit.
void EncodePing(msgpack::sbuffer& out, const RequestId& id, std::string_view role,
                std::string_view name, uint64_t batch = 0);
// Appends the start of a success reply, {"id": .., "ok": true, "result": ;
// the caller then packs exactly one value (the result) to complete it. For
// results with no encoder here, such as `stats`.
void BeginOkReply(msgpack::sbuffer& out, const RequestId& id);
// Pieces of such a result (the `stats` maps of node/ and router/): a str,
// and a str key followed by a uint value.
void AppendStr(msgpack::sbuffer& out, std::string_view s);
void AppendUintField(msgpack::sbuffer& out, std::string_view key, uint64_t v);

// The code of a reply written by the encoders above (kOk for a success),
// read from its first bytes without decoding it: relies on the key order
// they write (id, ok, error.code). nullopt if `body` is not laid out so.
// Cheap enough for a socket loop to call on every reply it forwards.
std::optional<ErrorCode> PeekReplyCode(std::string_view body);

// --- Client side (bench, tests, tools). ---
// Encodes a request map with the keys that `request` sets.
void EncodeRequest(msgpack::sbuffer& out, const Request& request);

// The parts of a reply a client always needs; the result stays undecoded.
struct ReplyHeader {
  RequestId::Kind id_kind = RequestId::Kind::kNone;
  uint64_t id_uint = 0;
  std::string id_str;
  bool ok = false;
  ErrorCode code = ErrorCode::kOk;  // when !ok
  std::string message;              // when !ok
};
// Parses a reply map; an error Status if the body is not a well-formed reply.
StatusOr<ReplyHeader> DecodeReplyHeader(std::string_view body);
// Maps a wire code name to its ErrorCode (kInternal if unknown).
ErrorCode ParseErrorCode(std::string_view name);

}  // namespace todo::protocol
