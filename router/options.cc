#include "router/options.h"

#include <CLI/CLI.hpp>
#include <iostream>

#include "common/io/etcd/client.h"
#include "common/metrics.h"
#include "common/names.h"

namespace todo::router {
namespace {

bool IsPrintable(const std::string& s) {
  for (char c : s) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return false;
  }
  return true;
}

// Prints the one error line and sets the exit status of a flag error.
std::nullopt_t FlagError(std::string_view message, int* exit_code) {
  std::cerr << "todo-router: error: " << message << "\n";
  *exit_code = 2;
  return std::nullopt;
}

}  // namespace

Status RouterOptions::Validate() const {
  if (!IsValidEndpoint(listen)) {
    return Status::BadRequest(
        "--listen must be a tcp://, ipc:// or inproc:// endpoint (tcp://HOST:PORT, HOST an IPv4 "
        "address or a name, PORT 0-65535 or *)");
  }
  if (replicated() && !nodes.empty()) {
    return Status::BadRequest(
        "--etcd (replicated mode: nodes come from etcd) excludes --node and --cluster");
  }
  if (!replicated() && nodes.empty()) {
    return Status::BadRequest(
        "no nodes configured: give --node NAME=ENDPOINT or --cluster FILE (static mode), or "
        "--etcd URL (replicated mode)");
  }
  if (replicated()) {
    if (auto e = io::ParseEtcdEndpointList(etcd); !e.ok()) {
      return Status::BadRequest("--etcd: " + e.status().message());
    }
    if (!IsValidNodeName(cluster_name)) {
      return Status::BadRequest("--cluster-name must be 1-64 characters of [A-Za-z0-9_.-]");
    }
  }
  if (name.size() > 255 || !IsPrintable(name)) {
    return Status::BadRequest("--name must be at most 255 printable characters");
  }
  if (timeout_ms < 1 || timeout_ms > 3600000) {
    return Status::BadRequest("--timeout-ms must be 1-3600000");
  }
  if (heartbeat_ms < 10 || heartbeat_ms > 60000) {
    return Status::BadRequest("--heartbeat-ms must be 10-60000");
  }
  if (down_after_ms <= heartbeat_ms || down_after_ms > 600000) {
    return Status::BadRequest(
        "--down-after-ms must be more than --heartbeat-ms and at most 600000");
  }
  if (max_inflight < 1 || max_inflight > 10000000) {
    return Status::BadRequest("--max-inflight must be 1-10000000");
  }
  if (max_inflight_mb < 1 || max_inflight_mb > 1000000) {
    return Status::BadRequest("--max-inflight-mb must be 1-1000000");
  }
  if (!http.empty() && !metrics::ParseListenAddress(http)) {
    return Status::BadRequest("--http must be ADDR:PORT, e.g. 127.0.0.1:7080");
  }
  if (http_max_connections < 1 || http_max_connections > 1000000) {
    return Status::BadRequest("--http-max-connections must be 1-1000000");
  }
  if (http_max_inflight < 1 || http_max_inflight > 1000000) {
    return Status::BadRequest("--http-max-inflight must be 1-1000000");
  }
  if (http_max_pipeline < 1 || http_max_pipeline > 1024) {
    return Status::BadRequest("--http-max-pipeline must be 1-1024");
  }
  if (http_max_header_bytes < 1024 || http_max_header_bytes > (1 << 20)) {
    return Status::BadRequest("--http-max-header-bytes must be 1024-1048576");
  }
  if (http_max_unsent_mb < 1 || http_max_unsent_mb > 65536) {
    return Status::BadRequest("--http-max-unsent-mb must be 1-65536");
  }
  if (http_max_body_bytes < 1 || http_max_body_bytes > (8 << 20)) {
    return Status::BadRequest("--http-max-body-bytes must be 1-8388608");
  }
  for (auto [flag, v] : {std::pair{"--http-header-timeout-ms", http_header_timeout_ms},
                         std::pair{"--http-body-timeout-ms", http_body_timeout_ms},
                         std::pair{"--http-idle-timeout-ms", http_idle_timeout_ms},
                         std::pair{"--http-send-timeout-ms", http_send_timeout_ms}}) {
    if (v < 100 || v > 3600000)
      return Status::BadRequest(std::string(flag) + " must be 100-3600000");
  }
  for (const char* l : {"trace", "debug", "info", "warn", "error"}) {
    if (log_level == l) return Status::Ok();
  }
  return Status::BadRequest("--log-level must be trace, debug, info, warn or error");
}

std::optional<RouterOptions> ParseRouterFlags(int argc, char** argv, int* exit_code) {
  RouterOptions o;
  std::vector<std::string> node_flags;
  CLI::App app("todo-router: routes to-do requests to the node owning each list", "todo-router");
  app.add_option("--listen", o.listen, "ZeroMQ endpoint to bind, e.g. tcp://127.0.0.1:7000")
      ->required();
  app.add_option("--node", node_flags, "a node, as NAME=ENDPOINT (repeatable)")
      ->type_name("NAME=ENDPOINT")
      ->allow_extra_args(false)
      ->take_all();
  app.add_option("--cluster", o.cluster_file, "cluster file: lines 'node NAME ENDPOINT [KEY]'");
  app.add_option("--etcd", o.etcd,
                 "replicated mode: etcd's client URLs, comma-separated; the map and the nodes "
                 "come from there (instead of --node/--cluster)");
  app.add_option("--cluster-name", o.cluster_name, "replicated mode: the cluster's name in etcd")
      ->capture_default_str();
  app.add_option("--name", o.name, "name reported by ping (default: the listen endpoint)");
  app.add_option("--timeout-ms", o.timeout_ms, "deadline of a forwarded request")
      ->capture_default_str();
  app.add_option("--heartbeat-ms", o.heartbeat_ms, "time between heartbeats to each node")
      ->capture_default_str();
  app.add_option("--down-after-ms", o.down_after_ms, "a node silent this long is marked down")
      ->capture_default_str();
  app.add_option("--max-inflight", o.max_inflight, "forwarded requests awaiting a reply, at most")
      ->capture_default_str();
  app.add_option("--max-inflight-mb", o.max_inflight_mb,
                 "MiB of forwarded requests awaiting a reply (bodies and envelopes), at most")
      ->capture_default_str();
  app.add_option("--log-level", o.log_level, "trace|debug|info|warn|error")->capture_default_str();
  app.add_option("--http", o.http, "serve the HTTP API and /metrics on ADDR:PORT (default: off)");
  app.add_option("--http-max-connections", o.http_max_connections,
                 "open HTTP connections at most; past it a new one gets 503 and is closed")
      ->capture_default_str();
  app.add_option("--http-max-inflight", o.http_max_inflight,
                 "HTTP requests awaiting answers, in all, at most; then 429")
      ->capture_default_str();
  app.add_option("--http-max-pipeline", o.http_max_pipeline,
                 "HTTP requests awaiting answers per connection at most; then 429")
      ->capture_default_str();
  app.add_option("--http-max-header-bytes", o.http_max_header_bytes,
                 "a request's line and header fields at most; then 431")
      ->capture_default_str();
  app.add_option("--http-max-unsent-mb", o.http_max_unsent_mb,
                 "MiB of HTTP answers not yet read by their clients, in all; past it, answers "
                 "of 16 KiB or more are 429 overloaded")
      ->capture_default_str();
  app.add_option("--http-max-body-bytes", o.http_max_body_bytes,
                 "a request's body at most; then 413")
      ->capture_default_str();
  app.add_option("--http-header-timeout-ms", o.http_header_timeout_ms,
                 "a request's header must arrive within this (from its connection or first byte)")
      ->capture_default_str();
  app.add_option("--http-body-timeout-ms", o.http_body_timeout_ms,
                 "a request's body must arrive within this after its header")
      ->capture_default_str();
  app.add_option("--http-idle-timeout-ms", o.http_idle_timeout_ms,
                 "an idle keep-alive connection is closed after this")
      ->capture_default_str();
  app.add_option("--http-send-timeout-ms", o.http_send_timeout_ms,
                 "a connection whose client reads nothing of its answers for this is closed")
      ->capture_default_str();
  security::AddCurveFlags(app, &o.curve, "clients");
  app.add_option("--node-key", o.node_keys,
                 "a node's CURVE public key, as NAME=KEY (KEY: Z85 or a .pub file; repeatable)")
      ->type_name("NAME=KEY")
      ->allow_extra_args(false);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    std::cout << app.help();
    *exit_code = 0;
    return std::nullopt;
  } catch (const CLI::ParseError& e) {
    return FlagError(e.what(), exit_code);
  }

  std::vector<NodeSpec> from_flags;
  for (const std::string& f : node_flags) {
    auto spec = ParseNodeFlag(f);
    if (!spec.ok()) return FlagError(spec.status().message(), exit_code);
    from_flags.push_back(std::move(spec).value());
  }
  std::vector<NodeSpec> from_file;
  if (!o.cluster_file.empty()) {
    auto loaded = LoadClusterFile(o.cluster_file);
    if (!loaded.ok()) return FlagError(loaded.status().message(), exit_code);
    from_file = std::move(loaded).value();
  }
  if (o.replicated() && (!from_flags.empty() || !from_file.empty())) {
    return FlagError("--etcd (replicated mode: nodes come from etcd) excludes --node and --cluster",
                     exit_code);
  }
  if (!o.replicated()) {
    auto nodes = BuildCluster(std::move(from_flags), std::move(from_file));
    if (!nodes.ok()) return FlagError(nodes.status().message(), exit_code);
    o.nodes = std::move(nodes).value();
  }
  if (Status s = ApplyNodeKeyFlags(o.node_keys, &o.nodes); !s.ok()) {
    return FlagError(s.message(), exit_code);
  }
  if (Status s = security::LoadCurveConfig(&o.curve); !s.ok()) {
    return FlagError(s.message(), exit_code);
  }
  if (Status s = CheckNodeKeys(o.nodes, o.curve.enabled()); !s.ok()) {
    return FlagError(s.message(), exit_code);
  }
  if (Status s = o.Validate(); !s.ok()) return FlagError(s.message(), exit_code);
  return o;
}

}  // namespace todo::router
