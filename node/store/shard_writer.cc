#include "node/store/shard_writer.h"

#include <leveldb/env.h>
#include <pthread.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "common/storage_format.h"
#include "node/replication/shard_replication.h"
#include "node/store/table_check.h"

namespace todo::store {

namespace {

constexpr std::chrono::milliseconds kFirstBackoff(10);
constexpr std::chrono::milliseconds kMaxBackoff(1000);
constexpr size_t kProbeBytes = 64 << 10;           // a little more than a log block or two
constexpr char kProbeFile[] = "/todo-disk-probe";  // not a LevelDB file name
// The COMMITTED file is rewritten at most this often while the shard takes
// writes (an fsync and a rename, ~1 ms, once a second).
constexpr std::chrono::seconds kRecordCommittedEvery(1);
// Group commit sized by load: after a group of at least kLingerAfterGroup
// ops, the writer waits up to kLinger for kLingerUntil ops before the next
// write. Measured on the 2-core VM (tests/bench defaults, one shard): ~8%
// more ops/s and ~10% less writer CPU per op than writing at once; syncs
// then serve ~2x more writes each.
constexpr size_t kLingerAfterGroup = 32;
constexpr size_t kLingerUntil = 128;
constexpr std::chrono::microseconds kLinger(300);

// Collects every key a batch puts or deletes.
class KeyCollector : public leveldb::WriteBatch::Handler {
 public:
  std::vector<std::string> keys;
  void Put(const leveldb::Slice& key, const leveldb::Slice&) override {
    keys.push_back(key.ToString());
  }
  void Delete(const leveldb::Slice& key) override { keys.push_back(key.ToString()); }
};

struct SortedMutation {
  std::string_view key;
  std::string_view value;
  bool put;
};

// TODO_TEST_CRASH_AT (see the header): where, and at which write-bearing
// group commit (counted over every shard of the process).
enum class CrashPoint { kNone, kBeforeWrite, kBeforeSync, kAfterSync };
struct CrashHook {
  CrashPoint point = CrashPoint::kNone;
  uint64_t at = 0;
  std::atomic<uint64_t> commits{0};
};

CrashHook& TestCrashHook() {
  static CrashHook* hook = [] {
    auto* h = new CrashHook();  // never freed: read until _exit or exit
    const char* v = std::getenv("TODO_TEST_CRASH_AT");
    if (v == nullptr || *v == '\0') return h;
    std::string_view spec(v);
    const size_t colon = spec.find(':');
    std::string_view point = spec.substr(0, colon);
    uint64_t at = colon == std::string_view::npos ? 0 : std::strtoull(v + colon + 1, nullptr, 10);
    if (point == "before-write") h->point = CrashPoint::kBeforeWrite;
    if (point == "before-sync") h->point = CrashPoint::kBeforeSync;
    if (point == "after-sync") h->point = CrashPoint::kAfterSync;
    if (h->point == CrashPoint::kNone || at == 0) {
      std::fprintf(stderr,
                   "TODO_TEST_CRASH_AT=%s ignored: want before-write|before-sync|"
                   "after-sync:N (N >= 1)\n",
                   v);
      h->point = CrashPoint::kNone;
    } else {
      h->at = at;
      std::fprintf(stderr, "TODO_TEST_CRASH_AT: test hook armed: exit at %s of commit %llu\n",
                   std::string(point).c_str(), static_cast<unsigned long long>(at));
    }
    return h;
  }();
  return *hook;
}

[[noreturn]] void CrashNow(const char* where) {
  std::fprintf(stderr, "TODO_TEST_CRASH_AT: exiting %s (test hook)\n", where);
  std::fflush(stderr);
  _exit(86);
}

int64_t MillisSince(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t)
      .count();
}

}  // namespace

void WriteOwner::Invalidate(uint64_t failed_epoch) {
  uint64_t want = failed_epoch + 1;
  uint64_t cur = valid_epoch.load();
  while (cur < want && !valid_epoch.compare_exchange_weak(cur, want)) {
  }
}

ShardWriter::ShardWriter(ShardDb* shard, uint32_t index, bool sync, size_t capacity,
                         size_t max_batch, node::ReplyQueue* replies, const node::ReplContext* repl)
    : shard_(shard),
      index_(index),
      sync_(sync),
      capacity_(capacity),
      max_batch_(max_batch),
      replies_(replies),
      commit_(shard->commit),
      recorded_(shard->commit) {
  TestCrashHook();  // parsed (and announced) once, before any write
  if (repl != nullptr) {
    repl_ = std::make_unique<node::ShardReplication>(repl, index, shard, &stats_);
    repl_->inbox().SetWaker([this] {
      bool was;
      {
        std::lock_guard<std::mutex> lock(mu_);
        was = control_pending_;
        control_pending_ = true;
      }
      // Already pending: the writer was woken for it and hasn't taken it yet.
      if (!was) cv_.notify_one();
    });
    thread_ = std::thread([this] { LoopReplicated(); });
  } else {
    // Format 1 only: the count key is the shard's (see the header). Read
    // before the thread starts, so `stats` has it as soon as the store is
    // open.
    LoadRidCount();
    thread_ = std::thread([this] { Loop(); });
  }
}

void ShardWriter::LoadRidCount() {
  std::string value;
  leveldb::ReadOptions ro;
  ro.verify_checksums = true;  // as every read of the store
  leveldb::Status s = shard_->db->Get(ro, storage::RidCountKey(), &value);
  uint64_t n = 0;
  if (s.ok()) {
    auto decoded = storage::DecodeRidCount(value);
    if (decoded.ok()) {
      n = *decoded;
    } else {
      spdlog::error("shard {}: {}; counting rid records from 0", index_,
                    decoded.status().message());
    }
  } else if (!s.IsNotFound()) {
    spdlog::error("shard {}: cannot read the rid record count: {}", index_, s.ToString());
  }
  rid_records_ = n;
  stats_.rid_records.store(n, std::memory_order_relaxed);
}

ShardWriter::~ShardWriter() { Stop(); }

bool ShardWriter::TryReserve() {
  size_t cur = reserved_.load(std::memory_order_relaxed);
  do {
    if (cur >= capacity_) return false;
  } while (!reserved_.compare_exchange_weak(cur, cur + 1, std::memory_order_relaxed));
  return true;
}

void ShardWriter::Unreserve() { reserved_.fetch_sub(1, std::memory_order_relaxed); }

void ShardWriter::Submit(std::vector<WriteOp>& ops) {
  if (ops.empty()) return;
  bool wake;
  {
    std::lock_guard<std::mutex> lock(mu_);
    wake = queue_.empty();
    for (auto& op : ops) queue_.push_back(std::move(op));
  }
  ops.clear();
  if (wake) cv_.notify_one();
}

void ShardWriter::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
}

void ShardWriter::Loop() {
  // Named for top -H, perf and /proc/PID/task/*/comm (15 chars at most).
  pthread_setname_np(pthread_self(),
                     ("todo-writer-" + std::to_string(index_)).substr(0, 15).c_str());
  std::vector<WriteOp> ops;
  std::vector<node::Reply> replies;
  for (;;) {
    bool stopping;
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (broken_) {
        // Wake for new ops (refused at once), Stop(), or the next attempt.
        cv_.wait_until(lock, next_attempt_, [&] { return !queue_.empty() || stopping_; });
      } else {
        while (queue_.empty() && !stopping_) cv_.wait_for(lock, std::chrono::milliseconds(200));
        // Busy (the last group was big) but little queued yet: wait a moment
        // so the next fsync serves more writes. Under light load groups are
        // small and nothing waits.
        if (!stopping_ && last_group_ >= kLingerAfterGroup && queue_.size() < kLingerUntil) {
          cv_.wait_for(lock, kLinger, [&] { return stopping_ || queue_.size() >= kLingerUntil; });
        }
      }
      stopping = stopping_;
      if (queue_.size() <= max_batch_) {
        ops.swap(queue_);
      } else {
        auto end = queue_.begin() + static_cast<ptrdiff_t>(max_batch_);
        ops.assign(std::make_move_iterator(queue_.begin()), std::make_move_iterator(end));
        queue_.erase(queue_.begin(), end);
      }
    }
    // Down: try to recover when the backoff is over (and once more at Stop,
    // so a shard that is fine again gets its undo written).
    if (broken_ && (Clock::now() >= next_attempt_ || (stopping && ops.empty()))) Recover();
    if (ops.empty()) {
      if (!stopping) continue;
      if (!broken_ && sync_ && commit_ > recorded_) RecordCommitted();
      if (broken_) {
        spdlog::error(
            "shard {}: stopping while still unavailable ({}); the failed write's "
            "record may be replayed when the node starts again",
            index_, broken_status_.ToString());
      }
      return;  // stopping, and everything is written or refused
    }
    if (broken_) {
      Refuse(ops, &replies);
    } else {
      Commit(ops, &replies);
    }
    last_group_ = ops.size();
    reserved_.fetch_sub(ops.size(), std::memory_order_relaxed);
    replies_->PushAll(replies);
    // Only now may an owner see zero in flight: every reply above is queued.
    for (auto& op : ops) {
      op.owner->completed.fetch_add(1, std::memory_order_release);
      op.owner->inflight.fetch_sub(1, std::memory_order_release);
    }
    ops.clear();
    // After the replies: the recording's fsync delays no acknowledgement.
    if (!broken_ && sync_ && commit_ > recorded_ && Clock::now() >= next_record_) {
      RecordCommitted();
    }
  }
}

void ShardWriter::Commit(std::vector<WriteOp>& ops, std::vector<node::Reply>* replies) {
  // Ops from an epoch that an earlier failure invalidated are refused.
  std::vector<bool> stale(ops.size());
  leveldb::WriteBatch& group = group_;  // reused: Clear() keeps its buffer
  group.Clear();
  size_t writes = 0;
  int64_t rid_delta = 0;
  // The group's mutations in key order (stable: one key's keep their
  // order): LevelDB inserts a batch into its memtable skiplist one by one,
  // and neighbouring keys share most of their search path, so sorted
  // inserts find it in cache instead of missing at every level.
  thread_local std::vector<SortedMutation> sorted;
  sorted.clear();
  for (size_t i = 0; i < ops.size(); ++i) {
    auto& op = ops[i];
    stale[i] = op.epoch < op.owner->valid_epoch.load(std::memory_order_acquire);
    if (!stale[i] && !op.barrier) {
      op.batch.ForEach([&](bool put, std::string_view key, std::string_view value) {
        sorted.push_back(SortedMutation{key, value, put});
      });
      ++writes;
      rid_delta += op.rid_delta;
    }
  }
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](const SortedMutation& a, const SortedMutation& b) { return a.key < b.key; });
  if (writes > 0) {
    // The commit counter (the smallest key there is, so first).
    commit_value_ = storage::EncodeCommitValue(commit_ + 1);
    static const std::string kCommitKey = storage::CommitKey();
    group.Put(kCommitKey, commit_value_);
  }
  for (const SortedMutation& m : sorted) {
    if (m.put) {
      group.Put(leveldb::Slice(m.key.data(), m.key.size()),
                leveldb::Slice(m.value.data(), m.value.size()));
    } else {
      group.Delete(leveldb::Slice(m.key.data(), m.key.size()));
    }
  }
  // The rid record count, in the same batch as the records it counts.
  uint64_t rid_records = rid_records_;
  if (rid_delta != 0) {
    rid_records = rid_delta < 0 && static_cast<uint64_t>(-rid_delta) > rid_records_
                      ? 0
                      : rid_records_ + static_cast<uint64_t>(rid_delta);
    group.Put(storage::RidCountKey(), storage::EncodeRidCount(rid_records));
  }
  leveldb::Status s;
  if (writes > 0) {
    leveldb::WriteOptions wo;
    wo.sync = sync_;
    CrashHook& hook = TestCrashHook();
    const bool crash = hook.point != CrashPoint::kNone &&
                       hook.commits.fetch_add(1, std::memory_order_relaxed) + 1 == hook.at;
    if (crash && hook.point == CrashPoint::kBeforeWrite) CrashNow("before the write");
    if (crash && hook.point == CrashPoint::kBeforeSync) {
      wo.sync = false;  // appended to the log (the page cache), not synced
      shard_->db->Write(wo, &group);
      CrashNow("after the append, before the sync");
    }
    auto t0 = std::chrono::steady_clock::now();
    s = shard_->db->Write(wo, &group);
    if (crash && hook.point == CrashPoint::kAfterSync && s.ok()) {
      CrashNow("after the sync, before the replies");
    }
    auto us =
        std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0)
            .count();
    stats_.write_micros.fetch_add(static_cast<uint64_t>(us), std::memory_order_relaxed);
    stats_.batches.fetch_add(1, std::memory_order_relaxed);
    stats_.ops.fetch_add(writes, std::memory_order_relaxed);
    if (writes > stats_.max_batch.load(std::memory_order_relaxed)) {
      stats_.max_batch.store(writes, std::memory_order_relaxed);
    }
    std::lock_guard<std::mutex> lock(histograms_mu_);
    histograms_.batch_sizes.Observe(static_cast<double>(writes));
    histograms_.write_seconds.Observe(static_cast<double>(us) / 1e6);
  }
  if (s.ok() && rid_delta != 0) {
    rid_records_ = rid_records;
    stats_.rid_records.store(rid_records, std::memory_order_relaxed);
    for (size_t i = 0; i < ops.size(); ++i) {
      if (stale[i] || ops[i].barrier) continue;
      if (ops[i].rid_delta > 0) {
        stats_.rid_written.fetch_add(static_cast<uint64_t>(ops[i].rid_delta),
                                     std::memory_order_relaxed);
      } else if (ops[i].rid_delta < 0) {
        stats_.rid_expired.fetch_add(static_cast<uint64_t>(-int64_t{ops[i].rid_delta}),
                                     std::memory_order_relaxed);
      }
    }
  }
  if (!s.ok()) {
    stats_.failed_batches.fetch_add(1, std::memory_order_relaxed);
    spdlog::error("shard {}: write of {} ops failed: {}; refusing writes until it is reopened",
                  index_, writes, s.ToString());
    // A compaction that met a damaged table fails every later write so.
    if (s.IsCorruption() && shard_->table_check != nullptr) {
      shard_->table_check->Request(index_, shard_->path);
    }
    OnWriteFailure(group, s);
  } else if (writes > 0) {
    ++commit_;
  }
  replies->reserve(ops.size());
  for (size_t i = 0; i < ops.size(); ++i) {
    auto& op = ops[i];
    if (!stale[i] && s.ok()) {
      if (op.late_reply) op.reply.body = op.late_reply->Make(shard_->db.get());
      if (!op.silent) replies->push_back(std::move(op.reply));
      continue;
    }
    if (op.silent) {
      if (!stale[i]) op.owner->Invalidate(op.epoch);
      continue;
    }
    std::string why;
    if (stale[i]) {
      why =
          "storage failure: an earlier write of this list failed, so this request was not applied";
    } else {
      why = "storage failure: " + s.ToString() + "; the change was not applied";
      op.owner->Invalidate(op.epoch);
    }
    replies->push_back(
        node::Reply{std::move(op.reply.envelope), node::EncodeBody([&](msgpack::sbuffer& b) {
                      protocol::EncodeError(b, op.id.view(), ErrorCode::kInternal, why);
                    })});
  }
}

void ShardWriter::Refuse(std::vector<WriteOp>& ops, std::vector<node::Reply>* replies) {
  const std::string why = "storage failure: shard " + std::to_string(index_) +
                          " unavailable: " + broken_status_.ToString() +
                          "; the change was not applied";
  replies->reserve(ops.size());
  for (auto& op : ops) {
    // The owner applied this op in memory (or answers a read that saw such
    // ops): it must reload from disk.
    op.owner->Invalidate(op.epoch);
    if (op.silent) continue;
    replies->push_back(
        node::Reply{std::move(op.reply.envelope), node::EncodeBody([&](msgpack::sbuffer& b) {
                      protocol::EncodeError(b, op.id.view(), ErrorCode::kInternal, why);
                    })});
  }
  stats_.refused.fetch_add(ops.size(), std::memory_order_relaxed);
  refused_since_ += ops.size();
}

void ShardWriter::OnWriteFailure(const leveldb::WriteBatch& group, const leveldb::Status& s) {
  // The open database never applied `group`, but its log record may be
  // replayed by the reopen: remember what each touched key holds now.
  KeyCollector collector;
  group.Iterate(&collector);
  std::sort(collector.keys.begin(), collector.keys.end());
  collector.keys.erase(std::unique(collector.keys.begin(), collector.keys.end()),
                       collector.keys.end());
  size_t unreadable = 0;
  std::string value;
  for (const std::string& key : collector.keys) {
    leveldb::Status r = shard_->db->Get(leveldb::ReadOptions(), key, &value);
    if (r.ok()) {
      undo_.Put(key, value);
    } else if (r.IsNotFound()) {
      undo_.Delete(key);
    } else {
      ++unreadable;
    }
  }
  if (unreadable > 0) {
    // The actors still reload after the reopen (generation), so they follow
    // the disk even if the failed record comes back.
    spdlog::error(
        "shard {}: {} of {} keys of the failed write could not be read, so it may "
        "reappear after the reopen",
        index_, unreadable, collector.keys.size());
  }
  undo_pending_ = true;
  broken_ = true;
  broken_status_ = s;
  broken_since_ = Clock::now();
  next_attempt_ = broken_since_;  // the first attempt at once
  backoff_ = kFirstBackoff;
  attempts_ = 0;
  refused_since_ = 0;
  stats_.unavailable.store(1, std::memory_order_relaxed);
}

bool ShardWriter::Recover() {
  leveldb::Status s = ProbeDisk();
  if (s.ok()) s = ReopenAndUndo();
  if (!s.ok()) {
    ++attempts_;
    stats_.failed_reopens.fetch_add(1, std::memory_order_relaxed);
    broken_status_ = s;
    // Logged at attempts 1, 2, 4, 8, ...: a disk that stays full for hours
    // leaves a few lines, not one per attempt.
    if ((attempts_ & (attempts_ - 1)) == 0) {
      spdlog::warn(
          "shard {}: still unavailable after {} attempts: {}; retrying (backoff up to {} ms)",
          index_, attempts_, s.ToString(), kMaxBackoff.count());
    }
    next_attempt_ = Clock::now() + backoff_;
    backoff_ = std::min<Clock::duration>(backoff_ * 2, kMaxBackoff);
    return false;
  }
  broken_ = false;
  stats_.unavailable.store(0, std::memory_order_relaxed);
  // The generation first: whoever sees the reopen counted (metrics, tests)
  // then finds the new generation too.
  generation_.fetch_add(1, std::memory_order_release);
  stats_.reopens.fetch_add(1, std::memory_order_release);
  spdlog::warn("shard {}: recovered after {} ms ({} failed attempts, {} ops refused meanwhile)",
               index_, MillisSince(broken_since_), attempts_, refused_since_);
  return true;
}

leveldb::Status ShardWriter::ProbeDisk() const {
  // A disk that can't take a small synced file won't take a reopen either;
  // until it can, the failed database stays open for readers.
  leveldb::Env* env = shard_->options.env;
  const std::string path = shard_->path + kProbeFile;
  leveldb::WritableFile* raw = nullptr;
  leveldb::Status s = env->NewWritableFile(path, &raw);
  if (!s.ok()) return s;
  std::unique_ptr<leveldb::WritableFile> file(raw);
  const std::string block(4096, 'p');
  for (size_t n = 0; s.ok() && n < kProbeBytes; n += block.size()) s = file->Append(block);
  if (s.ok()) s = file->Sync();
  leveldb::Status c = file->Close();
  if (s.ok()) s = c;
  file.reset();
  env->RemoveFile(path);
  return s;
}

void ShardWriter::RecordCommitted() {
  leveldb::Env* env = shard_->options.env;
  const std::string path = shard_->path + "/" + storage::kCommittedFile;
  const std::string tmp = path + ".tmp";
  const uint64_t commit = commit_;
  leveldb::WritableFile* raw = nullptr;
  leveldb::Status s = env->NewWritableFile(tmp, &raw);
  if (s.ok()) {
    std::unique_ptr<leveldb::WritableFile> file(raw);
    s = file->Append(storage::FormatCommitted(commit));
    if (s.ok()) s = file->Sync();
    leveldb::Status c = file->Close();
    if (s.ok()) s = c;
  }
  if (s.ok()) s = env->RenameFile(tmp, path);
  next_record_ = Clock::now() + kRecordCommittedEvery;
  if (!s.ok()) {
    env->RemoveFile(tmp);
    if (!record_failing_) {
      spdlog::warn("shard {}: cannot record commit #{} in {}: {}; retrying every second", index_,
                   commit, path, s.ToString());
    }
    record_failing_ = true;
    return;
  }
  if (record_failing_)
    spdlog::info("shard {}: recorded commit #{} in {} again", index_, commit, path);
  record_failing_ = false;
  recorded_ = commit;
}

leveldb::Status ShardWriter::ReopenAndUndo() {
  SetDb(nullptr, "reopening after: " + broken_status_.ToString());  // closes it
  leveldb::DB* raw = nullptr;
  leveldb::Status s = leveldb::DB::Open(shard_->options, shard_->path, &raw);
  std::unique_ptr<leveldb::DB> db(raw);
  if (s.ok() && undo_pending_) {
    // Before any new write, and synced even under --no-sync: it undoes a
    // record that the reopen may just have replayed.
    leveldb::WriteOptions wo;
    wo.sync = true;
    s = db->Write(wo, &undo_);
    if (s.ok()) {
      undo_pending_ = false;
      undo_.Clear();
    }
  }
  if (!s.ok()) {
    db.reset();  // a database that failed a write refuses every later one
    SetDb(nullptr, "reopen failed: " + s.ToString());
    return s;
  }
  SetDb(std::move(db), "");
  // The count key as the reopened shard has it (the undo restored it).
  LoadRidCount();
  return s;
}

void ShardWriter::SetDb(std::unique_ptr<leveldb::DB> db, const std::string& down_reason) {
  std::unique_ptr<leveldb::DB> old;
  {
    std::unique_lock<std::shared_mutex> lock(shard_->mu);
    old = std::move(shard_->db);
    shard_->db = std::move(db);
    shard_->down_reason = down_reason;
  }
  // Closed outside the lock: readers don't wait for LevelDB's shutdown.
}

// --- The replicated mode ---

void ShardWriter::Finish(std::vector<node::Reply>* replies, std::vector<WriteOp*>& finished) {
  if (finished.empty()) return;
  reserved_.fetch_sub(finished.size(), std::memory_order_relaxed);
  replies_->PushAll(*replies);
  replies->clear();
  // Only now may an owner see zero in flight: every reply above is queued.
  for (WriteOp* op : finished) {
    op->owner->completed.fetch_add(1, std::memory_order_release);
    op->owner->inflight.fetch_sub(1, std::memory_order_release);
  }
  finished.clear();
}

void ShardWriter::LoopReplicated() {
  pthread_setname_np(pthread_self(),
                     ("todo-writer-" + std::to_string(index_)).substr(0, 15).c_str());
  using node::ShardReplication;
  std::vector<WriteOp> ops;
  std::vector<node::ReplEvent> events;
  std::vector<ShardReplication::Done> done;
  std::vector<node::Reply> replies;
  std::vector<WriteOp*> finished;
  Group group;
  // Answers the writes ShardReplication is done with (in their order) and
  // empties `done`.
  auto release = [&] {
    for (auto& d : done) {
      if (d.error.ok() && d.op.rid_delta > 0) {
        stats_.rid_written.fetch_add(static_cast<uint64_t>(d.op.rid_delta),
                                     std::memory_order_relaxed);
      } else if (d.error.ok() && d.op.rid_delta < 0) {
        stats_.rid_expired.fetch_add(static_cast<uint64_t>(-int64_t{d.op.rid_delta}),
                                     std::memory_order_relaxed);
      }
      if (d.op.silent) {
        // The rid sweeper's deletes: no reply; a refused one is taken up
        // again from its partition's start (its owner's epoch moves on).
        if (!d.error.ok()) d.op.owner->Invalidate(d.op.epoch);
      } else if (d.error.ok()) {
        if (d.op.late_reply) d.op.reply.body = d.op.late_reply->Make(shard_->db.get());
        replies.push_back(std::move(d.op.reply));
      } else {
        if (d.invalidate) d.op.owner->Invalidate(d.op.epoch);
        replies.push_back(
            node::Reply{std::move(d.op.reply.envelope), node::EncodeBody([&](msgpack::sbuffer& b) {
                          protocol::EncodeError(b, d.op.id.view(), d.error);
                        })});
      }
      finished.push_back(&d.op);
    }
    Finish(&replies, finished);
    done.clear();
  };
  for (;;) {
    bool stopping;
    {
      std::unique_lock<std::mutex> lock(mu_);
      const auto wake_at = repl_->NextTick();
      cv_.wait_until(lock, wake_at,
                     [&] { return !queue_.empty() || control_pending_ || stopping_; });
      if (!stopping_ && !control_pending_ && last_group_ >= kLingerAfterGroup &&
          queue_.size() < kLingerUntil) {
        cv_.wait_for(lock, kLinger, [&] { return stopping_ || queue_.size() >= kLingerUntil; });
      }
      stopping = stopping_;
      control_pending_ = false;
      if (queue_.size() <= max_batch_) {
        ops.swap(queue_);
      } else {
        auto end = queue_.begin() + static_cast<ptrdiff_t>(max_batch_);
        ops.assign(std::make_move_iterator(queue_.begin()), std::make_move_iterator(end));
        queue_.erase(queue_.begin(), end);
      }
    }
    repl_->inbox().Take(&events);
    const auto now = Clock::now();
    group.Clear();
    done.clear();
    repl_->HandleEvents(events, now, &group, &done);
    events.clear();
    repl_->Tick(now, &group, &done);
    repl_->Sequence(ops, now, &group, &done);
    repl_->Flush();
    // Writes the backups' acks just completed (and refusals) are answered
    // now, not after this group's fsync: their own fsync was an earlier
    // group's, so nothing here waits for it.
    release();
    if (!group.empty() || repl_->meta_changed()) {
      // The shard's commit counter (storage_format.h), as in static mode,
      // and after it the partition metas newer than their keys.
      commit_value_ = storage::EncodeCommitValue(commit_ + 1);
      repl_->AppendMetaJournal(&commit_value_);
      static const std::string kCommitKey = storage::CommitKey();
      group.Put(kCommitKey, commit_value_);
      group.BuildSorted(&group_);
      leveldb::WriteOptions wo;
      wo.sync = sync_;
      auto t0 = Clock::now();
      leveldb::Status s = shard_->db->Write(wo, &group_);
      auto us = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0).count();
      if (!s.ok()) {
        // Our copy may now be behind what the backups hold: this node can't
        // go on leading. Its lease lapses and the controller fails over to
        // an in-sync backup, which has every acknowledged write; this node
        // catches up when it comes back.
        spdlog::critical(
            "shard {}: write of {} mutations failed: {}; stopping the node so that its backups "
            "take over",
            index_, group.size(), s.ToString());
        std::_Exit(3);
      }
      ++commit_;
      stats_.write_micros.fetch_add(static_cast<uint64_t>(us), std::memory_order_relaxed);
      stats_.batches.fetch_add(1, std::memory_order_relaxed);
      stats_.ops.fetch_add(group.size(), std::memory_order_relaxed);
      if (group.size() > stats_.max_batch.load(std::memory_order_relaxed)) {
        stats_.max_batch.store(group.size(), std::memory_order_relaxed);
      }
      std::lock_guard<std::mutex> lock(histograms_mu_);
      histograms_.batch_sizes.Observe(static_cast<double>(group.size()));
      histograms_.write_seconds.Observe(static_cast<double>(us) / 1e6);
    }
    last_group_ = ops.size();
    repl_->AfterCommit(ops, now, &done);
    ops.clear();
    if (stopping) {
      bool more;
      {
        std::lock_guard<std::mutex> lock(mu_);
        more = !queue_.empty();
      }
      if (!more) repl_->Stop(&done);
    }
    release();
    // After the replies: the recording's fsync delays no acknowledgement.
    if (sync_ && commit_ > recorded_ && (stopping || Clock::now() >= next_record_)) {
      RecordCommitted();
    }
    if (stopping) {
      std::lock_guard<std::mutex> lock(mu_);
      if (queue_.empty()) return;
    }
  }
}

}  // namespace todo::store
