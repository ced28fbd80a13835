// ClusterView: the latest cluster map and live nodes a process has seen in
// etcd, as an immutable snapshot any thread can take. The cluster agent
// (node) or the map watcher (router) publishes; readers take a shared_ptr
// and keep it as long as they use it (a request's answer, a metrics page).
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "common/cluster/controller.h"
#include "common/cluster/map.h"

namespace todo::io {

struct ClusterSnapshot {
  std::shared_ptr<const cluster::ClusterMap> map;  // null until a valid map was read
  int64_t map_revision = 0;                        // its etcd mod_revision
  std::map<std::string, cluster::NodeInfo> alive;  // nodes with a live lease
  std::vector<cluster::NodeReport> reports;        // the primaries' requests
  std::string controller;                          // who holds the election ("" if nobody)
  std::string map_error;  // why the map in etcd was not taken ("" if it was, or there is none)
  // The mod_revision of the map key in etcd as last seen (0: no such key).
  // It differs from map_revision while the value there was not taken
  // (malformed, going back, deleted): the controller then writes the map in
  // force back over it, comparing against this revision.
  int64_t etcd_map_revision = 0;
  int64_t revision = 0;  // the etcd revision this snapshot reflects
};

class ClusterView {
 public:
  ClusterView() : snap_(std::make_shared<const ClusterSnapshot>()) {}

  std::shared_ptr<const ClusterSnapshot> Get() const {
    std::lock_guard<std::mutex> lock(mu_);
    return snap_;
  }
  // The snapshot and the version that published it, read together. A
  // reader that decides on a snapshot and remembers "decided up to version
  // V" must take both here: Get() then version() can pair an older
  // snapshot with a newer version, and the newer snapshot is then never
  // decided on (until the next change, which in a quiet cluster may not
  // come: a controller sat on a replica's "caught up" report for 60 s).
  std::pair<std::shared_ptr<const ClusterSnapshot>, uint64_t> GetVersioned() const {
    std::lock_guard<std::mutex> lock(mu_);
    return {snap_, version_.load(std::memory_order_relaxed)};
  }
  void Set(std::shared_ptr<const ClusterSnapshot> s) {
    std::lock_guard<std::mutex> lock(mu_);
    snap_ = std::move(s);
    version_.fetch_add(1, std::memory_order_release);
  }
  // Raised by every Set: a reader that cached a snapshot compares it. Read
  // before Get(), it can only be older than the snapshot (a change is seen
  // again, never missed).
  uint64_t version() const { return version_.load(std::memory_order_acquire); }

 private:
  mutable std::mutex mu_;
  std::shared_ptr<const ClusterSnapshot> snap_;  // guarded by mu_
  std::atomic<uint64_t> version_{0};
};

}  // namespace todo::io
