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
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/date.h"
#include "common/status.h"

namespace todo::storage {

constexpr uint8_t kRecordVersion = 1;
constexpr int kFormatVersion = 1;

std::string MetaKey(std::string_view list);
std::string EntryKey(std::string_view list, uint64_t id);
// The same, written into *out (cleared first; its capacity is reused).
void EntryKeyTo(std::string* out, std::string_view list, uint64_t id);
// [begin, end) covering every key of the list and nothing else.
std::string ListRangeBegin(std::string_view list);
std::string ListRangeEnd(std::string_view list);

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

// The data dir's MANIFEST file: which format and how many shards.
struct Manifest {
  int format = kFormatVersion;
  uint32_t shards = 0;
};
std::string FormatManifest(const Manifest& m);
StatusOr<Manifest> ParseManifest(std::string_view text);

}  // namespace todo::storage
