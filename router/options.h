// RouterOptions: every flag of todo-router, with its default, and how flags
// are parsed. The defaults admit 100,000 requests in flight through one
// router (and so at least 10,000 on one node) before it answers
// `overloaded` (protocol.md).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/io/security/curve.h"
#include "common/status.h"
#include "router/cluster_config.h"

namespace todo::router {

struct RouterOptions {
  std::string listen;           // --listen: ZeroMQ endpoint of the frontend (required)
  std::vector<NodeSpec> nodes;  // --node NAME=ENDPOINT (repeatable) and --cluster FILE, joined
  std::string cluster_file;     // --cluster: the file the nodes came from, if any
  // Replicated mode (instead of --node/--cluster): the map and the live
  // nodes come from etcd.
  std::string etcd;                   // --etcd URL[,URL...]
  std::string cluster_name = "todo";  // --cluster-name
  bool replicated() const { return !etcd.empty(); }
  std::string name;                // --name: the name `ping` reports; "" = the listen endpoint
  int64_t timeout_ms = 5000;       // --timeout-ms: deadline of a forwarded request
  int64_t heartbeat_ms = 500;      // --heartbeat-ms: time between heartbeats to each node
  int64_t down_after_ms = 2000;    // --down-after-ms: a node silent this long is down
  size_t max_inflight = 100000;    // --max-inflight: forwarded requests awaiting a reply, at most
  size_t max_inflight_mb = 64;     // --max-inflight-mb: their MiB (bodies, envelopes, entries)
  std::string log_level = "info";  // --log-level: trace|debug|info|warn|error
  std::string http;                // --http ADDR:PORT: serve HTTP there ("" = no HTTP)
  // The HTTP server's bounds and deadlines (router/http_server.h).
  size_t http_max_connections = 16384;   // --http-max-connections: then 503 and closed
  size_t http_max_inflight = 20000;      // --http-max-inflight: awaiting answers, in all; then 429
  size_t http_max_pipeline = 16;         // --http-max-pipeline: the same per connection; then 429
  size_t http_max_header_bytes = 16384;  // --http-max-header-bytes: then 431
  size_t http_max_body_bytes = 65536;    // --http-max-body-bytes: then 413
  size_t http_max_unsent_mb = 64;  // --http-max-unsent-mb: unread answers; then large ones 429
  int64_t http_header_timeout_ms = 5000;  // --http-header-timeout-ms: a request's header
  int64_t http_body_timeout_ms = 10000;   // --http-body-timeout-ms: its body, after the header
  int64_t http_idle_timeout_ms = 60000;   // --http-idle-timeout-ms: an idle keep-alive connection
  int64_t http_send_timeout_ms = 10000;   // --http-send-timeout-ms: an answer the client won't read
  // CurveZMQ (common/io/security/curve.h): --curve-secret (the router's keypair:
  // CURVE server to clients, CURVE client to nodes), --curve-allow (client
  // keys let in), and the nodes' server keys (cluster file, --node-key).
  security::CurveConfig curve;
  std::vector<std::string> node_keys;  // --node-key NAME=KEY (repeatable)

  // OK, or bad_request naming the flag and the rule.
  Status Validate() const;
};

// Parses argv, reads the cluster file if one is given, and validates. On
// success returns the options; on --help prints usage to stdout and sets
// *exit_code = 0; on an error prints one line "todo-router: error: ..." to
// stderr and sets *exit_code = 2. Returns nullopt in both latter cases.
std::optional<RouterOptions> ParseRouterFlags(int argc, char** argv, int* exit_code);

}  // namespace todo::router
