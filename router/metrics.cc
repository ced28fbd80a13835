#include "router/metrics.h"

#include <algorithm>
#include <msgpack.hpp>

#include "common/cluster/health.h"
#include "router/router.h"

namespace todo::router {
namespace {

using Packer = msgpack::packer<msgpack::sbuffer>;

std::string OpLabel(size_t op) {
  return std::string(protocol::OpName(static_cast<protocol::Op>(op)));
}
std::string CodeLabel(size_t code) {
  return std::string(ErrorCodeName(static_cast<ErrorCode>(code)));
}

size_t StatusSlot(int status) {
  for (size_t i = 0; i < std::size(kCountedStatuses); ++i) {
    if (kCountedStatuses[i] == status) return i;
  }
  return kNumStatusSlots - 1;
}

// Every counter of the loop, in the order both outputs list them.
struct Scalar {
  const char* name;
  const char* help;
  uint64_t RouterCounters::*field;
};
constexpr Scalar kScalars[] = {
    {"bad_requests", "Requests the router answered bad_request or unknown_op.",
     &RouterCounters::bad_requests},
    {"dropped_requests", "Messages dropped without a reply (no body).",
     &RouterCounters::dropped_requests},
    {"forwarded", "Requests forwarded to a node.", &RouterCounters::forwarded},
    {"replies_forwarded", "Node replies delivered to a client.",
     &RouterCounters::replies_forwarded},
    {"timeouts", "Forwarded requests answered timeout.", &RouterCounters::timeouts},
    {"late_replies_dropped", "Node replies that came after their deadline and were dropped.",
     &RouterCounters::late_replies_dropped},
    {"not_primary_retries",
     "Requests a node answered 'not primary' (nothing applied) sent on again to the "
     "partition's primary.",
     &RouterCounters::not_primary_retries},
    {"unroutable_sends", "Replies that could not be delivered (client gone or not reading).",
     &RouterCounters::unroutable_sends},
    {"bad_node_messages", "Messages from nodes that were neither replies nor heartbeat echoes.",
     &RouterCounters::bad_node_messages},
    {"batches_sent", "Hop batches of requests sent to nodes.", &RouterCounters::batches_sent},
    {"batches_received", "Hop batches of replies taken from nodes.",
     &RouterCounters::batches_received},
    {"heartbeats_sent", "Heartbeats sent to nodes.", &RouterCounters::heartbeats_sent},
    {"heartbeats_unsent", "Heartbeats not sent (node not connected or queue full).",
     &RouterCounters::heartbeats_unsent},
    {"node_up_transitions", "Node transitions to up.", &RouterCounters::node_up},
    {"node_down_transitions", "Node transitions to down.", &RouterCounters::node_down},
};

}  // namespace

void ForwardedStats::Record(protocol::Op op, std::optional<ErrorCode> code,
                            TimePoint::duration latency_d) {
  size_t o = static_cast<size_t>(op);
  if (!code) {
    ++unreadable_replies;
  } else {
    ++by_op_code[o][static_cast<size_t>(*code)];
  }
  latency[o].Observe(std::chrono::duration<double>(latency_d).count());
}

std::string_view HttpRouteName(HttpRoute route) {
  static constexpr std::string_view kNames[kNumHttpRoutes] = {
      "book_entries", "book_add_entry", "list_entries", "create_entry", "update_entry",
      "delete_entry", "owner",          "health",       "metrics",      "other",
      "page",         "api_cluster",    "api_list"};
  return kNames[static_cast<size_t>(route)];
}

HttpCounters::HttpCounters() = default;

void HttpCounters::Record(HttpRoute route, int status, std::optional<double> latency_seconds) {
  size_t r = static_cast<size_t>(route);
  by_route_status_[r][StatusSlot(status)].fetch_add(1, std::memory_order_relaxed);
  if (!latency_seconds) return;
  const auto& bounds = metrics::kLatencySeconds;
  size_t b =
      static_cast<size_t>(std::lower_bound(std::begin(bounds), std::end(bounds), *latency_seconds) -
                          std::begin(bounds));
  latency_buckets_[r][b].fetch_add(1, std::memory_order_relaxed);
  latency_sum_ns_[r].fetch_add(static_cast<uint64_t>(*latency_seconds * 1e9),
                               std::memory_order_relaxed);
}

HttpCounters::Snapshot HttpCounters::Take() const {
  Snapshot s;
  for (size_t r = 0; r < kNumHttpRoutes; ++r) {
    for (size_t i = 0; i < kNumStatusSlots; ++i) {
      s.by_route_status[r][i] = by_route_status_[r][i].load(std::memory_order_relaxed);
    }
    metrics::Histogram h(metrics::kLatencySeconds);
    for (size_t b = 0; b < latency_buckets_[r].size(); ++b) {
      h.SetBucket(b, latency_buckets_[r][b].load(std::memory_order_relaxed));
    }
    h.SetSum(static_cast<double>(latency_sum_ns_[r].load(std::memory_order_relaxed)) / 1e9);
    s.latency.push_back(std::move(h));
  }
  return s;
}

// --- The cluster's health (replicated mode) ---

// Gauges of the cluster as the router last saw it in etcd: what
// todo-admin status shows, for alerts and dashboards.
namespace {

void AppendClusterGauges(metrics::TextWriter& w, const io::ClusterSnapshot& snap) {
  w.Family("todo_cluster_map_present", "gauge",
           "1 if the router has read a valid cluster map from etcd.");
  w.Sample("todo_cluster_map_present", {}, snap.map != nullptr ? 1 : 0);
  if (snap.map == nullptr) return;
  const cluster::ClusterMap& map = *snap.map;
  const cluster::ClusterHealth h =
      cluster::SummarizeHealth(map, [&](const std::string& n) { return snap.alive.contains(n); });
  w.Family("todo_cluster_map_version", "gauge",
           "The cluster map's version (raised by every change).");
  w.Sample("todo_cluster_map_version", {}, static_cast<double>(map.version));
  w.Family("todo_cluster_members", "gauge",
           "Members of the cluster, by state: alive (a live lease in etcd) or down.");
  w.Sample("todo_cluster_members", {{"state", "alive"}}, h.members_alive);
  w.Sample("todo_cluster_members", {{"state", "down"}}, h.members - h.members_alive);
  w.Family("todo_cluster_members_leaving", "gauge", "Members draining after remove-node.");
  w.Sample("todo_cluster_members_leaving", {}, h.members_leaving);
  w.Family("todo_cluster_members_joining", "gauge",
           "Members added (add-node) that have not run yet.");
  w.Sample("todo_cluster_members_joining", {}, h.members_joining);
  w.Family("todo_cluster_partitions", "gauge",
           "Partitions by state: ok, catching_up, under_replicated, moving, unavailable "
           "(no live in-sync primary).");
  for (size_t i = 0; i < cluster::kPartitionStateNames.size(); ++i) {
    w.Sample("todo_cluster_partitions", {{"state", cluster::kPartitionStateNames[i]}},
             h.partitions_by_state[i]);
  }
  w.Family("todo_cluster_replicas_not_in_sync", "gauge",
           "Replicas (partition, node) in the map but not in sync yet.");
  w.Sample("todo_cluster_replicas_not_in_sync", {}, h.replicas_not_in_sync);
  w.Family("todo_cluster_moves_in_progress", "gauge",
           "Partitions with a move (a new replica catching up) or a hand-off under way.");
  w.Sample("todo_cluster_moves_in_progress", {}, h.moves_in_progress);
  w.Family("todo_cluster_moves_remaining", "gauge",
           "Moves the balancer would still make after those in progress (0: balanced).");
  w.Sample("todo_cluster_moves_remaining", {}, h.moves_remaining);
}

}  // namespace

// --- Published snapshots ---

struct RouterMetrics::Published {
  std::string name;
  std::vector<NodeSpec> nodes;
  std::vector<NodeState> states;
  size_t inflight = 0;
  RouterCounters counters;
  std::shared_ptr<const io::ClusterSnapshot> cluster;  // replicated mode, once seen
};

RouterMetrics::RouterMetrics() = default;
RouterMetrics::~RouterMetrics() = default;

RateTotals RateTotalsOf(const RouterCounters& c) {
  RateTotals t;
  for (uint64_t n : c.requests_by_op) t.requests += n;
  t.requests += c.bad_requests + c.dropped_requests;
  // The router's own replies count its timeouts, which the forwarded
  // counts hold too: each reply once.
  for (size_t code = 0; code < kNumCodes; ++code) {
    t.replies[code] = c.replies_by_code[code];
    for (size_t op = 0; op < protocol::kNumOps; ++op) {
      t.replies[code] += c.forwarded_by_op.by_op_code[op][code];
    }
  }
  uint64_t& timeouts = t.replies[static_cast<size_t>(ErrorCode::kTimeout)];
  timeouts -= std::min(timeouts, c.timeouts);
  t.latency_buckets.assign(std::size(metrics::kLatencySeconds) + 1, 0);
  for (const metrics::Histogram& h : c.forwarded_by_op.latency) {
    for (size_t b = 0; b < h.counts().size() && b < t.latency_buckets.size(); ++b) {
      t.latency_buckets[b] += h.counts()[b];
    }
  }
  return t;
}

void RouterMetrics::Publish(const Router& router) {
  const RateTotals totals = RateTotalsOf(router.counters());
  const auto now = std::chrono::steady_clock::now();
  const int64_t unix_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                              std::chrono::system_clock::now().time_since_epoch())
                              .count();
  auto p = std::make_unique<Published>();
  p->name = router.name();
  p->nodes = router.node_specs();
  for (size_t i = 0; i < router.nodes().size(); ++i) p->states.push_back(router.nodes().state(i));
  p->inflight = router.inflight();
  p->counters = router.counters();
  p->cluster = router.cluster();
  {
    std::lock_guard<std::mutex> lock(mu_);
    published_.swap(p);
    rates_.Offer(now, unix_ms, totals);
  }
  serving_.store(true, std::memory_order_release);
  // The old snapshot is freed here, outside the lock.
}

std::vector<std::pair<std::string, NodeState>> RouterMetrics::NodeStates() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::pair<std::string, NodeState>> out;
  if (!published_) return out;
  for (size_t i = 0; i < published_->nodes.size(); ++i) {
    out.emplace_back(published_->nodes[i].name, published_->states[i]);
  }
  return out;
}

std::vector<RateSlot> RouterMetrics::RateSlots() const {
  std::lock_guard<std::mutex> lock(mu_);
  return {rates_.slots().begin(), rates_.slots().end()};
}

std::string RouterMetrics::PrometheusText() const {
  Published p;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (published_) p = *published_;
  }
  const RouterCounters& c = p.counters;
  metrics::TextWriter w;
  w.Family("todo_router_requests_total", "counter", "Requests decoded by the router, by op.");
  for (size_t op = 0; op < protocol::kNumOps; ++op) {
    w.Sample("todo_router_requests_total", {{"op", OpLabel(op)}},
             static_cast<double>(c.requests_by_op[op]));
  }
  w.Family("todo_router_own_replies_total", "counter",
           "Replies the router built itself (ping, locate, stats, errors), by code.");
  for (size_t code = 0; code < kNumCodes; ++code) {
    w.Sample("todo_router_own_replies_total", {{"code", CodeLabel(code)}},
             static_cast<double>(c.replies_by_code[code]));
  }
  w.Family("todo_router_forwarded_replies_total", "counter",
           "Replies to forwarded requests (node replies and router timeouts), by op and code.");
  for (size_t op = 0; op < protocol::kNumOps; ++op) {
    for (size_t code = 0; code < kNumCodes; ++code) {
      uint64_t v = c.forwarded_by_op.by_op_code[op][code];
      if (v == 0) continue;
      w.Sample("todo_router_forwarded_replies_total",
               {{"op", OpLabel(op)}, {"code", CodeLabel(code)}}, static_cast<double>(v));
    }
  }
  w.Family("todo_router_request_duration_seconds", "histogram",
           "Forwarded requests: time from receiving the request to sending its reply, by op.");
  for (size_t op = 0; op < protocol::kNumOps; ++op) {
    if (!protocol::NeedsList(static_cast<protocol::Op>(op)) ||
        static_cast<protocol::Op>(op) == protocol::Op::kLocate) {
      continue;  // answered by the router itself, never forwarded
    }
    w.HistogramSamples("todo_router_request_duration_seconds", {{"op", OpLabel(op)}},
                       c.forwarded_by_op.latency[op]);
  }
  for (const Scalar& s : kScalars) {
    std::string name = std::string("todo_router_") + s.name + "_total";
    w.Family(name, "counter", s.help);
    w.Sample(name, {}, static_cast<double>(c.*s.field));
  }
  w.Family("todo_router_inflight", "gauge", "Forwarded requests awaiting a reply.");
  w.Sample("todo_router_inflight", {}, static_cast<double>(p.inflight));
  w.Family("todo_router_node_up", "gauge",
           "1 if the router routes to the node (up or starting), 0 if it is down.");
  for (size_t i = 0; i < p.nodes.size(); ++i) {
    w.Sample("todo_router_node_up", {{"node", p.nodes[i].name}, {"endpoint", p.nodes[i].endpoint}},
             p.states[i] == NodeState::kDown ? 0 : 1);
  }
  w.Family("todo_router_serving", "gauge", "1 while the router's loop serves requests.");
  w.Sample("todo_router_serving", {}, serving() ? 1 : 0);
  if (p.cluster != nullptr) AppendClusterGauges(w, *p.cluster);

  HttpCounters::Snapshot h = http_.Take();
  w.Family("todo_http_requests_total", "counter", "HTTP requests answered, by route and status.");
  for (size_t r = 0; r < kNumHttpRoutes; ++r) {
    for (size_t i = 0; i < kNumStatusSlots; ++i) {
      uint64_t v = h.by_route_status[r][i];
      if (v == 0) continue;
      std::string status = i < std::size(kCountedStatuses) ? std::to_string(kCountedStatuses[i])
                                                           : std::string("other");
      w.Sample(
          "todo_http_requests_total",
          {{"route", std::string(HttpRouteName(static_cast<HttpRoute>(r)))}, {"status", status}},
          static_cast<double>(v));
    }
  }
  w.Family("todo_http_request_duration_seconds", "histogram",
           "HTTP requests: time from routing to the response, by route.");
  for (size_t r = 0; r < kNumHttpRoutes; ++r) {
    if (h.latency[r].count() == 0) continue;
    w.HistogramSamples("todo_http_request_duration_seconds",
                       {{"route", std::string(HttpRouteName(static_cast<HttpRoute>(r)))}},
                       h.latency[r]);
  }
  return w.text();
}

// --- The stats op ---

void EncodeRouterStats(msgpack::sbuffer& out, const protocol::RequestId& id, const Router& router) {
  protocol::BeginOkReply(out, id);
  Packer pk(out);
  const RouterCounters& c = router.counters();
  pk.pack_map(8 + static_cast<uint32_t>(std::size(kScalars)));
  protocol::AppendStr(out, "role");
  protocol::AppendStr(out, "router");
  protocol::AppendStr(out, "name");
  protocol::AppendStr(out, router.name());
  protocol::AppendUintField(out, "inflight", router.inflight());
  protocol::AppendStr(out, "requests");
  pk.pack_map(protocol::kNumOps);
  for (size_t op = 0; op < protocol::kNumOps; ++op)
    protocol::AppendUintField(out, OpLabel(op), c.requests_by_op[op]);
  protocol::AppendStr(out, "own_replies");
  pk.pack_map(kNumCodes);
  for (size_t code = 0; code < kNumCodes; ++code) {
    protocol::AppendUintField(out, CodeLabel(code), c.replies_by_code[code]);
  }
  // {op: {code: n}} for the ops that were forwarded.
  std::vector<size_t> ops;
  for (size_t op = 0; op < protocol::kNumOps; ++op) {
    if (c.forwarded_by_op.latency[op].count() > 0) ops.push_back(op);
  }
  protocol::AppendStr(out, "forwarded_replies");
  pk.pack_map(static_cast<uint32_t>(ops.size()));
  for (size_t op : ops) {
    protocol::AppendStr(out, OpLabel(op));
    uint32_t n = 0;
    for (uint64_t v : c.forwarded_by_op.by_op_code[op]) n += v > 0;
    pk.pack_map(n);
    for (size_t code = 0; code < kNumCodes; ++code) {
      if (uint64_t v = c.forwarded_by_op.by_op_code[op][code]; v > 0)
        protocol::AppendUintField(out, CodeLabel(code), v);
    }
  }
  protocol::AppendStr(out, "latency");
  pk.pack_map(static_cast<uint32_t>(ops.size()));
  for (size_t op : ops) {
    const metrics::Histogram& h = c.forwarded_by_op.latency[op];
    protocol::AppendStr(out, OpLabel(op));
    pk.pack_map(2);
    protocol::AppendUintField(out, "count", h.count());
    protocol::AppendStr(out, "sum_seconds");
    pk.pack_double(h.sum());
  }
  for (const Scalar& s : kScalars) protocol::AppendUintField(out, s.name, c.*s.field);
  protocol::AppendStr(out, "nodes");
  const auto& specs = router.node_specs();
  pk.pack_map(static_cast<uint32_t>(specs.size()));
  for (size_t i = 0; i < specs.size(); ++i) {
    protocol::AppendStr(out, specs[i].name);
    protocol::AppendStr(out, NodeStateName(router.nodes().state(i)));
  }
}

}  // namespace todo::router
