// todo-corrupt-record: writes a malformed record into a stopped node's data
// dir, for the bad-input stress test (overload_test.py). The node must not
// be running (LevelDB's lock).
//
// Usage: todo-corrupt-record DATA_DIR SHARDS LIST ENTRY_ID|meta [VALUE_HEX]
//   Puts VALUE (default: "\x07garbage", a record version no node reads)
//   under the entry key of ENTRY_ID in LIST (or under its counter key for
//   "meta"), in the shard that owns LIST (ShardOf(LIST, SHARDS)), synced.
// Exit status 0 on success, 1 on an I/O error, 2 on bad arguments.
#include <leveldb/db.h>

#include <charconv>
#include <cstdio>
#include <memory>
#include <string>
#include <string_view>

#include "common/rendezvous.h"
#include "common/storage_format.h"

namespace {

bool ParseHex(std::string_view hex, std::string* out) {
  if (hex.size() % 2 != 0) return false;
  out->clear();
  for (size_t i = 0; i < hex.size(); i += 2) {
    unsigned v = 0;
    auto [p, ec] = std::from_chars(hex.data() + i, hex.data() + i + 2, v, 16);
    if (ec != std::errc() || p != hex.data() + i + 2) return false;
    out->push_back(static_cast<char>(v));
  }
  return true;
}

template <typename T>
bool ParseNumber(std::string_view s, T* out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && p == s.data() + s.size();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5 && argc != 6) {
    std::fprintf(stderr, "usage: %s DATA_DIR SHARDS LIST ENTRY_ID|meta [VALUE_HEX]\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  const std::string list = argv[3];
  const std::string_view which = argv[4];
  uint32_t shards = 0;
  uint64_t id = 0;
  std::string value = "\x07garbage";
  if (!ParseNumber(std::string_view(argv[2]), &shards) || shards == 0) {
    std::fprintf(stderr, "SHARDS must be a positive number\n");
    return 2;
  }
  if (which != "meta" && (!ParseNumber(which, &id) || id == 0)) {
    std::fprintf(stderr, "ENTRY_ID must be a positive number or 'meta'\n");
    return 2;
  }
  if (argc == 6 && !ParseHex(argv[5], &value)) {
    std::fprintf(stderr, "VALUE_HEX must be hex digits, two per byte\n");
    return 2;
  }
  char shard_name[32];
  std::snprintf(shard_name, sizeof shard_name, "shard-%03u", todo::ShardOf(list, shards));
  const std::string shard_dir = dir + "/" + shard_name;
  leveldb::Options options;  // no create_if_missing: the shard must exist
  leveldb::DB* raw = nullptr;
  leveldb::Status s = leveldb::DB::Open(options, shard_dir, &raw);
  if (!s.ok()) {
    std::fprintf(stderr, "cannot open %s: %s\n", shard_dir.c_str(), s.ToString().c_str());
    return 1;
  }
  std::unique_ptr<leveldb::DB> db(raw);
  const std::string key =
      which == "meta" ? todo::storage::MetaKey(list) : todo::storage::EntryKey(list, id);
  leveldb::WriteOptions write;
  write.sync = true;
  s = db->Put(write, key, value);
  if (!s.ok()) {
    std::fprintf(stderr, "cannot write to %s: %s\n", shard_dir.c_str(), s.ToString().c_str());
    return 1;
  }
  std::printf("wrote %zu bytes under list '%s' %s%s in %s\n", value.size(), list.c_str(),
              which == "meta" ? "counter" : "entry ", which == "meta" ? "" : argv[4],
              shard_dir.c_str());
  return 0;
}
