#include "node/store/shard_writer.h"

#include <spdlog/spdlog.h>

#include <chrono>

namespace todo::store {

void WriteOwner::Invalidate(uint64_t failed_epoch) {
  uint64_t want = failed_epoch + 1;
  uint64_t cur = valid_epoch.load();
  while (cur < want && !valid_epoch.compare_exchange_weak(cur, want)) {
  }
}

ShardWriter::ShardWriter(leveldb::DB* db, uint32_t index, bool sync, size_t capacity,
                         size_t max_batch, node::ReplyQueue* replies)
    : db_(db),
      index_(index),
      sync_(sync),
      capacity_(capacity),
      max_batch_(max_batch),
      replies_(replies),
      thread_([this] { Loop(); }) {}

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
  std::vector<WriteOp> ops;
  std::vector<node::Reply> replies;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      while (queue_.empty() && !stopping_) cv_.wait_for(lock, std::chrono::milliseconds(200));
      if (queue_.empty()) return;  // stopping, and everything is written
      if (queue_.size() <= max_batch_) {
        ops.swap(queue_);
      } else {
        auto end = queue_.begin() + static_cast<ptrdiff_t>(max_batch_);
        ops.assign(std::make_move_iterator(queue_.begin()), std::make_move_iterator(end));
        queue_.erase(queue_.begin(), end);
      }
    }
    Commit(ops, &replies);
    reserved_.fetch_sub(ops.size(), std::memory_order_relaxed);
    replies_->PushAll(replies);
    // Only now may an owner see zero in flight: every reply above is queued.
    for (auto& op : ops) op.owner->inflight.fetch_sub(1, std::memory_order_release);
    ops.clear();
  }
}

void ShardWriter::Commit(std::vector<WriteOp>& ops, std::vector<node::Reply>* replies) {
  // Ops from an epoch that an earlier failure invalidated are refused.
  std::vector<bool> stale(ops.size());
  leveldb::WriteBatch group;
  size_t writes = 0;
  for (size_t i = 0; i < ops.size(); ++i) {
    auto& op = ops[i];
    stale[i] = op.epoch < op.owner->valid_epoch.load(std::memory_order_acquire);
    if (!stale[i] && !op.barrier) {
      group.Append(op.batch);
      ++writes;
    }
  }
  leveldb::Status s;
  if (writes > 0) {
    leveldb::WriteOptions wo;
    wo.sync = sync_;
    auto t0 = std::chrono::steady_clock::now();
    s = db_->Write(wo, &group);
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
  if (!s.ok()) {
    stats_.failed_batches.fetch_add(1, std::memory_order_relaxed);
    spdlog::error("shard {}: write of {} ops failed: {}", index_, writes, s.ToString());
  }
  replies->reserve(ops.size());
  for (size_t i = 0; i < ops.size(); ++i) {
    auto& op = ops[i];
    if (!stale[i] && s.ok()) {
      replies->push_back(std::move(op.reply));
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
    replies->push_back(node::Reply{
        std::move(op.reply.envelope), node::EncodeBody([&](msgpack::sbuffer& b) {
          protocol::EncodeError(b, op.id.view(), ErrorCode::kInternal, why);
        })});
  }
}

}  // namespace todo::store
