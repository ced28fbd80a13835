// todo-router: routes to-do requests to the node that owns each list
// (rendezvous hashing over the node names), with a deadline per request and
// heartbeats to every node. Wires flags, logging, signals and the loop.
#include <signal.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <zmq.hpp>

#include "router/options.h"
#include "router/router.h"

using namespace todo;

int main(int argc, char** argv) {
  int exit_code = 0;
  auto parsed = router::ParseRouterFlags(argc, argv, &exit_code);
  if (!parsed) return exit_code;
  const router::RouterOptions& o = *parsed;

  auto logger = spdlog::stderr_color_mt("todo-router");
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(o.log_level));
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ [router] %v");

  // SIGTERM and SIGINT are read from a signalfd in the poll set.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);
  int signal_fd = signalfd(-1, &stop_signals, SFD_CLOEXEC);
  if (signal_fd < 0) {
    spdlog::error("signalfd failed");
    return 1;
  }

  int exit_status = 0;
  {
    zmq::context_t ctx(1);
    {
      router::Router r(o, &ctx);
      if (Status s = r.Start(); !s.ok()) {
        spdlog::error("{}", s.message());
        exit_status = 1;
      } else {
        size_t heard = r.AwaitNodes(std::chrono::milliseconds(1000));
        if (heard < o.nodes.size()) {
          spdlog::warn("{} of {} nodes answered at start; the rest are tried in the background",
                       heard, o.nodes.size());
        }
        std::string nodes;
        for (const auto& n : o.nodes) nodes += " " + n.name + "=" + n.endpoint;
        spdlog::info(
            "listening on {} (name {}, timeout {} ms, heartbeat {} ms, down after {} ms,"
            " max in flight {}); nodes:{}",
            o.listen, r.name(), o.timeout_ms, o.heartbeat_ms, o.down_after_ms, o.max_inflight,
            nodes);
        r.Run(signal_fd);
        spdlog::info("stopped; {}", r.CountersSummary());
      }
    }
    ctx.close();
  }
  close(signal_fd);
  spdlog::info("exit {}", exit_status);
  return exit_status;
}
