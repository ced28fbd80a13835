#include "node/store/store.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>
#include <shared_mutex>
#include <sstream>

#include "common/cluster/map.h"
#include "common/rendezvous.h"
#include "common/storage_format.h"
#include "node/replication/shard_replication.h"
#include "node/store/log_env.h"
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

// The names in `dir` that start with "shard-" (through `env`: a MemEnv lists
// "shard-000/CURRENT", so only what comes before a '/' counts).
StatusOr<std::set<std::string>> ShardEntries(leveldb::Env* env, const std::string& dir) {
  std::vector<std::string> children;
  if (leveldb::Status s = env->GetChildren(dir, &children); !s.ok()) {
    return Status::Internal("cannot list data dir " + dir + ": " + s.ToString());
  }
  std::set<std::string> shards;
  for (const std::string& c : children) {
    std::string top = c.substr(0, c.find('/'));
    if (top.starts_with("shard-")) shards.insert(top);
  }
  return shards;
}

// The shard dirs present must be exactly shard-000 .. shard-(n-1): a missing
// one is a shard lost (opening it empty would reuse its ids), an extra one a
// MANIFEST that no longer tells the truth.
Status CheckShardDirs(leveldb::Env* env, const std::string& dir, uint32_t n) {
  auto present = ShardEntries(env, dir);
  if (!present.ok()) return present.status();
  for (uint32_t i = 0; i < n; ++i) {
    if (!present->contains(ShardDirName(i))) {
      return Status::Internal("data dir " + dir + ": shard dir " + dir + "/" + ShardDirName(i) +
                              " is missing (the MANIFEST names " + std::to_string(n) +
                              " shards); refusing to start rather than open it empty");
    }
    present->erase(ShardDirName(i));
  }
  if (!present->empty()) {
    return Status::Internal("data dir " + dir + " has " + dir + "/" + *present->begin() +
                            ", which its MANIFEST (" + std::to_string(n) +
                            " shards) does not name; refusing to guess which is right");
  }
  return Status::Ok();
}

// The shard's directory must hold a database: LevelDB's CURRENT names its
// descriptor. Without it LevelDB would create an empty database and delete
// the tables it no longer knows.
Status CheckShardCurrent(leveldb::Env* env, const std::string& path) {
  std::vector<std::string> children;
  leveldb::Status s = env->GetChildren(path, &children);
  if (!s.ok()) return Status::Internal("cannot list shard dir " + path + ": " + s.ToString());
  if (std::find(children.begin(), children.end(), "CURRENT") == children.end()) {
    return Status::Internal("shard dir " + path + " has no CURRENT file (LevelDB's pointer to " +
                            "its tables): the shard is damaged; refusing to start rather than " +
                            "open it empty");
  }
  return Status::Ok();
}

// The number the shard's writer counts its commits from: the shard's commit
// counter, after checking it against the COMMITTED file (if there is one):
// a counter below it means the log lost acknowledged writes, which refuses
// the open. A counter in a damaged block can't be checked (logged; the
// damaged block answers `internal` to the lists it holds): counting goes on
// from the COMMITTED file's number.
StatusOr<uint64_t> CheckCommits(leveldb::Env* env, leveldb::DB* db, const std::string& path) {
  const std::string committed_path = path + "/" + storage::kCommittedFile;
  std::optional<uint64_t> acked;
  std::string text;
  leveldb::Status s = leveldb::ReadFileToString(env, committed_path, &text);
  if (s.ok()) {
    auto parsed = storage::ParseCommitted(text);
    if (parsed.ok()) {
      acked = *parsed;
    } else {
      // Written by rename, so never torn: damage, but to the check only.
      spdlog::error("{}: {}; the check for lost writes is skipped for this shard", committed_path,
                    parsed.status().message());
    }
  } else if (env->FileExists(committed_path)) {
    return Status::Internal("cannot read " + committed_path + ": " + s.ToString());
  }  // else: a shard never synced, or older than the file

  leveldb::ReadOptions ro;
  ro.verify_checksums = true;
  std::string value;
  s = db->Get(ro, storage::CommitKey(), &value);
  StatusOr<uint64_t> commit = uint64_t{0};
  if (s.ok()) {
    commit = storage::DecodeCommitValue(value);
  } else if (s.IsCorruption()) {
    commit = Status::Internal(s.ToString());
  } else if (!s.IsNotFound()) {
    return Status::Internal("shard " + path + ": cannot read its commit counter: " + s.ToString());
  }
  if (!commit.ok()) {
    spdlog::error(
        "shard {}: its commit counter is damaged ({}): whether its log lost acknowledged writes "
        "can't be checked; counting on from #{}",
        path, commit.status().message(), acked.value_or(0));
    return acked.value_or(0);
  }
  if (acked && *commit < *acked) {
    return Status::Internal(
        "shard " + path + " lost acknowledged writes: it holds group commits up to #" +
        std::to_string(*commit) + " but #" + std::to_string(*acked) + " was acknowledged (" +
        committed_path + "): a .log file was truncated or deleted. Refusing to start: restore " +
        "the shard from a backup, or accept the loss by deleting " + committed_path +
        " (the lost entries' ids may then be given out again)");
  }
  return *commit;
}

// What LevelDB's own log (the shard's LOG file, started afresh by each
// open) says about the records it refused: their file and offset, which its
// Status leaves out ("Corruption: checksum mismatch").
std::string OpenFailureDetail(leveldb::Env* env, const std::string& path) {
  std::string text;
  if (!leveldb::ReadFileToString(env, path + "/LOG", &text).ok()) return "";
  std::string detail;
  int lines = 0;
  size_t pos = 0;
  while (pos < text.size() && lines < 3) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    std::string_view line(text.data() + pos, nl - pos);
    pos = nl + 1;
    const size_t at = line.find(": dropping ");
    if (at == std::string_view::npos) continue;
    // "<date> <thread> /path/000003.log: dropping 32 bytes; Corruption: ..."
    const size_t file = line.rfind(' ', at);
    detail += (detail.empty() ? "" : "; ") +
              std::string(line.substr(file == std::string_view::npos ? 0 : file + 1));
    ++lines;
  }
  return detail.empty() ? "" : " (LevelDB: " + detail + ")";
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
  // The files are on the real disk unless a test injects its own Env (an
  // in-memory one, or one that fails on purpose): that one is used as is.
  if (options.env == nullptr) {
    store->env_ = std::make_unique<LogEnv>(
        leveldb::Env::Default(),
        options.preallocate_logs ? options.write_buffer_bytes + (size_t{1} << 20) : 0);
  }
  leveldb::Env* env = options.env != nullptr ? options.env : store->env_.get();
  store->table_check_ = std::make_unique<TableCheck>(env);

  fs::path manifest_path = dir / "MANIFEST";
  const bool existing = fs::exists(manifest_path);
  if (existing) {
    std::string text;
    if (Status s = ReadFile(manifest_path, &text); !s.ok()) return s;
    auto m = storage::ParseManifest(text);
    if (!m.ok()) {
      return Status::Internal("data dir " + dir.string() + ": bad MANIFEST (" +
                              manifest_path.string() + "): " + m.status().message());
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
    if (Status s = CheckShardDirs(env, dir.string(), m->shards); !s.ok()) return s;
  } else {
    auto present = ShardEntries(env, dir.string());
    if (!present.ok()) return present.status();
    if (!present->empty()) {
      return Status::Internal("data dir " + dir.string() + " has shard dirs (" + *present->begin() +
                              ") but no MANIFEST; refusing to guess (if the node's very first "
                              "start was interrupted, remove the dir)");
    }
    if (store->options_.shards == 0) store->options_.shards = options.new_dir_shards;
    if (store->options_.shards == 0) return Status::BadRequest("a store needs at least one shard");
    if (options.replicated) {
      auto id = NewDataId();
      if (!id.ok()) return id.status();
      store->data_id_ = *id;
    }
  }
  if (options.replicated) store->partitions_ = options.replicated->partitions;

  store->cache_.reset(leveldb::NewLRUCache(options.block_cache_bytes * store->options_.shards));
  if (options.bloom_bits_per_key > 0) {
    store->filter_.reset(leveldb::NewBloomFilterPolicy(options.bloom_bits_per_key));
  }
  store->read_failures_ = std::make_unique<std::atomic<uint64_t>[]>(store->options_.shards);
  for (uint32_t i = 0; i < store->options_.shards; ++i) {
    auto shard = std::make_unique<ShardDb>();
    shard->path = (dir / ShardDirName(i)).string();
    shard->table_check = store->table_check_.get();
    leveldb::Options& lo = shard->options;
    // Only a new dir's shards are created, each from nothing; an existing
    // dir's shards must all be there (an empty one would reuse ids).
    lo.create_if_missing = !existing;
    lo.error_if_exists = !existing;
    // A log record that fails its checksum, or a table the descriptor names
    // that is missing, fails the open (see store.h).
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
    lo.env = env;
    if (existing) {
      if (Status s = CheckShardCurrent(env, shard->path); !s.ok()) return s;
    }
    leveldb::DB* db = nullptr;
    leveldb::Status s = leveldb::DB::Open(lo, shard->path, &db);
    if (!s.ok()) {
      return Status::Internal("cannot open shard " + std::to_string(i) + " (" + shard->path +
                              "): " + s.ToString() + OpenFailureDetail(env, shard->path));
    }
    shard->db.reset(db);
    // Reopens after a storage failure never create anything either.
    lo.create_if_missing = false;
    lo.error_if_exists = false;
    auto commit = CheckCommits(env, db, shard->path);
    if (!commit.ok()) return commit.status();
    shard->commit = *commit;
    store->shards_.push_back(std::move(shard));
  }
  if (!existing) {
    // Last: the MANIFEST says the dir is set up, so it is written only once
    // every shard exists.
    storage::Manifest m;
    m.shards = store->options_.shards;
    if (options.replicated) {
      m.format = storage::kReplicatedFormatVersion;
      m.cluster = options.replicated->cluster;
      m.node = options.replicated->node;
      m.partitions = options.replicated->partitions;
      m.data_id = store->data_id_;
    }
    if (Status s = WriteFileAtomically(manifest_path, storage::FormatManifest(m)); !s.ok()) {
      return s;
    }
  }
  if (options.repl != nullptr) options.repl->shards = store->options_.shards;
  store->rid_filter_ = std::make_unique<RidFilter>(options.rid_filter_bytes);
  // Replicated mode: the backups insert the records they receive.
  if (options.repl != nullptr) options.repl->rid_filter = store->rid_filter_.get();
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
  store->rid_ttl_ms_ = std::max<uint64_t>(1, static_cast<uint64_t>(options.rid_ttl.count()));
  store->FindRidBuckets();
  ro.legacy = &store->legacy_rids_;
  // The sweeper fills the filter from the disk and marks it complete. In
  // the replicated mode records also arrive from primaries and snapshots:
  // the shard writers insert those as they write them (ReplContext::
  // rid_filter), so the filter holds them too. (A replicated store without
  // a partition table, in tests, has no sweeper thread: its filter stays
  // incomplete, and every lookup reads the disk.)
  ro.filter = store->rid_filter_.get();
  if (store->replicated() && options.repl != nullptr && options.repl->table != nullptr) {
    // A partition's records are dropped by its primary only, through the
    // replicated write path (with the partition and the term it serves it
    // under), so its backups drop them too (rid_sweeper.h).
    ro.partitions = store->partitions_;
    const node::PartitionTable* table = options.repl->table;
    ro.term_of = [table](uint32_t p) -> uint64_t {
      if (p >= table->partitions()) return 0;
      const uint64_t term = table->serving(p);
      return term != 0 && table->lease_valid(std::chrono::steady_clock::now()) ? term : 0;
    };
  }
  store->sweeper_ = std::make_unique<RidSweeper>(std::move(dbs), std::move(writers), ro);
  // A replicated store without a partition table (tests of the store
  // alone) has no primary to drop its records: no sweeper thread.
  if (!store->replicated() || ro.term_of) store->sweeper_->Start();
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

void Store::FindRidBuckets() {
  // Static mode: the buckets present, one seek each (a handful: normally
  // the two or three of the current TTL's grid), and whether the version 1
  // index holds anything. Replicated mode: a primary running an older
  // version may still write version 1 records, so they are always looked
  // up, and its buckets are the grid's (the TTL is the cluster's).
  if (replicated()) {
    legacy_rids_.store(true, std::memory_order_relaxed);
    return;
  }
  const uint64_t now = NowMs();
  const uint64_t grid = storage::RidDropAtFor(now, rid_ttl_ms_);
  std::set<uint64_t> extra;
  bool legacy = false;
  for (const auto& shard : shards_) {
    std::unique_ptr<leveldb::Iterator> it(shard->db->NewIterator(VerifiedReads()));
    const std::string end = storage::RidRecordRangeEnd();
    for (it->Seek(storage::RidRecordRangeBegin()); it->Valid() && it->key().compare(end) < 0;) {
      auto parsed =
          storage::ParseRidRecordKey({}, std::string_view(it->key().data(), it->key().size()));
      if (!parsed || parsed->drop_at == UINT64_MAX) break;
      const uint64_t d = parsed->drop_at;
      if (d > now && d != grid && d != grid - rid_ttl_ms_ && d != grid + rid_ttl_ms_) {
        extra.insert(d);
      }
      it->Seek(storage::RidRecordSeekKey({}, d + 1));
    }
    it->Seek(storage::RidExpiryRangeBegin());
    if (it->Valid() && it->key().compare(storage::RidExpiryRangeEnd()) < 0) legacy = true;
  }
  rid_extra_buckets_.assign(extra.rbegin(), extra.rend());
  if (rid_extra_buckets_.size() > 16) {
    // Only if the clock or the TTL changed many times: keep the newest.
    spdlog::warn("rid records in {} buckets off the TTL's grid; looking up the newest 16",
                 rid_extra_buckets_.size());
    rid_extra_buckets_.resize(16);
  }
  legacy_rids_.store(legacy, std::memory_order_relaxed);
  if (legacy) spdlog::info("rid records of the version 1 layout on disk: read until they expire");
}

void Store::RidRecordKeyTo(std::string* out, std::string_view ns, std::string_view list,
                           std::string_view rid, uint64_t now_ms) const {
  storage::RidRecordKeyTo(out, ns, storage::RidDropAtFor(now_ms, rid_ttl_ms_),
                          storage::RidKeyHash(list, rid));
}

void Store::RidRecordKeyTo(std::string* out, std::string_view ns, const storage::RidHash& hash,
                           uint64_t now_ms) const {
  storage::RidRecordKeyTo(out, ns, storage::RidDropAtFor(now_ms, rid_ttl_ms_), hash);
}

leveldb::Status Store::GetRid(leveldb::DB* db, std::string_view ns, std::string_view list,
                              std::string_view rid, uint64_t now_ms, std::string* value) const {
  // The buckets not yet due, newest first: a pair applied again after its
  // record aged past the TTL has its newest record found first.
  const uint64_t grid = storage::RidDropAtFor(now_ms, rid_ttl_ms_);
  uint64_t buckets[3 + 16];
  size_t n = 0;
  if (grid != UINT64_MAX) buckets[n++] = grid + rid_ttl_ms_;
  buckets[n++] = grid;
  buckets[n++] = grid - rid_ttl_ms_;
  for (uint64_t d : rid_extra_buckets_) {
    if (d > now_ms) buckets[n++] = d;
  }
  if (n > 3) std::sort(buckets, buckets + n, std::greater<uint64_t>());
  const storage::RidHash hash = storage::RidKeyHash(list, rid);
  thread_local std::string key;
  for (size_t i = 0; i < n; ++i) {
    storage::RidRecordKeyTo(&key, ns, buckets[i], hash);
    leveldb::Status s = db->Get(VerifiedReads(), key, value);
    if (!s.IsNotFound()) return s;
  }
  if (!legacy_rids_.load(std::memory_order_relaxed)) return leveldb::Status::NotFound("no record");
  storage::RidKeyTo(&key, ns, list, rid);
  return db->Get(VerifiedReads(), key, value);
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
  leveldb::Status s = GetRid(shard.db.get(), KeyNs(list), list, rid, NowMs(), value);
  if (s.ok()) return true;
  if (s.IsNotFound()) return false;
  // A damaged block (or an unreadable table): counted and reported as any
  // read of the shard's data.
  return ReadFailure(index, list, "rid record: " + s.ToString(), true);
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

Status Store::ReadFailure(uint32_t index, std::string_view list, const std::string& what,
                          bool leveldb_error) const {
  const ShardDb& shard = *shards_[index];
  // Checksums that fail (or a table that can't be opened): find the file.
  if (leveldb_error) table_check_->Request(index, shard.path);
  const std::string findings = leveldb_error ? table_check_->Findings(index) : "";
  std::string message = "storage corruption in shard " + std::to_string(index) + " (" + shard.path +
                        "), list '" + std::string(list) + "': " + what;
  if (leveldb_error) {
    message +=
        findings.empty() ? "; its tables are being checked (see the node's log)" : "; " + findings;
  }
  // Loud, but not a line per read of a damaged list: the 1st, 2nd, 4th, ...
  const uint64_t n = read_failures_[index].fetch_add(1, std::memory_order_relaxed) + 1;
  if ((n & (n - 1)) == 0) spdlog::error("{} (read failure #{} in this shard)", message, n);
  return Status::Internal(message);
}

StatusOr<uint64_t> Store::LoadNextId(std::string_view list) const {
  const uint32_t index = ShardFor(list);
  const ShardDb& shard = *shards_[index];
  std::shared_lock<std::shared_mutex> lock(shard.mu);  // as in Load
  if (!shard.db) {
    return Status::Internal("storage failure: shard " + std::to_string(index) +
                            " unavailable: " + shard.down_reason + "; the request was not applied");
  }
  std::unique_ptr<leveldb::Iterator> it(shard.db->NewIterator(VerifiedReads()));
  const std::string ns = KeyNs(list);
  const std::string begin = storage::ListRangeBegin(ns, list);  // the counter's key
  const std::string end = storage::ListRangeEnd(ns, list);
  uint64_t next_id = 1;
  it->Seek(begin);
  if (it->Valid() && it->key() == leveldb::Slice(begin)) {
    auto n = storage::DecodeMetaValue(std::string_view(it->value().data(), it->value().size()));
    if (!n.ok()) return ReadFailure(index, list, n.status().message(), false);
    next_id = *n;
  }
  // The list's last key: just before the end of its range.
  it->Seek(end);
  if (it->Valid()) {
    it->Prev();
  } else {
    it->SeekToLast();
  }
  // A damaged block is skipped by LevelDB's iterator (keeping the error), so
  // the status is checked before anything read is trusted: the key found
  // could be an earlier one, and the next id one already given out.
  if (!it->status().ok()) return ReadFailure(index, list, it->status().ToString(), true);
  if (it->Valid() && it->key().compare(begin) > 0 && it->key().compare(end) < 0) {
    std::string_view key(it->key().data() + ns.size(), it->key().size() - ns.size());
    auto parsed = storage::ParseKey(key);
    if (!parsed || parsed->list != list || parsed->is_meta) {
      return ReadFailure(index, list, "malformed key in store", false);
    }
    next_id = std::max(next_id, parsed->id + 1);  // ParseKey refuses id 2^64-1
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
  std::unique_ptr<leveldb::Iterator> it(shard.db->NewIterator(VerifiedReads()));
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
      return ReadFailure(index, list, "malformed key in store", false);
    }
    if (parsed->is_meta) {
      auto n = storage::DecodeMetaValue(value);
      if (!n.ok()) return ReadFailure(index, list, n.status().message(), false);
      next_id = *n;
    } else {
      auto v = storage::DecodeEntryValue(value);
      if (!v.ok()) {
        return ReadFailure(index, list,
                           "entry " + std::to_string(parsed->id) + ": " + v.status().message(),
                           false);
      }
      entries.push_back(Entry{parsed->id, v->date, std::string(v->title)});
    }
  }
  // Checked after the scan: a damaged block is skipped, its error kept.
  if (!it->status().ok()) return ReadFailure(index, list, it->status().ToString(), true);
  return TodoList::Restore(std::move(entries), next_id);
}

Status Store::SaveClusterMap(const std::string& json) const {
  return WriteFileAtomically(fs::path(options_.dir) / kClusterMapFile, json);
}

std::optional<std::string> Store::LoadClusterMap() const {
  const fs::path p = fs::path(options_.dir) / kClusterMapFile;
  std::error_code ec;
  if (!fs::exists(p, ec)) return std::nullopt;
  std::string text;
  if (!ReadFile(p, &text).ok()) return std::nullopt;
  return text;
}

}  // namespace todo::store
