// How lists are laid out in a node's LevelDB shards, and the data dir's
// manifest. Pure encode/decode functions; the store in node/store does the I/O.
//
// Keys (all integers big-endian, so LevelDB's bytewise order is id order):
//   list prefix  = u8 len(name) | name bytes      (names are 1-255 bytes, so
//                  length-prefixing makes names containing '/', NUL or any
//                  other byte unable to collide)
//   meta key     = prefix | 0x00                  value = 0x01 | u64 next_id
//   entry key    = prefix | 0x01 | u64 id         value = 0x01 | u32 YYYYMMDD | title
// A list is the contiguous range [prefix|0x00, prefix|0x02): loaded with one
// range scan. An add writes one entry key (a few hundred bytes whatever the
// list's size). The next id on load is max(meta, highest entry id + 1); the
// meta key is written only when the highest id ever given out is deleted,
// which is exactly when the entries alone would understate it, so an id is
// never reused.
//
// Request-id (rid) records, one per (list, rid) of a write that carried a
// rid (shared/spec/retries.md), written in the same batch as the change.
// Since 2026-12 one key each (the "bucketed" layout):
//   rid key      = 0x00 | "rids" | u64 drop_at | 16-byte key hash
//     drop_at    the wall-clock ms at or after which the record may be
//                dropped: records written at `now` go to the bucket
//                drop_at = (now / ttl + 2) * ttl, so each lives between one
//                and two TTLs, and every key of a shard sorts by drop_at:
//                expiry deletes from the range's start, and a lookup reads
//                the few buckets not yet due (RidDropAtFor) with a point
//                lookup each. (So a record written while the wall clock
//                ran more than a TTL ahead, and looked up after it stepped
//                back, is found only by a node started since; the version
//                1 layout's lookups did not depend on the clock.)
//     key hash   RidKeyHash(list, rid): MurmurHash3 x64 128 of
//                u8 len(list) | list | rid. Two distinct pairs share a key
//                with probability 2^-128 per pair of records (~10^-15 for
//                10^12 live records), and then the later one is answered
//                as the first (with the other's reply). The hash is not
//                keyed: a client that knows another's (list, rid) can
//                build a colliding pair, but it could equally send that
//                (list, rid) itself (any client may write any list).
//   rid value    = u8 version (2) | u8 op (1 add, 2 update, 3 delete)
//                  | u64 args hash | outcome
//     args hash  RidArgsHash(request): the first 64 bits of MurmurHash3 x64
//                128 (seed 1) of the op and arguments as the version 1
//                value stores them (below); a rid reused for a different
//                request is taken for a retry of the first with
//                probability 2^-64 per reuse.
//     outcome: u8 code, then
//       1 added       u64 the new entry's id
//       2 updated     u32 YYYYMMDD | u16 len | title  (the entry after it)
//       3 not_found   (update of a missing entry)
//       4 deleted     5 not deleted (no such entry)
//   A record is ~45 bytes (29-byte key for 36-byte rids whatever the list's
//   name) where the version 1 layout wrote ~165 in two keys; LevelDB
//   compacts every byte several times, which was most of a rid's cost.
// The version 1 layout (written until 2026-12; still read, swept and
// counted, so a data dir written before needs no conversion: the store
// looks up the old key too while the old expiry index is not empty):
//   rid key      = prefix | 0x02 | rid bytes      (1-64 bytes)
//   rid value    = u8 version (1) | u8 op | u64 created (ms since the Unix
//                  epoch) | arguments | outcome (as in version 2)
//     arguments, stored as sent:
//       add      u32 YYYYMMDD | u16 len | title
//       update   u64 entry_id | u8 has (1: date, 2: title) | [u32 YYYYMMDD]
//                | [u16 len | title]
//       delete   u64 entry_id
//   expiry key   = 0x00 | "rid-expiry" | u64 created | u8 len(name) | name | rid
//                  value empty: the version 1 records by age.
//   count key    = 0x00 | "rid-count"              value = 0x01 | u64 records
//                  The number of rid records (of both layouts) in the
//                  shard, kept exactly by the shard's writer in every batch
//                  that adds or drops one.
// A list prefix starts with its length (1-255), so no key starting 0x00 is
// a list's.
// Format 2 (below) puts the partition prefix `ns` before every one of these
// keys too: the records (ns | 0x00 | "rids" | ...) and the version 1
// expiry index (ns | 0x00 | "rid-expiry" | ...) lie inside the partition's range (after its meta
// key, `ns`, and before its lists), so a snapshot of a partition carries its records and index.
// Every key is built by AppendListPrefix or AppendReservedPrefix (storage_format.cc).
//
// Besides the lists, each shard holds one bookkeeping key, the commit
// counter (CommitKey(): a single 0x00 byte, which no list key can be, as a
// list key starts with its name's length, 1-255, and is at least 3 bytes).
// Every group commit writes it with the commit's number, and the shard's
// writer records the number of the last acknowledged commit in the shard's
// COMMITTED file from time to time (FormatCommitted): a shard whose log lost
// acknowledged writes (a truncated or deleted .log) then holds a lower
// number than its COMMITTED file, and the node refuses to open it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/date.h"
#include "common/protocol.h"
#include "common/status.h"

namespace todo::storage {

constexpr uint8_t kRecordVersion = 1;
constexpr int kFormatVersion = 1;  // static mode
// Format 2: the replicated mode. Every key is prefixed with its partition,
// `ns` = u16 partition big-endian, so that a partition is one contiguous
// key range [ns, next ns) that a snapshot copies and a move hands over:
//   partition meta = ns                         value = see PartitionMeta
//   list keys      = ns | (the format 1 key)
// The partition meta key is the first key of its range. The key functions
// below take `ns` ("" in format 1).
constexpr int kReplicatedFormatVersion = 2;

std::string MetaKey(std::string_view list);
std::string MetaKey(std::string_view ns, std::string_view list);
std::string EntryKey(std::string_view list, uint64_t id);
// The same, written into *out (cleared first; its capacity is reused).
void EntryKeyTo(std::string* out, std::string_view list, uint64_t id);
void EntryKeyTo(std::string* out, std::string_view ns, std::string_view list, uint64_t id);
// [begin, end) covering every key of the list and nothing else.
std::string ListRangeBegin(std::string_view list);
std::string ListRangeEnd(std::string_view list);
std::string ListRangeBegin(std::string_view ns, std::string_view list);
std::string ListRangeEnd(std::string_view ns, std::string_view list);

// Format 2: the partition's key prefix (`ns`), which is also its meta key,
// and the end of its range ("" for the last possible partition: no bound).
std::string PartitionPrefix(uint32_t partition);
std::string PartitionRangeEnd(uint32_t partition);

// What a replica holds of a partition, stored atomically with its data.
struct PartitionMeta {
  uint64_t leader_epoch = 0;   // the highest leader epoch seen
  uint64_t applied_epoch = 0;  // leader epoch of the last record applied
  uint64_t applied_seq = 0;    // its sequence number
  bool complete = true;        // false while a snapshot is half applied
  bool operator==(const PartitionMeta&) const = default;
};
std::string EncodePartitionMeta(const PartitionMeta& m);
StatusOr<PartitionMeta> DecodePartitionMeta(std::string_view value);

struct ParsedKey {
  std::string_view list;
  bool is_meta = false;
  uint64_t id = 0;  // entry keys
};
// nullopt if `key` is not a well-formed meta or entry key.
std::optional<ParsedKey> ParseKey(std::string_view key);

std::string EncodeEntryValue(Date date, std::string_view title);
// The same, written into *out (cleared first; its capacity is reused).
void EntryValueTo(std::string* out, Date date, std::string_view title);
struct EntryValue {
  Date date;
  std::string_view title;  // points into the value
};
// Checks the version byte, the date and the title (1-1024 bytes, UTF-8).
StatusOr<EntryValue> DecodeEntryValue(std::string_view value);

std::string EncodeMetaValue(uint64_t next_id);
StatusOr<uint64_t> DecodeMetaValue(std::string_view value);

// --- rid records ---

// The version 1 rid record key of (list, rid); `ns` is the list's
// partition prefix (format 2; "" in format 1), as for the list's other keys.
std::string RidKey(std::string_view list, std::string_view rid);
std::string RidKey(std::string_view ns, std::string_view list, std::string_view rid);
void RidKeyTo(std::string* out, std::string_view ns, std::string_view list, std::string_view rid);

// What a write with a rid did, as its record keeps it.
enum class RidOutcome : uint8_t {
  kAdded = 1,       // add_entry: new_id
  kUpdated = 2,     // update_entry: the entry after it (entry_id, result_date, result_title)
  kNotFound = 3,    // update_entry of a missing entry
  kDeleted = 4,     // delete_entry: {"deleted": true}
  kNotDeleted = 5,  // delete_entry of a missing entry: {"deleted": false}
};

// One rid record. Views point into the request, or into the stored value.
struct RidRecord {
  protocol::Op op = protocol::Op::kAddEntry;  // add_entry, update_entry or delete_entry
  uint64_t created_ms = 0;                    // when it was written (wall clock; version 1 only)
  // Version 2 (hashed): the arguments are kept as RidArgsHash only.
  bool hashed = false;
  uint64_t args_hash = 0;
  // Version 1: the arguments, as sent. Version 2: as the request had them
  // when the record is made (RidRecordFor); not stored, not decoded.
  uint64_t entry_id = 0;                  // update, delete
  std::optional<Date> date;               // add; update if it had one
  std::optional<std::string_view> title;  // add; update if it had one
  // The outcome.
  RidOutcome outcome = RidOutcome::kAdded;
  uint64_t new_id = 0;            // kAdded
  Date result_date;               // kUpdated
  std::string_view result_title;  // kUpdated
};

// A version 2 record of `request` (its op, args hash and arguments), with
// no outcome yet.
RidRecord RidRecordFor(const protocol::Request& request, uint64_t created_ms);
// True if `request` is the same operation with the same arguments as the
// one `record` was written for (its list and rid aside): by the args hash
// for a version 2 record, byte for byte for a version 1 record.
bool SameRequest(const RidRecord& record, const protocol::Request& request);

// Encodes a record: version 2 if record.hashed, else version 1 (the op's
// arguments must then be set as the op needs them).
void RidValueTo(std::string* out, const RidRecord& record);
// Either version. Checks the version, the op, the arguments (version 1: a
// real date, a title of 1-1024 bytes of UTF-8), the outcome's code against
// the op, and the size.
StatusOr<RidRecord> DecodeRidValue(std::string_view value);

// --- version 2 record keys (see the layout above) ---
struct RidHash {
  uint64_t h1 = 0, h2 = 0;
  bool operator==(const RidHash&) const = default;
};
// MurmurHash3 x64 128 of `data` with `seed` (the reference algorithm: the
// stored keys depend on it never changing).
RidHash Murmur3x64_128(std::string_view data, uint32_t seed);
RidHash RidKeyHash(std::string_view list, std::string_view rid);
// The op and arguments of a write (add, update or delete), hashed.
uint64_t RidArgsHash(const protocol::Request& request);
// The bucket (its drop_at) of a record written at `now_ms` with the TTL
// `ttl_ms` (> 0): (now / ttl + 2) * ttl, saturating. A lookup at now_ms
// reads the buckets drop_at - ttl, drop_at and drop_at + ttl (the last for a
// writer whose clock ran up to a TTL ahead, e.g. a previous primary).
uint64_t RidDropAtFor(uint64_t now_ms, uint64_t ttl_ms);
std::string RidRecordKey(std::string_view ns, uint64_t drop_at, const RidHash& hash);
void RidRecordKeyTo(std::string* out, std::string_view ns, uint64_t drop_at, const RidHash& hash);
struct ParsedRidRecordKey {
  uint64_t drop_at = 0;
  RidHash hash;
};
// nullopt if `key` is not a well-formed version 2 record key (of `ns`).
std::optional<ParsedRidRecordKey> ParseRidRecordKey(std::string_view ns, std::string_view key);
// [begin, end) covering every version 2 record key (of `ns`); SeekKey(t):
// where the buckets with drop_at >= t start.
std::string RidRecordRangeBegin(std::string_view ns = {});
std::string RidRecordRangeEnd(std::string_view ns = {});
std::string RidRecordSeekKey(std::string_view ns, uint64_t drop_at);

// Version 1: the record key of (list, rid) is RidKey above, and the expiry
// index holds the records by creation time. In format 2 each partition has
// its own (`ns` first), inside the partition's key range.
std::string RidExpiryKey(uint64_t created_ms, std::string_view list, std::string_view rid);
std::string RidExpiryKey(std::string_view ns, uint64_t created_ms, std::string_view list,
                         std::string_view rid);
void RidExpiryKeyTo(std::string* out, std::string_view ns, uint64_t created_ms,
                    std::string_view list, std::string_view rid);
struct ParsedRidExpiryKey {
  uint64_t created_ms = 0;
  std::string_view list;  // point into the key
  std::string_view rid;
};
// nullopt if `key` is not a well-formed expiry key (of partition `ns`).
std::optional<ParsedRidExpiryKey> ParseRidExpiryKey(std::string_view key);
std::optional<ParsedRidExpiryKey> ParseRidExpiryKey(std::string_view ns, std::string_view key);
// [begin, end) covering every expiry key (of `ns`) and nothing else;
// SeekKey(t) is where the records created at t or later start.
std::string RidExpiryRangeBegin(std::string_view ns = {});
std::string RidExpiryRangeEnd(std::string_view ns = {});
std::string RidExpirySeekKey(std::string_view ns, uint64_t created_ms);
inline std::string RidExpirySeekKey(uint64_t created_ms) {
  return RidExpirySeekKey({}, created_ms);
}

// The count of rid records (of a format 1 shard; see shard_writer.h).
std::string RidCountKey(std::string_view ns = {});
std::string EncodeRidCount(uint64_t records);
StatusOr<uint64_t> DecodeRidCount(std::string_view value);

// The shard's commit counter (see above): key and value (0x01 | u64 n).
std::string CommitKey();
std::string EncodeCommitValue(uint64_t commit);
// The counter of a value with or without a meta journal (below).
StatusOr<uint64_t> DecodeCommitValue(std::string_view value);

// Format 2: the partition meta journal. A replicated shard's writer does
// not rewrite a partition's meta key in every group commit that moves the
// partition on (one key per partition per group was a fifth of a
// replicated node's CPU): it keeps the metas not yet written to their keys
// in memory and puts all of them in every group's commit value, after the
// counter,
//   u8 0x4a ('J') | varint count | count x (varint partition |
//   varint leader_epoch | varint applied_epoch | varint applied_seq |
//   u8 complete (0 or 1))
// partitions ascending, each once; from time to time it writes them to
// their keys and the journal starts empty again. Both in one atomic
// batch, so the shard's last commit value always says which metas are
// newer than their keys: a partition it lists has that meta.
struct JournaledMeta {
  uint32_t partition = 0;
  PartitionMeta meta;
  bool operator==(const JournaledMeta&) const = default;
};
// Appends the journal of `count` metas to a commit value: the header, then
// AppendJournaledMeta for each, partitions ascending.
void BeginMetaJournal(std::string* commit_value, size_t count);
void AppendJournaledMeta(std::string* commit_value, uint32_t partition, const PartitionMeta& m);
// The journal of a commit value (empty without one); internal if the value
// is malformed (a count of 0 or that does not match, partitions out of
// order or past 0xffff, a varint not in its shortest form, bytes left
// over): a value decodes only if it is the one encoding of its journal.
StatusOr<std::vector<JournaledMeta>> DecodeMetaJournal(std::string_view commit_value);

// The shard's COMMITTED file (kCommittedFile in the shard's directory):
//   todo-node committed N
// N: the number of a group commit that was acknowledged (synced), so the
// shard's counter must be at least N. internal if the text is not that.
inline constexpr char kCommittedFile[] = "COMMITTED";
std::string FormatCommitted(uint64_t commit);
StatusOr<uint64_t> ParseCommitted(std::string_view text);

// The data dir's MANIFEST file: which format and how many shards.
//   todo-node data directory
//   format 1
//   shards N
// Strict: the header line first, then each known key exactly once, in any
// order ("KEY VALUE", one space; blank lines ignored). An unknown or
// repeated key, a missing one or a bad value is internal, naming the line:
// a MANIFEST someone edited is refused, never half-read. The keys and their
// parsers are one table in storage_format.cc, so a later format adds its
// own lines there.
struct Manifest {
  int format = kFormatVersion;  // 0-1000000
  uint32_t shards = 0;          // 1-1024
  // Format 2 (replicated) only, and required there: the cluster and node
  // this dir belongs to, the partition count, and the dir's id (random,
  // made at creation; a wiped dir gets a new one, so the cluster knows its
  // copies are gone).
  std::string cluster;
  std::string node;
  uint32_t partitions = 0;
  std::string data_id;
};
std::string FormatManifest(const Manifest& m);
StatusOr<Manifest> ParseManifest(std::string_view text);

}  // namespace todo::storage
