#include "node/options.h"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <iostream>
#include <thread>

#include "common/io/etcd/client.h"
#include "common/metrics.h"
#include "common/names.h"

namespace todo::node {

int DefaultWorkers() {
  unsigned cores = std::thread::hardware_concurrency();  // 0 if unknown
  return static_cast<int>(std::clamp(cores / 2, 1u, 64u));
}

uint32_t DefaultShards() {
  unsigned cores = std::thread::hardware_concurrency();  // 0 if unknown
  return std::clamp(cores / 2, 1u, 16u);
}

StatusOr<std::chrono::milliseconds> ParseDuration(std::string_view flag, std::string_view text) {
  auto bad = [&] {
    return Status::BadRequest(std::string(flag) +
                              " must be a duration: a number with an optional unit ms, s "
                              "(the default), m, h or d, e.g. 30s or 24h; not '" +
                              std::string(text) + "'");
  };
  size_t unit_at = text.size();
  while (unit_at > 0 && std::isalpha(static_cast<unsigned char>(text[unit_at - 1]))) --unit_at;
  const std::string_view number = text.substr(0, unit_at), unit = text.substr(unit_at);
  double value = 0;
  auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), value);
  if (number.empty() || ec != std::errc() || end != number.data() + number.size() ||
      !std::isfinite(value) || value < 0) {
    return bad();
  }
  double ms_per_unit = 0;
  if (unit == "ms") ms_per_unit = 1;
  if (unit == "s" || unit.empty()) ms_per_unit = 1000;
  if (unit == "m") ms_per_unit = 60e3;
  if (unit == "h") ms_per_unit = 3600e3;
  if (unit == "d") ms_per_unit = 86400e3;
  if (ms_per_unit == 0) return bad();
  const double ms = value * ms_per_unit;
  if (ms > 1e15) return bad();
  return std::chrono::milliseconds(static_cast<int64_t>(std::llround(ms)));
}

Status NodeOptions::Validate() const {
  if (!IsValidNodeName(name)) {
    return Status::BadRequest("--name must be 1-64 characters of [A-Za-z0-9_.-]");
  }
  if (!IsValidEndpoint(listen)) {
    return Status::BadRequest(
        "--listen must be a tcp://, ipc:// or inproc:// endpoint (tcp://HOST:PORT, HOST an IPv4 "
        "address or a name, PORT 0-65535 or *)");
  }
  if (data.empty()) return Status::BadRequest("--data must name a directory");
  if (shards > 256) return Status::BadRequest("--shards must be 1-256");
  if (workers < 1 || workers > 64) return Status::BadRequest("--workers must be 1-64");
  // Upper bounds too: CLI11 reads -1 into a size_t as SIZE_MAX, which would
  // make a queue unbounded.
  if (!(idle_timeout_s > 0 && idle_timeout_s <= 30 * 86400)) {
    return Status::BadRequest("--idle-timeout must be > 0 and at most 2592000 seconds");
  }
  constexpr size_t kMax = 100'000'000;
  if (max_lists < 1 || max_lists > kMax)
    return Status::BadRequest("--max-lists must be 1-100000000");
  if (cache_mb < 1 || cache_mb > 1'000'000)
    return Status::BadRequest("--cache-mb must be 1-1000000");
  if (mailbox < 1 || mailbox > kMax) return Status::BadRequest("--mailbox must be 1-100000000");
  if (max_inflight < 1 || max_inflight > kMax) {
    return Status::BadRequest("--max-inflight must be 1-100000000");
  }
  if (max_inflight_mb < 1 || max_inflight_mb > 1'000'000) {
    return Status::BadRequest("--max-inflight-mb must be 1-1000000");
  }
  if (writer_queue < 1 || writer_queue > kMax) {
    return Status::BadRequest("--writer-queue must be 1-100000000");
  }
  if (max_batch < 1 || max_batch > kMax)
    return Status::BadRequest("--max-batch must be 1-100000000");
  if (write_buffer_mb < 1 || write_buffer_mb > 1024) {
    return Status::BadRequest("--write-buffer-mb must be 1-1024");
  }
  if (rid_ttl < std::chrono::seconds(1) || rid_ttl > std::chrono::hours(24 * 365)) {
    return Status::BadRequest("--rid-ttl must be 1s to 365d");
  }
  if (rid_filter_mb > 4096) return Status::BadRequest("--rid-filter-mb must be 0-4096");
  if (!metrics.empty() && !metrics::ParseListenAddress(metrics)) {
    return Status::BadRequest("--metrics must be ADDR:PORT, e.g. 127.0.0.1:7091");
  }
  if (replicated()) {
    if (auto e = io::ParseEtcdEndpointList(etcd); !e.ok()) {
      return Status::BadRequest("--etcd: " + e.status().message());
    }
    if (!IsValidNodeName(cluster_name)) {
      return Status::BadRequest("--cluster-name must be 1-64 characters of [A-Za-z0-9_.-]");
    }
    if (!advertise.empty() && !IsValidEndpoint(advertise)) {
      return Status::BadRequest("--advertise must be a tcp://, ipc:// or inproc:// endpoint");
    }
    if (!repl_listen.empty() && !IsValidEndpoint(repl_listen)) {
      return Status::BadRequest("--repl-listen must be a tcp:// or ipc:// endpoint");
    }
    if (!repl_advertise.empty() && !IsValidEndpoint(repl_advertise)) {
      return Status::BadRequest("--repl-advertise must be a tcp:// or ipc:// endpoint");
    }
    if (lease_ms < 1000 || lease_ms > 600000) {
      return Status::BadRequest("--lease-ms must be 1000-600000");
    }
    if (repl_timeout_ms < 10 || repl_timeout_ms > 600000) {
      return Status::BadRequest("--repl-timeout-ms must be 10-600000");
    }
    if (catchup_rate_mb < 1 || catchup_rate_mb > 100000) {
      return Status::BadRequest("--catchup-rate-mb must be 1-100000");
    }
    if (retained_mb < 1 || retained_mb > 65536) {
      return Status::BadRequest("--retained-mb must be 1-65536");
    }
    if (max_incoming_snapshots < 1 || max_incoming_snapshots > 1024) {
      return Status::BadRequest("--max-incoming-snapshots must be 1-1024");
    }
    if (max_moves < 1 || max_moves > 1024) return Status::BadRequest("--max-moves must be 1-1024");
    if (max_handoffs < 1 || max_handoffs > 4096) {
      return Status::BadRequest("--max-handoffs must be 1-4096");
    }
  } else {
    for (const auto& [flag, value] :
         {std::pair{"--advertise", &advertise}, std::pair{"--repl-listen", &repl_listen},
          std::pair{"--repl-advertise", &repl_advertise}}) {
      if (!value->empty()) {
        return Status::BadRequest(std::string(flag) + " needs --etcd (the replicated mode)");
      }
    }
    // The replicated mode's other flags, given a value other than their
    // default, would be silently ignored in the static mode: refuse them.
    const NodeOptions d;
    const std::pair<const char*, bool> changed[] = {
        {"--cluster-name", cluster_name != d.cluster_name},
        {"--lease-ms", lease_ms != d.lease_ms},
        {"--repl-timeout-ms", repl_timeout_ms != d.repl_timeout_ms},
        {"--catchup-rate-mb", catchup_rate_mb != d.catchup_rate_mb},
        {"--retained-mb", retained_mb != d.retained_mb},
        {"--max-incoming-snapshots", max_incoming_snapshots != d.max_incoming_snapshots},
        {"--no-controller", controller != d.controller},
        {"--max-moves", max_moves != d.max_moves},
        {"--max-handoffs", max_handoffs != d.max_handoffs},
    };
    for (const auto& [flag, is_changed] : changed) {
      if (is_changed) {
        return Status::BadRequest(std::string(flag) + " needs --etcd (the replicated mode)");
      }
    }
  }
  for (const char* l : {"trace", "debug", "info", "warn", "error"}) {
    if (log_level == l) return Status::Ok();
  }
  return Status::BadRequest("--log-level must be trace, debug, info, warn or error");
}

std::optional<NodeOptions> ParseNodeFlags(int argc, char** argv, int* exit_code) {
  NodeOptions o;
  CLI::App app("todo-node: one node of the to-do cluster (lists, actors, LevelDB store)",
               "todo-node");
  app.add_option("--name", o.name, "this node's name in the cluster")->required();
  app.add_option("--listen", o.listen, "ZeroMQ endpoint to bind, e.g. tcp://127.0.0.1:7001")
      ->required();
  app.add_option("--data", o.data, "data directory (created if missing)")->required();
  std::string shards_help =
      "LevelDB shards of a new data dir (default: half the cores, at least 1: ";
  shards_help.append(std::to_string(DefaultShards()));
  shards_help.append(" here); an existing dir keeps its own");
  auto* shards = app.add_option("--shards", o.shards, shards_help);
  app.add_option("--workers", o.workers,
                 "threads running list actors (default: half the cores, at least 1)")
      ->capture_default_str();
  app.add_option("--idle-timeout", o.idle_timeout_s, "seconds before an idle list is evicted")
      ->capture_default_str();
  app.add_option("--max-lists", o.max_lists, "live list actors at most")->capture_default_str();
  app.add_option("--cache-mb", o.cache_mb,
                 "memory for lists in memory (MiB); past it idle lists are evicted early")
      ->capture_default_str();
  app.add_option("--mailbox", o.mailbox, "queued requests per list at most")->capture_default_str();
  app.add_option("--max-inflight", o.max_inflight, "requests inside the node at most")
      ->capture_default_str();
  app.add_option(
         "--max-inflight-mb", o.max_inflight_mb,
         "MiB of requests inside the node at most, and as much of large replies not yet sent")
      ->capture_default_str();
  app.add_option("--writer-queue", o.writer_queue, "queued writes per shard at most")
      ->capture_default_str();
  app.add_option("--max-batch", o.max_batch, "writes per group commit at most")
      ->capture_default_str();
  app.add_option("--write-buffer-mb", o.write_buffer_mb,
                 "LevelDB memtable per shard (MiB; up to twice this per shard while one is "
                 "written out)")
      ->capture_default_str();
  bool no_sync = false;
  app.add_flag("--no-sync", no_sync, "do not fsync writes (tests and benchmarks only)");
  std::string rid_ttl = "24h";
  app.add_option("--rid-ttl", rid_ttl,
                 "keep the records of writes with a rid (request id) at least this long (and "
                 "less than twice), then drop them: a duration such as 86400, 90m, 24h (units ms, "
                 "s, m, h, d; 1s-365d)")
      ->capture_default_str();
  app.add_option("--rid-filter-mb", o.rid_filter_mb,
                 "memory (MiB) for the filter that spares first writes with a rid a disk lookup "
                 "(a MiB holds ~400,000 rids a --rid-ttl before it degrades; 0: off)")
      ->capture_default_str();
  app.add_option("--log-level", o.log_level, "trace|debug|info|warn|error")->capture_default_str();
  app.add_option("--metrics", o.metrics, "serve /metrics and /health over HTTP on ADDR:PORT");
  app.add_option("--etcd", o.etcd,
                 "replicated mode: etcd's client URLs, comma-separated (e.g. "
                 "http://127.0.0.1:2379); without it the node runs in static mode");
  app.add_option("--cluster-name", o.cluster_name, "the cluster's name in etcd (/todo/<name>/)")
      ->capture_default_str();
  app.add_option("--advertise", o.advertise,
                 "the endpoint routers and clients reach this node at (default: --listen)");
  app.add_option("--lease-ms", o.lease_ms,
                 "TTL of the node's etcd lease: a node unheard of this long is failed over")
      ->capture_default_str();
  app.add_option("--repl-listen", o.repl_listen,
                 "the endpoint other nodes send replication to (default: --listen's host, a port "
                 "the OS picks)");
  app.add_option("--repl-advertise", o.repl_advertise,
                 "the replication endpoint the other nodes reach (default: from --advertise)");
  app.add_option("--repl-timeout-ms", o.repl_timeout_ms,
                 "a backup that has not acknowledged a write within this is taken out of sync")
      ->capture_default_str();
  app.add_option("--catchup-rate-mb", o.catchup_rate_mb,
                 "MiB/s at most of snapshots sent to replicas catching up")
      ->capture_default_str();
  app.add_option("--retained-mb", o.retained_mb,
                 "MiB at most (the whole node) of recent writes kept so that a backup that fell "
                 "behind resumes from them instead of a new snapshot (4 MiB a partition at most; "
                 "past this, the partitions keeping the most are cut first)")
      ->capture_default_str();
  app.add_option("--max-incoming-snapshots", o.max_incoming_snapshots,
                 "snapshots this node receives at once (a joining node is not fed every move at "
                 "once); the others' primaries try again after a pause")
      ->capture_default_str();
  app.add_option("--max-moves", o.max_moves,
                 "as the cluster's controller: partitions moving at once (balancing, draining)")
      ->capture_default_str();
  app.add_option("--max-handoffs", o.max_handoffs,
                 "as the cluster's controller: leadership-only moves at once (a primary handing "
                 "its role to an in-sync backup; no data copied)")
      ->capture_default_str();
  bool no_controller = false;
  app.add_flag("--no-controller", no_controller, "never host the cluster's controller");
  security::AddCurveFlags(app, &o.curve,
                          "clients (the routers; in replicated mode also the other nodes, "
                          "whose replication connections the same list admits)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    std::cout << app.help();
    *exit_code = 0;
    return std::nullopt;
  } catch (const CLI::ParseError& e) {
    std::cerr << "todo-node: error: " << e.what() << "\n";
    *exit_code = 2;
    return std::nullopt;
  }
  o.sync = !no_sync;
  if (auto ttl = ParseDuration("--rid-ttl", rid_ttl); ttl.ok()) {
    o.rid_ttl = *ttl;
  } else {
    std::cerr << "todo-node: error: " << ttl.status().message() << "\n";
    *exit_code = 2;
    return std::nullopt;
  }
  o.controller = !no_controller;
  if (shards->count() > 0 && o.shards == 0) {
    std::cerr << "todo-node: error: --shards must be 1-256\n";
    *exit_code = 2;
    return std::nullopt;
  }
  if (Status s = o.Validate(); !s.ok()) {
    std::cerr << "todo-node: error: " << s.message() << "\n";
    *exit_code = 2;
    return std::nullopt;
  }
  if (Status s = security::LoadCurveConfig(&o.curve); !s.ok()) {
    std::cerr << "todo-node: error: " << s.message() << "\n";
    *exit_code = 2;
    return std::nullopt;
  }
  return o;
}

}  // namespace todo::node
