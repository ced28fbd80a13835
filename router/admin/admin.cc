#include "router/admin/admin.h"

#include <algorithm>
#include <functional>
#include <iomanip>
#include <map>
#include <msgpack.hpp>
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <set>
#include <zmq.hpp>

#include "common/cluster/health.h"
#include "common/cluster/map.h"
#include "common/io/cluster_watcher.h"
#include "common/names.h"
#include "common/protocol.h"

namespace todo::admin {

using nlohmann::json;

namespace {

// What a primary says of its backups, from its `stats` reply.
struct BackupLag {
  std::string mode;
  bool in_sync = false;
  uint64_t lag = 0;
};
using LagTable = std::map<uint32_t, std::map<std::string, BackupLag>>;  // partition -> backup

// Asks a node for its stats (one DEALER, bounded wait); fills the lag of
// the partitions it leads. False if it did not answer in time.
bool AskLag(zmq::context_t& ctx, const std::string& endpoint, int64_t timeout_ms, LagTable* lag) {
  zmq::socket_t s(ctx, zmq::socket_type::dealer);
  s.set(zmq::sockopt::linger, 0);
  s.set(zmq::sockopt::rcvtimeo, static_cast<int>(timeout_ms));
  s.set(zmq::sockopt::sndtimeo, static_cast<int>(timeout_ms));
  try {
    s.connect(endpoint);
    msgpack::sbuffer req;
    protocol::Request r;
    r.op = protocol::Op::kStats;
    protocol::EncodeRequest(req, r);
    if (!s.send(zmq::buffer(req.data(), req.size()))) return false;
    zmq::message_t reply;
    if (!s.recv(reply)) return false;
    auto oh = msgpack::unpack(static_cast<const char*>(reply.data()), reply.size());
    const msgpack::object& o = oh.get();
    if (o.type != msgpack::type::MAP) return false;
    for (const auto& kv : o.via.map) {
      if (kv.key.as<std::string>() != "result" || kv.val.type != msgpack::type::MAP) continue;
      for (const auto& f : kv.val.via.map) {
        if (f.key.as<std::string>() != "partitions" || f.val.type != msgpack::type::ARRAY) continue;
        for (const auto& part : f.val.via.array) {
          std::map<std::string, msgpack::object> m;
          part.convert(m);
          if (!m.contains("backups") || !m.contains("partition")) continue;
          const uint32_t p = m["partition"].as<uint32_t>();
          for (const auto& b : m["backups"].via.array) {
            std::map<std::string, msgpack::object> bm;
            b.convert(bm);
            (*lag)[p][bm["name"].as<std::string>()] = BackupLag{
                bm["mode"].as<std::string>(), bm["in_sync"].as<bool>(), bm["lag"].as<uint64_t>()};
          }
        }
      }
    }
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

// What moves, for status and the refusals: moves in progress, and how many
// more the balancer would make.
struct Moves {
  std::vector<uint32_t> in_progress;  // partitions with a move or hand-off
  size_t remaining = 0;               // more moves to balance
  std::vector<std::string> leaving;   // members draining
  std::vector<std::string> joining;   // members that never ran yet (moves wait for them)
  std::vector<std::string> adding;    // members being added (another add-node is refused)
};

Moves CountMoves(const io::ClusterSnapshot& snap) {
  Moves m;
  const cluster::ClusterMap& map = *snap.map;
  for (uint32_t p = 0; p < map.parts.size(); ++p) {
    if (!map.parts[p].move_to.empty() || !map.parts[p].handoff.empty()) m.in_progress.push_back(p);
  }
  for (const cluster::Member& mb : map.members) {
    if (mb.leaving) m.leaving.push_back(mb.name);
    if (mb.data_id.empty()) m.joining.push_back(mb.name);
    if (mb.adding) m.adding.push_back(mb.name);
  }
  // The same count the router's /metrics exports (todo_cluster_moves_remaining).
  m.remaining = cluster::SummarizeHealth(map, [&](const std::string& n) {
                  return snap.alive.contains(n);
                }).moves_remaining;
  return m;
}

// "N partitions moving, M more moves to go", for messages.
std::string MovesText(const Moves& m) {
  return std::to_string(m.in_progress.size()) + " partitions moving, " +
         std::to_string(m.remaining) + " more moves to go";
}

}  // namespace

int Init(io::EtcdClient* etcd, const AdminOptions& o, const InitArgs& a, std::ostream& out,
         std::ostream& err) {
  auto map = cluster::NewClusterMap(a.members, a.partitions, a.replicas, a.min_insync);
  if (!map.ok()) {
    err << "todo-admin: " << map.status().message() << "\n";
    return 2;
  }
  const io::ClusterKeys keys(o.cluster_name);
  io::TxnRequest txn;
  txn.compares.push_back(io::Compare::CreateRevision(keys.map, io::CompareOp::kEqual, 0));
  txn.success.push_back(io::Op::Put(keys.map, cluster::FormatMap(*map)));
  auto r = etcd->Txn(txn);
  if (!r.ok()) {
    err << "todo-admin: init failed: " << r.status().message() << "\n";
    return 1;
  }
  if (!r->succeeded) {
    err << "todo-admin: cluster '" << o.cluster_name << "' already exists in etcd (" << keys.map
        << "); init refuses to overwrite it\n";
    return 1;
  }
  out << "cluster '" << o.cluster_name << "' created: " << a.members.size() << " members, "
      << a.partitions << " partitions, " << a.replicas << " replicas, min in-sync " << a.min_insync
      << " (etcd revision " << r->revision << ")\n";
  return 0;
}

int Status(io::EtcdClient* etcd, const AdminOptions& o, bool as_json, std::ostream& out,
           std::ostream& err) {
  const io::ClusterKeys keys(o.cluster_name);
  auto snap = io::ReadCluster(etcd, keys);
  if (!snap.ok()) {
    err << "todo-admin: cannot read the cluster from etcd: " << snap.status().message() << "\n";
    return 1;
  }
  if (!snap->map) {
    if (!snap->map_error.empty()) {
      err << "todo-admin: the cluster map in etcd (" << keys.map
          << ") is malformed: " << snap->map_error << "\n";
    } else {
      err << "todo-admin: cluster '" << o.cluster_name << "' does not exist in etcd (" << keys.map
          << " missing); create it with todo-admin init\n";
    }
    return 1;
  }
  const cluster::ClusterMap& map = *snap->map;
  // Lag, from the alive primaries.
  LagTable lag;
  std::set<std::string> unanswered;
  {
    zmq::context_t ctx(1);
    for (const auto& [name, info] : snap->alive) {
      if (!AskLag(ctx, info.endpoint, std::min<int64_t>(o.timeout_ms, 1000), &lag)) {
        unanswered.insert(name);
      }
    }
  }
  auto alive = [&](const std::string& n) { return snap->alive.contains(n); };
  std::map<std::string, std::pair<int, int>> roles;  // primaries, backups
  for (const cluster::Member& m : map.members) roles[m.name] = {0, 0};
  json parts = json::array();
  json not_in_sync = json::array();
  std::vector<uint32_t> unavailable;
  for (uint32_t p = 0; p < map.parts.size(); ++p) {
    const cluster::Partition& part = map.parts[p];
    ++roles[part.primary()].first;
    for (size_t i = 1; i < part.replicas.size(); ++i) ++roles[part.replicas[i]].second;
    json jp = {{"partition", p},
               {"epoch", part.epoch},
               {"leader_epoch", part.leader_epoch},
               {"replicas", part.replicas},
               {"in_sync", part.in_sync}};
    json jl = json::object();
    for (const auto& [name, b] : lag[p]) jl[name] = b.lag;
    if (!jl.empty()) jp["lag"] = jl;
    parts.push_back(std::move(jp));
    if (!alive(part.primary()) || !part.IsInSync(part.primary())) unavailable.push_back(p);
    for (const std::string& r : part.replicas) {
      if (part.IsInSync(r)) continue;
      json j = {{"partition", p}, {"replica", r}, {"alive", alive(r)}};
      if (auto it = lag[p].find(r); it != lag[p].end()) {
        j["mode"] = it->second.mode;
        j["lag"] = it->second.lag;
      }
      not_in_sync.push_back(std::move(j));
    }
  }
  json members = json::array();
  for (const cluster::Member& m : map.members) {
    json jm = {{"name", m.name},
               {"alive", alive(m.name)},
               {"primaries", roles[m.name].first},
               {"backups", roles[m.name].second}};
    if (m.leaving) jm["leaving"] = true;
    if (m.adding) jm["adding"] = true;
    if (auto it = snap->alive.find(m.name); it != snap->alive.end()) {
      jm["endpoint"] = it->second.endpoint;
    }
    members.push_back(std::move(jm));
  }
  json others = json::array();  // alive but not members
  for (const auto& [name, info] : snap->alive) {
    if (!map.IsMember(name)) others.push_back(name);
  }
  const Moves moves = CountMoves(*snap);
  // Nothing moves, nothing to move, nobody joining or draining; balanced
  // once no add is under way either (then an add-node is taken).
  const bool settled = moves.in_progress.empty() && moves.remaining == 0 && moves.leaving.empty() &&
                       moves.joining.empty();
  json jmoves = json::array();
  for (uint32_t p : moves.in_progress) {
    const cluster::Partition& part = map.parts[p];
    json jm = {{"partition", p}};
    if (!part.move_to.empty()) {
      jm["from"] = part.move_from;
      jm["to"] = part.move_to;
      const bool synced = part.IsInSync(part.move_to);
      jm["stage"] = !part.handoff.empty() ? "handing off" : synced ? "switching" : "catching up";
      if (auto it = lag[p].find(part.move_to); it != lag[p].end()) jm["lag"] = it->second.lag;
    } else {
      jm["from"] = part.primary();
      jm["to"] = part.handoff;
      jm["stage"] = "handing off (lead only)";
    }
    jmoves.push_back(std::move(jm));
  }
  json etcd_members = json::array();
  for (const io::EtcdEndpoint& ep : etcd->endpoints()) {
    auto st = etcd->EndpointStatus(ep.url);
    json je = {{"endpoint", ep.url}, {"ok", st.ok()}};
    if (st.ok()) {
      je["version"] = st->version;
      je["leader"] = st->is_leader();
    } else {
      je["error"] = st.status().message();
    }
    etcd_members.push_back(std::move(je));
  }
  if (as_json) {
    json j = {{"cluster", o.cluster_name},
              {"version", map.version},
              {"partition_count", map.partitions},
              {"replicas", map.replicas},
              {"min_insync", map.min_insync},
              {"controller", snap->controller},
              {"members", members},
              {"not_members_alive", others},
              {"partitions", parts},
              {"not_in_sync", not_in_sync},
              {"unavailable", unavailable},
              {"moves",
               {{"in_progress", jmoves},
                {"remaining", moves.remaining},
                {"leaving", moves.leaving},
                {"joining", moves.joining},
                {"adding", moves.adding},
                {"balanced", settled && moves.adding.empty()}}},
              {"etcd", etcd_members}};
    out << j.dump() << "\n";
    return 0;
  }
  out << "cluster '" << o.cluster_name << "': map version " << map.version << ", " << map.partitions
      << " partitions, " << map.replicas << " replicas, min in-sync " << map.min_insync
      << ", controller " << (snap->controller.empty() ? "(none)" : snap->controller) << "\n\n";
  out << std::left << std::setw(12) << "member" << std::setw(7) << "alive" << std::setw(11)
      << "primaries" << std::setw(9) << "backups"
      << "endpoint\n";
  for (const json& m : members) {
    out << std::left << std::setw(12) << m["name"].get<std::string>() << std::setw(7)
        << (m["alive"].get<bool>() ? "yes" : "NO") << std::setw(11) << m["primaries"].get<int>()
        << std::setw(9) << m["backups"].get<int>()
        << (m.contains("endpoint") ? m["endpoint"].get<std::string>() : "-")
        << (m.contains("leaving") ? "  (leaving)" : "")
        << (m.contains("adding") ? "  (being added)" : "") << "\n";
  }
  for (const json& n : others) {
    out << "  " << n.get<std::string>() << " is alive but not a member (todo-admin add-node)\n";
  }
  out << "\n";
  if (!moves.joining.empty()) {
    out << "waiting for " << moves.joining.front()
        << " to join (added, never started): moves start once it runs\n";
  }
  if (settled && !moves.adding.empty()) {
    out << "adding " << moves.adding.front()
        << ": balanced, waiting for the controller to mark the add done\n";
  } else if (settled) {
    out << "balanced: no moves to make\n";
  } else {
    // A progress bar over the work known now: moves done of (done + left).
    const size_t left = jmoves.size() + moves.remaining;
    out << "moves: " << jmoves.size() << " in progress, " << moves.remaining << " more to balance";
    if (!moves.leaving.empty()) out << "; draining " << moves.leaving.front();
    out << "\n  [";
    const size_t width = 40;
    const size_t filled = left == 0 ? width : width * jmoves.size() / (left + jmoves.size());
    for (size_t i = 0; i < width; ++i) out << (i < filled ? '#' : '.');
    out << "] " << left << " partitions still to move\n";
    for (const json& jm : jmoves) {
      out << "  partition " << jm["partition"].get<uint32_t>() << ": "
          << jm["from"].get<std::string>() << " -> " << jm["to"].get<std::string>() << ", "
          << jm["stage"].get<std::string>();
      if (jm.contains("lag")) out << ", " << jm["lag"].get<uint64_t>() << " records behind";
      out << "\n";
    }
  }
  if (not_in_sync.empty()) {
    out << "every replica in sync\n";
  } else {
    out << not_in_sync.size() << " replicas not in sync:\n";
    size_t shown = 0;
    for (const json& j : not_in_sync) {
      if (++shown > 20) {
        out << "  ... and " << not_in_sync.size() - 20 << " more (--json lists all)\n";
        break;
      }
      out << "  partition " << j["partition"].get<uint32_t>() << ": "
          << j["replica"].get<std::string>() << (j["alive"].get<bool>() ? "" : " (down)");
      if (j.contains("mode")) {
        out << ", " << j["mode"].get<std::string>() << ", " << j["lag"].get<uint64_t>()
            << " records behind";
      }
      out << "\n";
    }
  }
  if (!unavailable.empty()) {
    out << unavailable.size() << " partitions have no alive in-sync primary (unavailable):";
    for (size_t i = 0; i < unavailable.size() && i < 20; ++i) out << " " << unavailable[i];
    out << (unavailable.size() > 20 ? " ..." : "") << "\n";
  }
  for (const std::string& n : unanswered) out << "(node " << n << " did not answer for lag)\n";
  out << "\netcd:";
  for (const json& e : etcd_members) {
    out << " " << e["endpoint"].get<std::string>() << " "
        << (e["ok"].get<bool>() ? (e["leader"].get<bool>() ? "ok (leader)" : "ok") : "DOWN") << ";";
  }
  out << "\n";
  return 0;
}

namespace {

// Changes the map by compare-and-swap: `change` edits it (or returns a
// refusal, exit 1); retried on a conflicting write.
int ChangeMap(
    io::EtcdClient* etcd, const AdminOptions& o, std::ostream& err,
    const std::function<std::string(const io::ClusterSnapshot&, cluster::ClusterMap*)>& change,
    int64_t* revision) {
  const io::ClusterKeys keys(o.cluster_name);
  for (int attempt = 0; attempt < 20; ++attempt) {
    auto snap = io::ReadCluster(etcd, keys);
    if (!snap.ok()) {
      err << "todo-admin: cannot read the cluster from etcd: " << snap.status().message() << "\n";
      return 1;
    }
    if (!snap->map) {
      err << "todo-admin: cluster '" << o.cluster_name << "' does not exist in etcd (" << keys.map
          << (snap->map_error.empty() ? " missing" : ": " + snap->map_error) << ")\n";
      return 1;
    }
    cluster::ClusterMap next = *snap->map;
    std::string refusal = change(*snap, &next);
    if (!refusal.empty()) {
      err << "todo-admin: " << refusal << "\n";
      return 1;
    }
    next.version += 1;
    if (todo::Status v = cluster::Validate(next); !v.ok()) {
      err << "todo-admin: " << v.message() << "\n";
      return 1;
    }
    io::TxnRequest txn;
    txn.compares.push_back(
        io::Compare::ModRevision(keys.map, io::CompareOp::kEqual, snap->map_revision));
    txn.success.push_back(io::Op::Put(keys.map, cluster::FormatMap(next)));
    auto r = etcd->Txn(txn);
    if (!r.ok()) {
      err << "todo-admin: writing the map failed: " << r.status().message() << "\n";
      return 1;
    }
    if (r->succeeded) {
      *revision = r->revision;
      return 0;
    }
    // Someone else changed the map: read it again and check again.
  }
  err << "todo-admin: the map kept changing under us; try again\n";
  return 1;
}

// For the answer to add-node and remove-node: the changes already under
// way, which the controller goes on with beside the new one (it balances
// for the map as it stands; only a second add waits for the first).
std::string UnderWay(const Moves& m) {
  std::string s;
  auto add = [&](const std::string& part) { s += (s.empty() ? "" : ", ") + part; };
  for (const std::string& n : m.leaving) add("'" + n + "' draining");
  for (const std::string& n : m.joining) add("'" + n + "' not started yet");
  if (!m.in_progress.empty() || m.remaining > 0) add(MovesText(m));
  return s.empty() ? "" : "; already under way: " + s;
}

}  // namespace

int AddNode(io::EtcdClient* etcd, const AdminOptions& o, const std::string& name, std::ostream& out,
            std::ostream& err) {
  int64_t revision = 0;
  std::string under_way;
  bool cancelled = false;
  int rc = ChangeMap(
      etcd, o, err,
      [&](const io::ClusterSnapshot& snap, cluster::ClusterMap* map) -> std::string {
        const Moves moves = CountMoves(snap);
        under_way = UnderWay(moves);
        cancelled = false;
        if (cluster::Member* m = map->FindMember(name); m != nullptr) {
          if (!m->leaving) {
            return "'" + name + "' is already a member of cluster '" + o.cluster_name + "'";
          }
          // Added back while it drains: the removal is called off, and
          // it keeps what it still holds.
          m->leaving = false;
          cancelled = true;
          return "";
        }
        // One add at a time (issue 17: a concurrent second add-node is
        // refused); removals and the moves a failure brings are no bar.
        for (const cluster::Member& other : map->members) {
          if (!other.adding) continue;
          if (other.data_id.empty()) {
            return "another add-node is in progress: '" + other.name +
                   "' was added and has not run yet (start it, or remove-node it)";
          }
          return "another add-node is in progress: '" + other.name + "' is being added (" +
                 MovesText(moves) + "); try again once todo-admin status shows it done";
        }
        cluster::Member m;
        m.name = name;
        m.adding = true;
        map->members.push_back(std::move(m));
        return "";
      },
      &revision);
  if (rc != 0) return rc;
  if (cancelled) {
    out << "'" << name << "' stays a member of cluster '" << o.cluster_name << "' (etcd revision "
        << revision << "): its removal is called off; it keeps what it still holds and the "
        << "cluster balances again (todo-admin status shows the progress)" << under_way << "\n";
    return 0;
  }
  out << "'" << name << "' is a member of cluster '" << o.cluster_name << "' (etcd revision "
      << revision << "); partitions move to it once it runs "
      << "(todo-admin status shows the progress)" << under_way << "\n";
  return 0;
}

int RemoveNode(io::EtcdClient* etcd, const AdminOptions& o, const std::string& name,
               std::ostream& out, std::ostream& err) {
  int64_t revision = 0;
  std::string under_way;
  int rc = ChangeMap(
      etcd, o, err,
      [&](const io::ClusterSnapshot& snap, cluster::ClusterMap* map) -> std::string {
        cluster::Member* m = map->FindMember(name);
        if (m == nullptr) {
          return "'" + name + "' is not a member of cluster '" + o.cluster_name + "'";
        }
        if (m->leaving) return "'" + name + "' is already leaving (draining)";
        size_t staying = 0;
        for (const cluster::Member& x : map->members) staying += x.leaving ? 0 : 1;
        if (staying - 1 < map->replicas) {
          return "removing '" + name + "' would leave " + std::to_string(staying - 1) +
                 " members, fewer than the " + std::to_string(map->replicas) +
                 " copies each list is kept in (--replicas); add a node first";
        }
        under_way = UnderWay(CountMoves(snap));
        m->leaving = true;
        return "";
      },
      &revision);
  if (rc != 0) return rc;
  out << "'" << name << "' is leaving cluster '" << o.cluster_name << "' (etcd revision "
      << revision << "): its partitions move away, then it is no longer a member and can be "
      << "stopped (todo-admin status shows the progress)" << under_way << "\n";
  return 0;
}

}  // namespace todo::admin
