#include "node/cluster_agent.h"

#include <pthread.h>
#include <spdlog/spdlog.h>

#include "node/replication/shard_replication.h"

namespace todo::node {
namespace {

constexpr std::chrono::milliseconds kLoopEvery(10);
constexpr std::chrono::milliseconds kCampaignEvery(1000);

int64_t SteadyMs(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

}  // namespace

ClusterAgent::ClusterAgent(Options options, io::EtcdClient* etcd, io::EtcdClient* lease_etcd,
                           PartitionTable* table, io::ClusterView* view, store::Store* store,
                           ReplIo* io)
    : options_(std::move(options)),
      etcd_(etcd),
      lease_etcd_(lease_etcd),
      table_(table),
      view_(view),
      store_(store),
      io_(io),
      keys_(options_.cluster),
      election_(etcd, keys_.controller) {}

ClusterAgent::~ClusterAgent() {
  Stop();
  table_->set_lease_keeper(nullptr);  // the keeper goes with us
}

void ClusterAgent::Wake() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    woken_ = true;
  }
  cv_.notify_one();
}

Status ClusterAgent::Start() {
  started_ = std::chrono::steady_clock::now();
  io::LeaseKeeper::Options lo;
  lo.ttl = options_.lease;
  lease_ = std::make_unique<io::LeaseKeeper>(
      lease_etcd_, lo, [this](io::LeaseKeeper::Event e, int64_t id) {
        if (e == io::LeaseKeeper::Event::kGranted) {
          spdlog::info("etcd: lease {:x} granted", id);
          {
            std::lock_guard<std::mutex> lock(mu_);
            granted_lease_ = id;
          }
        } else {
          spdlog::warn("etcd: lease {:x} lost: not serving until a new lease is announced", id);
          table_->set_serving_lease(0);
        }
        Wake();
      });
  table_->set_lease_keeper(lease_.get());
  // The map this node last ran on, if it saved one: etcd's is held against
  // it, so a map that went back (etcd restored from an old backup while
  // every node was down) is not taken, and the newest saved map is put back.
  std::shared_ptr<const cluster::ClusterMap> saved;
  if (std::optional<std::string> text = store_->LoadClusterMap()) {
    auto m = cluster::ParseMap(*text);
    if (!m.ok() || m->partitions != store_->partitions()) {
      spdlog::error("the data dir's {} is unreadable or not this dir's ({}); ignored",
                    store::Store::kClusterMapFile,
                    m.ok() ? "another partition count" : m.status().message());
    } else {
      saved = std::make_shared<const cluster::ClusterMap>(*std::move(m));
      start_map_version_ = saved_map_version_ = saved->version;
      spdlog::info(
          "the cluster map this node last ran on: version {} (a map in etcd that goes "
          "back from it is not taken)",
          saved->version);
    }
  }
  if (Status s = lease_->Start(); !s.ok()) return s;
  watcher_ = std::make_unique<io::ClusterWatcher>(
      etcd_, options_.cluster, view_,
      [this](const std::shared_ptr<const io::ClusterSnapshot>& s) { OnSnapshot(s); });
  if (saved) watcher_->SetFloor(std::move(saved));
  watcher_->Start();
  thread_ = std::thread([this] { Loop(); });
  return Status::Ok();
}

void ClusterAgent::Stop() {
  // Fence first: nothing is served from here on.
  table_->set_serving_lease(0);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_ && !thread_.joinable()) return;
    stop_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
  if (watcher_) watcher_->Stop();
  if (leadership_) {
    (void)election_.Resign(*leadership_);
    leadership_.reset();
    leader_.store(false);
  }
  if (lease_) lease_->Stop();  // revokes: our keys go at once
}

namespace {
std::string Hex(int64_t v) {
  char buf[24];
  snprintf(buf, sizeof buf, "%llx", static_cast<unsigned long long>(v));
  return buf;
}
}  // namespace

void ClusterAgent::OnSnapshot(const std::shared_ptr<const io::ClusterSnapshot>& snap) {
  std::lock_guard<std::mutex> lock(snapshot_mu_);
  // The live peers' replication addresses.
  std::map<std::string, ReplIo::PeerAddress> peers;
  for (const auto& [name, info] : snap->alive) {
    if (name != options_.name)
      peers[name] = ReplIo::PeerAddress{info.repl_endpoint, info.curve_key};
  }
  io_->SetPeers(std::move(peers));
  if (snap->map) {
    const cluster::Member* me = snap->map->FindMember(options_.name);
    // Serving needs the map to name this data dir and this incarnation (the
    // lease we are announced under): a map from before a lease loss, or
    // before the controller took note of our new lease, serves nothing.
    const int64_t incarnation = incarnation_.load(std::memory_order_acquire);
    const bool data_ok = me != nullptr && me->data_id == options_.data_id && incarnation != 0 &&
                         me->incarnation == Hex(incarnation);
    // Said when it stops being one, then once a minute while it is not (a
    // rebalance writes many maps a second).
    const auto now = std::chrono::steady_clock::now();
    if (me != nullptr) {
      warned_not_member_ = 0;
    } else if (warned_not_member_ == 0 || now >= next_not_member_warning_) {
      warned_not_member_ = snap->map->version;
      next_not_member_warning_ = now + std::chrono::minutes(1);
      spdlog::warn(
          "'{}' is not a member of cluster '{}': serving nothing until it is (todo-admin "
          "add-node {})",
          options_.name, options_.cluster, options_.name);
    }
    if (snap->map_revision != posted_map_revision_ || data_ok != posted_data_ok_) {
      // Saved before the shards act on it, so a node never runs on a map
      // newer than the one it saved, even if it is killed the next moment.
      SaveMap(*snap);
      posted_map_revision_ = snap->map_revision;
      posted_data_ok_ = data_ok;
      const bool may_drop = data_ok || me == nullptr;
      auto ms = std::make_shared<const MapSnapshot>(MapSnapshot{snap->map, data_ok, may_drop});
      for (uint32_t i = 0; i < store_->shards(); ++i) {
        store_->writer(i).replication()->inbox().Post(ReplEvent{{}, false, nullptr, {}, ms, 0});
      }
    }
  }
  Wake();  // the controller may have something to decide
}

void ClusterAgent::Announce(int64_t lease_id) {
  cluster::NodeInfo n{options_.name,     options_.data_id,       Hex(lease_id),
                      options_.endpoint, options_.repl_endpoint, options_.curve_key,
                      start_map_version_};
  auto r = etcd_->Put(keys_.Node(options_.name), io::FormatNodeInfo(n), lease_id);
  if (!r.ok()) {
    spdlog::warn("etcd: cannot announce '{}' yet: {}", options_.name, r.status().message());
    return;
  }
  announced_lease_ = lease_id;
  reported_lease_ = 0;  // reports go again under the new lease
  incarnation_.store(lease_id, std::memory_order_release);
  OnSnapshot(view_->Get());  // serving resumes once the map names this lease
  spdlog::info("etcd: announced as '{}' ({}, replication {})", options_.name, options_.endpoint,
               options_.repl_endpoint);
}

void ClusterAgent::PublishReports(int64_t lease_id) {
  const uint32_t n = store_->shards();
  reports_versions_.resize(n, UINT64_MAX);
  bool changed = reported_lease_ != lease_id;
  for (uint32_t i = 0; i < n; ++i) {
    const uint64_t v = store_->writer(i).replication()->reports_version();
    if (v != reports_versions_[i]) changed = true;
  }
  if (!changed) return;
  std::vector<cluster::ReplicaReport> all;
  std::vector<uint64_t> versions(n);
  for (uint32_t i = 0; i < n; ++i) {
    versions[i] = store_->writer(i).replication()->reports_version();
    auto r = store_->writer(i).replication()->reports();
    all.insert(all.end(), r.begin(), r.end());
  }
  auto put = etcd_->Put(keys_.Report(options_.name), io::FormatReports(all), lease_id);
  if (!put.ok()) return;  // tried again next turn
  reports_versions_ = std::move(versions);
  reported_lease_ = lease_id;
}

void ClusterAgent::RunController(std::chrono::steady_clock::time_point now) {
  if (!options_.host_controller) return;
  const bool lease_ok = lease_->Valid();
  // The snapshot decided on and its version, read together (see
  // GetVersioned): a report that arrives later is decided on next turn.
  const auto [snap, version] = view_->GetVersioned();
  if (leadership_ && (!lease_ok || leadership_->lease != lease_->lease_id())) {
    spdlog::warn("controller: no longer held by '{}' (lease lost)", options_.name);
    leadership_.reset();
    leader_.store(false);
    controller_.reset();
  }
  // Only members host the controller: a node removed from the cluster (or
  // not yet added) hands it over. And only one whose map is the newest a
  // live member ran on (MayDecide): after etcd went back, a controller
  // deciding on an older map would fork the map's history.
  const bool member = snap->map && snap->map->IsMember(options_.name) && MayDecide(*snap);
  if (leadership_ && !member) {
    spdlog::info("controller: '{}' is not a member any more, or not on the newest map: resigning",
                 options_.name);
    (void)election_.Resign(*leadership_);
    leadership_.reset();
    leader_.store(false);
    controller_.reset();
  }
  if (!member) return;
  if (!leadership_) {
    if (!lease_ok || !snap->map) return;
    // Campaign when the key is vacant (as the watch shows), and every
    // second anyway.
    if (!snap->controller.empty() && now < next_campaign_) return;
    next_campaign_ = now + kCampaignEvery;
    auto r = election_.Campaign(options_.name, lease_->lease_id());
    if (!r.ok() || !r->won) return;
    leadership_ = r->holder;
    leader_.store(true);
    controller_.emplace(cluster::ControllerOptions{options_.never_joined_grace_ms,
                                                   options_.max_moves, options_.max_handoffs},
                        SteadyMs(now));
    decided_view_ = UINT64_MAX;
    spdlog::info("controller: elected ('{}' holds {})", options_.name, keys_.controller);
  }
  // Decide when the view changed, or a grace period ends.
  const int64_t now_ms = SteadyMs(now);
  if (version == decided_view_ && (recheck_at_ms_ == 0 || now_ms < recheck_at_ms_)) return;
  if (!snap->map) return;
  cluster::ControllerInput in;
  in.alive = snap->alive;
  in.reports = snap->reports;
  in.now_ms = now_ms;
  auto d = controller_->Decide(*snap->map, in);
  decided_view_ = version;
  recheck_at_ms_ = d.recheck_at_ms;
  // The value in etcd was not taken (malformed, older than the map in
  // force, or deleted: see ClusterWatcher): the map in force is written
  // back over it, with a new version, so that a process that starts now
  // reads the map the cluster runs on, not a stale one.
  const bool write_back = snap->etcd_map_revision != snap->map_revision;
  if (!d.next && write_back) {
    d.next = *snap->map;
    d.next->version = snap->map->version + 1;
    d.log.push_back("the map in etcd was not taken (" + snap->map_error +
                    "): writing the map in force back as version " +
                    std::to_string(d.next->version));
  }
  if (!d.next) return;
  io::TxnRequest txn;
  if (snap->etcd_map_revision == 0) {
    txn.compares.push_back(io::Compare::CreateRevision(keys_.map, io::CompareOp::kEqual, 0));
  } else {
    txn.compares.push_back(
        io::Compare::ModRevision(keys_.map, io::CompareOp::kEqual, snap->etcd_map_revision));
  }
  io::Election::Guard(*leadership_, &txn);
  txn.success.push_back(io::Op::Put(keys_.map, cluster::FormatMap(*d.next)));
  auto r = etcd_->Txn(txn);
  if (!r.ok()) {
    spdlog::warn("controller: map change not written ({}); deciding again", r.status().message());
    decided_view_ = UINT64_MAX;
    return;
  }
  if (!r->succeeded) {
    // The map moved on (or we lost the election): the watch brings the new
    // state, and we decide on it.
    decided_view_ = UINT64_MAX;
    return;
  }
  for (const std::string& line : d.log) spdlog::info("controller: {}", line);
  spdlog::info("controller: map version {} written (revision {})", d.next->version, r->revision);
}

void ClusterAgent::Loop() {
  pthread_setname_np(pthread_self(), "todo-agent");
  for (;;) {
    int64_t granted = 0;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait_for(lock, kLoopEvery, [&] { return stop_ || woken_; });
      if (stop_) return;
      woken_ = false;
      granted = granted_lease_;
    }
    const auto now = std::chrono::steady_clock::now();
    // Fencing: the table reads the keeper's validity (which has a margin)
    // live, for the lease we are announced under; while the lease is not
    // announced (a new lease, our key not yet written), the node serves
    // nothing.
    const int64_t id = lease_->lease_id();
    if (id != 0 && id == granted && announced_lease_ != id) Announce(id);
    if (id != 0 && announced_lease_ == id) {
      table_->set_serving_lease(id);
      PublishReports(id);
    } else {
      table_->set_serving_lease(0);
    }
    RunController(now);
  }
}

bool ClusterAgent::MayDecide(const io::ClusterSnapshot& snap) {
  const cluster::ClusterMap& map = *snap.map;
  uint64_t newest = 0;
  std::string newest_name;
  size_t alive_members = 0;
  for (const auto& [name, info] : snap.alive) {
    if (!map.IsMember(name)) continue;
    ++alive_members;
    if (info.map_version > newest) {
      newest = info.map_version;
      newest_name = name;
    }
  }
  std::string why;
  if (map.version < newest) {
    why = "'" + newest_name + "' last ran on map version " + std::to_string(newest) +
          ", newer than the map in force here (version " + std::to_string(map.version) + ")";
  } else if (snap.map_revision == 0 && alive_members < map.members.size()) {
    // The map in force is the one saved in the data dir (etcd's went back):
    // a member not seen yet may have run on a newer one.
    why = "the map in etcd went back, and " + std::to_string(map.members.size() - alive_members) +
          " member(s) are not up to say which map they last ran on (if one is gone for good, "
          "put the newest saved map back by hand: node/replication/DESIGN.md)";
  }
  if (why.empty()) {
    said_waiting_ = {};
    return true;
  }
  if (why != said_waiting_) {
    said_waiting_ = why;
    spdlog::warn("controller: '{}' will not decide: {}", options_.name, why);
  }
  return false;
}

void ClusterAgent::SaveMap(const io::ClusterSnapshot& snap) {
  // Only a map etcd holds (not one in force while etcd's was refused).
  if (!snap.map || snap.map_revision == 0 || snap.etcd_map_revision != snap.map_revision) return;
  if (snap.map->version <= saved_map_version_) return;
  if (Status s = store_->SaveClusterMap(cluster::FormatMap(*snap.map)); !s.ok()) {
    spdlog::warn("cannot save the cluster map (version {}): {}", snap.map->version, s.message());
    return;
  }
  saved_map_version_ = snap.map->version;
}

}  // namespace todo::node
