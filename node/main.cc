// todo-node: one node of the to-do cluster. Wires the pieces together:
// the store (Todo.Database and its workers), the worker pool, the registry
// (Todo.Cache) of list actors (Todo.Server) and the socket loop.
#include <poll.h>
#include <spdlog/spdlog.h>

#include <zmq.hpp>

#include "common/io/cluster_watcher.h"
#include "common/io/etcd/client.h"
#include "common/io/process.h"
#include "common/io/security/curve.h"
#include "node/cluster_agent.h"
#include "node/list_actor.h"
#include "node/metrics.h"
#include "node/metrics_server.h"
#include "node/node_server.h"
#include "node/options.h"
#include "node/registry.h"
#include "node/replication/partition_table.h"
#include "node/replication/repl_io.h"
#include "node/replication/shard_replication.h"
#include "node/reply_queue.h"
#include "node/runtime/worker_pool.h"
#include "node/store/store.h"

using namespace todo;

namespace {

// True if a stop signal is pending (without taking it).
bool StopRequested(int signal_fd, int wait_ms) {
  pollfd p{signal_fd, POLLIN, 0};
  return poll(&p, 1, wait_ms) > 0;
}

// Replicated mode: waits for the cluster's map in etcd (etcd down, or the
// cluster not initialized yet: a clear line now and then), or a stop
// signal (nullopt).
std::optional<uint32_t> AwaitPartitions(io::EtcdClient* etcd, const node::NodeOptions& o,
                                        int signal_fd) {
  const io::ClusterKeys keys(o.cluster_name);
  int attempts = 0;
  for (;;) {
    auto snap = io::ReadCluster(etcd, keys);
    ++attempts;
    const bool log = (attempts & (attempts - 1)) == 0;  // 1st, 2nd, 4th, 8th...
    if (!snap.ok()) {
      if (log) {
        spdlog::warn("etcd ({}) not reachable yet: {}; retrying", o.etcd, snap.status().message());
      }
    } else if (snap->map) {
      return snap->map->partitions;
    } else if (!snap->map_error.empty()) {
      if (log) {
        spdlog::error("the cluster map in etcd ({}) is malformed: {}; waiting for a valid one",
                      keys.map, snap->map_error);
      }
    } else if (log) {
      spdlog::warn(
          "cluster '{}' is not initialized in etcd ({} missing): run todo-admin init; "
          "waiting",
          o.cluster_name, keys.map);
    }
    if (StopRequested(signal_fd, 500)) return std::nullopt;
  }
}

// The endpoint to bind for replication when --repl-listen is not given:
// --listen's host with a port the OS picks (tcp), or a sibling path (ipc).
std::string DefaultReplListen(const std::string& listen) {
  if (listen.rfind("tcp://", 0) == 0) {
    const size_t colon = listen.rfind(':');
    return listen.substr(0, colon) + ":0";
  }
  return listen + ".repl";
}

// The endpoint `bound` as others reach it: with `advertise`'s host when the
// bound host is a wildcard or `advertise` differs.
std::string Advertised(const std::string& bound, const std::string& advertise) {
  if (bound.rfind("tcp://", 0) != 0 || advertise.rfind("tcp://", 0) != 0) return bound;
  const size_t port = bound.rfind(':');
  const size_t ahost = advertise.rfind(':');
  return advertise.substr(0, ahost) + bound.substr(port);
}

bool IsWildcard(const std::string& endpoint) {
  return endpoint.find("://0.0.0.0:") != std::string::npos ||
         endpoint.find("://*:") != std::string::npos ||
         endpoint.find("://[::]:") != std::string::npos;
}

}  // namespace

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

  // Replicated mode: etcd, the map's partition count, the replication
  // endpoint, before the store (its layout depends on them).
  std::unique_ptr<io::EtcdClient> etcd, lease_etcd;
  std::unique_ptr<node::PartitionTable> table;
  zmq::context_t repl_ctx(1);
  // CURVE on the replication port: its own ZAP handler (ZAP is per
  // context), with the same allow-list; outlives the port (declared first).
  std::unique_ptr<security::ZapHandler> repl_zap;
  std::unique_ptr<node::ReplIo> repl_io;
  node::ReplContext repl;
  io::ClusterView view;
  std::string advertise = o.advertise.empty() ? o.listen : o.advertise;
  if (o.replicated()) {
    if (IsWildcard(advertise)) {
      spdlog::error(
          "--listen {} binds every address: give --advertise with the address other "
          "nodes and routers reach this node at",
          o.listen);
      return 2;
    }
    auto endpoints = io::ParseEtcdEndpointList(o.etcd);
    io::EtcdClient::Options eo;
    auto made = io::EtcdClient::Create(*endpoints, eo);
    // The lease's calls must each end well within a keepalive interval.
    io::EtcdClient::Options lo;
    lo.attempt_timeout = std::chrono::milliseconds(std::max<int64_t>(100, o.lease_ms / 5));
    lo.call_timeout = std::chrono::milliseconds(std::max<int64_t>(150, o.lease_ms / 4));
    auto made_lease = io::EtcdClient::Create(*endpoints, lo);
    if (!made.ok() || !made_lease.ok()) {
      spdlog::error("--etcd: {}", (made.ok() ? made_lease.status() : made.status()).message());
      return 2;
    }
    etcd = std::move(made).value();
    lease_etcd = std::move(made_lease).value();
    auto partitions = AwaitPartitions(etcd.get(), o, signal_fd);
    if (!partitions) {
      spdlog::info("stopped before the cluster map was read; exit 0");
      return 0;
    }
    table = std::make_unique<node::PartitionTable>(*partitions);
    node::ReplIo::Options ro;
    ro.listen = o.repl_listen.empty() ? DefaultReplListen(o.listen) : o.repl_listen;
    ro.self = o.name;
    ro.curve = o.curve;
    auto zap = security::StartZapHandler(&repl_ctx, o.curve);
    if (!zap.ok()) {
      spdlog::error("replication port: {}", zap.status().message());
      return 1;
    }
    repl_zap = std::move(zap).value();
    repl_io = std::make_unique<node::ReplIo>(ro, &repl_ctx);
    if (Status s = repl_io->Bind(); !s.ok()) {
      spdlog::error("{}", s.message());
      return 1;
    }
    repl.self = o.name;
    repl.partitions = *partitions;
    repl.table = table.get();
    repl.io = repl_io.get();
    repl.options.repl_timeout_ms = o.repl_timeout_ms;
    repl.options.catchup_bytes_per_sec = static_cast<double>(o.catchup_rate_mb) * 1048576.0;
    repl.options.retained_total_bytes = o.retained_mb << 20;
    repl.options.max_incoming_snapshots = o.max_incoming_snapshots;
  }

  store::StoreOptions so;
  so.dir = o.data;
  so.shards = o.shards;  // 0: the dir's MANIFEST, or new_dir_shards
  so.new_dir_shards = node::DefaultShards();
  so.sync = o.sync;
  so.writer_queue = o.writer_queue;
  so.max_batch = o.max_batch;
  so.write_buffer_bytes = o.write_buffer_mb << 20;
  so.rid_ttl = o.rid_ttl;
  so.rid_filter_bytes = o.rid_filter_mb << 20;
  if (o.replicated()) {
    so.replicated = store::ReplicatedLayout{o.cluster_name, o.name, repl.partitions};
    so.repl = &repl;
  }
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
                                               &replies, &meter, &flight, table.get());
    });
    // Replicated mode: the replication thread, then the agent (lease,
    // announcement, map, controller).
    std::unique_ptr<node::ClusterAgent> agent;
    node::ReplicatedServing serving;
    if (o.replicated()) {
      std::vector<node::ShardInbox*> inboxes;
      for (uint32_t i = 0; i < store->shards(); ++i) {
        inboxes.push_back(&store->writer(i).replication()->inbox());
      }
      repl_io->SetInboxes(std::move(inboxes));
      repl_io->Start();
      node::ClusterAgent::Options ao;
      ao.name = o.name;
      ao.cluster = o.cluster_name;
      ao.endpoint = advertise;
      ao.repl_endpoint =
          o.repl_advertise.empty() ? Advertised(repl_io->endpoint(), advertise) : o.repl_advertise;
      ao.data_id = store->data_id();
      if (o.curve.enabled()) ao.curve_key = security::EncodeZ85Key(o.curve.keys->public_key);
      ao.lease = std::chrono::milliseconds(o.lease_ms);
      ao.host_controller = o.controller;
      ao.max_moves = o.max_moves;
      ao.max_handoffs = o.max_handoffs;
      agent = std::make_unique<node::ClusterAgent>(ao, etcd.get(), lease_etcd.get(), table.get(),
                                                   &view, store.get(), repl_io.get());
      serving = node::ReplicatedServing{table.get(), &view, repl.partitions};
      spdlog::info(
          "replicated mode: cluster '{}' in etcd {}, {} partitions, data id {}, "
          "replication on {}",
          o.cluster_name, o.etcd, repl.partitions, store->data_id(), ao.repl_endpoint);
    }
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
      node::NodeServer server(o, &ctx, &registry, &replies, &flight,
                              o.replicated() ? &serving : nullptr);
      node::NodeMetrics metrics(o.name, &registry, store.get());
      server.SetMetrics(&metrics);
      node::MetricsServer metrics_http(&metrics);
      Status bound = zap.ok() ? server.Bind() : zap.status();
      if (bound.ok() && !o.metrics.empty()) {
        bound = metrics_http.Start(*metrics::ParseListenAddress(o.metrics));
        if (bound.ok()) spdlog::info("metrics on {}", o.metrics);
      }
      if (bound.ok() && agent) bound = agent->Start();
      if (!bound.ok()) {
        spdlog::error("{}", bound.message());
        exit_status = 1;
      } else {
        spdlog::info("security: {}", security::Describe(o.curve));
        spdlog::info("malloc: {}", io::AllocatorName());
        spdlog::info("listening on {} (data {}, {} shards, {} workers, sync {}, rid ttl {} s)",
                     o.listen, o.data, store->shards(), o.workers, o.sync ? "on" : "off",
                     static_cast<double>(o.rid_ttl.count()) / 1000.0);
        server.Run(signal_fd, std::chrono::seconds(10));
        // Fenced and off the cluster (the lease revoked: the controller
        // fails over at once) before the writers stop.
        if (agent) agent->Stop();
        metrics.SetStopped();
        metrics_http.Stop();
        const auto& c = server.counters();
        spdlog::info("stopped: {} requests, {} bad, {} overloaded, {} replies, {} dropped",
                     c.requests, c.bad_requests, c.overloaded, c.replies_sent, c.replies_dropped);
      }
      if (agent) agent->Stop();
      workers.Stop();
      store->Stop();
      if (repl_io) repl_io->Stop();
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
