// The JSON of etcd's gRPC gateway (etcd 3.4, paths under /v3/): request
// bodies from our types, our types from answer bodies. Pure functions, no
// I/O; never throw.
//
// The gateway's JSON is gRPC's proto3 mapping (field names as in the .proto,
// OrigName), with these quirks:
//   - bytes (keys, values) are base64 (standard alphabet, padded);
//   - 64-bit integers (revisions, lease ids, TTLs) are JSON strings
//     ("revision":"5"); we send them as strings too and accept both forms;
//   - fields at their default value are left out: no "kvs" for an empty
//     range, no "succeeded" for a failed transaction, no "type" for a PUT
//     event, no "TTL" for a lease that is gone;
//   - enums are names ("CREATE", "DELETE");
//   - unknown fields in a request are silently ignored (so a misspelt field
//     is a bug nobody sees: the encoders below are the only writers);
//   - streamed answers (watch, lease keepalive) are one JSON object per line,
//     {"result":{...}} or {"error":{"grpc_code":N,"message":...}};
//   - a unary error answer is a non-200 status with
//     {"error":"...","message":"...","code":GRPC_CODE}.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "common/io/etcd/types.h"
#include "common/status.h"

namespace todo::io::codec {

std::string Base64Encode(std::string_view bytes);
// For error messages: `s` in quotes, non-printable bytes as '?', at most
// 64 characters then "...".
std::string Printable(std::string_view s);

// Standard alphabet; padding optional. nullopt on any other character, a
// bad length or non-zero padding bits.
std::optional<std::string> Base64Decode(std::string_view text);

// ---------------------------------------------------------------------------
// Request bodies.

// /v3/kv/range. `range_end` "" = the key alone; `limit` 0 = no limit;
// `revision` 0 = the latest.
std::string RangeBody(std::string_view key, std::string_view range_end, int64_t limit = 0,
                      bool keys_only = false, bool count_only = false, int64_t revision = 0);
// /v3/kv/range of the one key in [key, range_end) written last (the
// highest mod_revision), keys only.
std::string NewestKeyBody(std::string_view key, std::string_view range_end);
std::string PutBody(std::string_view key, std::string_view value, int64_t lease);  // /v3/kv/put
std::string DeleteBody(std::string_view key, std::string_view range_end);  // /v3/kv/deleterange
std::string TxnBody(const TxnRequest& txn);                                // /v3/kv/txn
std::string CompactBody(int64_t revision);                                 // /v3/kv/compaction
std::string LeaseGrantBody(int64_t ttl_seconds);                           // /v3/lease/grant
// /v3/lease/keepalive, /v3/lease/revoke, /v3/lease/timetolive (keys: list them).
std::string LeaseIdBody(int64_t id, bool keys = false);
// /v3/watch: a create_request from `start_revision` (0 = from now).
std::string WatchCreateBody(std::string_view key, std::string_view range_end,
                            int64_t start_revision, bool prev_kv);

// ---------------------------------------------------------------------------
// Answers. Each returns internal "malformed answer: <field>: <problem>" for
// a body that is not what etcd sends.

StatusOr<RangeResult> DecodeRange(const nlohmann::json& body);
StatusOr<int64_t> DecodeHeaderRevision(const nlohmann::json& body);  // put, compaction
StatusOr<DeleteResult> DecodeDelete(const nlohmann::json& body);
StatusOr<TxnResult> DecodeTxn(const nlohmann::json& body);
StatusOr<LeaseGrant> DecodeLeaseGrant(const nlohmann::json& body);
// The keepalive stream's one line: the TTL (seconds), 0 if the lease is gone.
StatusOr<int64_t> DecodeKeepAlive(const nlohmann::json& line);
StatusOr<LeaseInfo> DecodeTimeToLive(const nlohmann::json& body);
StatusOr<MemberStatus> DecodeMemberStatus(const nlohmann::json& body);
// One line of a watch stream; an {"error":...} line becomes unavailable
// with etcd's message.
StatusOr<WatchMessage> DecodeWatchMessage(const nlohmann::json& line);

// The gRPC status of a unary error answer, if the body is one.
struct GatewayError {
  int code = 0;  // gRPC code: 5 not found, 11 out of range (compacted), 14 unavailable...
  std::string message;
};
std::optional<GatewayError> DecodeGatewayError(const nlohmann::json& body);

}  // namespace todo::io::codec
