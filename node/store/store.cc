#include "node/store/store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <shared_mutex>
#include <sstream>

#include "common/cluster/map.h"
#include "common/rendezvous.h"
#include "common/storage_format.h"
#include "node/replication/shard_replication.h"
#include "node/store/pread_env.h"
#include "node/store/rid_filter.h"
#include "node/store/rid_sweeper.h"

namespace todo::store {
namespace fs = std::filesystem;

namespace {

Status ReadFile(const fs::path& p, std::string* out) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return Status::Internal("cannot read " + p.string());
  std::stringstream ss;
  ss << in.rdbuf();
  *out = ss.str();
  return Status::Ok();
}

// Writes the file and renames it into place, syncing both, so a crash leaves
// either no manifest or a whole one.
Status WriteFileAtomically(const fs::path& p, const std::string& data) {
  fs::path tmp = p;
  tmp += ".tmp";
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Status::Internal("cannot create " + tmp.string() + ": " + strerror(errno));
  bool ok =
      write(fd, data.data(), data.size()) == static_cast<ssize_t>(data.size()) && fsync(fd) == 0;
  close(fd);
  if (!ok || rename(tmp.c_str(), p.c_str()) != 0) {
    return Status::Internal("cannot write " + p.string() + ": " + strerror(errno));
  }
  int dfd = open(p.parent_path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    fsync(dfd);
    close(dfd);
  }
  return Status::Ok();
}

// A new data dir's id: 16 random bytes, hex.
StatusOr<std::string> NewDataId() {
  unsigned char bytes[16];
  int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
  bool ok = fd >= 0 && read(fd, bytes, sizeof bytes) == static_cast<ssize_t>(sizeof bytes);
  if (fd >= 0) close(fd);
  if (!ok) return Status::Internal(std::string("cannot read /dev/urandom: ") + strerror(errno));
  static const char kHex[] = "0123456789abcdef";
  std::string id;
  for (unsigned char b : bytes) {
    id.push_back(kHex[b >> 4]);
    id.push_back(kHex[b & 15]);
  }
  return id;
}

std::string ShardDirName(uint32_t i) {
  char buf[32];
  snprintf(buf, sizeof buf, "shard-%03u", i);
  return buf;
}

}  // namespace

StatusOr<std::unique_ptr<Store>> Store::Open(const StoreOptions& options,
                                             node::ReplyQueue* replies) {
  std::unique_ptr<Store> store(new Store());
  store->options_ = options;
  if (!store->options_.now_ms) {
    store->options_.now_ms = [] {
      return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                       std::chrono::system_clock::now().time_since_epoch())
                                       .count());
    };
  }
  const fs::path dir(options.dir);
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Status::Internal("cannot create data dir " + dir.string() + ": " + ec.message());

  fs::path lock_path = dir / "LOCK";
  store->lock_fd_ = open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (store->lock_fd_ < 0) {
    return Status::Internal("cannot open lock file " + lock_path.string() + ": " + strerror(errno));
  }
  if (flock(store->lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    return Status::Internal("data dir " + dir.string() + " is locked (" + lock_path.string() +
                            "): another todo-node is using it");
  }

  fs::path manifest_path = dir / "MANIFEST";
  if (fs::exists(manifest_path)) {
    std::string text;
    if (Status s = ReadFile(manifest_path, &text); !s.ok()) return s;
    auto m = storage::ParseManifest(text);
    if (!m.ok()) {
      return Status::Internal("data dir " + dir.string() +
                              ": bad MANIFEST: " + m.status().message());
    }
    const int want_format =
        options.replicated ? storage::kReplicatedFormatVersion : storage::kFormatVersion;
    if (m->format == storage::kFormatVersion && options.replicated) {
      return Status::Internal(
          "data dir " + dir.string() +
          " was written by a node in static mode (format 1: one copy of each list, keys "
          "without partitions); a replicated node (--etcd) can't use it. Start this node on a "
          "new data dir (the cluster gives it the partitions it needs), or keep this dir for a "
          "node in static mode");
    }
    if (m->format == storage::kReplicatedFormatVersion && !options.replicated) {
      return Status::Internal("data dir " + dir.string() + " belongs to node '" + m->node +
                              "' of replicated cluster '" + m->cluster +
                              "' (format 2); start it with --etcd, not in static mode");
    }
    if (m->format != want_format) {
      return Status::Internal("data dir " + dir.string() + " has format " +
                              std::to_string(m->format) + ", this node reads format " +
                              std::to_string(want_format));
    }
    if (options.replicated) {
      const ReplicatedLayout& r = *options.replicated;
      if (m->cluster != r.cluster || m->node != r.node) {
        return Status::Internal("data dir " + dir.string() + " belongs to node '" + m->node +
                                "' of cluster '" + m->cluster + "', not to '" + r.node + "' of '" +
                                r.cluster + "'");
      }
      if (m->partitions != r.partitions) {
        return Status::Internal("data dir " + dir.string() + " was made for " +
                                std::to_string(m->partitions) + " partitions, the cluster has " +
                                std::to_string(r.partitions));
      }
      store->data_id_ = m->data_id;
    }
    if (store->options_.shards == 0) store->options_.shards = m->shards;
    if (m->shards != store->options_.shards) {
      return Status::Internal("data dir " + dir.string() + " has " + std::to_string(m->shards) +
                              " shards but --shards is " + std::to_string(store->options_.shards));
    }
  } else {
    for (const auto& e : fs::directory_iterator(dir)) {
      if (e.path().filename().string().rfind("shard-", 0) == 0) {
        return Status::Internal("data dir " + dir.string() +
                                " has shard dirs but no MANIFEST; refusing to guess");
      }
    }
    if (store->options_.shards == 0) store->options_.shards = options.new_dir_shards;
    if (store->options_.shards == 0) return Status::BadRequest("a store needs at least one shard");
    storage::Manifest m;
    m.shards = store->options_.shards;
    if (options.replicated) {
      auto id = NewDataId();
      if (!id.ok()) return id.status();
      m.format = storage::kReplicatedFormatVersion;
      m.cluster = options.replicated->cluster;
      m.node = options.replicated->node;
      m.partitions = options.replicated->partitions;
      m.data_id = *id;
      store->data_id_ = *id;
    }
    if (Status s = WriteFileAtomically(manifest_path, storage::FormatManifest(m)); !s.ok()) {
      return s;
    }
  }
  if (options.replicated) store->partitions_ = options.replicated->partitions;

  store->cache_.reset(leveldb::NewLRUCache(options.block_cache_bytes * store->options_.shards));
  if (options.bloom_bits_per_key > 0) {
    store->filter_.reset(leveldb::NewBloomFilterPolicy(options.bloom_bits_per_key));
  }
  // The files are on the real disk unless a test injects its own Env (an
  // in-memory one, or one that fails on purpose): that one is used as is.
  if (options.env == nullptr) store->env_ = std::make_unique<PreadEnv>(leveldb::Env::Default());
  for (uint32_t i = 0; i < store->options_.shards; ++i) {
    auto shard = std::make_unique<ShardDb>();
    shard->path = (dir / ShardDirName(i)).string();
    leveldb::Options& lo = shard->options;
    lo.create_if_missing = true;
    lo.paranoid_checks = true;
    lo.block_cache = store->cache_.get();
    lo.write_buffer_size = options.write_buffer_bytes;
    lo.max_open_files = 256;
    // Snappy cost ~1.5% of the node's CPU in compactions (compress) and
    // reads (decompress) and saves little on short titles: tables are
    // stored as is.
    lo.compression = leveldb::kNoCompression;
    // Tables written from now on carry a bloom filter (older ones don't, and
    // are read as before): a lookup of a rid with no record, which every
    // first write with a rid makes, skips the tables that can't hold it.
    lo.filter_policy = store->filter_.get();
    lo.env = options.env != nullptr ? options.env : store->env_.get();
    leveldb::DB* db = nullptr;
    leveldb::Status s = leveldb::DB::Open(lo, shard->path, &db);
    if (!s.ok()) return Status::Internal("cannot open shard " + shard->path + ": " + s.ToString());
    shard->db.reset(db);
    store->shards_.push_back(std::move(shard));
  }
  if (options.repl != nullptr) options.repl->shards = store->options_.shards;
  for (uint32_t i = 0; i < store->options_.shards; ++i) {
    store->writers_.push_back(std::make_unique<ShardWriter>(
        store->shards_[i].get(), i, options.sync, options.writer_queue, options.max_batch, replies,
        options.replicated ? options.repl : nullptr));
  }
  RidSweeper::Options ro;
  ro.ttl = options.rid_ttl;
  ro.every = options.rid_sweep_every;
  ro.max_per_pass = options.rid_sweep_max;
  ro.now_ms = store->options_.now_ms;
  std::vector<ShardDb*> dbs;
  std::vector<ShardWriter*> writers;
  for (uint32_t i = 0; i < store->options_.shards; ++i) {
    dbs.push_back(store->shards_[i].get());
    writers.push_back(store->writers_[i].get());
  }
  store->rid_filter_ = std::make_unique<RidFilter>(options.rid_filter_bytes);
  // Static mode: the sweeper fills the filter from the disk and marks it
  // complete. In the replicated mode records also arrive from primaries
  // and snapshots, which don't tell the filter: it stays incomplete, and
  // every first write looks up the disk.
  ro.filter = store->replicated() ? nullptr : store->rid_filter_.get();
  store->sweeper_ = std::make_unique<RidSweeper>(std::move(dbs), std::move(writers), ro);
  // Static mode only, for now: in the replicated mode a partition's
  // records must be dropped by its primary, through the replicated write
  // path (with a partition and a term), so its backups drop them too.
  if (!store->replicated()) store->sweeper_->Start();
  return store;
}

Store::~Store() {
  Stop();
  sweeper_.reset();
  writers_.clear();
  shards_.clear();
  if (lock_fd_ >= 0) close(lock_fd_);  // releases the flock
}

void Store::Stop() {
  if (sweeper_) sweeper_->Stop();  // queues nothing more
  for (auto& w : writers_) w->Stop();
}

uint64_t Store::NowMs() const { return options_.now_ms(); }

size_t Store::SweepRids(uint64_t now_ms) { return sweeper_->Pass(now_ms); }

bool Store::SweepInFlight() const { return sweeper_->InFlight(); }

void Store::NoteRid(uint64_t hash) { rid_filter_->Insert(hash); }

bool Store::RidMayExist(uint64_t hash) const { return rid_filter_->MayContain(hash); }

StatusOr<bool> Store::ReadRid(std::string_view list, std::string_view rid,
                              std::string* value) const {
  return ReadRid(list, rid, RidFilter::Hash(KeyNs(list), list, rid), value);
}

StatusOr<bool> Store::ReadRid(std::string_view list, std::string_view rid, uint64_t hash,
                              std::string* value) const {
  const uint32_t index = ShardFor(list);
  const ShardDb& shard = *shards_[index];
  std::shared_lock<std::shared_mutex> lock(shard.mu);  // as in Load
  if (!shard.db) {
    return Status::Internal("storage failure: shard " + std::to_string(index) +
                            " unavailable: " + shard.down_reason + "; the request was not applied");
  }
  if (!rid_filter_->MayContain(hash)) return false;
  thread_local std::string key;
  storage::RidKeyTo(&key, KeyNs(list), list, rid);
  leveldb::Status s = shard.db->Get(leveldb::ReadOptions(), key, value);
  if (s.ok()) return true;
  if (s.IsNotFound()) return false;
  return Status::Internal("list '" + std::string(list) + "': rid record read failed: " +
                          s.ToString() + "; the request was not applied");
}

uint32_t Store::ShardFor(std::string_view list) const {
  return replicated() ? ShardOfPartition(PartitionFor(list)) : ShardOf(list, shards());
}

uint32_t Store::PartitionFor(std::string_view list) const {
  return replicated() ? cluster::PartitionOf(list, partitions_) : 0;
}

std::string Store::KeyNs(std::string_view list) const {
  return replicated() ? storage::PartitionPrefix(PartitionFor(list)) : std::string();
}

StatusOr<storage::PartitionMeta> Store::ReadPartitionMeta(uint32_t p) const {
  const ShardDb& shard = *shards_[ShardOfPartition(p)];
  std::shared_lock<std::shared_mutex> lock(shard.mu);
  if (!shard.db) return Status::Internal("shard of partition " + std::to_string(p) + " is down");
  std::string value;
  leveldb::Status s = shard.db->Get(leveldb::ReadOptions(), storage::PartitionPrefix(p), &value);
  if (s.IsNotFound()) return storage::PartitionMeta{};
  if (!s.ok()) {
    return Status::Internal("partition " + std::to_string(p) + " meta: " + s.ToString());
  }
  return storage::DecodePartitionMeta(value);
}

StatusOr<uint64_t> Store::LoadNextId(std::string_view list) const {
  const uint32_t index = ShardFor(list);
  const ShardDb& shard = *shards_[index];
  std::shared_lock<std::shared_mutex> lock(shard.mu);  // as in Load
  if (!shard.db) {
    return Status::Internal("storage failure: shard " + std::to_string(index) +
                            " unavailable: " + shard.down_reason + "; the request was not applied");
  }
  std::unique_ptr<leveldb::Iterator> it(shard.db->NewIterator(leveldb::ReadOptions()));
  const std::string ns = KeyNs(list);
  const std::string begin = storage::ListRangeBegin(ns, list);  // the counter's key
  const std::string end = storage::ListRangeEnd(ns, list);
  uint64_t next_id = 1;
  it->Seek(begin);
  if (it->Valid() && it->key() == leveldb::Slice(begin)) {
    auto n = storage::DecodeMetaValue(std::string_view(it->value().data(), it->value().size()));
    if (!n.ok()) {
      return Status::Internal("list '" + std::string(list) + "': " + n.status().message());
    }
    next_id = *n;
  }
  // The list's last key: just before the end of its range.
  it->Seek(end);
  if (it->Valid()) {
    it->Prev();
  } else {
    it->SeekToLast();
  }
  if (it->Valid() && it->key().compare(begin) > 0 && it->key().compare(end) < 0) {
    std::string_view key(it->key().data() + ns.size(), it->key().size() - ns.size());
    auto parsed = storage::ParseKey(key);
    if (!parsed || parsed->list != list || parsed->is_meta) {
      return Status::Internal("list '" + std::string(list) + "': malformed key in store");
    }
    next_id = std::max(next_id, parsed->id + 1);  // ParseKey refuses id 2^64-1
  }
  if (!it->status().ok()) {
    return Status::Internal("list '" + std::string(list) +
                            "': read failed: " + it->status().ToString());
  }
  return next_id;
}

StatusOr<TodoList> Store::Load(std::string_view list) const {
  const uint32_t index = ShardFor(list);
  const ShardDb& shard = *shards_[index];
  // Shared: only the shard's writer takes it exclusively, to swap the database.
  std::shared_lock<std::shared_mutex> lock(shard.mu);
  if (!shard.db) {
    return Status::Internal("storage failure: shard " + std::to_string(index) +
                            " unavailable: " + shard.down_reason + "; the request was not applied");
  }
  std::unique_ptr<leveldb::Iterator> it(shard.db->NewIterator(leveldb::ReadOptions()));
  const std::string ns = KeyNs(list);
  const std::string begin = storage::ListRangeBegin(ns, list);
  const std::string end = storage::ListRangeEnd(ns, list);
  std::vector<Entry> entries;
  uint64_t next_id = 1;
  for (it->Seek(begin); it->Valid() && it->key().compare(end) < 0; it->Next()) {
    std::string_view key(it->key().data() + ns.size(), it->key().size() - ns.size());
    std::string_view value(it->value().data(), it->value().size());
    auto parsed = storage::ParseKey(key);
    if (!parsed || parsed->list != list) {
      return Status::Internal("list '" + std::string(list) + "': malformed key in store");
    }
    if (parsed->is_meta) {
      auto n = storage::DecodeMetaValue(value);
      if (!n.ok())
        return Status::Internal("list '" + std::string(list) + "': " + n.status().message());
      next_id = *n;
    } else {
      auto v = storage::DecodeEntryValue(value);
      if (!v.ok()) {
        return Status::Internal("list '" + std::string(list) + "' entry " +
                                std::to_string(parsed->id) + ": " + v.status().message());
      }
      entries.push_back(Entry{parsed->id, v->date, std::string(v->title)});
    }
  }
  if (!it->status().ok()) {
    return Status::Internal("list '" + std::string(list) +
                            "': read failed: " + it->status().ToString());
  }
  return TodoList::Restore(std::move(entries), next_id);
}

}  // namespace todo::store
