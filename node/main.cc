// todo-node: one node of the to-do cluster. Wires the pieces together:
// the store (Todo.Database and its workers), the worker pool, the registry
// (Todo.Cache) of list actors (Todo.Server) and the socket loop.
#include <spdlog/spdlog.h>

#include <zmq.hpp>

#include "common/io/process.h"
#include "common/io/security/curve.h"
#include "node/list_actor.h"
#include "node/metrics.h"
#include "node/metrics_server.h"
#include "node/node_server.h"
#include "node/options.h"
#include "node/registry.h"
#include "node/reply_queue.h"
#include "node/runtime/worker_pool.h"
#include "node/store/store.h"

using namespace todo;

int main(int argc, char** argv) {
  int exit_code = 0;
  auto parsed = node::ParseNodeFlags(argc, argv, &exit_code);
  if (!parsed) return exit_code;
  const node::NodeOptions& o = *parsed;

  io::SetUpLogging("todo-node", o.name, o.log_level);

  // Block the stop signals in every thread; the socket loop reads them from
  // a signalfd.
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

  // Before everything that may hold a counted reply body: freed last.
  node::FlightMeter flight;
  flight.budget = static_cast<int64_t>(o.max_inflight_mb << 20);
  node::ReplyQueue replies;
  store::StoreOptions so;
  so.dir = o.data;
  so.shards = o.shards;  // 0: the dir's MANIFEST, or new_dir_shards
  so.new_dir_shards = node::DefaultShards();
  so.sync = o.sync;
  so.writer_queue = o.writer_queue;
  so.max_batch = o.max_batch;
  so.rid_ttl = o.rid_ttl;
  so.rid_filter_bytes = o.rid_filter_mb << 20;
  auto opened = store::Store::Open(so, &replies);
  if (!opened.ok()) {
    spdlog::error("{}", opened.status().message());
    return 1;
  }
  std::unique_ptr<store::Store> store = std::move(opened).value();
  for (const std::string& w : o.curve.warnings) spdlog::warn("{}", w);
  if (!o.sync) spdlog::warn("--no-sync: acknowledged writes are NOT fsynced");

  int exit_status = 0;
  {
    runtime::WorkerPool workers(o.workers);
    node::MemoryMeter meter;
    node::Registry::Options ro;
    ro.max_lists = o.max_lists;
    ro.max_bytes = o.cache_mb << 20;
    meter.budget = static_cast<int64_t>(ro.max_bytes);
    ro.meter = &meter;
    ro.idle_timeout = std::chrono::duration_cast<std::chrono::steady_clock::duration>(
        std::chrono::duration<double>(o.idle_timeout_s));
    node::Registry registry(ro, [&](std::string name) {
      return std::make_shared<node::ListActor>(std::move(name), &workers, o.mailbox, store.get(),
                                               &replies, &meter, &flight);
    });
    zmq::context_t ctx(1);
    // Each request gets its own buffer from ZeroMQ's I/O thread. With zero
    // copy (the default) requests are views into the 8 KiB buffer they were
    // read in, and one request still queued keeps its whole buffer alive:
    // under a flood up to 8 KiB a request in flight, not its own size.
    // (ZMQ_ZERO_COPY_RECV, 10: a context option zmq.h lists as draft, which
    // libzmq 4.3 honours in every build; an older one refuses it, harmlessly.)
    if (zmq_ctx_set(ctx.handle(), 10, 0) != 0) {
      spdlog::debug("zmq: ZMQ_ZERO_COPY_RECV not supported; requests share receive buffers");
    }
    {
      // CURVE (--curve-secret): the ZAP handler authenticates clients; it
      // starts before the socket binds and is destroyed after it closes.
      auto zap = security::StartZapHandler(&ctx, o.curve);
      node::NodeServer server(o, &ctx, &registry, &replies, &flight);
      node::NodeMetrics metrics(o.name, &registry, store.get());
      server.SetMetrics(&metrics);
      node::MetricsServer metrics_http(&metrics);
      Status bound = zap.ok() ? server.Bind() : zap.status();
      if (bound.ok() && !o.metrics.empty()) {
        bound = metrics_http.Start(*metrics::ParseListenAddress(o.metrics));
        if (bound.ok()) spdlog::info("metrics on {}", o.metrics);
      }
      if (!bound.ok()) {
        spdlog::error("{}", bound.message());
        exit_status = 1;
      } else {
        spdlog::info("security: {}", security::Describe(o.curve));
        spdlog::info("listening on {} (data {}, {} shards, {} workers, sync {}, rid ttl {} s)",
                     o.listen, o.data, store->shards(), o.workers, o.sync ? "on" : "off",
                     static_cast<double>(o.rid_ttl.count()) / 1000.0);
        server.Run(signal_fd, std::chrono::seconds(10));
        metrics.SetStopped();
        metrics_http.Stop();
        const auto& c = server.counters();
        spdlog::info("stopped: {} requests, {} bad, {} overloaded, {} replies, {} dropped",
                     c.requests, c.bad_requests, c.overloaded, c.replies_sent, c.replies_dropped);
      }
      workers.Stop();
      store->Stop();
      for (uint32_t i = 0; i < store->shards(); ++i) {
        const auto& w = store->writer(i).stats();
        uint64_t b = w.batches.load(), ops = w.ops.load();
        spdlog::info(
            "shard {}: {} writes in {} group commits ({:.1f} per commit, max {}), "
            "{:.2f} ms per commit, {} failed",
            i, ops, b, b ? double(ops) / double(b) : 0.0, w.max_batch.load(),
            b ? double(w.write_micros.load()) / double(b) / 1000.0 : 0.0, w.failed_batches.load());
      }
      spdlog::info("lists: {} loaded, {} evicted, {} live", registry.created(), registry.evicted(),
                   registry.size());
    }
    ctx.close();
  }
  store.reset();
  spdlog::info("exit {}", exit_status);
  return exit_status;
}
