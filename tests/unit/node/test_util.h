// Helpers for node unit tests: temp dirs, building Calls, reading replies.
#pragma once

#include <gtest/gtest.h>
#include <leveldb/env.h>
#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <msgpack.hpp>
#include <string>

#include "common/protocol.h"
#include "node/message.h"
#include "node/reply_queue.h"

namespace todo::testing {

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/todo-unit-XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
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

inline protocol::Request Delete(std::string_view list, uint64_t entry_id, uint64_t id = 0) {
  protocol::Request r;
  r.op = protocol::Op::kDeleteEntry;
  r.list = list;
  r.entry_id = entry_id;
  r.id = protocol::RequestId::Uint(id);
  return r;
}

inline msgpack::object_handle Unpack(const node::Reply& r) {
  return msgpack::unpack(static_cast<const char*>(r.body.data()), r.body.size());
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

// An Env whose writable files fail Append/Sync while `fail` is set: a disk
// that errors, then recovers.
class FaultEnv : public leveldb::EnvWrapper {
 public:
  FaultEnv() : EnvWrapper(leveldb::Env::Default()) {}
  std::atomic<bool> fail{false};

  leveldb::Status NewWritableFile(const std::string& f, leveldb::WritableFile** r) override {
    leveldb::Status s = target()->NewWritableFile(f, r);
    if (s.ok()) *r = new File(*r, this);
    return s;
  }
  leveldb::Status NewAppendableFile(const std::string& f, leveldb::WritableFile** r) override {
    leveldb::Status s = target()->NewAppendableFile(f, r);
    if (s.ok()) *r = new File(*r, this);
    return s;
  }

 private:
  class File : public leveldb::WritableFile {
   public:
    File(leveldb::WritableFile* base, FaultEnv* env) : base_(base), env_(env) {}
    ~File() override { delete base_; }
    leveldb::Status Append(const leveldb::Slice& d) override {
      if (env_->fail) return leveldb::Status::IOError("injected append failure");
      return base_->Append(d);
    }
    leveldb::Status Close() override { return base_->Close(); }
    leveldb::Status Flush() override { return base_->Flush(); }
    leveldb::Status Sync() override {
      if (env_->fail) return leveldb::Status::IOError("injected sync failure");
      return base_->Sync();
    }

   private:
    leveldb::WritableFile* base_;
    FaultEnv* env_;
  };
};

}  // namespace todo::testing
