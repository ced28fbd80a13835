#include "router/admin/admin.h"

#include <algorithm>
#include <iomanip>
#include <map>
#include <msgpack.hpp>
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <set>
#include <zmq.hpp>

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
    if (auto it = snap->alive.find(m.name); it != snap->alive.end()) {
      jm["endpoint"] = it->second.endpoint;
    }
    members.push_back(std::move(jm));
  }
  json others = json::array();  // alive but not members
  for (const auto& [name, info] : snap->alive) {
    if (!map.IsMember(name)) others.push_back(name);
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
        << (m.contains("leaving") ? "  (leaving)" : "") << "\n";
  }
  for (const json& n : others) {
    out << "  " << n.get<std::string>() << " is alive but not a member (todo-admin add-node)\n";
  }
  out << "\n";
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

int AddNode(io::EtcdClient*, const AdminOptions&, const std::string& name, std::ostream&,
            std::ostream& err) {
  err << "todo-admin: add-node " << name << ": not implemented yet\n";
  return 1;
}

int RemoveNode(io::EtcdClient*, const AdminOptions&, const std::string& name, std::ostream&,
               std::ostream& err) {
  err << "todo-admin: remove-node " << name << ": not implemented yet\n";
  return 1;
}

}  // namespace todo::admin
