// Group: the puts and deletes of one group commit, gathered from client
// writes (views into their Mutations), replicated records and snapshot
// chunks (views into received frames, kept alive here), and bytes made for
// the group (partition meta values, kept here). The writer appends them to
// one leveldb::WriteBatch in key order (stable: one key's mutations keep
// their order), which lets LevelDB's skiplist find neighbouring keys' paths
// in cache. Writer thread only.
#pragma once

#include <leveldb/write_batch.h>

#include <algorithm>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <vector>
#include <zmq.hpp>

namespace todo::store {

class Group {
 public:
  void Put(std::string_view key, std::string_view value) { muts_.push_back({key, value, true}); }
  void Delete(std::string_view key) { muts_.push_back({key, {}, false}); }
  // Keeps `bytes` for the group's lifetime; the view stays valid.
  std::string_view Own(std::string bytes) {
    owned_.push_back(std::move(bytes));
    return owned_.back();
  }
  // Keeps a received frame alive until the group is written.
  void Keep(std::shared_ptr<zmq::message_t> frame) {
    if (frames_.empty() || frames_.back() != frame) frames_.push_back(std::move(frame));
  }
  bool empty() const { return muts_.empty(); }
  size_t size() const { return muts_.size(); }

  // Builds `batch` (cleared first) in key order.
  void BuildSorted(leveldb::WriteBatch* batch) {
    std::stable_sort(muts_.begin(), muts_.end(),
                     [](const Mutation& a, const Mutation& b) { return a.key < b.key; });
    batch->Clear();
    for (const Mutation& m : muts_) {
      if (m.put) {
        batch->Put(leveldb::Slice(m.key.data(), m.key.size()),
                   leveldb::Slice(m.value.data(), m.value.size()));
      } else {
        batch->Delete(leveldb::Slice(m.key.data(), m.key.size()));
      }
    }
  }
  void Clear() {
    muts_.clear();
    owned_.clear();
    frames_.clear();
  }

 private:
  struct Mutation {
    std::string_view key;
    std::string_view value;
    bool put;
  };
  std::vector<Mutation> muts_;
  std::deque<std::string> owned_;
  std::vector<std::shared_ptr<zmq::message_t>> frames_;
};

}  // namespace todo::store
