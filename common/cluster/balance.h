// Balancing: which replicas must move so that the active members hold
// about the same number of replicas (R·P/N each) and lead about the same
// number of partitions (P/N each), and members leaving hold nothing. Pure
// and deterministic; the controller starts the first few of these moves,
// todo-admin status shows how many remain.
//
// A move of partition p from A to B is carried out by the controller
// (controller.h) as: B joins p's replicas and catches up (snapshot, then
// tail); once B is in sync, A leaves — after handing the primary role to B
// if A led p. A role move swaps only who leads (B already holds an in-sync
// copy): A hands off, B leads, A stays a backup.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/cluster/map.h"

namespace todo::cluster {

struct Move {
  uint32_t partition = 0;
  std::string from;
  std::string to;
  bool role_only = false;  // lead swap, no data copied
  bool operator==(const Move&) const = default;
};

struct BalancePlan {
  std::vector<Move> moves;  // still to do, in the order they would start
  bool balanced() const { return moves.empty(); }
};

// The members that may hold replicas: joined (ran once), not leaving, and
// alive by `alive`; in map order.
std::vector<std::string> ActiveMembers(const ClusterMap& map,
                                       const std::function<bool(const std::string&)>& alive);

// `active`: the members that may hold replicas (ActiveMembers). Moves in progress in `map` count as
// done. Partitions with fewer than R replicas are repair's business and are left alone.
BalancePlan PlanMoves(const ClusterMap& map, const std::vector<std::string>& active);

}  // namespace todo::cluster
