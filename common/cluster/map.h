// The cluster map of the replicated mode (shared/spec/replication.md): P
// partitions, R replicas each, the members, and per partition its replica
// set (primary first), in-sync marks and epochs. It lives in etcd as one
// JSON value under /todo/<cluster>/map and changes only by compare-and-swap
// on its mod_revision; this file is the value and its codec. Pure: no I/O.
//
// Epochs. Every change to a partition raises its `epoch`; a change of its
// primary also sets `leader_epoch` to the new epoch. Replication records
// carry the leader epoch they were written under, and a backup refuses
// records from a leader epoch below the one it knows: a deposed primary can
// never write to a replica again. (Raising only `epoch` for in-sync changes
// keeps a live primary's records valid across them.)
//
// Invariant the whole design keeps (see node/replication/DESIGN.md): every
// write acknowledged to a client is durable on every replica in `in_sync`;
// only an in-sync replica is ever made primary.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace todo::cluster {

// The name of the list -> partition hash, as written in the map and in
// PROTOCOL.md: partition(list) = mix64(fnv1a64(list)) mod P.
inline constexpr std::string_view kHashName = "mix64-fnv1a64";

uint32_t PartitionOf(std::string_view list, uint32_t partitions);

inline constexpr uint32_t kMaxPartitions = 65536;  // a key's partition prefix is 2 bytes
inline constexpr uint32_t kMaxReplicas = 7;
inline constexpr size_t kMaxMembers = 1024;

struct Member {
  std::string name;
  // The data dir this member's replicas live in (its MANIFEST's data id),
  // recorded by the controller the first time the member joins. A node that
  // comes back with another data id (a wiped or replaced disk) holds none of
  // what the map says it holds: its replicas are void. Empty: never joined.
  std::string data_id;
  // The node process's current incarnation (its etcd lease id), recorded
  // by the controller. A node serves only while the map names its current
  // incarnation: after losing its lease it serves nothing until the
  // controller has taken note of the new one, and so of the old one's end
  // (a failover it may have made meanwhile). Empty: never joined.
  std::string incarnation;
  // remove-node: draining (its partitions move away), then it leaves.
  bool leaving = false;
  // add-node: being added, until it has run and the cluster is balanced
  // with it (or it is gone): the controller clears it. Another add-node
  // is refused meanwhile.
  bool adding = false;

  bool operator==(const Member&) const = default;
};

struct Partition {
  uint64_t epoch = 1;
  uint64_t leader_epoch = 1;          // the epoch at which the primary took office
  std::vector<std::string> replicas;  // primary first; may hold more than R during a move
  std::vector<std::string> in_sync;   // a subset of replicas, in replica order
  // A move in progress (membership changes, balancing): `move_to` was added
  // to the replicas and catches up; once it is in sync, `move_from` leaves
  // the replicas (after a hand-off if it is the primary). Both set or both
  // empty.
  std::string move_from;
  std::string move_to;
  // A planned hand-off of the primary role: the current primary stops
  // taking requests, drains what it has in flight, and reports; then the
  // controller makes `handoff` (an in-sync backup) the primary. Empty: none.
  std::string handoff;

  const std::string& primary() const { return replicas.front(); }
  bool HasReplica(std::string_view n) const;
  bool IsInSync(std::string_view n) const;
  bool operator==(const Partition&) const = default;
};

struct ClusterMap {
  uint32_t partitions = 256;  // P, fixed at creation
  uint32_t replicas = 2;      // R
  uint32_t min_insync = 1;    // K: writes need at least K in-sync replicas
  uint64_t version = 1;       // raised by every change (for logs and status)
  std::vector<Member> members;
  std::vector<Partition> parts;  // exactly `partitions` of them

  const Member* FindMember(std::string_view name) const;
  Member* FindMember(std::string_view name);
  bool IsMember(std::string_view name) const { return FindMember(name) != nullptr; }
  uint32_t PartitionOfList(std::string_view list) const { return PartitionOf(list, partitions); }
  bool operator==(const ClusterMap&) const = default;
};

// Checks every rule: P in 1..65536, R in 1..7, K in 1..R, members unique
// valid node names, exactly P partitions, each with 1.. replicas that are
// members (unique), in_sync a subset in replica order, leader_epoch <=
// epoch, handoff empty or a replica. The message names the first broken
// rule and where.
Status Validate(const ClusterMap& map);

// JSON codec (the value stored in etcd). Parse validates; a malformed map
// is an error naming what is wrong, never a partial map.
std::string FormatMap(const ClusterMap& map);
StatusOr<ClusterMap> ParseMap(std::string_view json);

// Whether `next` may follow `taken`, a map already taken from etcd: every
// writer (the controller, todo-admin) raises the version on each change,
// and no partition's epoch or leader epoch ever goes down, nor P changes.
// A map that breaks this was not written by them: an old value put back by
// hand, or etcd restored from an old backup. Taking it would make deposed
// primaries primary again, serving what they held then and reusing ids.
// An error naming the first thing that went back (the same map is fine).
Status CheckFollows(const ClusterMap& taken, const ClusterMap& next);

// A new cluster: every member empty and in sync, replica sets balanced
// (each member primary for P/N partitions, +-1, and holding R*P/N
// replicas), deterministic for the same inputs. Refuses R > members or an
// invalid configuration.
StatusOr<ClusterMap> NewClusterMap(std::vector<std::string> members, uint32_t partitions,
                                   uint32_t replicas, uint32_t min_insync);

}  // namespace todo::cluster
