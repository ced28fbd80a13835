// MetricsServer: a node's tiny HTTP server (cpp-httplib) for --metrics:
// GET /metrics (Prometheus text) and GET /health (200 while the socket loop
// serves, 503 otherwise). Nothing else: the node's protocol stays ZeroMQ.
//
// Design: httplib's listen thread plus two workers; handlers only read
// NodeMetrics (its snapshot and the writers' atomics), never the socket
// loop's state, so a slow scraper cannot slow requests down.
#pragma once

#include <memory>
#include <thread>

#include "common/metrics.h"
#include "common/status.h"
#include "node/metrics.h"

namespace httplib {
class Server;
}

namespace todo::node {

class MetricsServer {
 public:
  // `metrics` must outlive the server.
  explicit MetricsServer(NodeMetrics* metrics);
  ~MetricsServer();  // Stop()s
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  // Binds `address` and serves on a thread; internal if it can't bind.
  Status Start(const metrics::ListenAddress& address);
  // The bound port (the chosen one for port 0).
  int port() const { return port_; }
  // Stops and joins. Idempotent.
  void Stop();

 private:
  NodeMetrics* const metrics_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
};

}  // namespace todo::node
