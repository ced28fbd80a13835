#include "common/io/cluster_watcher.h"

#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

#include "common/io/security/keys.h"
#include "common/names.h"

namespace todo::io {

using nlohmann::json;

ClusterKeys::ClusterKeys(std::string_view cluster)
    : prefix("/todo/" + std::string(cluster) + "/"),
      map(prefix + "map"),
      nodes(prefix + "nodes/"),
      reports(prefix + "reports/"),
      controller(prefix + "controller") {}

std::string FormatNodeInfo(const cluster::NodeInfo& n) {
  json j{{"name", n.name},
         {"data_id", n.data_id},
         {"incarnation", n.incarnation},
         {"endpoint", n.endpoint},
         {"repl_endpoint", n.repl_endpoint}};
  if (!n.curve_key.empty()) j["curve_key"] = n.curve_key;
  if (n.map_version != 0) j["map_version"] = n.map_version;
  return j.dump();
}

namespace {

StatusOr<std::string> Str(const json& j, const char* key, bool required = true) {
  auto it = j.find(key);
  if (it == j.end()) {
    if (!required) return std::string();
    return Status::BadRequest(std::string("missing key '") + key + "'");
  }
  if (!it->is_string()) return Status::BadRequest(std::string("key '") + key + "' is not a string");
  return it->get<std::string>();
}

}  // namespace

StatusOr<cluster::NodeInfo> ParseNodeInfo(std::string_view text) {
  json j = json::parse(text.begin(), text.end(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Status::BadRequest("not a JSON object");
  cluster::NodeInfo n;
  for (auto [key, out] :
       {std::pair{"name", &n.name}, std::pair{"data_id", &n.data_id},
        std::pair{"endpoint", &n.endpoint}, std::pair{"repl_endpoint", &n.repl_endpoint},
        std::pair{"incarnation", &n.incarnation}}) {
    auto v = Str(j, key);
    if (!v.ok()) return v.status();
    *out = *v;
  }
  if (!IsValidNodeName(n.name)) return Status::BadRequest("name '" + n.name + "' is not valid");
  if (!IsValidEndpoint(n.endpoint) || !IsValidEndpoint(n.repl_endpoint)) {
    return Status::BadRequest("an endpoint is not valid");
  }
  auto key = Str(j, "curve_key", /*required=*/false);
  if (!key.ok()) return key.status();
  if (!key->empty()) {
    if (auto k = security::DecodeZ85Key(*key); !k.ok()) {
      return Status::BadRequest("curve_key: " + k.status().message());
    }
    n.curve_key = *std::move(key);
  }
  if (auto v = j.find("map_version"); v != j.end()) {
    if (!v->is_number_unsigned())
      return Status::BadRequest("map_version is not an unsigned number");
    n.map_version = v->get<uint64_t>();
  }
  return n;
}

std::string FormatReports(const std::vector<cluster::ReplicaReport>& reports) {
  json arr = json::array();
  for (const auto& r : reports) {
    arr.push_back({{"kind", r.kind == cluster::ReplicaReport::Kind::kLagging    ? "lagging"
                            : r.kind == cluster::ReplicaReport::Kind::kCaughtUp ? "caught_up"
                                                                                : "drained"},
                   {"p", r.partition},
                   {"replica", r.replica},
                   {"epoch", r.epoch}});
  }
  return json{{"reports", arr}}.dump();
}

StatusOr<std::vector<cluster::ReplicaReport>> ParseReports(std::string_view text) {
  json j = json::parse(text.begin(), text.end(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Status::BadRequest("not a JSON object");
  auto it = j.find("reports");
  if (it == j.end() || !it->is_array()) return Status::BadRequest("no 'reports' array");
  std::vector<cluster::ReplicaReport> out;
  for (const json& r : *it) {
    if (!r.is_object()) return Status::BadRequest("a report is not an object");
    cluster::ReplicaReport rep;
    auto kind = Str(r, "kind");
    auto replica = Str(r, "replica");
    if (!kind.ok()) return kind.status();
    if (!replica.ok()) return replica.status();
    if (*kind == "lagging") {
      rep.kind = cluster::ReplicaReport::Kind::kLagging;
    } else if (*kind == "drained") {
      rep.kind = cluster::ReplicaReport::Kind::kDrained;
    } else if (*kind == "caught_up") {
      rep.kind = cluster::ReplicaReport::Kind::kCaughtUp;
    } else {
      return Status::BadRequest("unknown report kind '" + *kind + "'");
    }
    auto p = r.find("p");
    auto e = r.find("epoch");
    if (p == r.end() || !p->is_number_unsigned() || e == r.end() || !e->is_number_unsigned()) {
      return Status::BadRequest("a report needs unsigned 'p' and 'epoch'");
    }
    rep.partition = static_cast<uint32_t>(std::min<uint64_t>(p->get<uint64_t>(), UINT32_MAX));
    rep.epoch = e->get<uint64_t>();
    rep.replica = *replica;
    out.push_back(std::move(rep));
  }
  return out;
}

namespace {

// Builds a snapshot from every key under the prefix. `map` is the parsed
// map to use (the caller parses it only when it changed).
std::shared_ptr<ClusterSnapshot> Build(const ClusterKeys& keys,
                                       const std::map<std::string, KeyValue>& kvs,
                                       std::shared_ptr<const cluster::ClusterMap> map,
                                       int64_t map_revision, const std::string& map_error) {
  auto snap = std::make_shared<ClusterSnapshot>();
  snap->map = std::move(map);
  snap->map_revision = map_revision;
  snap->map_error = map_error;
  for (const auto& [key, kv] : kvs) {
    snap->revision = std::max(snap->revision, kv.mod_revision);
    if (key.rfind(keys.nodes, 0) == 0) {
      auto n = ParseNodeInfo(kv.value);
      if (!n.ok() || n->name != key.substr(keys.nodes.size())) continue;
      snap->alive[n->name] = std::move(*n);
    } else if (key.rfind(keys.reports, 0) == 0) {
      auto r = ParseReports(kv.value);
      if (!r.ok()) continue;
      snap->reports.push_back(cluster::NodeReport{key.substr(keys.reports.size()), std::move(*r)});
    } else if (key == keys.controller) {
      snap->controller = kv.value;
    }
  }
  return snap;
}

}  // namespace

StatusOr<ClusterSnapshot> ReadCluster(EtcdClient* client, const ClusterKeys& keys) {
  auto r = client->GetPrefix(keys.prefix);
  if (!r.ok()) return r.status();
  std::map<std::string, KeyValue> kvs;
  for (auto& kv : r->kvs) kvs[kv.key] = kv;
  std::shared_ptr<const cluster::ClusterMap> map;
  int64_t map_revision = 0;
  std::string error;
  if (auto it = kvs.find(keys.map); it != kvs.end()) {
    auto m = cluster::ParseMap(it->second.value);
    if (m.ok()) {
      map = std::make_shared<const cluster::ClusterMap>(std::move(*m));
      map_revision = it->second.mod_revision;
    } else {
      error = m.status().message();
    }
  }
  auto snap = Build(keys, kvs, std::move(map), map_revision, error);
  snap->etcd_map_revision = map_revision;
  if (auto it = kvs.find(keys.map); it != kvs.end())
    snap->etcd_map_revision = it->second.mod_revision;
  snap->revision = r->revision;
  return *snap;
}

ClusterWatcher::ClusterWatcher(EtcdClient* client, std::string cluster, ClusterView* view,
                               OnChange on_change)
    : client_(client), keys_(cluster), view_(view), on_change_(std::move(on_change)) {}

ClusterWatcher::~ClusterWatcher() { Stop(); }

void ClusterWatcher::SetFloor(std::shared_ptr<const cluster::ClusterMap> floor) {
  map_ = std::move(floor);
  map_revision_ = 0;
}

void ClusterWatcher::Start() {
  thread_ = std::thread([this] { Loop(); });
}

void ClusterWatcher::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_.store(true);
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool ClusterWatcher::WaitForMap(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, timeout, [&] { return has_map() || stop_.load(); });
  return has_map();
}

void ClusterWatcher::Publish() {
  std::string error;
  auto it = kvs_.find(keys_.map);
  const int64_t etcd_revision = it != kvs_.end() ? it->second.mod_revision : 0;
  if (it != kvs_.end() && it->second.mod_revision != map_revision_) {
    auto m = cluster::ParseMap(it->second.value);
    // A well-formed map that goes back from the one in force (an old value
    // put back, etcd restored from a backup) is refused as well: taking it
    // would make deposed primaries serve what they held then.
    Status follows = m.ok() && map_ ? cluster::CheckFollows(*map_, *m) : Status::Ok();
    if (m.ok() && follows.ok()) {
      map_ = std::make_shared<const cluster::ClusterMap>(std::move(*m));
      map_revision_ = it->second.mod_revision;
      bad_map_logged_ = 0;
    } else {
      error = m.ok() ? "it goes back: " + follows.message() : m.status().message();
      if (bad_map_logged_ != it->second.mod_revision) {
        bad_map_logged_ = it->second.mod_revision;
        spdlog::error(
            "the cluster map in etcd ({} at revision {}) {} and was not taken: {}; {}{}", keys_.map,
            it->second.mod_revision, m.ok() ? "is older than the map in force" : "is malformed",
            error,
            map_ ? "the last valid map (version " + std::to_string(map_->version) +
                       ") stays in force"
                 : std::string("no valid map yet"),
            m.ok() ? " (was an old value put back, or etcd restored from an old backup?); the "
                     "controller writes the map in force back"
                   : "");
      }
    }
  } else if (it == kvs_.end() && map_) {
    error = "the map's key was deleted";
    if (bad_map_logged_ != -1) {
      bad_map_logged_ = -1;
      spdlog::error(
          "the cluster map in etcd ({}) was deleted; the last valid map (version {}) stays in "
          "force, and the controller writes it back",
          keys_.map, map_->version);
    }
  }
  auto snap = Build(keys_, kvs_, map_, map_revision_, error);
  snap->etcd_map_revision = etcd_revision;
  std::shared_ptr<const ClusterSnapshot> s = std::move(snap);
  view_->Set(s);
  if (s->map && !has_map()) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      has_map_.store(true, std::memory_order_release);
    }
    cv_.notify_all();
  }
  if (on_change_) on_change_(s);
}

bool ClusterWatcher::ReadAll(int64_t* revision) {
  auto r = client_->GetPrefix(keys_.prefix);
  if (!r.ok()) return false;
  kvs_.clear();
  for (auto& kv : r->kvs) kvs_[kv.key] = std::move(kv);
  *revision = r->revision;
  Publish();
  return true;
}

void ClusterWatcher::Apply(const std::vector<Event>& events) {
  for (const Event& e : events) {
    if (e.type == EventType::kPut) {
      kvs_[e.kv.key] = e.kv;
    } else {
      kvs_.erase(e.kv.key);
    }
  }
  Publish();
}

void ClusterWatcher::Loop() {
  int failures = 0;
  while (!stop_.load()) {
    int64_t revision = 0;
    if (!ReadAll(&revision)) {
      // Logged at the 1st, 2nd, 4th, 8th... failure: etcd down at start is
      // a clear line, not a flood.
      ++failures;
      if ((failures & (failures - 1)) == 0) {
        spdlog::warn("etcd: cannot read {} yet ({} attempts); retrying", keys_.prefix, failures);
      }
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait_for(lock, std::chrono::milliseconds(500), [&] { return stop_.load(); });
      continue;
    }
    if (failures > 0)
      spdlog::info("etcd: read {} after {} failed attempts", keys_.prefix, failures);
    failures = 0;
    std::atomic<bool> compacted{false};
    EtcdWatch watch(client_, EtcdWatch::Options::Prefix(keys_.prefix, revision + 1),
                    [&](const WatchUpdate& u) {
                      switch (u.kind) {
                        case WatchUpdate::Kind::kEvents:
                          Apply(u.events);
                          break;
                        case WatchUpdate::Kind::kConnectionLost:
                          spdlog::warn("etcd: watch of {} lost at {}: {}; reconnecting",
                                       keys_.prefix, u.endpoint, u.status.message());
                          break;
                        case WatchUpdate::Kind::kCompacted:
                        case WatchUpdate::Kind::kFailed:
                          compacted.store(true);
                          { std::lock_guard<std::mutex> lock(mu_); }
                          cv_.notify_all();
                          break;
                        case WatchUpdate::Kind::kConnected:
                          break;
                      }
                    });
    if (Status s = watch.Start(); !s.ok()) {
      spdlog::error("etcd: cannot start the watch of {}: {}", keys_.prefix, s.message());
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait_for(lock, std::chrono::milliseconds(500), [&] { return stop_.load(); });
      continue;
    }
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stop_.load() || compacted.load(); });
    }
    watch.Stop();
    if (compacted.load()) spdlog::info("etcd: watch of {} ended; reading again", keys_.prefix);
  }
}

}  // namespace todo::io
