// Helpers for node unit tests: temp dirs, building Calls, reading replies.
#pragma once

#include <gtest/gtest.h>
#include <leveldb/env.h>
#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <msgpack.hpp>
#include <string>
#include <thread>

#include "common/protocol.h"
#include "node/message.h"
#include "node/reply_queue.h"

namespace todo::testing {

class TempDir {
 public:
  // Under /tmp, or under `parent` (e.g. the working dir, on disk where
  // /tmp may be a tmpfs). path() is empty if it could not be made.
  explicit TempDir(const std::string& parent = "/tmp") {
    std::string tmpl = parent + "/todo-unit-XXXXXX";
    if (mkdtemp(tmpl.data()) != nullptr) path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// A Call as the socket loop would build it: one identity frame, the body
// encoded from `req`, decoded again.
inline node::Call MakeCall(protocol::Request req, std::string identity = "client") {
  msgpack::sbuffer buf;
  protocol::EncodeRequest(buf, req);
  node::Call call;
  call.envelope.emplace_back(identity.data(), identity.size());
  call.body = zmq::message_t(buf.data(), buf.size());
  auto d = protocol::DecodeRequest(
      std::string_view(static_cast<const char*>(call.body.data()), call.body.size()));
  EXPECT_TRUE(d.status.ok()) << d.status.ToString();
  call.request = d.request;
  return call;
}

inline protocol::Request Add(std::string_view list, std::string_view date, std::string_view title,
                             uint64_t id = 0) {
  protocol::Request r;
  r.op = protocol::Op::kAddEntry;
  r.list = list;
  r.date = ParseDate(date);
  r.title = title;
  r.id = protocol::RequestId::Uint(id);
  return r;
}

inline protocol::Request Entries(std::string_view list, uint64_t id = 0) {
  protocol::Request r;
  r.op = protocol::Op::kEntries;
  r.list = list;
  r.id = protocol::RequestId::Uint(id);
  return r;
}

inline protocol::Request Update(std::string_view list, uint64_t entry_id, std::string_view title,
                                uint64_t id = 0) {
  protocol::Request r;
  r.op = protocol::Op::kUpdateEntry;
  r.list = list;
  r.entry_id = entry_id;
  r.title = title;
  r.id = protocol::RequestId::Uint(id);
  return r;
}

inline protocol::Request Delete(std::string_view list, uint64_t entry_id, uint64_t id = 0) {
  protocol::Request r;
  r.op = protocol::Op::kDeleteEntry;
  r.list = list;
  r.entry_id = entry_id;
  r.id = protocol::RequestId::Uint(id);
  return r;
}

// `r` with request id `rid` (a view: `rid` must outlive the request).
inline protocol::Request WithRid(protocol::Request r, std::string_view rid) {
  r.rid = rid;
  return r;
}

inline msgpack::object_handle Unpack(const node::Reply& r) {
  return msgpack::unpack(static_cast<const char*>(r.body.data()), r.body.size());
}

// Polls `pred` every 2 ms until it holds or `timeout_ms` passes; returns it.
template <typename Pred>
bool WaitFor(Pred pred, int timeout_ms = 10000) {
  for (int waited = 0; waited < timeout_ms; waited += 2) {
    if (pred()) return true;
    usleep(2000);
  }
  return pred();
}

// True if every actor in `actors` (pointers to ListActor) is idle with no
// write in flight (ListActor::Evictable): tests that race real workers wait
// for this (with WaitFor) to reach a known state, never for a fixed time.
template <typename Actors>
bool AllQuiet(const Actors& actors) {
  for (const auto& a : actors) {
    if (!a->Evictable()) return false;
  }
  return true;
}

// Waits (bounded) until the queue has produced `n` replies in total.
inline std::vector<node::Reply> WaitReplies(node::ReplyQueue& q, size_t n, int timeout_ms = 5000) {
  std::vector<node::Reply> all, got;
  for (int waited = 0; all.size() < n && waited < timeout_ms; waited += 2) {
    q.Drain(&got);
    for (auto& r : got) all.push_back(std::move(r));
    if (all.size() < n) usleep(2000);
  }
  return all;
}

// An Env that injects storage faults into another (the default env, or a
// NewMemEnv): a disk that errors, fills up, and recovers. Each knob may be
// flipped at any time; `only` (set before the store opens) limits the
// faults to paths containing it, e.g. one shard's directory.
class FaultEnv : public leveldb::EnvWrapper {
 public:
  explicit FaultEnv(leveldb::Env* base = leveldb::Env::Default()) : EnvWrapper(base) {}

  std::string only;                         // "" = every path
  std::atomic<bool> fail{false};            // Append and Sync fail
  std::atomic<bool> no_space{false};        // like ENOSPC: appends, syncs, new files fail
  std::atomic<bool> fail_new_files{false};  // creating a writable file fails
  std::atomic<int> fail_log_syncs{0};       // the next N syncs of a *.log file fail
  std::atomic<int> fail_locks{0};           // the next N LockFile calls fail (a reopen fails)
  std::atomic<int> syncs_failed{0};         // how many syncs were failed on purpose
  // While set, a *.log sync waits (10 s at most) until released: one sync
  // per ReleaseSyncs(1), or all when hold_log_syncs is cleared. Keeps a
  // group commit in flight for as long as a test needs.
  std::atomic<bool> hold_log_syncs{false};
  std::atomic<int> held_syncs{0};  // syncs waiting now
  void ReleaseSyncs(int n) { released_syncs_ += n; }

  bool Applies(const std::string& f) const {
    return only.empty() || f.find(only) != std::string::npos;
  }
  static leveldb::Status NoSpace(const std::string& f) {
    return leveldb::Status::IOError(f, "No space left on device");
  }

  leveldb::Status NewWritableFile(const std::string& f, leveldb::WritableFile** r) override {
    if (leveldb::Status s = CheckNewFile(f); !s.ok()) return s;
    leveldb::Status s = target()->NewWritableFile(f, r);
    if (s.ok()) *r = new File(*r, this, f);
    return s;
  }
  leveldb::Status NewAppendableFile(const std::string& f, leveldb::WritableFile** r) override {
    if (leveldb::Status s = CheckNewFile(f); !s.ok()) return s;
    leveldb::Status s = target()->NewAppendableFile(f, r);
    if (s.ok()) *r = new File(*r, this, f);
    return s;
  }
  leveldb::Status LockFile(const std::string& f, leveldb::FileLock** l) override {
    if (Applies(f) && TakeOne(fail_locks))
      return leveldb::Status::IOError(f, "injected lock failure");
    return target()->LockFile(f, l);
  }

 private:
  static bool TakeOne(std::atomic<int>& n) {
    int cur = n.load();
    while (cur > 0 && !n.compare_exchange_weak(cur, cur - 1)) {
    }
    return cur > 0;
  }
  void Hold() {
    ++held_syncs;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (hold_log_syncs && !TakeOne(released_syncs_) &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    --held_syncs;
  }
  std::atomic<int> released_syncs_{0};

  leveldb::Status CheckNewFile(const std::string& f) {
    if (!Applies(f)) return leveldb::Status::OK();
    if (no_space) return NoSpace(f);
    if (fail_new_files) return leveldb::Status::IOError(f, "injected create failure");
    return leveldb::Status::OK();
  }

  class File : public leveldb::WritableFile {
   public:
    File(leveldb::WritableFile* base, FaultEnv* env, std::string name)
        : base_(base),
          env_(env),
          name_(std::move(name)),
          applies_(env->Applies(name_)),
          is_log_(name_.size() > 4 && name_.compare(name_.size() - 4, 4, ".log") == 0) {}
    ~File() override { delete base_; }
    leveldb::Status Append(const leveldb::Slice& d) override {
      if (applies_ && env_->no_space) return NoSpace(name_);
      if (applies_ && env_->fail) return leveldb::Status::IOError("injected append failure");
      return base_->Append(d);
    }
    leveldb::Status Close() override { return base_->Close(); }
    leveldb::Status Flush() override { return base_->Flush(); }
    leveldb::Status Sync() override {
      if (applies_ && env_->no_space) return NoSpace(name_);
      if (applies_ && env_->fail) return leveldb::Status::IOError("injected sync failure");
      if (applies_ && is_log_ && env_->hold_log_syncs) env_->Hold();
      if (applies_ && is_log_ && TakeOne(env_->fail_log_syncs)) {
        // The record was appended and flushed: it is in the file, not synced.
        base_->Flush();
        ++env_->syncs_failed;
        return leveldb::Status::IOError(name_, "injected sync failure");
      }
      return base_->Sync();
    }

   private:
    leveldb::WritableFile* base_;
    FaultEnv* env_;
    const std::string name_;
    const bool applies_;
    const bool is_log_;
  };
};

}  // namespace todo::testing
