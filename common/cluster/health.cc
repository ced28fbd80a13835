#include "common/cluster/health.h"

#include "common/cluster/balance.h"

namespace todo::cluster {

PartitionHealth ClassifyPartition(const ClusterMap& map, const Partition& p, const AliveFn& alive) {
  PartitionHealth h;
  size_t alive_replicas = 0;
  bool not_in_sync = false;
  bool leaving = false;
  for (const std::string& r : p.replicas) {
    alive_replicas += alive(r) ? 1 : 0;
    not_in_sync |= !p.IsInSync(r);
    const Member* m = map.FindMember(r);
    leaving |= m != nullptr && m->leaving;
  }
  if (p.replicas.size() > map.replicas) h.move_reasons.push_back("more_replicas_than_r");
  if (!p.handoff.empty()) h.move_reasons.push_back("handoff");
  if (leaving) h.move_reasons.push_back("leaving_member");
  if (p.replicas.empty() || !alive(p.primary()) || !p.IsInSync(p.primary())) {
    h.state = PartitionState::kUnavailable;
  } else if (!h.move_reasons.empty()) {
    h.state = PartitionState::kMoving;
  } else if (alive_replicas < map.replicas) {
    h.state = PartitionState::kUnderReplicated;
  } else if (not_in_sync) {
    h.state = PartitionState::kCatchingUp;
  }
  return h;
}

ClusterHealth SummarizeHealth(const ClusterMap& map, const AliveFn& alive) {
  ClusterHealth h;
  for (const Member& m : map.members) {
    ++h.members;
    const bool up = alive(m.name);
    h.members_alive += up ? 1 : 0;
    h.members_leaving += m.leaving ? 1 : 0;
    h.members_joining += m.data_id.empty() ? 1 : 0;
  }
  for (const Partition& p : map.parts) {
    ++h.partitions_by_state[static_cast<size_t>(ClassifyPartition(map, p, alive).state)];
    for (const std::string& r : p.replicas) h.replicas_not_in_sync += p.IsInSync(r) ? 0 : 1;
    if (!p.move_to.empty() || !p.handoff.empty()) ++h.moves_in_progress;
  }
  h.moves_remaining = static_cast<uint32_t>(PlanMoves(map, ActiveMembers(map, alive)).moves.size());
  return h;
}

}  // namespace todo::cluster
