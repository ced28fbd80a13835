#include "common/cluster/map.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>

#include "common/names.h"
#include "common/rendezvous.h"

namespace todo::cluster {

using nlohmann::json;

uint32_t PartitionOf(std::string_view list, uint32_t partitions) {
  return static_cast<uint32_t>(Mix64(Fnv1a64(list)) % partitions);
}

bool Partition::HasReplica(std::string_view n) const {
  return std::find(replicas.begin(), replicas.end(), n) != replicas.end();
}

bool Partition::IsInSync(std::string_view n) const {
  return std::find(in_sync.begin(), in_sync.end(), n) != in_sync.end();
}

const Member* ClusterMap::FindMember(std::string_view name) const {
  for (const Member& m : members) {
    if (m.name == name) return &m;
  }
  return nullptr;
}

Member* ClusterMap::FindMember(std::string_view name) {
  for (Member& m : members) {
    if (m.name == name) return &m;
  }
  return nullptr;
}

Status Validate(const ClusterMap& map) {
  auto bad = [](std::string m) { return Status::BadRequest("map: " + std::move(m)); };
  if (map.partitions < 1 || map.partitions > kMaxPartitions) {
    return bad("partitions must be 1-" + std::to_string(kMaxPartitions) + ", not " +
               std::to_string(map.partitions));
  }
  if (map.replicas < 1 || map.replicas > kMaxReplicas) {
    return bad("replicas must be 1-" + std::to_string(kMaxReplicas) + ", not " +
               std::to_string(map.replicas));
  }
  if (map.min_insync < 1 || map.min_insync > map.replicas) {
    return bad("min_insync must be 1-" + std::to_string(map.replicas) + " (the replicas), not " +
               std::to_string(map.min_insync));
  }
  if (map.members.empty()) return bad("no members");
  if (map.members.size() > kMaxMembers) return bad("more than 1024 members");
  std::set<std::string_view> names;
  for (const Member& m : map.members) {
    if (!IsValidNodeName(m.name)) return bad("member name '" + m.name + "' is not a valid name");
    if (!names.insert(m.name).second) return bad("member '" + m.name + "' listed twice");
    if (m.data_id.size() > 128 || m.incarnation.size() > 128) {
      return bad("member '" + m.name + "' has a data id or incarnation over 128 bytes");
    }
  }
  if (map.parts.size() != map.partitions) {
    return bad("has " + std::to_string(map.parts.size()) + " partitions, not " +
               std::to_string(map.partitions));
  }
  for (size_t i = 0; i < map.parts.size(); ++i) {
    const Partition& p = map.parts[i];
    const std::string where = "partition " + std::to_string(i) + ": ";
    if (p.replicas.empty()) return bad(where + "no replicas");
    if (p.replicas.size() > kMaxReplicas + 1) return bad(where + "too many replicas");
    std::set<std::string_view> seen;
    for (const std::string& r : p.replicas) {
      if (!names.contains(r)) return bad(where + "replica '" + r + "' is not a member");
      if (!seen.insert(r).second) return bad(where + "replica '" + r + "' listed twice");
    }
    // in_sync: a subset of the replicas, in replica order.
    size_t at = 0;
    for (const std::string& s : p.in_sync) {
      while (at < p.replicas.size() && p.replicas[at] != s) ++at;
      if (at == p.replicas.size()) {
        return bad(where + "in_sync '" + s + "' is not a replica, or out of replica order");
      }
      ++at;
    }
    if (p.epoch == 0) return bad(where + "epoch 0");
    if (p.leader_epoch == 0 || p.leader_epoch > p.epoch) {
      return bad(where + "leader_epoch must be 1..epoch");
    }
    if (!p.handoff.empty() && (!p.HasReplica(p.handoff) || p.handoff == p.primary())) {
      return bad(where + "handoff '" + p.handoff + "' is not a backup");
    }
    if (p.move_from.empty() != p.move_to.empty() ||
        (!p.move_to.empty() &&
         (!p.HasReplica(p.move_to) || !p.HasReplica(p.move_from) || p.move_to == p.move_from))) {
      return bad(where + "move from '" + p.move_from + "' to '" + p.move_to +
                 "' does not name two of its replicas");
    }
  }
  return Status::Ok();
}

std::string FormatMap(const ClusterMap& map) {
  json j;
  j["partitions"] = map.partitions;
  j["replicas"] = map.replicas;
  j["min_insync"] = map.min_insync;
  j["hash"] = kHashName;
  j["version"] = map.version;
  json members = json::array();
  for (const Member& m : map.members) {
    json jm = {{"name", m.name}, {"data_id", m.data_id}, {"incarnation", m.incarnation}};
    if (m.leaving) jm["leaving"] = true;
    if (m.adding) jm["adding"] = true;
    members.push_back(std::move(jm));
  }
  j["members"] = std::move(members);
  json parts = json::array();
  for (size_t i = 0; i < map.parts.size(); ++i) {
    const Partition& p = map.parts[i];
    json jp = {{"p", i},
               {"epoch", p.epoch},
               {"leader_epoch", p.leader_epoch},
               {"replicas", p.replicas},
               {"in_sync", p.in_sync}};
    if (!p.handoff.empty()) jp["handoff"] = p.handoff;
    if (!p.move_to.empty()) {
      jp["move_from"] = p.move_from;
      jp["move_to"] = p.move_to;
    }
    parts.push_back(std::move(jp));
  }
  j["parts"] = std::move(parts);
  return j.dump();
}

namespace {

// Reads j[key] as T, or fails with a message naming the key and `where`.
template <typename T>
Status Get(const json& j, const char* key, const std::string& where, T* out, bool required = true) {
  auto it = j.find(key);
  if (it == j.end()) {
    if (!required) return Status::Ok();
    return Status::BadRequest("map: " + where + "missing key '" + key + "'");
  }
  try {
    if constexpr (std::is_same_v<T, uint64_t> || std::is_same_v<T, uint32_t>) {
      if (!it->is_number_unsigned()) {
        return Status::BadRequest("map: " + where + "key '" + key +
                                  "' must be an unsigned integer");
      }
      uint64_t v = it->get<uint64_t>();
      if (v > std::numeric_limits<T>::max()) {
        return Status::BadRequest("map: " + where + "key '" + key + "' is too large");
      }
      *out = static_cast<T>(v);
    } else if constexpr (std::is_same_v<T, bool>) {
      if (!it->is_boolean()) {
        return Status::BadRequest("map: " + where + "key '" + key + "' must be a boolean");
      }
      *out = it->get<bool>();
    } else if constexpr (std::is_same_v<T, std::string>) {
      if (!it->is_string()) {
        return Status::BadRequest("map: " + where + "key '" + key + "' must be a string");
      }
      *out = it->get<std::string>();
    } else {
      static_assert(std::is_same_v<T, std::vector<std::string>>);
      if (!it->is_array()) {
        return Status::BadRequest("map: " + where + "key '" + key + "' must be an array");
      }
      out->clear();
      for (const json& e : *it) {
        if (!e.is_string()) {
          return Status::BadRequest("map: " + where + "key '" + key + "' must hold strings");
        }
        out->push_back(e.get<std::string>());
      }
    }
  } catch (const json::exception& e) {
    return Status::BadRequest("map: " + where + "key '" + key + "': " + e.what());
  }
  return Status::Ok();
}

}  // namespace

Status CheckFollows(const ClusterMap& taken, const ClusterMap& next) {
  if (next.partitions != taken.partitions) {
    return Status::BadRequest(
        "it has " + std::to_string(next.partitions) + " partitions where the map in force has " +
        std::to_string(taken.partitions) + " (P is fixed when the cluster is created)");
  }
  if (next.version < taken.version) {
    return Status::BadRequest("its version " + std::to_string(next.version) +
                              " is older than the map in force (version " +
                              std::to_string(taken.version) + ")");
  }
  for (uint32_t p = 0; p < next.partitions; ++p) {
    const Partition& a = taken.parts[p];
    const Partition& b = next.parts[p];
    if (b.epoch < a.epoch || b.leader_epoch < a.leader_epoch) {
      return Status::BadRequest(
          "partition " + std::to_string(p) + " goes back from epoch " + std::to_string(a.epoch) +
          " (leader epoch " + std::to_string(a.leader_epoch) + ") to epoch " +
          std::to_string(b.epoch) + " (leader epoch " + std::to_string(b.leader_epoch) + ")");
    }
  }
  if (next.version == taken.version && !(next == taken)) {
    return Status::BadRequest("it differs from the map in force under the same version " +
                              std::to_string(next.version));
  }
  return Status::Ok();
}

StatusOr<ClusterMap> ParseMap(std::string_view text) {
  json j = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Status::BadRequest("map: not valid JSON");
  if (!j.is_object()) return Status::BadRequest("map: not a JSON object");
  ClusterMap map;
  std::string hash;
  for (Status s : {Get(j, "partitions", "", &map.partitions), Get(j, "replicas", "", &map.replicas),
                   Get(j, "min_insync", "", &map.min_insync), Get(j, "version", "", &map.version),
                   Get(j, "hash", "", &hash)}) {
    if (!s.ok()) return s;
  }
  if (hash != kHashName) {
    return Status::BadRequest("map: hash '" + hash + "' is not the one this build computes ('" +
                              std::string(kHashName) + "')");
  }
  auto members = j.find("members");
  if (members == j.end() || !members->is_array()) {
    return Status::BadRequest("map: key 'members' must be an array");
  }
  for (const json& jm : *members) {
    if (!jm.is_object()) return Status::BadRequest("map: a member must be an object");
    Member m;
    for (Status s : {Get(jm, "name", "member: ", &m.name),
                     Get(jm, "data_id", "member: ", &m.data_id, /*required=*/false),
                     Get(jm, "incarnation", "member: ", &m.incarnation, /*required=*/false),
                     Get(jm, "leaving", "member: ", &m.leaving, /*required=*/false),
                     Get(jm, "adding", "member: ", &m.adding, /*required=*/false)}) {
      if (!s.ok()) return s;
    }
    map.members.push_back(std::move(m));
  }
  auto parts = j.find("parts");
  if (parts == j.end() || !parts->is_array()) {
    return Status::BadRequest("map: key 'parts' must be an array");
  }
  for (const json& jp : *parts) {
    if (!jp.is_object()) return Status::BadRequest("map: a partition must be an object");
    const std::string where = "partition " + std::to_string(map.parts.size()) + ": ";
    Partition p;
    uint32_t index = 0;
    for (Status s : {Get(jp, "p", where, &index), Get(jp, "epoch", where, &p.epoch),
                     Get(jp, "leader_epoch", where, &p.leader_epoch),
                     Get(jp, "replicas", where, &p.replicas), Get(jp, "in_sync", where, &p.in_sync),
                     Get(jp, "handoff", where, &p.handoff, /*required=*/false),
                     Get(jp, "move_from", where, &p.move_from, /*required=*/false),
                     Get(jp, "move_to", where, &p.move_to, /*required=*/false)}) {
      if (!s.ok()) return s;
    }
    if (index != map.parts.size()) {
      return Status::BadRequest("map: " + where + "numbered " + std::to_string(index));
    }
    map.parts.push_back(std::move(p));
  }
  if (Status s = Validate(map); !s.ok()) return s;
  return map;
}

StatusOr<ClusterMap> NewClusterMap(std::vector<std::string> members, uint32_t partitions,
                                   uint32_t replicas, uint32_t min_insync) {
  ClusterMap map;
  map.partitions = partitions;
  map.replicas = replicas;
  map.min_insync = min_insync;
  for (std::string& n : members) {
    Member m;
    m.name = std::move(n);
    map.members.push_back(std::move(m));
  }
  if (replicas > map.members.size()) {
    return Status::BadRequest("--replicas " + std::to_string(replicas) +
                              " needs at least as many " + "members, not " +
                              std::to_string(map.members.size()));
  }
  // Greedy and deterministic: each partition's primary is the member with
  // the fewest primaries so far, its backups those with the fewest replicas;
  // ties go to the highest rendezvous score of (member, partition), so the
  // pairs of replicas differ from partition to partition.
  const size_t n = map.members.size();
  std::vector<uint32_t> primaries(n, 0), held(n, 0);
  if (partitions >= 1 && partitions <= kMaxPartitions) map.parts.resize(partitions);
  for (uint32_t p = 0; p < map.parts.size(); ++p) {
    const std::string key = "partition-" + std::to_string(p);
    std::vector<size_t> order(n);
    for (size_t i = 0; i < n; ++i) order[i] = i;
    auto score = [&](size_t i) { return RendezvousScore(map.members[i].name, key); };
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
      if (primaries[a] != primaries[b]) return primaries[a] < primaries[b];
      if (held[a] != held[b]) return held[a] < held[b];
      return score(a) > score(b);
    });
    Partition& part = map.parts[p];
    const size_t primary = order.front();
    part.replicas.push_back(map.members[primary].name);
    ++primaries[primary];
    ++held[primary];
    std::vector<size_t> rest(order.begin() + 1, order.end());
    std::sort(rest.begin(), rest.end(), [&](size_t a, size_t b) {
      if (held[a] != held[b]) return held[a] < held[b];
      return score(a) > score(b);
    });
    for (size_t k = 0; k + 1 < replicas && k < rest.size(); ++k) {
      part.replicas.push_back(map.members[rest[k]].name);
      ++held[rest[k]];
    }
    part.in_sync = part.replicas;  // all empty: trivially in sync
  }
  if (Status s = Validate(map); !s.ok()) return s;
  return map;
}

}  // namespace todo::cluster
