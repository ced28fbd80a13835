#include "common/storage_format.h"

#include <algorithm>
#include <charconv>
#include <cstring>
#include <iterator>

#include "common/protocol.h"
#include "common/utf8.h"

namespace todo::storage {
namespace {

void PutBe64(std::string* out, uint64_t v) {
  // One append of the big-endian bytes (not eight push_backs: this is on
  // every write's path, several times with a rid).
  char b[8];
  for (int i = 0; i < 8; ++i) b[i] = static_cast<char>((v >> (8 * (7 - i))) & 0xff);
  out->append(b, 8);
}

uint64_t GetBe(std::string_view s, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; ++i) v = (v << 8) | static_cast<uint8_t>(s[i]);
  return v;
}

void PutBe32(std::string* out, uint32_t v) {
  for (int i = 3; i >= 0; --i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

void PutBe16(std::string* out, uint16_t v) {
  out->push_back(static_cast<char>(v >> 8));
  out->push_back(static_cast<char>(v & 0xff));
}

// The start of every key of `list`: its partition's prefix `ns` (format 2;
// "" in format 1), then the name, length first.
void AppendListPrefix(std::string* out, std::string_view ns, std::string_view list) {
  out->append(ns);
  out->push_back(static_cast<char>(static_cast<uint8_t>(list.size())));
  out->append(list);
}

// The start of a reserved key (not a list's): `ns`, 0x00, then its name. A
// list's keys start (after `ns`) with its length, 1-255; the partition meta
// key is `ns` alone.
void AppendReservedPrefix(std::string* out, std::string_view ns, std::string_view name) {
  out->append(ns);
  out->push_back('\x00');
  out->append(name);
}

constexpr std::string_view kRidExpiryName = "rid-expiry";
constexpr std::string_view kRidCountName = "rid-count";

// The key tags after a list's prefix.
constexpr char kMetaTag = '\x00';
constexpr char kEntryTag = '\x01';
constexpr char kRidTag = '\x02';

std::string Prefix(std::string_view ns, std::string_view list, char tag) {
  std::string k;
  k.reserve(ns.size() + list.size() + 10);
  AppendListPrefix(&k, ns, list);
  k.push_back(tag);
  return k;
}

}  // namespace

std::string MetaKey(std::string_view list) { return Prefix({}, list, kMetaTag); }
std::string MetaKey(std::string_view ns, std::string_view list) {
  return Prefix(ns, list, kMetaTag);
}

std::string EntryKey(std::string_view list, uint64_t id) {
  std::string k;
  EntryKeyTo(&k, list, id);
  return k;
}

void EntryKeyTo(std::string* out, std::string_view list, uint64_t id) {
  EntryKeyTo(out, {}, list, id);
}

void EntryKeyTo(std::string* out, std::string_view ns, std::string_view list, uint64_t id) {
  out->clear();
  AppendListPrefix(out, ns, list);
  out->push_back(kEntryTag);
  PutBe64(out, id);
}

// The rid records (tag 0x02) start where the list's range ends.
std::string ListRangeBegin(std::string_view list) { return Prefix({}, list, kMetaTag); }
std::string ListRangeEnd(std::string_view list) { return Prefix({}, list, kRidTag); }
std::string ListRangeBegin(std::string_view ns, std::string_view list) {
  return Prefix(ns, list, kMetaTag);
}
std::string ListRangeEnd(std::string_view ns, std::string_view list) {
  return Prefix(ns, list, kRidTag);
}

std::string PartitionPrefix(uint32_t partition) {
  std::string k(2, '\0');
  k[0] = static_cast<char>((partition >> 8) & 0xff);
  k[1] = static_cast<char>(partition & 0xff);
  return k;
}

std::string PartitionRangeEnd(uint32_t partition) {
  if (partition + 1 > 0xffff) return std::string();
  return PartitionPrefix(partition + 1);
}

std::string EncodePartitionMeta(const PartitionMeta& m) {
  std::string v(1, static_cast<char>(kRecordVersion));
  PutBe64(&v, m.leader_epoch);
  PutBe64(&v, m.applied_epoch);
  PutBe64(&v, m.applied_seq);
  v.push_back(m.complete ? '\x01' : '\x00');
  return v;
}

StatusOr<PartitionMeta> DecodePartitionMeta(std::string_view value) {
  if (value.size() != 26 || static_cast<uint8_t>(value[0]) != kRecordVersion ||
      static_cast<uint8_t>(value[25]) > 1) {
    return Status::Internal("stored partition meta is malformed");
  }
  PartitionMeta m;
  m.leader_epoch = GetBe(value.substr(1), 8);
  m.applied_epoch = GetBe(value.substr(9), 8);
  m.applied_seq = GetBe(value.substr(17), 8);
  m.complete = value[25] == '\x01';
  return m;
}

std::optional<ParsedKey> ParseKey(std::string_view key) {
  if (key.empty()) return std::nullopt;
  size_t len = static_cast<uint8_t>(key[0]);
  if (len == 0 || key.size() < 1 + len + 1) return std::nullopt;
  ParsedKey p;
  p.list = key.substr(1, len);
  std::string_view rest = key.substr(1 + len);
  if (rest[0] == '\x00' && rest.size() == 1) {
    p.is_meta = true;
    return p;
  }
  if (rest[0] == '\x01' && rest.size() == 9) {
    p.id = GetBe(rest.substr(1), 8);
    // Ids run from 1; the largest uint64 is never handed out, so that the
    // next id (max + 1) can't wrap to an id already in use.
    if (p.id == 0 || p.id == UINT64_MAX) return std::nullopt;
    return p;
  }
  return std::nullopt;
}

std::string EncodeEntryValue(Date date, std::string_view title) {
  std::string v;
  EntryValueTo(&v, date, title);
  return v;
}

void EntryValueTo(std::string* out, Date date, std::string_view title) {
  out->clear();
  out->push_back(static_cast<char>(kRecordVersion));
  for (int i = 3; i >= 0; --i) out->push_back(static_cast<char>((date.packed >> (8 * i)) & 0xff));
  out->append(title);
}

StatusOr<EntryValue> DecodeEntryValue(std::string_view value) {
  if (value.size() < 6) return Status::Internal("stored entry is too short");
  if (static_cast<uint8_t>(value[0]) != kRecordVersion) {
    return Status::Internal("stored entry has unknown record version " +
                            std::to_string(static_cast<uint8_t>(value[0])));
  }
  auto packed = static_cast<uint32_t>(GetBe(value.substr(1), 4));
  auto date = MakeDate(static_cast<int>(packed / 10000), static_cast<int>(packed / 100 % 100),
                       static_cast<int>(packed % 100));
  if (!date) return Status::Internal("stored entry has an invalid date");
  std::string_view title = value.substr(5);
  if (title.size() > protocol::kMaxTitleBytes || !IsValidUtf8(title)) {
    return Status::Internal("stored entry has an invalid title");
  }
  return EntryValue{*date, title};
}

std::string EncodeMetaValue(uint64_t next_id) {
  std::string v(1, static_cast<char>(kRecordVersion));
  PutBe64(&v, next_id);
  return v;
}

StatusOr<uint64_t> DecodeMetaValue(std::string_view value) {
  if (value.size() != 9 || static_cast<uint8_t>(value[0]) != kRecordVersion) {
    return Status::Internal("stored list counter is malformed");
  }
  uint64_t next = GetBe(value.substr(1), 8);
  if (next == 0 || next == UINT64_MAX)
    return Status::Internal("stored list counter is out of range");
  return next;
}

// --- rid records ---

std::string RidKey(std::string_view list, std::string_view rid) {
  std::string k;
  RidKeyTo(&k, {}, list, rid);
  return k;
}

std::string RidKey(std::string_view ns, std::string_view list, std::string_view rid) {
  std::string k;
  RidKeyTo(&k, ns, list, rid);
  return k;
}

void RidKeyTo(std::string* out, std::string_view ns, std::string_view list, std::string_view rid) {
  out->clear();
  AppendListPrefix(out, ns, list);
  out->push_back(kRidTag);
  out->append(rid);
}

RidRecord RidRecordFor(const protocol::Request& request, uint64_t created_ms) {
  RidRecord r;
  r.op = request.op;
  r.created_ms = created_ms;
  r.hashed = true;
  r.args_hash = RidArgsHash(request);
  if (request.op != protocol::Op::kAddEntry) r.entry_id = request.entry_id;
  if (request.op != protocol::Op::kDeleteEntry) {
    r.date = request.date;
    r.title = request.title;
  }
  return r;
}

bool SameRequest(const RidRecord& record, const protocol::Request& request) {
  using protocol::Op;
  if (record.op != request.op) return false;
  if (record.hashed) return record.args_hash == RidArgsHash(request);
  switch (request.op) {
    case Op::kAddEntry:
      return record.date == request.date && record.title == request.title;
    case Op::kUpdateEntry:
      return record.entry_id == request.entry_id && record.date == request.date &&
             record.title == request.title;
    case Op::kDeleteEntry:
      return record.entry_id == request.entry_id;
    default:
      return false;
  }
}

namespace {

constexpr uint8_t kRidVersion = 1;
constexpr uint8_t kRidHashedVersion = 2;
constexpr uint8_t kRidHasDate = 1;
constexpr uint8_t kRidHasTitle = 2;

uint8_t RidOpCode(protocol::Op op) {
  switch (op) {
    case protocol::Op::kAddEntry:
      return 1;
    case protocol::Op::kUpdateEntry:
      return 2;
    case protocol::Op::kDeleteEntry:
      return 3;
    default:
      return 0;
  }
}

void PutTitle(std::string* out, std::string_view title) {
  PutBe16(out, static_cast<uint16_t>(title.size()));
  out->append(title);
}

// Reads the fields of a stored value in order; any read past the end
// leaves ok() false.
class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  bool ok() const { return ok_; }
  bool done() const { return in_.empty(); }
  uint64_t Be(int n) {
    if (!ok_ || in_.size() < static_cast<size_t>(n)) {
      ok_ = false;
      return 0;
    }
    uint64_t v = GetBe(in_, n);
    in_.remove_prefix(static_cast<size_t>(n));
    return v;
  }
  std::optional<Date> ReadDate() {
    auto packed = static_cast<uint32_t>(Be(4));
    if (!ok_) return std::nullopt;
    auto d = MakeDate(static_cast<int>(packed / 10000), static_cast<int>(packed / 100 % 100),
                      static_cast<int>(packed % 100));
    if (!d) ok_ = false;
    return d;
  }
  std::string_view ReadTitle() {
    const size_t n = Be(2);
    if (!ok_ || in_.size() < n || n == 0 || n > protocol::kMaxTitleBytes) {
      ok_ = false;
      return {};
    }
    std::string_view t = in_.substr(0, n);
    in_.remove_prefix(n);
    if (!IsValidUtf8(t)) ok_ = false;
    return t;
  }

 private:
  std::string_view in_;
  bool ok_ = true;
};

// The op and arguments of a version 1 value (after its created time).
void PutRidArgs(std::string* out, const RidRecord& r) {
  switch (r.op) {
    case protocol::Op::kAddEntry:
      PutBe32(out, r.date ? r.date->packed : 0);
      PutTitle(out, r.title.value_or(std::string_view()));
      break;
    case protocol::Op::kUpdateEntry: {
      PutBe64(out, r.entry_id);
      const uint8_t has = (r.date ? kRidHasDate : 0) | (r.title ? kRidHasTitle : 0);
      out->push_back(static_cast<char>(has));
      if (r.date) PutBe32(out, r.date->packed);
      if (r.title) PutTitle(out, *r.title);
      break;
    }
    default:  // delete_entry
      PutBe64(out, r.entry_id);
      break;
  }
}

}  // namespace

uint64_t RidArgsHash(const protocol::Request& request) {
  RidRecord r;
  r.op = request.op;
  if (request.op != protocol::Op::kAddEntry) r.entry_id = request.entry_id;
  if (request.op != protocol::Op::kDeleteEntry) {
    r.date = request.date;
    r.title = request.title;
  }
  thread_local std::string buf;
  buf.clear();
  buf.push_back(static_cast<char>(RidOpCode(r.op)));
  PutRidArgs(&buf, r);
  return Murmur3x64_128(buf, 1).h1;
}

void RidValueTo(std::string* out, const RidRecord& r) {
  out->clear();
  if (r.hashed) {
    out->push_back(static_cast<char>(kRidHashedVersion));
    out->push_back(static_cast<char>(RidOpCode(r.op)));
    PutBe64(out, r.args_hash);
  } else {
    out->push_back(static_cast<char>(kRidVersion));
    out->push_back(static_cast<char>(RidOpCode(r.op)));
    PutBe64(out, r.created_ms);
    PutRidArgs(out, r);
  }
  out->push_back(static_cast<char>(r.outcome));
  if (r.outcome == RidOutcome::kAdded) PutBe64(out, r.new_id);
  if (r.outcome == RidOutcome::kUpdated) {
    PutBe32(out, r.result_date.packed);
    PutTitle(out, r.result_title);
  }
}

StatusOr<RidRecord> DecodeRidValue(std::string_view value) {
  auto bad = [](std::string_view why) {
    return Status::Internal("stored rid record is malformed: " + std::string(why));
  };
  Reader in(value);
  const auto version = static_cast<uint8_t>(in.Be(1));
  if (!in.ok()) return bad("too short");
  if (version != kRidVersion && version != kRidHashedVersion) {
    return Status::Internal("stored rid record has unknown version " + std::to_string(version));
  }
  RidRecord r;
  const auto op = static_cast<uint8_t>(in.Be(1));
  if (version == kRidHashedVersion) {
    r.hashed = true;
    r.args_hash = in.Be(8);
    if (op < 1 || op > 3) {
      if (!in.ok()) return bad("too short");
      return bad("unknown op " + std::to_string(op));
    }
    r.op = op == 1 ? protocol::Op::kAddEntry
                   : (op == 2 ? protocol::Op::kUpdateEntry : protocol::Op::kDeleteEntry);
  } else {
    r.created_ms = in.Be(8);
  }
  if (!r.hashed) switch (op) {
      case 1:
        r.op = protocol::Op::kAddEntry;
        r.date = in.ReadDate();
        r.title = in.ReadTitle();
        break;
      case 2: {
        r.op = protocol::Op::kUpdateEntry;
        r.entry_id = in.Be(8);
        const auto has = static_cast<uint8_t>(in.Be(1));
        if (has == 0 || (has & ~(kRidHasDate | kRidHasTitle)) != 0) return bad("arguments");
        if (has & kRidHasDate) r.date = in.ReadDate();
        if (has & kRidHasTitle) r.title = in.ReadTitle();
        break;
      }
      case 3:
        r.op = protocol::Op::kDeleteEntry;
        r.entry_id = in.Be(8);
        break;
      default:
        if (!in.ok()) return bad("too short");
        return bad("unknown op " + std::to_string(op));
    }
  const auto outcome = static_cast<uint8_t>(in.Be(1));
  if (!in.ok()) return bad("arguments");
  r.outcome = static_cast<RidOutcome>(outcome);
  switch (r.outcome) {
    case RidOutcome::kAdded:
      if (r.op != protocol::Op::kAddEntry) return bad("outcome");
      r.new_id = in.Be(8);
      if (in.ok() && (r.new_id == 0 || r.new_id == UINT64_MAX)) return bad("entry id");
      break;
    case RidOutcome::kUpdated: {
      if (r.op != protocol::Op::kUpdateEntry) return bad("outcome");
      auto d = in.ReadDate();
      if (d) r.result_date = *d;
      r.result_title = in.ReadTitle();
      break;
    }
    case RidOutcome::kNotFound:
      if (r.op != protocol::Op::kUpdateEntry) return bad("outcome");
      break;
    case RidOutcome::kDeleted:
    case RidOutcome::kNotDeleted:
      if (r.op != protocol::Op::kDeleteEntry) return bad("outcome");
      break;
    default:
      return bad("outcome");
  }
  if (!in.ok()) return bad("outcome");
  if (!in.done()) return bad("trailing bytes");
  return r;
}

namespace {

uint64_t Rotl64(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

uint64_t Fmix64(uint64_t k) {
  k ^= k >> 33;
  k *= 0xff51afd7ed558ccdULL;
  k ^= k >> 33;
  k *= 0xc4ceb9fe1a85ec53ULL;
  k ^= k >> 33;
  return k;
}

uint64_t GetLe64(const unsigned char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

constexpr std::string_view kRidRecordName = "rids";

}  // namespace

RidHash Murmur3x64_128(std::string_view data, uint32_t seed) {
  const auto* bytes = reinterpret_cast<const unsigned char*>(data.data());
  const size_t len = data.size();
  const size_t nblocks = len / 16;
  uint64_t h1 = seed, h2 = seed;
  constexpr uint64_t c1 = 0x87c37b91114253d5ULL;
  constexpr uint64_t c2 = 0x4cf5ad432745937fULL;
  for (size_t i = 0; i < nblocks; ++i) {
    uint64_t k1 = GetLe64(bytes + i * 16);
    uint64_t k2 = GetLe64(bytes + i * 16 + 8);
    k1 *= c1;
    k1 = Rotl64(k1, 31);
    k1 *= c2;
    h1 ^= k1;
    h1 = Rotl64(h1, 27);
    h1 += h2;
    h1 = h1 * 5 + 0x52dce729;
    k2 *= c2;
    k2 = Rotl64(k2, 33);
    k2 *= c1;
    h2 ^= k2;
    h2 = Rotl64(h2, 31);
    h2 += h1;
    h2 = h2 * 5 + 0x38495ab5;
  }
  const unsigned char* tail = bytes + nblocks * 16;
  const size_t rest = len & 15;
  uint64_t k1 = 0, k2 = 0;
  for (size_t i = rest; i > 8; --i) k2 ^= static_cast<uint64_t>(tail[i - 1]) << (8 * (i - 9));
  if (rest > 8) {
    k2 *= c2;
    k2 = Rotl64(k2, 33);
    k2 *= c1;
    h2 ^= k2;
  }
  for (size_t i = std::min<size_t>(rest, 8); i > 0; --i) {
    k1 ^= static_cast<uint64_t>(tail[i - 1]) << (8 * (i - 1));
  }
  if (rest > 0) {
    k1 *= c1;
    k1 = Rotl64(k1, 31);
    k1 *= c2;
    h1 ^= k1;
  }
  h1 ^= len;
  h2 ^= len;
  h1 += h2;
  h2 += h1;
  h1 = Fmix64(h1);
  h2 = Fmix64(h2);
  h1 += h2;
  h2 += h1;
  return RidHash{h1, h2};
}

RidHash RidKeyHash(std::string_view list, std::string_view rid) {
  char buf[1 + 255 + protocol::kMaxRidBytes];
  const size_t n = std::min<size_t>(list.size(), 255);
  const size_t r = std::min<size_t>(rid.size(), protocol::kMaxRidBytes);
  buf[0] = static_cast<char>(static_cast<uint8_t>(n));
  std::memcpy(buf + 1, list.data(), n);
  std::memcpy(buf + 1 + n, rid.data(), r);
  return Murmur3x64_128(std::string_view(buf, 1 + n + r), 0);
}

uint64_t RidDropAtFor(uint64_t now_ms, uint64_t ttl_ms) {
  if (ttl_ms == 0) ttl_ms = 1;
  const uint64_t bucket = now_ms / ttl_ms + 2;
  if (bucket > UINT64_MAX / ttl_ms) return UINT64_MAX;
  return bucket * ttl_ms;
}

void RidRecordKeyTo(std::string* out, std::string_view ns, uint64_t drop_at, const RidHash& hash) {
  out->clear();
  AppendReservedPrefix(out, ns, kRidRecordName);
  PutBe64(out, drop_at);
  PutBe64(out, hash.h1);
  PutBe64(out, hash.h2);
}

std::string RidRecordKey(std::string_view ns, uint64_t drop_at, const RidHash& hash) {
  std::string k;
  RidRecordKeyTo(&k, ns, drop_at, hash);
  return k;
}

std::optional<ParsedRidRecordKey> ParseRidRecordKey(std::string_view ns, std::string_view key) {
  const size_t head = ns.size() + 1 + kRidRecordName.size();
  if (key.size() != head + 24 || !key.starts_with(ns) || key[ns.size()] != '\x00' ||
      key.substr(ns.size() + 1, kRidRecordName.size()) != kRidRecordName) {
    return std::nullopt;
  }
  ParsedRidRecordKey p;
  p.drop_at = GetBe(key.substr(head), 8);
  p.hash.h1 = GetBe(key.substr(head + 8), 8);
  p.hash.h2 = GetBe(key.substr(head + 16), 8);
  return p;
}

std::string RidRecordRangeBegin(std::string_view ns) {
  std::string k;
  AppendReservedPrefix(&k, ns, kRidRecordName);
  return k;
}

std::string RidRecordRangeEnd(std::string_view ns) {
  std::string k = RidRecordRangeBegin(ns);
  k.back() = static_cast<char>(k.back() + 1);  // "rids" -> "ridt"
  return k;
}

std::string RidRecordSeekKey(std::string_view ns, uint64_t drop_at) {
  std::string k = RidRecordRangeBegin(ns);
  PutBe64(&k, drop_at);
  return k;
}

std::string RidExpiryKey(uint64_t created_ms, std::string_view list, std::string_view rid) {
  std::string k;
  RidExpiryKeyTo(&k, {}, created_ms, list, rid);
  return k;
}

std::string RidExpiryKey(std::string_view ns, uint64_t created_ms, std::string_view list,
                         std::string_view rid) {
  std::string k;
  RidExpiryKeyTo(&k, ns, created_ms, list, rid);
  return k;
}

void RidExpiryKeyTo(std::string* out, std::string_view ns, uint64_t created_ms,
                    std::string_view list, std::string_view rid) {
  out->clear();
  AppendReservedPrefix(out, ns, kRidExpiryName);
  PutBe64(out, created_ms);
  out->push_back(static_cast<char>(static_cast<uint8_t>(list.size())));
  out->append(list);
  out->append(rid);
}

std::optional<ParsedRidExpiryKey> ParseRidExpiryKey(std::string_view ns, std::string_view key) {
  const std::string begin = RidExpiryRangeBegin(ns);
  if (!key.starts_with(begin)) return std::nullopt;
  std::string_view rest = key.substr(begin.size());
  if (rest.size() < 8 + 1) return std::nullopt;
  ParsedRidExpiryKey p;
  p.created_ms = GetBe(rest, 8);
  rest.remove_prefix(8);
  const size_t len = static_cast<uint8_t>(rest[0]);
  if (len == 0 || rest.size() < 1 + len + 1) return std::nullopt;
  p.list = rest.substr(1, len);
  p.rid = rest.substr(1 + len);
  if (p.rid.size() > protocol::kMaxRidBytes) return std::nullopt;
  return p;
}

std::optional<ParsedRidExpiryKey> ParseRidExpiryKey(std::string_view key) {
  return ParseRidExpiryKey({}, key);
}

std::string RidExpiryRangeBegin(std::string_view ns) {
  std::string k;
  AppendReservedPrefix(&k, ns, kRidExpiryName);
  return k;
}

std::string RidExpiryRangeEnd(std::string_view ns) {
  std::string k = RidExpiryRangeBegin(ns);
  k.back() = static_cast<char>(k.back() + 1);  // "rid-expiry" -> "rid-expirz"
  return k;
}

std::string RidExpirySeekKey(std::string_view ns, uint64_t created_ms) {
  std::string k = RidExpiryRangeBegin(ns);
  PutBe64(&k, created_ms);
  return k;
}

std::string RidCountKey(std::string_view ns) {
  std::string k;
  AppendReservedPrefix(&k, ns, kRidCountName);
  return k;
}

std::string EncodeRidCount(uint64_t records) {
  std::string v(1, static_cast<char>(kRecordVersion));
  PutBe64(&v, records);
  return v;
}

StatusOr<uint64_t> DecodeRidCount(std::string_view value) {
  if (value.size() != 9 || static_cast<uint8_t>(value[0]) != kRecordVersion) {
    return Status::Internal("stored rid record count is malformed");
  }
  return GetBe(value.substr(1), 8);
}

std::string CommitKey() { return std::string(1, '\x00'); }

std::string EncodeCommitValue(uint64_t commit) { return EncodeMetaValue(commit); }

StatusOr<uint64_t> DecodeCommitValue(std::string_view value) {
  if (value.size() < 9 || static_cast<uint8_t>(value[0]) != kRecordVersion) {
    return Status::Internal("stored commit counter is malformed");
  }
  if (value.size() > 9) {
    auto journal = DecodeMetaJournal(value);
    if (!journal.ok()) return journal.status();
  }
  return GetBe(value.substr(1), 8);
}

namespace {

constexpr char kMetaJournalTag = 'J';

void PutVarint(std::string* out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

// Reads a varint of at most 10 bytes from *in; false if cut short or too long.
bool GetVarint(std::string_view* in, uint64_t* v) {
  uint64_t result = 0;
  for (int shift = 0; shift <= 63 && !in->empty(); shift += 7) {
    const auto byte = static_cast<uint8_t>(in->front());
    in->remove_prefix(1);
    if (shift == 63 && byte > 1) return false;
    if (shift > 0 && byte == 0) return false;  // overlong: one value, one encoding
    result |= uint64_t{byte & 0x7fu} << shift;
    if ((byte & 0x80) == 0) {
      *v = result;
      return true;
    }
  }
  return false;
}

}  // namespace

void BeginMetaJournal(std::string* commit_value, size_t count) {
  commit_value->push_back(kMetaJournalTag);
  PutVarint(commit_value, count);
}

void AppendJournaledMeta(std::string* commit_value, uint32_t partition, const PartitionMeta& m) {
  PutVarint(commit_value, partition);
  PutVarint(commit_value, m.leader_epoch);
  PutVarint(commit_value, m.applied_epoch);
  PutVarint(commit_value, m.applied_seq);
  commit_value->push_back(m.complete ? '\x01' : '\x00');
}

StatusOr<std::vector<JournaledMeta>> DecodeMetaJournal(std::string_view commit_value) {
  const auto bad = [](const std::string& what) {
    return Status::Internal("stored partition meta journal is malformed: " + what);
  };
  std::vector<JournaledMeta> out;
  if (commit_value.size() < 9 || static_cast<uint8_t>(commit_value[0]) != kRecordVersion) {
    return Status::Internal("stored commit counter is malformed");
  }
  std::string_view in = commit_value.substr(9);
  if (in.empty()) return out;
  if (in.front() != kMetaJournalTag) return bad("no journal tag after the counter");
  in.remove_prefix(1);
  uint64_t count = 0;
  // Each entry takes at least 5 bytes: a count past that can't be right.
  // No journal is written as none, never as zero entries.
  if (!GetVarint(&in, &count) || count == 0 || count > in.size() / 5) return bad("its count");
  out.reserve(count);
  for (uint64_t i = 0; i < count; ++i) {
    uint64_t p = 0;
    JournaledMeta e;
    if (!GetVarint(&in, &p) || p > 0xffff || (i > 0 && p <= out.back().partition) ||
        !GetVarint(&in, &e.meta.leader_epoch) || !GetVarint(&in, &e.meta.applied_epoch) ||
        !GetVarint(&in, &e.meta.applied_seq) || in.empty() ||
        static_cast<uint8_t>(in.front()) > 1) {
      return bad("entry " + std::to_string(i));
    }
    e.partition = static_cast<uint32_t>(p);
    e.meta.complete = in.front() == '\x01';
    in.remove_prefix(1);
    out.push_back(e);
  }
  if (!in.empty()) return bad(std::to_string(in.size()) + " bytes after its last entry");
  return out;
}

namespace {

constexpr std::string_view kCommittedPrefix = "todo-node committed ";
constexpr std::string_view kManifestHeader = "todo-node data directory";

// A plain decimal number (no sign, no spaces) of at most `max`.
std::optional<uint64_t> ParseNumber(std::string_view s, uint64_t max) {
  uint64_t n = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  if (s.empty() || ec != std::errc() || p != s.data() + s.size() || n > max) return std::nullopt;
  return n;
}

Status ParseFormat(std::string_view value, Manifest* m) {
  auto n = ParseNumber(value, 1000000);
  if (!n) return Status::Internal("format must be a number 0-1000000");
  m->format = static_cast<int>(*n);
  return Status::Ok();
}

Status ParseShards(std::string_view value, Manifest* m) {
  auto n = ParseNumber(value, 1024);
  if (!n || *n == 0) return Status::Internal("shards must be a number 1-1024");
  m->shards = static_cast<uint32_t>(*n);
  return Status::Ok();
}

// A name (cluster, node, data id): 1-128 bytes, no space.
Status ParseWord(std::string_view value, std::string* out, const char* what) {
  if (value.empty() || value.size() > 128 || value.find(' ') != std::string_view::npos) {
    return Status::Internal(std::string(what) + " must be 1-128 bytes without spaces");
  }
  *out = std::string(value);
  return Status::Ok();
}
Status ParseCluster(std::string_view v, Manifest* m) {
  return ParseWord(v, &m->cluster, "cluster");
}
Status ParseNode(std::string_view v, Manifest* m) { return ParseWord(v, &m->node, "node"); }
Status ParseDataId(std::string_view v, Manifest* m) { return ParseWord(v, &m->data_id, "data_id"); }
Status ParsePartitions(std::string_view value, Manifest* m) {
  auto n = ParseNumber(value, 65536);
  if (!n || *n == 0) return Status::Internal("partitions must be a number 1-65536");
  m->partitions = static_cast<uint32_t>(*n);
  return Status::Ok();
}

// Every key a MANIFEST may have; each at most once. `replicated`: only in
// (and required by) format 2; the others are required by every format.
constexpr struct {
  std::string_view name;
  Status (*parse)(std::string_view value, Manifest* m);
  bool replicated;
} kManifestKeys[] = {
    {"format", ParseFormat, false},        {"shards", ParseShards, false},
    {"cluster", ParseCluster, true},       {"node", ParseNode, true},
    {"partitions", ParsePartitions, true}, {"data_id", ParseDataId, true},
};

}  // namespace

std::string FormatCommitted(uint64_t commit) {
  return std::string(kCommittedPrefix) + std::to_string(commit) + "\n";
}

StatusOr<uint64_t> ParseCommitted(std::string_view text) {
  if (!text.starts_with(kCommittedPrefix) || !text.ends_with('\n')) {
    return Status::Internal("not a COMMITTED file");
  }
  text.remove_prefix(kCommittedPrefix.size());
  text.remove_suffix(1);
  auto n = ParseNumber(text, UINT64_MAX);
  // Exactly as written: no leading zeros either.
  if (!n || (text.size() > 1 && text[0] == '0')) {
    return Status::Internal("COMMITTED file holds no commit number");
  }
  return *n;
}

std::string FormatManifest(const Manifest& m) {
  std::string text = std::string(kManifestHeader) + "\nformat " + std::to_string(m.format) +
                     "\nshards " + std::to_string(m.shards) + "\n";
  if (m.format == kReplicatedFormatVersion) {
    text += "cluster " + m.cluster + "\nnode " + m.node + "\npartitions " +
            std::to_string(m.partitions) + "\ndata_id " + m.data_id + "\n";
  }
  return text;
}

StatusOr<Manifest> ParseManifest(std::string_view text) {
  constexpr size_t kKeys = std::size(kManifestKeys);
  Manifest m;
  bool seen[kKeys] = {};
  bool header = false;
  size_t pos = 0;
  int line_no = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    std::string_view line = text.substr(pos, nl - pos);
    pos = nl + 1;
    ++line_no;
    const std::string where = "manifest line " + std::to_string(line_no);
    if (!header) {
      if (line != kManifestHeader) return Status::Internal("not a todo-node manifest");
      header = true;
      continue;
    }
    if (line.empty()) continue;
    size_t sp = line.find(' ');
    if (sp == std::string_view::npos) return Status::Internal(where + ": no value");
    std::string_view key = line.substr(0, sp), value = line.substr(sp + 1);
    size_t k = 0;
    while (k < kKeys && kManifestKeys[k].name != key) ++k;
    if (k == kKeys) {
      return Status::Internal(where + ": unknown key " + protocol::QuoteForMessage(key));
    }
    if (seen[k]) return Status::Internal(where + ": '" + std::string(key) + "' given twice");
    seen[k] = true;
    if (Status s = kManifestKeys[k].parse(value, &m); !s.ok()) {
      return Status::Internal(where + ": " + s.message());
    }
  }
  if (!header) return Status::Internal("not a todo-node manifest");
  const bool replicated = m.format == kReplicatedFormatVersion;
  for (size_t k = 0; k < kKeys; ++k) {
    if (!seen[k] && (!kManifestKeys[k].replicated || replicated)) {
      return Status::Internal("manifest has no '" + std::string(kManifestKeys[k].name) + "' line");
    }
    if (seen[k] && kManifestKeys[k].replicated && !replicated) {
      return Status::Internal("manifest of format " + std::to_string(m.format) + " has a '" +
                              std::string(kManifestKeys[k].name) +
                              "' line (only a replicated data dir, format 2, has one)");
    }
  }
  return m;
}

}  // namespace todo::storage
