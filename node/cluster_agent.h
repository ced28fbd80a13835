// ClusterAgent: a replicated node's link to etcd — its lease, its
// announcement, the map it follows, its reports to the controller, and the
// controller itself when this node wins the election.
//
// Threads (each bounded, each stopped by Stop()):
//  - the LeaseKeeper's: keeps the node's lease alive (--lease-ms) and says
//    until when it is surely still valid;
//  - the ClusterWatcher's: follows /todo/<cluster>/ and, on every change,
//    hands each shard writer the new map (only when it changed) and the
//    replication thread the live peers' endpoints;
//  - the agent's own loop (every 10 ms, or when woken): copies the lease's
//    validity into the PartitionTable (fencing), announces the node under
//    each new lease, publishes the shards' reports, and runs the controller
//    (common/cluster/controller.h) while it holds the election: every
//    change to the map is one transaction that compares the map's
//    mod_revision and that the election key is still ours.
// Stop(): fences first (the table's lease becomes invalid, so nothing is
// served any more), then stops the threads and revokes the lease, so the
// controller fails over at once rather than after the TTL.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/cluster/controller.h"
#include "common/io/cluster_view.h"
#include "common/io/cluster_watcher.h"
#include "common/io/etcd/client.h"
#include "common/io/etcd/election.h"
#include "common/io/etcd/lease_keeper.h"
#include "node/replication/partition_table.h"
#include "node/replication/repl_io.h"
#include "node/store/store.h"

namespace todo::node {

class ClusterAgent {
 public:
  struct Options {
    std::string name;
    std::string cluster = "todo";
    std::string endpoint;       // advertised for clients
    std::string repl_endpoint;  // advertised for the other nodes
    std::string curve_key;      // its CURVE public key (Z85), "" if plaintext
    std::string data_id;
    std::chrono::milliseconds lease{2000};
    bool host_controller = true;
    int64_t never_joined_grace_ms = 10000;
    size_t max_moves = 1;
    size_t max_handoffs = 16;
  };

  // Every pointer outlives the agent. `etcd` serves the watch, the
  // announcement and the controller; `lease_etcd` (with short timeouts)
  // only the lease.
  ClusterAgent(Options options, io::EtcdClient* etcd, io::EtcdClient* lease_etcd,
               PartitionTable* table, io::ClusterView* view, store::Store* store, ReplIo* io);
  ~ClusterAgent();  // Stop()

  Status Start();
  void Stop();

  bool is_controller() const { return leader_.load(std::memory_order_acquire); }
  io::LeaseKeeper& lease() { return *lease_; }

 private:
  void OnSnapshot(const std::shared_ptr<const io::ClusterSnapshot>& snap);
  void Loop();
  void Announce(int64_t lease_id);
  void PublishReports(int64_t lease_id);
  void RunController(std::chrono::steady_clock::time_point now);
  // The map in force saved to the data dir, if taken from etcd and newer
  // than the one saved (OnSnapshot, before the shards are handed it).
  void SaveMap(const io::ClusterSnapshot& snap);
  // Whether this node may host the controller on the map in force: it is
  // at least as new as every live member's saved map (NodeInfo::
  // map_version), and, when it is this node's own saved map (etcd's went
  // back), every member is up to say which map it last ran on.
  bool MayDecide(const io::ClusterSnapshot& snap);
  void Wake();

  const Options options_;
  io::EtcdClient* const etcd_;
  io::EtcdClient* const lease_etcd_;
  PartitionTable* const table_;
  io::ClusterView* const view_;
  store::Store* const store_;
  ReplIo* const io_;
  const io::ClusterKeys keys_;
  io::Election election_;
  std::unique_ptr<io::LeaseKeeper> lease_;
  std::unique_ptr<io::ClusterWatcher> watcher_;
  std::thread thread_;

  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;          // guarded by mu_
  bool woken_ = false;         // guarded by mu_
  int64_t granted_lease_ = 0;  // guarded by mu_: a new lease to announce under

  // OnSnapshot runs on the watcher's thread, and on the agent's after each
  // announcement and lease loss: serialized by this lock.
  std::mutex snapshot_mu_;
  int64_t posted_map_revision_ = -1;                                 // guarded by snapshot_mu_
  bool posted_data_ok_ = false;                                      // guarded by snapshot_mu_
  uint64_t warned_not_member_ = 0;                                   // guarded by snapshot_mu_
  std::chrono::steady_clock::time_point next_not_member_warning_{};  // guarded by snapshot_mu_
  // The lease the node is announced under (its incarnation); 0: none (lost).
  std::atomic<int64_t> incarnation_{0};

  // Agent thread only.
  int64_t announced_lease_ = 0;
  int64_t reported_lease_ = 0;
  std::vector<uint64_t> reports_versions_;
  std::optional<cluster::Controller> controller_;
  std::optional<io::Leadership> leadership_;
  std::atomic<bool> leader_{false};
  uint64_t decided_view_ = UINT64_MAX;  // the view version last decided on
  int64_t recheck_at_ms_ = 0;
  std::chrono::steady_clock::time_point next_campaign_{};
  std::chrono::steady_clock::time_point started_;
  uint64_t start_map_version_ = 0;  // of the map found saved at Start() (0: none)
  uint64_t saved_map_version_ = 0;  // of the map last saved; guarded by snapshot_mu_
  std::string said_waiting_;        // why the controller may not decide, as last logged
};

}  // namespace todo::node
