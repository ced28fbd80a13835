#include "router/options.h"

#include <CLI/CLI.hpp>
#include <iostream>

#include "common/metrics.h"

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
        "--listen must be a tcp://, ipc:// or inproc:// endpoint (tcp://HOST:PORT, PORT 0-65535 "
        "or *)");
  }
  if (nodes.empty()) {
    return Status::BadRequest("no nodes configured: give --node NAME=ENDPOINT or --cluster FILE");
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
  if (http_threads < 1 || http_threads > 1024) {
    return Status::BadRequest("--http-threads must be 1-1024");
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
  app.add_option("--http-threads", o.http_threads,
                 "HTTP worker threads; each serves one open connection at a time")
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
  auto nodes = BuildCluster(std::move(from_flags), std::move(from_file));
  if (!nodes.ok()) return FlagError(nodes.status().message(), exit_code);
  o.nodes = std::move(nodes).value();
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
