// todo-router: routes to-do requests to the node that owns each list
// (rendezvous hashing over the node names), with a deadline per request and
// heartbeats to every node. Wires flags, logging, signals and the loop.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <zmq.hpp>

#include "common/io/process.h"
#include "common/io/security/curve.h"
#include "router/http_frontend.h"
#include "router/metrics.h"
#include "router/operator_view.h"
#include "router/options.h"
#include "router/router.h"

using namespace todo;

namespace {

// Raises the soft limit on open files to the hard limit (the HTTP server
// holds one per connection), says so, and returns the limit in force.
rlim_t RaiseOpenFileLimit() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return 1024;
  const rlim_t before = rl.rlim_cur;
  if (rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) rl.rlim_cur = before;
  }
  if (rl.rlim_cur != before) {
    spdlog::info("open-file limit (RLIMIT_NOFILE): raised from {} to the hard limit {}", before,
                 rl.rlim_cur);
  } else {
    spdlog::info("open-file limit (RLIMIT_NOFILE): {} (the hard limit is {})", rl.rlim_cur,
                 rl.rlim_max);
  }
  return rl.rlim_cur;
}

}  // namespace

int main(int argc, char** argv) {
  int exit_code = 0;
  auto parsed = router::ParseRouterFlags(argc, argv, &exit_code);
  if (!parsed) return exit_code;
  router::RouterOptions& o = *parsed;

  io::SetUpLogging("todo-router", "router", o.log_level);

  // SIGTERM and SIGINT are read from a signalfd in the poll set.
  auto stop_signals = io::StopSignals::Install();
  if (!stop_signals.ok()) {
    spdlog::error("{}", stop_signals.status().message());
    return 1;
  }
  const int signal_fd = stop_signals->fd();
  if (auto limit = io::RaiseOpenFileLimit(); !limit.ok()) {
    spdlog::warn("{}", limit.status().message());
  } else if (limit->after != limit->before) {
    spdlog::debug("open files: soft limit raised from {} to {}", limit->before, limit->after);
  }

  const rlim_t open_files = RaiseOpenFileLimit();
  // Descriptors besides HTTP connections: ZeroMQ's sockets, pipes and
  // eventfds, the node connections, logs.
  const size_t reserved_fds = 256 + 4 * o.nodes.size();
  if (!o.http.empty() && o.http_max_connections + reserved_fds > open_files) {
    size_t fit = open_files > reserved_fds + 1 ? open_files - reserved_fds : 1;
    spdlog::warn(
        "--http-max-connections {} does not fit the open-file limit {} (with {} for the rest); "
        "using {} (raise the hard limit, e.g. LimitNOFILE= in the unit)",
        o.http_max_connections, open_files, reserved_fds, fit);
    o.http_max_connections = fit;
  }
  for (const std::string& w : o.curve.warnings) spdlog::warn("{}", w);
  if (o.curve.enabled() && !o.http.empty()) {
    spdlog::warn("--http {} is plain HTTP: CURVE covers the ZeroMQ endpoint only", o.http);
  }

  int exit_status = 0;
  {
    zmq::context_t ctx(1);
    // Each request its own buffer: with zero-copy receive (the default) a
    // request waiting in a node's queue keeps the whole 8 KiB buffer it was
    // read in alive (ZMQ_ZERO_COPY_RECV, 10: a context option zmq.h lists as
    // draft, honoured by libzmq 4.3; see node/main.cc).
    if (zmq_ctx_set(ctx.handle(), 10, 0) != 0) {
      spdlog::debug("zmq: ZMQ_ZERO_COPY_RECV not supported; requests share receive buffers");
    }
    {
      // CURVE (--curve-secret): the ZAP handler authenticates clients; it
      // starts before the frontend binds and is destroyed after it closes.
      auto zap = security::StartZapHandler(&ctx, o.curve);
      router::Router r(o, &ctx);
      if (Status s = zap.ok() ? r.Start() : zap.status(); !s.ok()) {
        spdlog::error("{}", s.message());
        exit_status = 1;
      } else {
        if (!o.replicated()) {
          size_t heard = r.AwaitNodes(std::chrono::milliseconds(1000));
          if (heard < o.nodes.size()) {
            spdlog::warn("{} of {} nodes answered at start; the rest are tried in the background",
                         heard, o.nodes.size());
          }
        }
        spdlog::info("security: {}", security::Describe(o.curve));
        spdlog::info("malloc: {}", io::AllocatorName());
        std::string nodes;
        for (const auto& n : o.nodes) nodes += " " + n.name + "=" + n.endpoint;
        if (o.replicated()) {
          nodes = " from etcd " + o.etcd + " (cluster '" + o.cluster_name + "')";
        }
        spdlog::info(
            "listening on {} (name {}, timeout {} ms, heartbeat {} ms, down after {} ms,"
            " max in flight {}); nodes:{}",
            o.listen, r.name(), o.timeout_ms, o.heartbeat_ms, o.down_after_ms, o.max_inflight,
            nodes);
        router::RouterMetrics router_metrics;
        std::unique_ptr<router::HttpFrontend> http;
        std::unique_ptr<router::OperatorView> operator_view;  // the page at / and /api/*
        if (!o.http.empty()) {
          r.SetPublisher([&router_metrics, &operator_view](const router::Router& rr) {
            router_metrics.Publish(rr);
            if (operator_view) operator_view->Tick();
          });
          router_metrics.Publish(r);
          router::HttpServerOptions ho;
          ho.address = *metrics::ParseListenAddress(o.http);
          ho.max_connections = o.http_max_connections;
          ho.max_inflight = o.http_max_inflight;
          ho.max_pipeline = o.http_max_pipeline;
          ho.max_unsent_total_bytes = o.http_max_unsent_mb << 20;
          ho.max_header_bytes = o.http_max_header_bytes;
          ho.max_body_bytes = o.http_max_body_bytes;
          ho.header_timeout = std::chrono::milliseconds(o.http_header_timeout_ms);
          ho.body_timeout = std::chrono::milliseconds(o.http_body_timeout_ms);
          ho.idle_timeout = std::chrono::milliseconds(o.http_idle_timeout_ms);
          ho.send_timeout = std::chrono::milliseconds(o.http_send_timeout_ms);
          http = std::make_unique<router::HttpFrontend>(ho, &r, &router_metrics);
          operator_view = std::make_unique<router::OperatorView>(&r, &router_metrics, &ctx);
          operator_view->Install(http.get());
          if (Status hs = http->Start(); !hs.ok()) {
            spdlog::error("{}", hs.message());
            exit_status = 1;
          } else {
            r.SetGuest(http.get());
            spdlog::info(
                "HTTP on {}:{} (in the router's loop; at most {} connections, {} requests "
                "awaiting answers, {} per connection); the operator's page at http://{}:{}/",
                ho.address.host, http->port(), ho.max_connections, ho.max_inflight, ho.max_pipeline,
                ho.address.host, http->port());
          }
        }
        if (exit_status == 0) r.Run(signal_fd);
        if (http) {
          router_metrics.SetStopped();
          operator_view.reset();  // stops its stats thread
          http.reset();
        }
        spdlog::info("stopped; {}", r.CountersSummary());
      }
    }
    ctx.close();
  }
  spdlog::info("exit {}", exit_status);
  return exit_status;
}
