#include "router/operator_view.h"

#include <algorithm>
#include <msgpack.hpp>
#include <set>

#include "common/cluster/health.h"
#include "common/protocol.h"
#include "router/http_query.h"
#include "router/router.h"
#include "router/web/assets.h"

namespace todo::router {
namespace {

using json = nlohmann::ordered_json;
using Clock = std::chrono::steady_clock;

// Every answer of the page's routes: never cached (the page polls), and
// nothing but the router itself may be loaded or contacted.
constexpr std::string_view kCsp =
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

std::string Dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
}

http::HttpReply JsonReply(const json& j) {
  http::HttpReply r{200, std::string(http::kJson), Dump(j), {}};
  r.headers.emplace_back("Cache-Control", "no-store");
  return r;
}

int64_t Millis(Clock::duration d) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
}

// The query's parameters, refusing names not in `allowed` and repeated
// names (a script's typo should not be silently ignored).
StatusOr<http::Params> CheckedQuery(std::string_view target,
                                    std::initializer_list<std::string_view> allowed) {
  auto parsed = http::ParseQuery(target);
  if (!parsed.ok()) return parsed.status();
  http::Params q = std::move(parsed).value();
  std::string names;
  for (std::string_view a : allowed) names += (names.empty() ? "'" : ", '") + std::string(a) + "'";
  for (const auto& [k, v] : q) {
    if (std::find(allowed.begin(), allowed.end(), k) == allowed.end()) {
      return Status::BadRequest("unknown query parameter " + protocol::QuoteForMessage(k) +
                                " (expected " + (names.empty() ? "none" : names) + ")");
    }
    if (q.count(k) > 1) {
      return Status::BadRequest("query parameter " + protocol::QuoteForMessage(k) +
                                " given more than once");
    }
  }
  return q;
}

// --- Partitions ---

using PartState = cluster::PartitionState;
constexpr const auto& kPartStateNames = cluster::kPartitionStateNames;

// From the nodes' stats: each partition's primary-side figures (its
// sequence number and the backups' mode, acked and lag), preferring the
// node the map names primary.
struct PrimaryFigures {
  const json* entry = nullptr;  // the partition's element of the primary's "partitions"
  std::string node;
};

std::map<uint32_t, PrimaryFigures> PrimaryFiguresOf(const OperatorState& s,
                                                    const cluster::ClusterMap* map) {
  std::map<uint32_t, PrimaryFigures> out;
  for (const auto& [name, entry] : s.stats) {
    if (!entry.result) continue;
    auto parts = entry.result->find("partitions");
    if (parts == entry.result->end() || !parts->is_array()) continue;
    for (const json& p : *parts) {
      if (!p.is_object()) continue;
      auto role = p.find("role");
      auto num = p.find("partition");
      if (role == p.end() || num == p.end() || !num->is_number_unsigned() || *role != "primary") {
        continue;
      }
      const uint32_t n = num->get<uint32_t>();
      const bool named = map != nullptr && n < map->parts.size() && map->parts[n].primary() == name;
      auto it = out.find(n);
      if (it == out.end() || named) out[n] = PrimaryFigures{&p, name};
    }
  }
  return out;
}

json BackupsOf(const PrimaryFigures* f) {
  if (f == nullptr) return json::array();
  auto b = f->entry->find("backups");
  return b != f->entry->end() && b->is_array() ? *b : json::array();
}

const json* BackupNamed(const json& backups, const std::string& name) {
  for (const json& b : backups) {
    if (b.is_object() && b.value("name", "") == name) return &b;
  }
  return nullptr;
}

json ValueOrNull(const json* obj, const char* key) {
  if (obj == nullptr) return nullptr;
  auto it = obj->find(key);
  return it == obj->end() ? json(nullptr) : *it;
}

// --- Rates ---

json RatesJson(const OperatorState& s) {
  json slots = json::array();
  for (const RateSlot& r : s.rates) {
    json replies = json::object();
    for (size_t c = 0; c < kRateCodes; ++c) {
      replies[std::string(ErrorCodeName(static_cast<ErrorCode>(c)))] = r.replies[c];
    }
    auto ms = [&](double q) -> json {
      auto v = r.Quantile(q);
      return v ? json(*v * 1000.0) : json(nullptr);
    };
    slots.push_back({{"t_ms", r.end_unix_ms},
                     {"seconds", r.seconds},
                     {"requests", r.requests},
                     {"replies", replies},
                     {"latency_count", r.latency_count()},
                     {"p50_ms", ms(0.5)},
                     {"p90_ms", ms(0.9)},
                     {"p99_ms", ms(0.99)}});
  }
  return {{"slot_ms", s.rate_slot_ms}, {"slots", slots}};
}

// --- Nodes ---

json NodeStatsJson(const OperatorState& s, const std::string& name) {
  auto it = s.stats.find(name);
  if (it == s.stats.end()) return nullptr;
  const NodeStatsEntry& e = it->second;
  json j = {{"ok", e.last_ok},
            {"error", e.last_error.empty() ? json(nullptr) : json(e.last_error)},
            {"age_ms", e.result ? json(Millis(s.steady_now - e.answered_at)) : json(nullptr)}};
  for (const char* key : {"inflight", "live_actors", "received", "cache_bytes"}) {
    j[key] = e.result ? ValueOrNull(e.result.get(), key) : json(nullptr);
  }
  return j;
}

}  // namespace

StatusOr<PartitionDetail> ParseClusterQuery(std::string_view target) {
  auto q = CheckedQuery(target, {"partitions"});
  if (!q.ok()) return q.status();
  auto it = q->find("partitions");
  if (it == q->end() || it->second == "all") return PartitionDetail::kAll;
  if (it->second == "problems") return PartitionDetail::kProblems;
  if (it->second == "none") return PartitionDetail::kNone;
  return Status::BadRequest("query parameter 'partitions' must be all, problems or none, not " +
                            protocol::QuoteForMessage(it->second));
}

StatusOr<std::string> ParseListQuery(std::string_view target) {
  auto q = CheckedQuery(target, {"name"});
  if (!q.ok()) return q.status();
  auto it = q->find("name");
  if (it == q->end()) return Status::BadRequest("missing query parameter 'name' (the list's name)");
  if (it->second.empty()) return Status::BadRequest("query parameter 'name' is empty");
  return it->second;
}

json ClusterJson(const OperatorState& s, PartitionDetail detail) {
  json out;
  out["api"] = kOperatorApiVersion;
  out["router"] = {{"name", s.router_name},
                   {"mode", s.replicated ? "replicated" : "static"},
                   {"serving", s.serving},
                   {"inflight", s.inflight},
                   {"time_ms", s.now_unix_ms}};
  const io::ClusterSnapshot* snap = s.snapshot.get();
  const cluster::ClusterMap* map = snap != nullptr && snap->map ? snap->map.get() : nullptr;
  auto alive = [&](const std::string& n) { return snap != nullptr && snap->alive.contains(n); };

  // Partitions first: the nodes' counts come from them.
  std::map<std::string, std::array<uint32_t, 3>> roles;  // primaries, backups, not in sync
  json partitions = json::array();
  json moves = json::array();
  json not_in_sync = json::array();
  json unavailable = json::array();
  std::array<uint32_t, std::size(kPartStateNames)> state_counts{};
  if (map != nullptr) {
    const auto figures = PrimaryFiguresOf(s, map);
    for (uint32_t n = 0; n < map->parts.size(); ++n) {
      const cluster::Partition& p = map->parts[n];
      const cluster::PartitionHealth v =
          cluster::ClassifyPartition(*map, p, [&](const std::string& r) { return alive(r); });
      ++state_counts[static_cast<size_t>(v.state)];
      auto fig = figures.find(n);
      const PrimaryFigures* f = fig == figures.end() ? nullptr : &fig->second;
      const json backups = BackupsOf(f);
      for (size_t i = 0; i < p.replicas.size(); ++i) {
        auto& r = roles[p.replicas[i]];
        ++r[i == 0 ? 0 : 1];
        if (!p.IsInSync(p.replicas[i])) {
          ++r[2];
          const json* b = BackupNamed(backups, p.replicas[i]);
          not_in_sync.push_back({{"partition", n},
                                 {"replica", p.replicas[i]},
                                 {"alive", alive(p.replicas[i])},
                                 {"mode", ValueOrNull(b, "mode")},
                                 {"acked", ValueOrNull(b, "acked")},
                                 {"lag", ValueOrNull(b, "lag")}});
        }
      }
      if (v.state == PartState::kUnavailable) unavailable.push_back(n);
      json jp = {{"partition", n},
                 {"epoch", p.epoch},
                 {"leader_epoch", p.leader_epoch},
                 {"replicas", p.replicas},
                 {"in_sync", p.in_sync},
                 {"handoff", p.handoff.empty() ? json(nullptr) : json(p.handoff)},
                 {"state", kPartStateNames[static_cast<size_t>(v.state)]},
                 {"seq", f ? ValueOrNull(f->entry, "seq") : json(nullptr)},
                 {"backups", backups}};
      if (!v.move_reasons.empty()) {
        moves.push_back({{"partition", n},
                         {"epoch", p.epoch},
                         {"replicas", p.replicas},
                         {"in_sync", p.in_sync},
                         {"handoff", jp["handoff"]},
                         {"reasons", v.move_reasons},
                         {"backups", backups}});
      }
      if (detail == PartitionDetail::kAll ||
          (detail == PartitionDetail::kProblems && v.state != PartState::kOk)) {
        partitions.push_back(std::move(jp));
      }
    }
  }

  if (!s.replicated) {
    out["cluster"] = nullptr;
  } else {
    json states = json::object();
    for (size_t i = 0; i < std::size(kPartStateNames); ++i)
      states[kPartStateNames[i]] = state_counts[i];
    auto or_null = [&](auto v) { return map != nullptr ? json(v) : json(nullptr); };
    // A string that is empty when absent: null then, as every absent value.
    auto text_or_null = [](const std::string& v) { return v.empty() ? json(nullptr) : json(v); };
    out["cluster"] = {{"name", s.cluster_name},
                      {"has_map", map != nullptr},
                      {"map_error", text_or_null(snap != nullptr ? snap->map_error : "")},
                      {"map_version", or_null(map ? map->version : 0)},
                      {"map_revision", or_null(snap ? snap->map_revision : 0)},
                      {"partition_count", or_null(map ? map->partitions : 0)},
                      {"replicas", or_null(map ? map->replicas : 0)},
                      {"min_insync", or_null(map ? map->min_insync : 0)},
                      {"controller", text_or_null(snap != nullptr ? snap->controller : "")},
                      {"etcd_revision", snap != nullptr ? snap->revision : 0},
                      {"partition_states", states}};
  }

  // Nodes: the members in map order, then live non-members, then any other
  // node the router knows.
  std::vector<std::string> names;
  std::set<std::string> seen;
  auto add = [&](const std::string& n) {
    if (seen.insert(n).second) names.push_back(n);
  };
  if (map != nullptr) {
    for (const cluster::Member& m : map->members) add(m.name);
  }
  if (snap != nullptr) {
    for (const auto& [n, info] : snap->alive) add(n);
  }
  for (const auto& r : s.routed) add(r.name);
  json nodes = json::array();
  for (const std::string& n : names) {
    const OperatorState::RoutedNode* routed = nullptr;
    for (const auto& r : s.routed) {
      if (r.name == n) routed = &r;
    }
    const cluster::NodeInfo* info = nullptr;
    if (snap != nullptr) {
      if (auto it = snap->alive.find(n); it != snap->alive.end()) info = &it->second;
    }
    const cluster::Member* member = map != nullptr ? map->FindMember(n) : nullptr;
    const bool heartbeat_ok = routed != nullptr && routed->state != NodeState::kDown;
    const bool is_alive =
        s.replicated ? info != nullptr && (routed == nullptr || heartbeat_ok) : heartbeat_ok;
    std::string status = "up";
    if (!is_alive) {
      status = "down";
    } else if (routed != nullptr && routed->state == NodeState::kStarting) {
      status = "starting";
    }
    std::string endpoint = info != nullptr ? info->endpoint : routed ? routed->endpoint : "";
    auto rit = roles.find(n);
    const std::array<uint32_t, 3> r = rit == roles.end() ? std::array<uint32_t, 3>{} : rit->second;
    nodes.push_back(
        {{"name", n},
         {"endpoint", endpoint.empty() ? json(nullptr) : json(endpoint)},
         {"repl_endpoint", info != nullptr && !info->repl_endpoint.empty()
                               ? json(info->repl_endpoint)
                               : json(nullptr)},
         {"member", s.replicated ? member != nullptr : true},
         {"leaving", member != nullptr && member->leaving},
         {"lease", s.replicated ? json(info != nullptr) : json(nullptr)},
         {"heartbeat", routed != nullptr ? json(NodeStateName(routed->state)) : json(nullptr)},
         {"heard_ms_ago",
          routed != nullptr && routed->ever_heard ? json(routed->heard_ms_ago) : json(nullptr)},
         {"alive", is_alive},
         {"status", status},
         {"primaries", r[0]},
         {"backups", r[1]},
         {"not_in_sync", r[2]},
         {"stats", NodeStatsJson(s, n)}});
  }
  out["nodes"] = std::move(nodes);
  out["partitions_included"] = detail == PartitionDetail::kAll        ? "all"
                               : detail == PartitionDetail::kProblems ? "problems"
                                                                      : "none";
  out["partitions"] = std::move(partitions);
  out["moves"] = std::move(moves);
  out["not_in_sync"] = std::move(not_in_sync);
  out["unavailable"] = std::move(unavailable);
  out["rates"] = RatesJson(s);
  return out;
}

namespace {

// The number of entries in an `entries` reply, or its error.
StatusOr<size_t> CountEntries(std::string_view body) {
  auto header = protocol::DecodeReplyHeader(body);
  if (!header.ok()) return header.status();
  if (!header->ok) return Status(header->code, header->message);
  try {
    msgpack::object_handle oh = msgpack::unpack(body.data(), body.size());
    const msgpack::object& o = oh.get();
    for (uint32_t i = 0; o.type == msgpack::type::MAP && i < o.via.map.size; ++i) {
      const auto& kv = o.via.map.ptr[i];
      if (kv.key.type == msgpack::type::STR &&
          std::string_view(kv.key.via.str.ptr, kv.key.via.str.size) == "result" &&
          kv.val.type == msgpack::type::ARRAY) {
        return static_cast<size_t>(kv.val.via.array.size);
      }
    }
  } catch (const std::exception& e) {
    return Status::Internal(std::string("unreadable entries reply: ") + e.what());
  }
  return Status::Internal("entries reply has no list of entries");
}

}  // namespace

http::HttpReply ListLookupReply(std::string_view list, std::string_view locate_reply,
                                std::string_view entries_reply,
                                const io::ClusterSnapshot* snapshot) {
  auto located = http::DecodeReply(locate_reply);
  if (!located.ok()) return http::JsonError(located.status());
  if (!located->ok) return http::JsonError(Status(located->code, located->message));
  const json& loc = located->result;
  json out;
  out["list"] = std::string(list);
  out["node"] = loc.contains("node") ? loc["node"] : json(nullptr);
  out["replicas"] = loc.contains("replicas") ? loc["replicas"] : json::array({out["node"]});
  out["partition"] = loc.contains("partition") ? loc["partition"] : json(nullptr);
  out["epoch"] = loc.contains("epoch") ? loc["epoch"] : json(nullptr);
  out["in_sync"] = nullptr;
  out["alive"] = nullptr;
  if (snapshot != nullptr && snapshot->map && out["partition"].is_number_unsigned()) {
    const uint32_t p = out["partition"].get<uint32_t>();
    if (p < snapshot->map->parts.size()) out["in_sync"] = snapshot->map->parts[p].in_sync;
    json alive = json::object();
    for (const json& r : out["replicas"]) {
      if (r.is_string())
        alive[r.get<std::string>()] = snapshot->alive.contains(r.get<std::string>());
    }
    out["alive"] = std::move(alive);
  }
  auto count = CountEntries(entries_reply);
  if (count.ok()) {
    out["entries"] = *count;
    out["entries_error"] = nullptr;
  } else {
    out["entries"] = nullptr;
    out["entries_error"] = {{"code", ErrorCodeName(count.status().code())},
                            {"message", count.status().message()}};
  }
  return JsonReply(out);
}

// --- OperatorView ---

OperatorView::OperatorView(Router* router, RouterMetrics* metrics, zmq::context_t* ctx)
    : router_(router), metrics_(metrics) {
  if (router_->options().replicated()) {
    poller_ = std::make_unique<NodeStatsPoller>(ctx, NodeStatsOptions{});
  }
}

OperatorView::~OperatorView() {
  if (poller_) poller_->Stop();
}

void OperatorView::Install(HttpFrontend* frontend) {
  frontend_ = frontend;
  for (const web::Asset& a : web::Assets()) {
    const web::Asset* asset = &a;
    frontend->AddLocalRoute(std::string(a.path), HttpRoute::kPage, [asset](const HttpRequest&) {
      http::HttpReply r{200, std::string(asset->content_type), std::string(asset->body), {}};
      r.headers.emplace_back("Cache-Control", "no-cache");
      r.headers.emplace_back("Content-Security-Policy", std::string(kCsp));
      r.headers.emplace_back("X-Content-Type-Options", "nosniff");
      return r;
    });
  }
  frontend->AddLocalRoute("/api/cluster", HttpRoute::kApiCluster,
                          [this](const HttpRequest& req) { return ClusterReply(req); });
  frontend->AddAsyncRoute("/api/list", HttpRoute::kApiList,
                          [this](const HttpRequest& req, HttpFrontend::Responder respond) {
                            ListLookup(req, std::move(respond));
                          });
}

void OperatorView::Tick() {
  if (!poller_) return;
  const bool viewed =
      last_viewed_ != Clock::time_point{} && Clock::now() - last_viewed_ < kPollWhileViewedFor;
  poller_->SetActive(viewed);
  auto snap = router_->cluster();
  if (snap == targets_of_) return;
  targets_of_ = snap;
  std::map<std::string, std::string> targets;
  if (snap) {
    for (const auto& [name, info] : snap->alive) targets[name] = info.endpoint;
  }
  poller_->SetTargets(std::move(targets));
}

OperatorState OperatorView::State() const {
  OperatorState s;
  s.router_name = router_->name();
  s.replicated = router_->options().replicated();
  s.serving = router_->serving();
  s.inflight = router_->inflight();
  s.now_unix_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count();
  s.steady_now = Clock::now();
  s.cluster_name = router_->options().cluster_name;
  const NodeTable& table = router_->nodes();
  const auto& specs = router_->node_specs();
  for (size_t i = 0; i < specs.size() && i < table.size(); ++i) {
    s.routed.push_back({specs[i].name, specs[i].endpoint, table.state(i), table.ever_heard(i),
                        Millis(s.steady_now - table.last_heard(i))});
  }
  if (s.replicated) s.snapshot = router_->cluster();
  if (poller_) s.stats = poller_->Latest();
  s.rates = metrics_->RateSlots();
  s.rate_slot_ms = 1000;
  return s;
}

http::HttpReply OperatorView::ClusterReply(const HttpRequest& request) {
  auto detail = ParseClusterQuery(request.target());
  if (!detail.ok()) return http::JsonError(detail.status());
  last_viewed_ = Clock::now();
  if (poller_ && !poller_->active()) poller_->SetActive(true);
  return JsonReply(ClusterJson(State(), *detail));
}

void OperatorView::ListLookup(const HttpRequest& request, HttpFrontend::Responder respond) {
  auto name = ParseListQuery(request.target());
  if (!name.ok()) return respond(http::JsonError(name.status()));
  // Both requests go out now; the answer when both replies are in.
  struct Lookup {
    std::string list;
    std::optional<std::string> locate, entries;
    HttpFrontend::Responder respond;
  };
  auto lookup = std::make_shared<Lookup>();
  lookup->list = *name;
  lookup->respond = std::move(respond);
  Router* router = router_;
  auto finish = [lookup, router] {
    if (!lookup->locate || !lookup->entries) return;
    auto snap = router->cluster();
    lookup->respond(ListLookupReply(lookup->list, *lookup->locate, *lookup->entries, snap.get()));
  };
  http::OwnedRequest locate;
  locate.op = protocol::Op::kLocate;
  locate.list = *name;
  http::OwnedRequest entries;
  entries.op = protocol::Op::kEntries;
  entries.list = *name;
  frontend_->SubmitRequest(locate, [lookup, finish](std::string_view body) {
    lookup->locate.emplace(body);
    finish();
  });
  frontend_->SubmitRequest(entries, [lookup, finish](std::string_view body) {
    lookup->entries.emplace(body);
    finish();
  });
}

}  // namespace todo::router
