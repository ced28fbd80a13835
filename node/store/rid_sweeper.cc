#include "node/store/rid_sweeper.h"

#include <pthread.h>
#include <spdlog/spdlog.h>

#include <shared_mutex>

#include "common/storage_format.h"

namespace todo::store {
namespace {

// After a pass that took its maximum, the next one comes this soon.
constexpr std::chrono::milliseconds kBacklogPause(20);
// Every this many passes a shard's scan starts over from the oldest entry.
constexpr uint32_t kRestartEvery = 64;

}  // namespace

RidSweeper::RidSweeper(std::vector<ShardDb*> shards, std::vector<ShardWriter*> writers,
                       Options options)
    : shards_(std::move(shards)),
      writers_(std::move(writers)),
      options_(std::move(options)),
      state_(options_.term_of ? options_.partitions : shards_.size()) {}

RidSweeper::~RidSweeper() { Stop(); }

void RidSweeper::Start() {
  if (options_.every.count() <= 0 || thread_.joinable()) return;
  thread_ = std::thread([this] { Loop(); });
}

void RidSweeper::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
}

bool RidSweeper::InFlight() const {
  for (const ShardState& s : state_) {
    if (s.owner->inflight.load(std::memory_order_acquire) > 0) return true;
  }
  return false;
}

void RidSweeper::TendFilter(uint64_t now_ms) {
  RidFilter* filter = options_.filter;
  const bool fill = filter != nullptr && filter->enabled();
  // The replicated mode keeps no count key: the records on disk are counted
  // here, once, and stats counts on from there (WriterStats::RidRecords).
  const bool count = static_cast<bool>(options_.term_of);
  if (!fill && !count) return;
  if (!filled_) {
    filled_ = true;
    uint64_t found = 0;
    const auto t0 = std::chrono::steady_clock::now();
    for (size_t i = 0; i < shards_.size(); ++i) {
      const ShardDb& shard = *shards_[i];
      std::shared_lock<std::shared_mutex> lock(shard.mu);
      if (!shard.db) {
        spdlog::warn("shard {}: down at start; rid lookups always read the disk", i);
        return;  // never marked complete
      }
      // Read before the scan's snapshot is taken (see SetRidRecordsScanned).
      const WriterStats& ws = writers_[i]->stats();
      const uint64_t written = ws.rid_written.load(std::memory_order_relaxed);
      const uint64_t expired = ws.rid_expired.load(std::memory_order_relaxed);
      uint64_t in_shard = 0;
      std::unique_ptr<leveldb::Iterator> it(shard.db->NewIterator(VerifiedReads()));
      // Static mode: the shard's records (no prefix); replicated mode: those
      // of each of its partitions (prefixed by the partition). Records
      // that backups write meanwhile are inserted by their writers.
      std::vector<std::string> spaces;
      if (options_.term_of) {
        for (size_t p = i; p < options_.partitions; p += shards_.size()) {
          spaces.push_back(storage::PartitionPrefix(static_cast<uint32_t>(p)));
        }
      } else {
        spaces.emplace_back();
      }
      for (const std::string& ns : spaces) {
        // The filter gets the records not yet due (the lookups never read
        // the others); the count is of every record.
        const std::string end = storage::RidRecordRangeEnd(ns);
        for (it->Seek(count ? storage::RidRecordRangeBegin(ns)
                            : storage::RidRecordSeekKey(ns, now_ms + 1));
             it->Valid() && it->key().compare(end) < 0; it->Next()) {
          auto parsed =
              storage::ParseRidRecordKey(ns, std::string_view(it->key().data(), it->key().size()));
          if (!parsed) continue;
          ++in_shard;
          if (fill && parsed->drop_at > now_ms) {
            filter->Insert(parsed->hash.h1);
            ++found;
          }
        }
        if (options_.legacy == nullptr || options_.legacy->load(std::memory_order_relaxed)) {
          const std::string legacy_end = storage::RidExpiryRangeEnd(ns);
          for (it->Seek(storage::RidExpiryRangeBegin(ns));
               it->Valid() && it->key().compare(legacy_end) < 0; it->Next()) {
            auto parsed = storage::ParseRidExpiryKey(
                ns, std::string_view(it->key().data(), it->key().size()));
            if (!parsed) continue;
            ++in_shard;
            if (fill) {
              filter->Insert(RidFilter::Hash(ns, parsed->list, parsed->rid));
              ++found;
            }
          }
        }
      }
      if (!it->status().ok()) {
        spdlog::warn("shard {}: scan of rid records failed ({}); rid lookups always read the disk",
                     i, it->status().ToString());
        return;
      }
      if (count) writers_[i]->SetRidRecordsScanned(in_shard, written, expired);
    }
    if (!fill) return;
    filter->MarkComplete();
    generation_start_ms_ = now_ms;
    spdlog::info(
        "rid filter: {} records on disk, read in {} ms; {} MiB", found,
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
            .count(),
        filter->bytes() >> 20);
    return;
  }
  if (fill && filter->complete() &&
      now_ms >= generation_start_ms_ + static_cast<uint64_t>(options_.ttl.count())) {
    filter->Rotate();
    generation_start_ms_ = now_ms;
  }
}

size_t RidSweeper::Pass(uint64_t now_ms) {
  TendFilter(now_ms);
  size_t n = 0;
  bool full = false;
  for (size_t i = 0; i < shards_.size(); ++i) n += PassShard(i, now_ms, &full);
  return n;
}

bool RidSweeper::TakeLegacy(size_t index, const ShardDb& shard, uint64_t now_ms, size_t budget,
                            WriteOp* op, size_t* entries, size_t* records, bool* empty) {
  ShardState& st = state_[index];
  const uint64_t ttl = static_cast<uint64_t>(options_.ttl.count());
  // Version 1 records created at or before this are expired.
  const std::string limit = storage::RidExpirySeekKey(now_ms - ttl + 1);
  const std::string end = storage::RidExpiryRangeEnd();
  const bool from_start = st.legacy_cursor.empty();
  std::unique_ptr<leveldb::Iterator> it(shard.db->NewIterator(VerifiedReads()));
  std::string value, last_key;
  it->Seek(from_start ? storage::RidExpiryRangeBegin() : st.legacy_cursor);
  *empty = from_start && (!it->Valid() || it->key().compare(end) >= 0);
  bool ok = true;
  for (; it->Valid() && *entries < budget && it->key().compare(limit) < 0; it->Next()) {
    const std::string_view key(it->key().data(), it->key().size());
    if (auto parsed = storage::ParseRidExpiryKey(key)) {
      const std::string record_key = storage::RidKey(parsed->list, parsed->rid);
      leveldb::Status s = shard.db->Get(VerifiedReads(), record_key, &value);
      if (s.ok()) {
        auto record = storage::DecodeRidValue(value);
        // Dropped only if it is the record this entry was written for.
        if (!record.ok() || record->created_ms == parsed->created_ms) {
          op->batch.Delete(record_key);
          ++*records;
        }
      } else if (!s.IsNotFound()) {
        spdlog::warn("shard {}: rid sweep: cannot read a record: {}; next pass", index,
                     s.ToString());
        ok = false;
        break;
      }
    } else {
      spdlog::warn("shard {}: rid sweep: dropping a malformed expiry index key ({} bytes)", index,
                   key.size());
    }
    op->batch.Delete(key);
    ++*entries;
    last_key.assign(key);
  }
  if (!it->status().ok()) {
    spdlog::warn("shard {}: rid sweep: scan failed: {}; next pass", index, it->status().ToString());
    *empty = false;
    ok = false;
  }
  // Where the next scan starts once this op is queued: after its last entry.
  if (!last_key.empty()) {
    st.next_legacy_cursor = last_key;
    st.next_legacy_cursor.push_back('\0');
  }
  return ok;
}

void RidSweeper::Loop() {
  pthread_setname_np(pthread_self(), "todo-rid-sweep");
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    lock.unlock();
    bool full = false;
    const uint64_t now = options_.now_ms();
    TendFilter(now);
    for (size_t i = 0; i < shards_.size(); ++i) {
      bool shard_full = false;
      PassShard(i, now, &shard_full);
      full |= shard_full;
    }
    lock.lock();
    cv_.wait_for(lock, full ? kBacklogPause : options_.every, [&] { return stopping_; });
  }
}

size_t RidSweeper::PassShard(size_t index, uint64_t now_ms, bool* full) {
  *full = false;
  if (options_.term_of) {
    size_t n = 0;
    for (size_t p = index; p < options_.partitions; p += shards_.size()) {
      bool part_full = false;
      n += PassPartition(static_cast<uint32_t>(p), now_ms, &part_full);
      *full |= part_full;
    }
    return n;
  }
  ShardState& st = state_[index];
  // The last pass's deletes still queued: they are not visible yet.
  if (st.owner->inflight.load(std::memory_order_acquire) > 0) return 0;
  const uint64_t ttl = static_cast<uint64_t>(options_.ttl.count());
  if (now_ms < ttl) return 0;
  // A failed write of ours (the records are still there) or a periodic
  // restart: scan from the start again.
  const uint64_t epoch = st.owner->valid_epoch.load(std::memory_order_acquire);
  if (epoch != st.used_epoch || ++st.passes % kRestartEvery == 0) {
    st.cursor.clear();
    st.legacy_cursor.clear();
  }
  // The buckets due at now_ms sort before this.
  const std::string limit = storage::RidRecordSeekKey({}, now_ms + 1);

  WriteOp op;
  size_t entries = 0, records = 0;
  std::string last_key;
  st.next_legacy_cursor.clear();
  {
    const ShardDb& shard = *shards_[index];
    std::shared_lock<std::shared_mutex> lock(shard.mu);
    if (!shard.db) return 0;  // being reopened by its writer: next pass
    bool legacy_empty = false;
    if (options_.legacy != nullptr && options_.legacy->load(std::memory_order_relaxed)) {
      if (!TakeLegacy(index, shard, now_ms, options_.max_per_pass, &op, &entries, &records,
                      &legacy_empty)) {
        legacy_empty = false;
      }
      st.legacy_empty = legacy_empty;
    }
    ScanDue(shard.db.get(), {}, st.cursor, limit, "shard " + std::to_string(index), &op, &entries,
            &records, &last_key);
  }
  if (options_.legacy != nullptr && options_.legacy->load(std::memory_order_relaxed)) {
    // Every shard's old index empty from its start: no version 1 record is
    // left (records and their entries are dropped in the same batch).
    bool all_empty = true;
    for (const ShardState& s : state_) all_empty &= s.legacy_empty;
    if (all_empty) {
      options_.legacy->store(false, std::memory_order_relaxed);
      spdlog::info("rid records of the version 1 layout: none left");
    }
  }
  if (entries == 0) return 0;
  if (!SubmitDeletes(index, st, epoch, records, std::move(op))) return 0;  // full: next pass
  *full = entries >= options_.max_per_pass;
  // Where the next scan starts: just after the last key taken.
  if (!last_key.empty()) {
    st.cursor = last_key;
    st.cursor.push_back('\0');
  }
  if (!st.next_legacy_cursor.empty()) st.legacy_cursor = st.next_legacy_cursor;
  return records;
}

size_t RidSweeper::PassPartition(uint32_t p, uint64_t now_ms, bool* full) {
  *full = false;
  ShardState& st = state_[p];
  // The last pass's deletes still queued (or held for the backups'
  // acknowledgements): they are not visible yet.
  if (st.owner->inflight.load(std::memory_order_acquire) > 0) return 0;
  const uint64_t ttl = static_cast<uint64_t>(options_.ttl.count());
  if (now_ms < ttl) return 0;
  // Only the primary drops its partition's records, under its current term.
  const uint64_t term = options_.term_of(p);
  if (term == 0) return 0;
  const uint64_t epoch = st.owner->valid_epoch.load(std::memory_order_acquire);
  // A new term (the records another primary left), a refused or failed op
  // of ours (its records are still there), or a periodic restart: scan from
  // the partition's start again.
  if (term != st.term || epoch != st.used_epoch || ++st.passes % kRestartEvery == 0) {
    st.cursor.clear();
  }
  const size_t index = p % shards_.size();
  const std::string ns = storage::PartitionPrefix(p);
  // The buckets due at now_ms sort before this.
  const std::string limit = storage::RidRecordSeekKey(ns, now_ms + 1);
  WriteOp op;
  size_t entries = 0, records = 0;
  std::string last_key;
  {
    const ShardDb& shard = *shards_[index];
    std::shared_lock<std::shared_mutex> lock(shard.mu);
    if (!shard.db) return 0;
    ScanDue(shard.db.get(), ns, st.cursor, limit, "partition " + std::to_string(p), &op, &entries,
            &records, &last_key);
  }
  if (entries == 0) return 0;
  op.partition = p;
  op.term = term;
  if (!SubmitDeletes(index, st, epoch, records, std::move(op))) return 0;  // full: next pass
  *full = entries >= options_.max_per_pass;
  st.term = term;
  st.cursor = last_key;
  st.cursor.push_back('\0');
  return records;
}

void RidSweeper::ScanDue(leveldb::DB* db, const std::string& ns, const std::string& cursor,
                         const std::string& limit, std::string_view where, WriteOp* op,
                         size_t* entries, size_t* records, std::string* last_key) const {
  std::unique_ptr<leveldb::Iterator> it(db->NewIterator(VerifiedReads()));
  it->Seek(cursor.empty() ? storage::RidRecordRangeBegin(ns) : cursor);
  for (; it->Valid() && *entries < options_.max_per_pass && it->key().compare(limit) < 0;
       it->Next()) {
    const std::string_view key(it->key().data(), it->key().size());
    if (storage::ParseRidRecordKey(ns, key)) {
      ++*records;
    } else {
      spdlog::warn("{}: rid sweep: dropping a malformed rid record key ({} bytes)", where,
                   key.size());
    }
    op->batch.Delete(key);
    ++*entries;
    last_key->assign(key);
  }
  if (!it->status().ok()) {
    spdlog::warn("{}: rid sweep: scan failed: {}; next pass", where, it->status().ToString());
  }
}

bool RidSweeper::SubmitDeletes(size_t index, ShardState& st, uint64_t epoch, size_t records,
                               WriteOp op) {
  if (!writers_[index]->TryReserve()) return false;
  op.owner = st.owner;
  op.epoch = epoch;
  op.silent = true;
  op.rid_delta = -static_cast<int32_t>(records);
  st.used_epoch = epoch;
  st.owner->inflight.fetch_add(1, std::memory_order_relaxed);
  std::vector<WriteOp> ops;
  ops.push_back(std::move(op));
  writers_[index]->Submit(ops);
  return true;
}

}  // namespace todo::store
