// The controller's decisions: given the map, which members are alive (their
// etcd leases), and what the primaries report, the next map. Pure and
// deterministic: no etcd, no clock (the caller passes `now`), so tests drive
// every rule with a fake clock and a fake map store. The process that holds
// the controller election (node/controller_host) applies the result by a
// compare-and-swap on the map it read.
//
// The rules, for each partition, in this order (each change raises the
// epoch; a new primary also sets leader_epoch):
//  1. Joining. A member seen alive for the first time gets its data id
//     recorded; every new incarnation of a member (a new lease: a restart,
//     or a lease lost and granted again) is recorded, which is what lets it
//     serve again (map.h, Member::incarnation). A member alive with another data id than recorded
//     (its data dir was wiped or replaced) holds nothing the map says it holds: it is taken out of
//     every replica set, and its data id updated. (Where it was the last in-sync replica the
//     partition is lost: it stays named, out of sync, so the partition answers `unavailable` and
//     status shows it.)
//  2. Dead members (no lease): a dead replica that is not in sync is
//     removed. Dead in-sync replicas are removed only while an alive in-sync
//     replica remains: acknowledged writes are never given up for
//     availability. A member that never joined since init counts as dead
//     only after `never_joined_grace` from the controller's start, so a
//     cluster starting up doesn't fail over nodes that are still starting.
//  3. Primary. If the primary is dead or was removed, the first alive
//     in-sync replica becomes primary. A replica not in sync never does.
//  4. Reports from the partition's current primary at the current epoch:
//     `lagging` takes a backup out of the in-sync set (it stays a replica
//     and catches up again); `caught_up` puts a replica back in.
//  5. Repair: while fewer than R replicas are alive and the partition has an
//     alive in-sync primary, add alive members (not leaving) that hold the
//     fewest replicas, ties to the highest rendezvous score of (member,
//     partition). They join out of sync and catch up from the primary.
//  6. Moves (balance.h), once nothing needs repair: a move's new replica
//     that is in sync replaces the old one (after a hand-off if the old one
//     leads: the primary drains and reports `drained`, rule 4, then the new
//     one leads at a new leader epoch); a move whose new replica died is
//     abandoned, one whose old replica died is over. Then new moves start,
//     at most `max_moves` data moves and `max_handoffs` leadership-only
//     moves at a time. A member leaving that holds nothing any
//     more leaves the members.
// Stale reports (another epoch, or from a node that is no longer primary)
// are ignored: the primary reports again under the new epoch if it must.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/cluster/map.h"

namespace todo::cluster {

// A live node, from its lease-bound announcement in etcd.
struct NodeInfo {
  std::string name;
  std::string data_id;      // its data dir's id
  std::string incarnation;  // its process's current lease (hex id)
  std::string endpoint;
  std::string repl_endpoint;
  // Its CurveZMQ public key (40 characters of Z85) when it runs with
  // --curve-secret: the key its client and replication ports prove, which
  // routers and peers expect. "" when it speaks plaintext.
  std::string curve_key;
  // The version of the map this process found saved in its data dir when
  // it started (the last one it ran on before; 0: none). The node whose
  // saved map is the newest restores it to etcd if etcd went back, and the
  // controller decides nothing on a map older than any of them.
  uint64_t map_version = 0;
  bool operator==(const NodeInfo&) const = default;
};

// A primary's request about one replica of one partition.
struct ReplicaReport {
  enum class Kind {
    // A backup did not acknowledge in time: out of sync, please (one not in
    // sync, reported caught up before: a new epoch, so the primary lets it go).
    kLagging,
    kCaughtUp,  // a replica holds every committed record: in sync, please
    kDrained,   // the primary handing off to `replica` has nothing in flight
  };
  Kind kind = Kind::kLagging;
  uint32_t partition = 0;
  std::string replica;
  uint64_t epoch = 0;  // the partition's epoch the primary saw
};

// What a node publishes for the controller (reports/<name> in etcd).
struct NodeReport {
  std::string name;
  std::vector<ReplicaReport> replicas;
};

struct ControllerInput {
  std::map<std::string, NodeInfo> alive;  // by name
  std::vector<NodeReport> reports;
  int64_t now_ms = 0;  // the caller's monotonic clock
};

struct ControllerOptions {
  int64_t never_joined_grace_ms = 10000;
  // Data moves at once, cluster-wide: a new replica catching up (snapshot
  // and tail), then the old one leaving, after a hand-off if it led.
  size_t max_moves = 1;
  // Leadership-only moves at once, cluster-wide (balance.h, role_only): the
  // primary drains, then an in-sync backup leads. They copy nothing, so they
  // don't wait behind each other: after a restart the returning node takes
  // its share of leadership back in one round instead of one partition per
  // map version, which would otherwise still be running when the next
  // failure comes.
  size_t max_handoffs = 16;
};

// State the controller keeps between decisions (its start time).
class Controller {
 public:
  Controller(ControllerOptions options, int64_t started_ms)
      : options_(options), started_ms_(started_ms) {}

  struct Decision {
    std::optional<ClusterMap> next;  // none: nothing to change
    std::vector<std::string> log;    // one line per change, for the log
    // The earliest time a decision may change with no new input (a grace
    // period ending); 0: none.
    int64_t recheck_at_ms = 0;
  };
  Decision Decide(const ClusterMap& map, const ControllerInput& in) const;

 private:
  bool IsDead(const ClusterMap& map, const std::string& name, const ControllerInput& in) const;

  const ControllerOptions options_;
  const int64_t started_ms_;
};

}  // namespace todo::cluster
