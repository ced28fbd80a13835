// The operator's view of the cluster on the router's HTTP port:
//
//   GET /                  the page (router/web/index.html; its script,
//   GET /ui/app.js ...     style and icon under /ui/), served from the binary
//   GET /api/cluster       the JSON the page draws, for scripts too
//       [?partitions=all|problems|none]
//   GET /api/list?name=L   where a list lives and how many entries it has
//
// The JSON's shape is in README.md ("Operator's page"); ClusterJson() below
// builds it from plain values, so tests check it without a cluster.
//
// Design: every route runs on the router loop's thread (HttpFrontend local
// routes). /api/cluster reads the router's state directly (node table,
// cluster snapshot), the last minute's rates (RouterMetrics::RateSlots())
// and the nodes' latest `stats` answers, which a NodeStatsPoller thread
// fetches (replicated mode only: static mode has no partitions), so the
// loop never waits on a node. The poller runs only while someone asked
// /api/cluster within kPollWhileViewedFor. /api/list submits `locate` and
// `entries` through the router exactly as the HTTP API does and answers
// when both replies are in (within the router's --timeout-ms).
// Not thread-safe: construct, Install() and Tick() on the loop's thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "common/io/cluster_view.h"
#include "common/status.h"
#include "router/http_frontend.h"
#include "router/metrics.h"
#include "router/node_stats.h"
#include "router/node_table.h"
#include "router/rate_ring.h"

namespace todo::router {

// The JSON's version: raised only by changes that break a reader (fields
// are only ever added).
inline constexpr int kOperatorApiVersion = 1;

// Everything /api/cluster shows, as plain values.
struct OperatorState {
  std::string router_name;
  bool replicated = false;
  bool serving = true;
  size_t inflight = 0;
  int64_t now_unix_ms = 0;
  std::string cluster_name;  // replicated mode

  // The nodes the router routes to, with its heartbeat opinion of each.
  struct RoutedNode {
    std::string name;
    std::string endpoint;
    NodeState state = NodeState::kStarting;
    bool ever_heard = false;
    int64_t heard_ms_ago = 0;  // since last heard (since start if never)
  };
  std::vector<RoutedNode> routed;

  // Replicated mode: the cluster as the router last saw it in etcd (null in
  // static mode or before the first read).
  std::shared_ptr<const io::ClusterSnapshot> snapshot;
  // Replicated mode: the nodes' latest `stats`, and how old each answer is.
  std::map<std::string, NodeStatsEntry> stats;
  std::chrono::steady_clock::time_point steady_now{};

  std::vector<RateSlot> rates;  // oldest first
  int64_t rate_slot_ms = 1000;
};

// How much of the map /api/cluster lists under "partitions".
enum class PartitionDetail { kAll, kProblems, kNone };

// Parses /api/cluster's query; bad_request naming the parameter otherwise.
StatusOr<PartitionDetail> ParseClusterQuery(std::string_view target);
// Parses /api/list's query: the list name; bad_request otherwise.
StatusOr<std::string> ParseListQuery(std::string_view target);

// The /api/cluster document. Pure.
nlohmann::ordered_json ClusterJson(const OperatorState& state, PartitionDetail detail);

// The /api/list document from the `locate` and `entries` reply bodies, and
// the partition's in-sync replicas and live nodes from `snapshot` (null in
// static mode). Pure.
http::HttpReply ListLookupReply(std::string_view list, std::string_view locate_reply,
                                std::string_view entries_reply,
                                const io::ClusterSnapshot* snapshot);

class OperatorView {
 public:
  // The poller stops once /api/cluster was not asked for this long.
  static constexpr std::chrono::seconds kPollWhileViewedFor{15};

  // `router`, `metrics` must outlive the view; `ctx` too (the poller's
  // sockets), in replicated mode.
  OperatorView(Router* router, RouterMetrics* metrics, zmq::context_t* ctx);
  ~OperatorView();  // stops the poller
  OperatorView(const OperatorView&) = delete;
  OperatorView& operator=(const OperatorView&) = delete;

  // Adds the routes to `frontend` (which must outlive the view's use).
  void Install(HttpFrontend* frontend);
  // From the router's publish hook (loop thread): hands the poller the
  // live nodes, and starts or stops it.
  void Tick();

  // What /api/cluster shows now (loop thread).
  OperatorState State() const;

 private:
  http::HttpReply ClusterReply(const HttpRequest& request);
  void ListLookup(const HttpRequest& request, HttpFrontend::Responder respond);

  Router* const router_;
  RouterMetrics* const metrics_;
  HttpFrontend* frontend_ = nullptr;
  std::unique_ptr<NodeStatsPoller> poller_;  // replicated mode
  std::chrono::steady_clock::time_point last_viewed_{};
  std::shared_ptr<const io::ClusterSnapshot> targets_of_;  // the snapshot the targets came from
};

}  // namespace todo::router
