// The values of etcd's v3 API as the client hands them out: keys, values,
// revisions, compares and operations of a transaction, leases, watch events.
// Plain structs; keys and values are raw bytes (the JSON gateway's base64 is
// the codec's business, codec.h).
//
// Revisions: etcd numbers every change to the store; `revision` in a result
// is the store's revision when the request was served (the header
// revision), so a Watch started at revision + 1 misses nothing after it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace todo::io {

// One key as etcd stores it.
struct KeyValue {
  std::string key;
  std::string value;
  int64_t create_revision = 0;  // revision of the put that created the key
  int64_t mod_revision = 0;     // revision of the last put
  int64_t version = 0;          // puts since creation (1 after the first)
  int64_t lease = 0;            // the lease the key is bound to, 0 if none
};

// Get(key): the key if it exists, and the store's revision.
struct GetResult {
  std::optional<KeyValue> kv;
  int64_t revision = 0;
};

// A range (GetPrefix, or a range in a transaction).
struct RangeResult {
  std::vector<KeyValue> kvs;  // in key order
  int64_t count = 0;          // keys in the range in all (more than kvs when limited)
  bool more = false;          // a limit cut the answer short
  int64_t revision = 0;
};

struct DeleteResult {
  int64_t deleted = 0;  // keys deleted
  int64_t revision = 0;
};

// The range_end that makes [prefix, range_end) every key starting with
// `prefix` (etcd's "prefix" option): the prefix with its last byte below
// 0xff incremented and what follows dropped; "\0" (every key) for a prefix
// of only 0xff bytes or an empty one.
std::string PrefixEnd(std::string_view prefix);

// ---------------------------------------------------------------------------
// Transactions: if every compare holds, the success ops run, else the
// failure ops; atomically, at one revision.

enum class CompareTarget { kVersion, kCreate, kMod, kValue, kLease };
enum class CompareOp { kEqual, kNotEqual, kGreater, kLess };

// A condition on one key. A key that does not exist has version, create and
// mod revision 0 and lease 0 (so "create_revision == 0" means "absent").
struct Compare {
  std::string key;
  CompareTarget target = CompareTarget::kVersion;
  CompareOp op = CompareOp::kEqual;
  int64_t number = 0;  // for kVersion, kCreate, kMod, kLease
  std::string value;   // for kValue

  static Compare Version(std::string key, CompareOp op, int64_t version);
  static Compare CreateRevision(std::string key, CompareOp op, int64_t revision);
  static Compare ModRevision(std::string key, CompareOp op, int64_t revision);
  static Compare Value(std::string key, CompareOp op, std::string value);
  static Compare Lease(std::string key, CompareOp op, int64_t lease);
};

// One operation of a transaction.
struct Op {
  enum class Type { kRange, kPut, kDelete };
  Type type = Type::kRange;
  std::string key;
  std::string range_end;  // "" = the key alone
  std::string value;      // kPut
  int64_t lease = 0;      // kPut: bind the key to this lease (0: none)
  int64_t limit = 0;      // kRange: at most this many keys (0: all)

  // The *Prefix ops cover every key starting with the prefix (every key
  // for ""; etcd's key "\0" with range_end "\0").
  static Op Get(std::string key);
  static Op GetPrefix(std::string prefix, int64_t limit = 0);
  static Op Put(std::string key, std::string value, int64_t lease = 0);
  static Op Delete(std::string key);
  static Op DeletePrefix(std::string prefix);
};

// The answer to one Op, in the order of the ops that ran.
struct OpResult {
  Op::Type type = Op::Type::kRange;
  RangeResult range;    // kRange
  int64_t deleted = 0;  // kDelete
};

struct TxnRequest {
  std::vector<Compare> compares;
  std::vector<Op> success;
  std::vector<Op> failure;
};

struct TxnResult {
  bool succeeded = false;           // every compare held: the success ops ran
  std::vector<OpResult> responses;  // of the ops that ran
  int64_t revision = 0;             // the store's revision after the transaction
};

// ---------------------------------------------------------------------------
// Leases.

struct LeaseGrant {
  int64_t id = 0;
  int64_t ttl = 0;  // seconds etcd granted (it raises a TTL below its minimum)
};

struct LeaseInfo {
  int64_t id = 0;
  int64_t ttl = -1;               // seconds left; -1 if the lease has expired or never existed
  int64_t granted_ttl = 0;        // the TTL it was granted with
  std::vector<std::string> keys;  // bound to it (when asked for)
};

// One member's answer to a status request (todo-admin status).
struct MemberStatus {
  std::string endpoint;
  std::string version;  // etcd's, e.g. "3.4.23"
  uint64_t member_id = 0;
  uint64_t leader = 0;  // member id of the leader this member knows; 0 if none
  int64_t raft_term = 0;
  int64_t raft_index = 0;
  int64_t db_size = 0;  // bytes
  bool is_leader() const { return member_id != 0 && member_id == leader; }
};

// ---------------------------------------------------------------------------
// Watch.

enum class EventType { kPut, kDelete };

struct Event {
  EventType type = EventType::kPut;
  KeyValue kv;  // on kDelete: the key and mod_revision (the deletion's revision)
};

// One message of a watch stream, as the gateway sends it.
struct WatchMessage {
  bool created = false;          // the watch was set up
  bool canceled = false;         // the server ended the watch
  int64_t compact_revision = 0;  // canceled because the start revision was compacted
  std::string cancel_reason;
  int64_t revision = 0;  // header revision
  std::vector<Event> events;
};

}  // namespace todo::io
