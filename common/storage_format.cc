#include "common/storage_format.h"

#include <charconv>

#include "common/protocol.h"
#include "common/utf8.h"

namespace todo::storage {
namespace {

void PutBe64(std::string* out, uint64_t v) {
  for (int i = 7; i >= 0; --i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint64_t GetBe(std::string_view s, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; ++i) v = (v << 8) | static_cast<uint8_t>(s[i]);
  return v;
}

std::string Prefix(std::string_view ns, std::string_view list, char tag) {
  std::string k;
  k.reserve(ns.size() + list.size() + 10);
  k.append(ns);
  k.push_back(static_cast<char>(static_cast<uint8_t>(list.size())));
  k.append(list);
  k.push_back(tag);
  return k;
}

}  // namespace

std::string MetaKey(std::string_view list) { return Prefix({}, list, '\x00'); }
std::string MetaKey(std::string_view ns, std::string_view list) { return Prefix(ns, list, '\x00'); }

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
  out->append(ns);
  out->push_back(static_cast<char>(static_cast<uint8_t>(list.size())));
  out->append(list);
  out->push_back('\x01');
  PutBe64(out, id);
}

std::string ListRangeBegin(std::string_view list) { return Prefix({}, list, '\x00'); }
std::string ListRangeEnd(std::string_view list) { return Prefix({}, list, '\x02'); }
std::string ListRangeBegin(std::string_view ns, std::string_view list) {
  return Prefix(ns, list, '\x00');
}
std::string ListRangeEnd(std::string_view ns, std::string_view list) {
  return Prefix(ns, list, '\x02');
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

std::string FormatManifest(const Manifest& m) {
  std::string text = "todo-node data directory\nformat " + std::to_string(m.format) + "\nshards " +
                     std::to_string(m.shards) + "\n";
  if (m.format == kReplicatedFormatVersion) {
    text += "cluster " + m.cluster + "\nnode " + m.node + "\npartitions " +
            std::to_string(m.partitions) + "\ndata_id " + m.data_id + "\n";
  }
  return text;
}

StatusOr<Manifest> ParseManifest(std::string_view text) {
  Manifest m;
  bool header = false, format = false, shards = false, partitions = false;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    std::string_view line = text.substr(pos, nl - pos);
    pos = nl + 1;
    if (!header) {
      if (line != "todo-node data directory") return Status::Internal("not a todo-node manifest");
      header = true;
      continue;
    }
    if (line.empty()) continue;
    size_t sp = line.find(' ');
    if (sp == std::string_view::npos) return Status::Internal("malformed manifest line");
    std::string_view key = line.substr(0, sp), val = line.substr(sp + 1);
    if (key == "cluster" || key == "node" || key == "data_id") {
      if (val.empty() || val.size() > 128 || val.find(' ') != std::string_view::npos) {
        return Status::Internal("manifest value of '" + std::string(key) + "' is malformed");
      }
      (key == "cluster" ? m.cluster : key == "node" ? m.node : m.data_id) = std::string(val);
      continue;
    }
    uint64_t n = 0;
    auto [p, ec] = std::from_chars(val.data(), val.data() + val.size(), n);
    if (ec != std::errc() || p != val.data() + val.size()) {
      return Status::Internal("manifest value of '" + std::string(key) + "' is not a number");
    }
    if (key == "format") {
      if (n > 1000000) return Status::Internal("manifest format out of range");
      m.format = static_cast<int>(n);
      format = true;
    } else if (key == "shards") {
      if (n == 0 || n > 1024) return Status::Internal("manifest shard count out of range");
      m.shards = static_cast<uint32_t>(n);
      shards = true;
    } else if (key == "partitions") {
      if (n == 0 || n > 65536) return Status::Internal("manifest partition count out of range");
      m.partitions = static_cast<uint32_t>(n);
      partitions = true;
    }
  }
  if (!header || !format || !shards) return Status::Internal("manifest is incomplete");
  if (m.format == kReplicatedFormatVersion &&
      (!partitions || m.cluster.empty() || m.node.empty() || m.data_id.empty())) {
    return Status::Internal("manifest of a replicated data dir is incomplete");
  }
  return m;
}

}  // namespace todo::storage
