// The cluster's health at a glance, from its map and which members are
// alive: each partition's state, and the counts the router exports as
// gauges on /metrics and the operator's page shows (members alive, down,
// leaving, joining; partitions by state; replicas not in sync; moves in
// progress and still to make). Pure: the caller says who is alive (a live
// lease in etcd).
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/cluster/map.h"

namespace todo::cluster {

enum class PartitionState : uint8_t {
  kOk,               // R replicas, all alive and in sync
  kCatchingUp,       // a replica not in sync yet (repair or a new copy)
  kUnderReplicated,  // fewer than R live replicas
  kMoving,           // a hand-off, a member leaving, or an extra replica joining
  kUnavailable,      // no live in-sync primary: requests get `unavailable`
};
inline constexpr std::array<const char*, 5> kPartitionStateNames = {
    "ok", "catching_up", "under_replicated", "moving", "unavailable"};

using AliveFn = std::function<bool(const std::string& name)>;

struct PartitionHealth {
  PartitionState state = PartitionState::kOk;
  // Why it counts as moving: "more_replicas_than_r", "handoff",
  // "leaving_member" (empty if it is not).
  std::vector<std::string> move_reasons;
};

PartitionHealth ClassifyPartition(const ClusterMap& map, const Partition& p, const AliveFn& alive);

struct ClusterHealth {
  uint32_t members = 0;
  uint32_t members_alive = 0;    // with a live lease
  uint32_t members_leaving = 0;  // remove-node: draining
  uint32_t members_joining = 0;  // add-node: never ran yet
  std::array<uint32_t, kPartitionStateNames.size()> partitions_by_state{};
  uint32_t replicas_not_in_sync = 0;  // (partition, replica) pairs
  uint32_t moves_in_progress = 0;     // partitions with a move or a hand-off under way
  uint32_t moves_remaining = 0;       // more moves the balancer would make (PlanMoves)
  // Nothing moving, nothing left to move, nobody joining or leaving.
  bool balanced() const {
    return moves_in_progress == 0 && moves_remaining == 0 && members_leaving == 0 &&
           members_joining == 0;
  }
};

ClusterHealth SummarizeHealth(const ClusterMap& map, const AliveFn& alive);

}  // namespace todo::cluster
