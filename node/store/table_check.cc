#include "node/store/table_check.h"

#include <leveldb/iterator.h>
#include <leveldb/options.h>
#include <leveldb/table.h>
#include <pthread.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <memory>

namespace todo::store {

namespace {

bool IsTableFile(const std::string& name) {
  return name.ends_with(".ldb") || name.ends_with(".sst");
}

// OK, or why the table `path` can't be read whole with checksums verified.
// NotFound if it is gone (a compaction deleted it).
leveldb::Status CheckTable(leveldb::Env* env, const std::string& path) {
  uint64_t size = 0;
  leveldb::Status s = env->GetFileSize(path, &size);
  if (!s.ok()) return s;
  leveldb::RandomAccessFile* raw = nullptr;
  s = env->NewRandomAccessFile(path, &raw);
  if (!s.ok()) return s;
  std::unique_ptr<leveldb::RandomAccessFile> file(raw);
  leveldb::Options options;
  options.paranoid_checks = true;  // the footer's and index block's checksums too
  leveldb::Table* table_raw = nullptr;
  s = leveldb::Table::Open(options, file.get(), size, &table_raw);
  if (!s.ok()) return s;
  std::unique_ptr<leveldb::Table> table(table_raw);
  leveldb::ReadOptions ro;
  ro.verify_checksums = true;
  ro.fill_cache = false;
  std::unique_ptr<leveldb::Iterator> it(table->NewIterator(ro));
  // A damaged block is skipped by the iterator, which keeps its error.
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
  }
  return it->status();
}

}  // namespace

TableCheck::TableCheck(leveldb::Env* env) : env_(env) {}

TableCheck::~TableCheck() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
}

void TableCheck::Request(uint32_t shard, const std::string& dir) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ || findings_.contains(shard)) return;
    findings_[shard] = "";
    queue_.emplace_back(shard, dir);
    if (!thread_.joinable()) thread_ = std::thread([this] { Loop(); });
  }
  cv_.notify_one();
}

std::string TableCheck::Findings(uint32_t shard) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = findings_.find(shard);
  return it == findings_.end() ? "" : it->second;
}

std::vector<std::pair<std::string, std::string>> TableCheck::CheckDir(leveldb::Env* env,
                                                                      const std::string& dir) {
  std::vector<std::pair<std::string, std::string>> damaged;
  std::vector<std::string> children;
  if (leveldb::Status s = env->GetChildren(dir, &children); !s.ok()) {
    damaged.emplace_back(dir, s.ToString());
    return damaged;
  }
  std::sort(children.begin(), children.end());
  for (const std::string& name : children) {
    if (!IsTableFile(name)) continue;
    const std::string path = dir + "/" + name;
    leveldb::Status s = CheckTable(env, path);
    if (!s.ok() && !s.IsNotFound()) damaged.emplace_back(path, s.ToString());
  }
  return damaged;
}

void TableCheck::Loop() {
  pthread_setname_np(pthread_self(), "todo-tablecheck");
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    if (stopping_) return;
    auto [shard, dir] = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    spdlog::error("shard {}: checking every table in {} for damage", shard, dir);
    auto damaged = CheckDir(env_, dir);
    std::string findings;
    for (const auto& [file, why] : damaged) {
      spdlog::error("shard {}: DAMAGED table {}: {}", shard, file, why);
      findings += (findings.empty() ? "damaged table(s): " : ", ") + file + " (" + why + ")";
    }
    if (damaged.empty()) {
      findings = "no damaged table found";
      spdlog::error(
          "shard {}: no damaged table found in {} (the damage may be in a table "
          "deleted since, or outside the tables)",
          shard, dir);
    }
    lock.lock();
    findings_[shard] = findings;
  }
}

}  // namespace todo::store
