#include "common/cluster/balance.h"

#include <algorithm>
#include <map>
#include <set>

namespace todo::cluster {

std::vector<std::string> ActiveMembers(const ClusterMap& map,
                                       const std::function<bool(const std::string&)>& alive) {
  std::vector<std::string> active;
  for (const Member& m : map.members) {
    if (!m.leaving && !m.data_id.empty() && alive(m.name)) active.push_back(m.name);
  }
  return active;
}

BalancePlan PlanMoves(const ClusterMap& map, const std::vector<std::string>& active_list) {
  BalancePlan plan;
  const std::set<std::string> active(active_list.begin(), active_list.end());
  if (active.empty()) return plan;
  // The replica sets as they will be once the moves in progress are done.
  std::vector<std::vector<std::string>> reps(map.parts.size());
  std::vector<bool> movable(map.parts.size(), true);
  for (size_t p = 0; p < map.parts.size(); ++p) {
    const Partition& part = map.parts[p];
    std::vector<std::string> r = part.replicas;
    if (!part.move_to.empty()) {
      r.erase(std::remove(r.begin(), r.end(), part.move_to), r.end());
      for (std::string& n : r) {
        if (n == part.move_from) n = part.move_to;
      }
      movable[p] = false;
    } else if (!part.handoff.empty()) {
      auto it = std::find(r.begin(), r.end(), part.handoff);
      std::rotate(r.begin(), it, it + 1);
      movable[p] = false;
    }
    if (r.size() < map.replicas) movable[p] = false;  // repair first
    reps[p] = std::move(r);
  }
  // Who may hold replicas, and who must not (members leaving).
  std::set<std::string> leaving;
  for (const Member& m : map.members) {
    if (m.leaving) leaving.insert(m.name);
  }
  std::map<std::string, long> held, led;
  for (const std::string& n : active) held[n] = led[n] = 0;
  for (const auto& r : reps) {
    for (size_t i = 0; i < r.size(); ++i) {
      ++held[r[i]];
      if (i == 0) ++led[r[i]];
    }
  }
  auto holds = [&](size_t p, const std::string& n) {
    return std::find(reps[p].begin(), reps[p].end(), n) != reps[p].end();
  };
  auto least = [&](const std::map<std::string, long>& count, auto&& ok) -> std::string {
    std::string best;
    for (const std::string& n : active) {
      if (!ok(n)) continue;
      if (best.empty() || count.at(n) < count.at(best)) best = n;
    }
    return best;
  };
  // Replicas: from members leaving, then from the most loaded while the
  // spread is more than one. Each step moves one replica; at most P·R steps.
  const size_t bound = reps.size() * (map.replicas + 1) + 16;
  for (size_t step = 0; step < bound; ++step) {
    std::string from;
    for (const std::string& n : leaving) {
      if (held.count(n) && held[n] > 0) {
        from = n;
        break;
      }
    }
    bool from_leaving = !from.empty();
    if (!from_leaving) {
      std::string most, fewest;
      for (const std::string& n : active) {
        if (most.empty() || held[n] > held[most]) most = n;
        if (fewest.empty() || held[n] < held[fewest]) fewest = n;
      }
      if (held[most] - held[fewest] <= 1) break;
      from = most;
    }
    // The partition: one `from` holds and some active member with room
    // doesn't; a backup copy first (moving it needs no hand-off).
    Move best;
    bool found = false;
    for (int pass = 0; pass < 2 && !found; ++pass) {
      for (size_t p = 0; p < reps.size() && !found; ++p) {
        if (!movable[p] || !holds(p, from)) continue;
        const bool is_primary = reps[p].front() == from;
        if (pass == 0 && is_primary) continue;
        std::string to = least(held, [&](const std::string& n) { return !holds(p, n); });
        if (to.empty() || (!from_leaving && held[to] + 1 >= held[from])) continue;
        best = Move{static_cast<uint32_t>(p), from, to, false};
        found = true;
      }
    }
    if (!found) {
      if (from_leaving) leaving.erase(from);  // nowhere to go (too few members)
      if (!from_leaving) break;
      continue;
    }
    std::vector<std::string>& r = reps[best.partition];
    const bool was_primary = r.front() == from;
    for (std::string& n : r) {
      if (n == from) n = best.to;
    }
    --held[from];
    ++held[best.to];
    if (was_primary) {
      --led[from];
      ++led[best.to];
    }
    movable[best.partition] = false;  // one move per partition at a time
    plan.moves.push_back(std::move(best));
  }
  // Leadership: swap roles from the member leading the most to one leading
  // the fewest, where the latter holds a copy.
  for (size_t step = 0; step < bound; ++step) {
    std::string most, fewest;
    for (const std::string& n : active) {
      if (most.empty() || led[n] > led[most]) most = n;
      if (fewest.empty() || led[n] < led[fewest]) fewest = n;
    }
    if (most.empty() || led[most] - led[fewest] <= 1) break;
    bool found = false;
    // Prefer the member leading the fewest; else any that leads less.
    std::vector<std::string> takers(active.begin(), active.end());
    std::stable_sort(takers.begin(), takers.end(),
                     [&](const std::string& a, const std::string& b) { return led[a] < led[b]; });
    for (const std::string& to : takers) {
      if (led[most] - led[to] <= 1) break;
      for (size_t p = 0; p < reps.size() && !found; ++p) {
        if (!movable[p] || reps[p].front() != most || !holds(p, to)) continue;
        auto it = std::find(reps[p].begin(), reps[p].end(), to);
        std::rotate(reps[p].begin(), it, it + 1);
        --led[most];
        ++led[to];
        movable[p] = false;
        plan.moves.push_back(Move{static_cast<uint32_t>(p), most, to, true});
        found = true;
      }
      if (found) break;
    }
    if (!found) break;
  }
  return plan;
}

}  // namespace todo::cluster
