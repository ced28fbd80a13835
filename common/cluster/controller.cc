#include "common/cluster/controller.h"

#include <algorithm>
#include <optional>

#include "common/cluster/balance.h"
#include "common/rendezvous.h"

namespace todo::cluster {
namespace {

void Erase(std::vector<std::string>* v, const std::string& s) {
  v->erase(std::remove(v->begin(), v->end(), s), v->end());
}

// Puts `name` into in_sync at its place in replica order.
void AddInSync(Partition* p, const std::string& name) {
  std::vector<std::string> in_sync;
  for (const std::string& r : p->replicas) {
    if (r == name || p->IsInSync(r)) in_sync.push_back(r);
  }
  p->in_sync = std::move(in_sync);
}

std::string Where(size_t p) { return "partition " + std::to_string(p) + ": "; }

}  // namespace

bool Controller::IsDead(const ClusterMap& map, const std::string& name,
                        const ControllerInput& in) const {
  if (in.alive.contains(name)) return false;
  const Member* m = map.FindMember(name);
  if (m != nullptr && m->data_id.empty()) {
    return in.now_ms >= started_ms_ + options_.never_joined_grace_ms;
  }
  return true;
}

Controller::Decision Controller::Decide(const ClusterMap& map, const ControllerInput& in) const {
  Decision d;
  ClusterMap next = map;
  const size_t n_parts = next.parts.size();
  auto dead = [&](const std::string& name) { return IsDead(next, name, in); };

  // 1. Joining members, and members back with another data dir.
  for (Member& m : next.members) {
    auto it = in.alive.find(m.name);
    if (it == in.alive.end()) {
      if (m.data_id.empty() && in.now_ms < started_ms_ + options_.never_joined_grace_ms) {
        d.recheck_at_ms = started_ms_ + options_.never_joined_grace_ms;
      }
      continue;
    }
    const std::string& id = it->second.data_id;
    if (m.incarnation != it->second.incarnation && m.data_id == id) {
      if (!m.incarnation.empty()) {
        d.log.push_back("member '" + m.name + "' is back under a new lease (" +
                        it->second.incarnation + ")");
      }
      m.incarnation = it->second.incarnation;
    }
    if (m.data_id == id) continue;
    if (m.data_id.empty()) {
      d.log.push_back("member '" + m.name + "' joined (data id " + id + ")");
      m.data_id = id;
      m.incarnation = it->second.incarnation;
      continue;
    }
    d.log.push_back("member '" + m.name + "' is back with another data dir (id " + m.data_id +
                    " -> " + id + "): what the map says it holds is void");
    for (size_t p = 0; p < n_parts; ++p) {
      Partition& part = next.parts[p];
      if (!part.HasReplica(m.name)) continue;
      bool others = std::any_of(part.in_sync.begin(), part.in_sync.end(),
                                [&](const std::string& r) { return r != m.name; });
      Erase(&part.in_sync, m.name);
      if (others) {
        Erase(&part.replicas, m.name);
      } else {
        d.log.push_back(Where(p) + "LOST: its last in-sync replica '" + m.name +
                        "' came back without its data; it stays unavailable");
      }
    }
    m.data_id = id;
    m.incarnation = it->second.incarnation;
  }

  for (size_t p = 0; p < n_parts; ++p) {
    Partition& part = next.parts[p];
    const std::string old_primary = part.primary();
    // 2. Dead replicas.
    const bool alive_in_sync = std::any_of(part.in_sync.begin(), part.in_sync.end(),
                                           [&](const std::string& r) { return !dead(r); });
    std::vector<std::string> kept;
    for (const std::string& r : part.replicas) {
      if (!dead(r) || (part.IsInSync(r) && !alive_in_sync)) kept.push_back(r);
    }
    // A lost partition whose placeholders are all dead keeps them: a
    // replica set is never empty.
    if (!kept.empty() && kept.size() != part.replicas.size()) {
      for (const std::string& r : part.replicas) {
        if (std::find(kept.begin(), kept.end(), r) != kept.end()) continue;
        d.log.push_back(Where(p) + "dead replica '" + r + "' removed" +
                        (part.IsInSync(r) ? " (an in-sync replica is alive)" : ""));
      }
      part.replicas = std::move(kept);
      std::vector<std::string> in_sync;
      for (const std::string& r : part.in_sync) {
        if (part.HasReplica(r)) in_sync.push_back(r);
      }
      part.in_sync = std::move(in_sync);
    }
    // 3. The primary: the first alive in-sync replica, if the current one
    // is not.
    if (dead(part.primary()) || !part.IsInSync(part.primary())) {
      auto it = std::find_if(part.replicas.begin(), part.replicas.end(),
                             [&](const std::string& r) { return !dead(r) && part.IsInSync(r); });
      if (it != part.replicas.end() && it != part.replicas.begin()) {
        std::rotate(part.replicas.begin(), it, it + 1);
        AddInSync(&part, part.primary());  // reorders in_sync to replica order
      }
    }
    if (!part.handoff.empty() &&
        (!part.HasReplica(part.handoff) || dead(part.handoff) || part.handoff == part.primary())) {
      part.handoff.clear();
    }
    if (part.primary() != old_primary) {
      d.log.push_back(Where(p) + "primary '" + old_primary + "' -> '" + part.primary() + "'");
    }
  }

  // 4. Reports of the current primaries, at the epoch they saw.
  // Partitions whose new epoch is the whole answer to a report.
  std::vector<bool> answered(n_parts, false);
  for (const NodeReport& rep : in.reports) {
    for (const ReplicaReport& r : rep.replicas) {
      if (r.partition >= n_parts) continue;
      const Partition& before = map.parts[r.partition];
      Partition& part = next.parts[r.partition];
      if (before.epoch != r.epoch || before.primary() != rep.name || part.primary() != rep.name) {
        continue;  // stale
      }
      if (r.replica == part.primary() || !part.HasReplica(r.replica)) continue;
      if (r.kind == ReplicaReport::Kind::kLagging && part.IsInSync(r.replica)) {
        Erase(&part.in_sync, r.replica);
        d.log.push_back(Where(r.partition) + "replica '" + r.replica + "' out of sync (primary '" +
                        rep.name + "' reports it lagging)");
      } else if (r.kind == ReplicaReport::Kind::kLagging) {
        // Not in sync here: its primary reported it caught up, and it
        // lagged before a map took it in. The primary keeps it required
        // (a map listing it in sync might be on its way) until a map at a
        // new epoch answers; then it lets it go and it catches up again.
        // Without this the primary waits for ever, and so does a move to it.
        answered[r.partition] = true;
        d.log.push_back(Where(r.partition) + "replica '" + r.replica +
                        "' lagged before it was taken in sync: a new epoch lets primary '" +
                        rep.name + "' release it");
      } else if (r.kind == ReplicaReport::Kind::kCaughtUp && !part.IsInSync(r.replica) &&
                 !dead(r.replica)) {
        AddInSync(&part, r.replica);
        d.log.push_back(Where(r.partition) + "replica '" + r.replica + "' in sync (caught up)");
      } else if (r.kind == ReplicaReport::Kind::kDrained && part.handoff == r.replica &&
                 part.IsInSync(r.replica) && !dead(r.replica)) {
        // The hand-off: the new primary leads; the old one leaves if the
        // move was taking its copy away, else stays a backup.
        const std::string old = part.primary();
        auto it = std::find(part.replicas.begin(), part.replicas.end(), r.replica);
        std::rotate(part.replicas.begin(), it, it + 1);
        part.handoff.clear();
        if (part.move_from == old && part.move_to == r.replica) {
          Erase(&part.replicas, old);
          part.move_from.clear();
          part.move_to.clear();
        }
        AddInSync(&part, part.primary());
        Erase(&part.in_sync, old);
        if (part.HasReplica(old)) AddInSync(&part, old);
        d.log.push_back(Where(r.partition) + "primary '" + old + "' handed off to '" + r.replica +
                        "'" + (part.HasReplica(old) ? "" : "; '" + old + "' left"));
      }
    }
  }

  // 5. Repair to R alive replicas, on the members holding the fewest.
  std::map<std::string, uint32_t> held;
  for (const Member& m : next.members) held[m.name] = 0;
  for (const Partition& part : next.parts) {
    for (const std::string& r : part.replicas) ++held[r];
  }
  for (size_t p = 0; p < n_parts; ++p) {
    Partition& part = next.parts[p];
    if (dead(part.primary()) || !part.IsInSync(part.primary())) continue;
    size_t live = std::count_if(part.replicas.begin(), part.replicas.end(),
                                [&](const std::string& r) { return !dead(r); });
    const std::string key = "partition-" + std::to_string(p);
    while (live < next.replicas) {
      const Member* best = nullptr;
      for (const Member& m : next.members) {
        if (m.leaving || m.data_id.empty() || !in.alive.contains(m.name) ||
            part.HasReplica(m.name)) {
          continue;
        }
        if (best == nullptr || held[m.name] < held[best->name] ||
            (held[m.name] == held[best->name] &&
             RendezvousScore(m.name, key) > RendezvousScore(best->name, key))) {
          best = &m;
        }
      }
      if (best == nullptr) break;
      part.replicas.push_back(best->name);
      ++held[best->name];
      ++live;
      d.log.push_back(Where(p) + "new replica '" + best->name + "' (catching up from '" +
                      part.primary() + "')");
    }
  }

  // 6. Moves: finish the ones in progress, then start new ones.
  size_t moving = 0;       // data moves (a new replica catching up, then maybe a hand-off)
  size_t handing_off = 0;  // leadership-only moves: no data copied
  bool repairing = false;
  for (size_t p = 0; p < n_parts; ++p) {
    Partition& part = next.parts[p];
    if (part.replicas.size() < next.replicas) repairing = true;
    if (!part.handoff.empty() && !part.IsInSync(part.handoff)) {
      d.log.push_back(Where(p) + "hand-off to '" + part.handoff + "' called off (not in sync)");
      part.handoff.clear();
    }
    if (!part.move_to.empty()) {
      if (!part.HasReplica(part.move_to) || dead(part.move_to)) {
        d.log.push_back(Where(p) + "move from '" + part.move_from + "' to '" + part.move_to +
                        "' abandoned (the new replica is gone)");
        Erase(&part.replicas, part.move_to);
        Erase(&part.in_sync, part.move_to);
        if (part.handoff == part.move_to) part.handoff.clear();
        part.move_from.clear();
        part.move_to.clear();
      } else if (!part.HasReplica(part.move_from)) {
        d.log.push_back(Where(p) + "move to '" + part.move_to + "' over ('" + part.move_from +
                        "' is gone)");
        part.move_from.clear();
        part.move_to.clear();
      } else if (part.IsInSync(part.move_to)) {
        if (part.move_from != part.primary()) {
          d.log.push_back(Where(p) + "moved from '" + part.move_from + "' to '" + part.move_to +
                          "'");
          Erase(&part.replicas, part.move_from);
          Erase(&part.in_sync, part.move_from);
          part.move_from.clear();
          part.move_to.clear();
        } else if (part.handoff.empty() && !dead(part.primary())) {
          part.handoff = part.move_to;
          d.log.push_back(Where(p) + "primary '" + part.primary() + "' hands off to '" +
                          part.move_to + "'");
        }
      }
    }
    if (!part.move_to.empty()) {
      ++moving;
    } else if (!part.handoff.empty()) {
      ++handing_off;
    }
  }
  // Members leaving that hold nothing any more leave.
  for (auto it = next.members.begin(); it != next.members.end();) {
    bool holds = false;
    for (const Partition& part : next.parts) holds = holds || part.HasReplica(it->name);
    if (it->leaving && !holds) {
      d.log.push_back("member '" + it->name + "' drained: no longer a member");
      it = next.members.erase(it);
    } else {
      ++it;
    }
  }
  // Planned whenever nothing is being repaired and there is room for a move;
  // always so when nothing moves, which is what ends an add below.
  std::optional<BalancePlan> plan;
  if (!repairing && (moving < options_.max_moves || handing_off < options_.max_handoffs)) {
    plan = PlanMoves(
        next, ActiveMembers(next, [&](const std::string& n) { return in.alive.contains(n); }));
    for (const Move& m : plan->moves) {
      if (moving >= options_.max_moves && handing_off >= options_.max_handoffs) break;
      if (m.role_only ? handing_off >= options_.max_handoffs : moving >= options_.max_moves) {
        continue;
      }
      Partition& part = next.parts[m.partition];
      if (!part.move_to.empty() || !part.handoff.empty() || !part.HasReplica(m.from) ||
          dead(m.from) || dead(part.primary()) || !part.IsInSync(part.primary())) {
        continue;
      }
      if (m.role_only) {
        if (!part.IsInSync(m.to)) continue;
        part.handoff = m.to;
        d.log.push_back(Where(m.partition) + "leadership moves: '" + m.from + "' hands off to '" +
                        m.to + "'");
        ++handing_off;
      } else {
        if (part.HasReplica(m.to)) continue;
        part.replicas.push_back(m.to);
        part.move_from = m.from;
        part.move_to = m.to;
        d.log.push_back(Where(m.partition) + "moving from '" + m.from + "' to '" + m.to +
                        "' (catching up from '" + part.primary() + "')");
        ++moving;
      }
    }
  }

  // An add is over once the cluster is balanced with the new member (no
  // repair, no move under way or just started, none planned), or once it is
  // gone or leaving. With nothing moving the plan above was made, on the
  // map as it is now (it started nothing).
  const bool balanced =
      !repairing && moving == 0 && handing_off == 0 && plan.has_value() && plan->balanced();
  for (Member& m : next.members) {
    if (!m.adding || m.data_id.empty()) continue;  // not run yet: still being added
    if (m.leaving || dead(m.name)) {
      m.adding = false;
      d.log.push_back("member '" + m.name + "': its add is over (" +
                      (m.leaving ? "it is leaving" : "it is down") + ")");
    } else if (balanced) {
      m.adding = false;
      d.log.push_back("member '" + m.name + "' added: the cluster is balanced with it");
    }
  }

  // Epochs and the version.
  bool any = next.members != map.members;
  for (size_t p = 0; p < n_parts; ++p) {
    Partition& part = next.parts[p];
    const Partition& before = map.parts[p];
    if (part == before && !answered[p]) continue;
    any = true;
    part.epoch = before.epoch + 1;
    if (part.primary() != before.primary()) part.leader_epoch = part.epoch;
  }
  if (any) {
    next.version = map.version + 1;
    d.next = std::move(next);
  }
  return d;
}

}  // namespace todo::cluster
