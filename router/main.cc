// todo-router: routes to-do requests to the node that owns each list
// (rendezvous hashing over the node names), with a deadline per request and
// heartbeats to every node. Wires flags, logging, signals and the loop.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <thread>
#include <zmq.hpp>

#include "common/io/process.h"
#include "common/io/security/curve.h"
#include "router/http_frontend.h"
#include "router/metrics.h"
#include "router/options.h"
#include "router/router.h"

using namespace todo;

namespace {

// Where the router's frontend also listens for its own HTTP workers.
constexpr char kHttpEndpoint[] = "inproc://todo-router-http";

// With --http, SIGTERM/SIGINT first stop the HTTP server (its requests in
// progress still get answers: the router is serving), then reach the router,
// which drains. The relay thread reads the signalfd and, once HTTP has
// stopped, writes the signal's siginfo into a pipe that the router polls in
// place of the signalfd.
class SignalRelay {
 public:
  SignalRelay(int signal_fd, router::HttpFrontend* http, router::RouterMetrics* metrics) {
    if (pipe2(pipe_, O_CLOEXEC) != 0) return;
    thread_ = std::thread([=, this] {
      pollfd p{signal_fd, POLLIN, 0};
      while (poll(&p, 1, -1) < 0 && errno == EINTR) {
      }
      signalfd_siginfo si{};
      if (read(signal_fd, &si, sizeof si) != sizeof si) si.ssi_signo = SIGTERM;
      spdlog::info("{}: stopping HTTP (finishing requests in progress)",
                   strsignal(static_cast<int>(si.ssi_signo)));
      http->Stop();
      metrics->SetStopped();
      spdlog::info("HTTP stopped");
      (void)!write(pipe_[1], &si, sizeof si);
    });
  }
  ~SignalRelay() {
    if (thread_.joinable()) thread_.join();
    for (int fd : pipe_) {
      if (fd >= 0) close(fd);
    }
  }
  // The fd to give Router::Run; -1 if the pipe could not be made.
  int fd() const { return pipe_[0]; }

 private:
  int pipe_[2] = {-1, -1};
  std::thread thread_;
};

}  // namespace

int main(int argc, char** argv) {
  int exit_code = 0;
  auto parsed = router::ParseRouterFlags(argc, argv, &exit_code);
  if (!parsed) return exit_code;
  router::RouterOptions& o = *parsed;
  if (!o.http.empty()) o.internal_endpoints.push_back(kHttpEndpoint);

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
        size_t heard = r.AwaitNodes(std::chrono::milliseconds(1000));
        if (heard < o.nodes.size()) {
          spdlog::warn("{} of {} nodes answered at start; the rest are tried in the background",
                       heard, o.nodes.size());
        }
        spdlog::info("security: {}", security::Describe(o.curve));
        std::string nodes;
        for (const auto& n : o.nodes) nodes += " " + n.name + "=" + n.endpoint;
        spdlog::info(
            "listening on {} (name {}, timeout {} ms, heartbeat {} ms, down after {} ms,"
            " max in flight {}); nodes:{}",
            o.listen, r.name(), o.timeout_ms, o.heartbeat_ms, o.down_after_ms, o.max_inflight,
            nodes);
        router::RouterMetrics router_metrics;
        std::unique_ptr<router::HttpFrontend> http;
        std::unique_ptr<SignalRelay> relay;
        int stop_fd = signal_fd;
        if (!o.http.empty()) {
          r.SetPublisher(
              [&router_metrics](const router::Router& rr) { router_metrics.Publish(rr); });
          router_metrics.Publish(r);
          router::HttpFrontendOptions ho;
          ho.address = *metrics::ParseListenAddress(o.http);
          ho.threads = o.http_threads;
          ho.router_endpoint = kHttpEndpoint;
          ho.reply_deadline = std::chrono::milliseconds(o.timeout_ms + 1000);
          http = std::make_unique<router::HttpFrontend>(ho, &ctx, &router_metrics);
          if (Status hs = http->Start(); !hs.ok()) {
            spdlog::error("{}", hs.message());
            exit_status = 1;
          } else {
            spdlog::info("HTTP on {}:{} ({} threads)", ho.address.host, http->port(), ho.threads);
            relay = std::make_unique<SignalRelay>(signal_fd, http.get(), &router_metrics);
            stop_fd = relay->fd();
          }
        }
        if (exit_status == 0 && stop_fd >= 0) r.Run(stop_fd);
        relay.reset();
        http.reset();
        spdlog::info("stopped; {}", r.CountersSummary());
      }
    }
    ctx.close();
  }
  spdlog::info("exit {}", exit_status);
  return exit_status;
}
