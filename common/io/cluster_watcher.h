// ClusterWatcher: follows a replicated cluster's state in etcd — the map,
// the live nodes, the primaries' reports, the controller — and publishes it
// as ClusterSnapshots (common/io/cluster_view.h). Used by todo-node (its
// cluster agent and controller), todo-router (routing) and todo-admin.
//
// Layout in etcd, under /todo/<cluster>/ (shared/spec/replication.md):
//   map              the cluster map, JSON (common/cluster/map.h); changed
//                    only by compare-and-swap on its mod_revision
//   nodes/<name>     a live node, bound to its lease: {"name", "data_id",
//                    "endpoint", "repl_endpoint", "incarnation", and
//                    "curve_key" (Z85) when it runs with CurveZMQ}
//   reports/<name>   a primary's requests to the controller, bound to its
//                    lease: {"reports": [{"kind": "lagging"|"caught_up"|"drained",
//                    "p": P, "replica": NAME, "epoch": E}, ...]}
//   controller       the controller election: the holder's name, bound to
//                    its lease
//
// Design: one read of the whole prefix, then a watch from the revision
// after it (EtcdWatch reconnects across etcd members and resumes where it
// was); if etcd compacted past it, read again and watch again. Every batch
// of events rebuilds the snapshot (the map is parsed only when it changed)
// and calls `on_change` on the watch's thread. A malformed map, node or
// report is logged (once per revision) and ignored: the last valid map
// stays in force, so nothing is misread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "common/cluster/controller.h"
#include "common/io/cluster_view.h"
#include "common/io/etcd/client.h"
#include "common/io/etcd/watch.h"

namespace todo::io {

// The keys of a cluster named `cluster`.
struct ClusterKeys {
  explicit ClusterKeys(std::string_view cluster);
  std::string prefix;      // /todo/<cluster>/
  std::string map;         // .../map
  std::string nodes;       // .../nodes/
  std::string reports;     // .../reports/
  std::string controller;  // .../controller
  std::string Node(std::string_view name) const { return nodes + std::string(name); }
  std::string Report(std::string_view name) const { return reports + std::string(name); }
};

// JSON codecs of the values above (nlohmann); errors name what is wrong.
std::string FormatNodeInfo(const cluster::NodeInfo& n);
StatusOr<cluster::NodeInfo> ParseNodeInfo(std::string_view json);
std::string FormatReports(const std::vector<cluster::ReplicaReport>& reports);
StatusOr<std::vector<cluster::ReplicaReport>> ParseReports(std::string_view json);

// Reads the whole state once (todo-admin, tests).
StatusOr<ClusterSnapshot> ReadCluster(EtcdClient* client, const ClusterKeys& keys);

class ClusterWatcher {
 public:
  using OnChange = std::function<void(const std::shared_ptr<const ClusterSnapshot>&)>;

  // `client` and `view` outlive the watcher. Every new snapshot is set in
  // `view`, then passed to `on_change` (may be empty), on the watcher's
  // thread.
  ClusterWatcher(EtcdClient* client, std::string cluster, ClusterView* view, OnChange on_change);
  ~ClusterWatcher();  // Stop()

  // Before Start(): the map to hold the one in etcd against from the start
  // (a node's map saved in its data dir): etcd's is taken only if it
  // follows this one (cluster::CheckFollows); until then this one is in
  // force, with map_revision 0.
  void SetFloor(std::shared_ptr<const cluster::ClusterMap> floor);
  // Starts the thread: reads (retrying, with a log line, while etcd can't
  // be reached), then watches. Returns at once.
  void Start();
  void Stop();

  // A snapshot with a map has been published.
  bool has_map() const { return has_map_.load(std::memory_order_acquire); }
  // Waits (bounded) for a first map; false if none came.
  bool WaitForMap(std::chrono::milliseconds timeout);

 private:
  void Loop();
  // Reads everything; true on success (then watches from its revision).
  bool ReadAll(int64_t* revision);
  void Apply(const std::vector<Event>& events);
  void Publish();

  EtcdClient* const client_;
  const ClusterKeys keys_;
  ClusterView* const view_;
  const OnChange on_change_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> has_map_{false};
  std::mutex mu_;  // for WaitForMap and Stop
  std::condition_variable cv_;

  // Watch thread only (and the loop thread before the watch starts).
  std::map<std::string, KeyValue> kvs_;  // every key under the prefix
  std::shared_ptr<const cluster::ClusterMap> map_;
  int64_t map_revision_ = 0;
  int64_t bad_map_logged_ = 0;  // the mod_revision whose malformed map was logged
};

}  // namespace todo::io
