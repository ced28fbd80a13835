// todo-bench: a closed-loop load generator for a todo router or node, or for
// Redis doing the same work (--backend redis, redis_connection.h).
//
// DESIGN. --connections connections (DEALER sockets, or hiredis contexts) are
// spread round-robin over --threads bench threads; each thread creates, polls
// and closes its own connections (a ThreadDriver), so no socket is ever
// touched by two threads. The threads meet at a std::barrier between phases;
// the barrier's completion step (run by one thread while the others wait)
// takes the phase decisions:
//   1. handshake: every connection pings until answered or --connect-timeout;
//      if any connection got no reply, everybody stops and we exit 1;
//   2. preload:   each thread adds --preload entries to its share of lists
//                 (with --touch-lists: one entries request to each of them,
//                 and the run is skipped);
//   3. run:       warmup then the measured window, the same time points for
//                 every thread; then a bounded drain of what is in flight.
// With --smart, main first fetches the partition map from --endpoint and
// the connections are SmartConnections: each thread's share one SmartHub
// (one DEALER per node), requests straight to their partition's primary
// (smart_connection.h); the hubs outlive the threads and are closed by main
// after the join.
// The main thread samples the process's CPU time at the window's edges (and
// with --mark-phases says so on stderr, so a caller can sample the servers'
// CPU time there too) and prints the merged statistics.
#include <time.h>

#include <barrier>
#include <cstdio>
#include <future>
#include <mutex>
#include <thread>
#include <zmq.hpp>

#include "tests/bench/bench_options.h"
#include "tests/bench/driver.h"
#include "tests/bench/redis_connection.h"
#include "tests/bench/report.h"
#include "tests/bench/smart_connection.h"
#include "tests/bench/workload.h"
#include "tests/bench/zmq_connection.h"

namespace todo::bench {
namespace {

// Creates connection number `index` (0..connections-1). Main() picks the
// backend's factory; nothing else names a backend.
using ConnectionFactory = std::function<StatusOr<std::unique_ptr<Connection>>(uint32_t index)>;

// State shared by the bench threads. Fields written in the barrier
// completion are read by the threads only after the barrier, which orders
// them.
struct Shared {
  const BenchOptions* options = nullptr;
  int64_t connect_deadline_ns = 0;
  std::atomic<uint32_t> answered{0};
  std::mutex mu;
  std::string open_error;  // guarded by mu

  int step = 0;
  bool abort = false;
  int64_t preload_start_ns = 0;
  int64_t preload_end_ns = 0;
  Phases phases;
  std::promise<bool> started;  // true once phases are set; false on abort
};

struct OnBarrier {
  Shared* s;
  void operator()() noexcept {
    int64_t now = NowNs();
    if (s->step++ == 0) {
      s->abort = s->answered.load() < s->options->connections;
      s->preload_start_ns = now;
      if (s->abort) {
        s->started.set_value(false);
      } else if (s->options->touch_lists) {
        std::fprintf(stderr, "todo-bench: %u connections answered; touching %u lists\n",
                     s->options->connections, s->options->lists);
      } else if (s->options->preload > 0) {
        std::fprintf(
            stderr, "todo-bench: %u connections answered; preloading %llu adds\n",
            s->options->connections,
            static_cast<unsigned long long>(uint64_t{s->options->preload} * s->options->lists));
      }
      return;
    }
    s->preload_end_ns = now;
    s->phases.warm_start_ns = now;
    s->phases.measure_start_ns = now + static_cast<int64_t>(s->options->warmup_s * 1e9);
    s->phases.measure_end_ns =
        s->phases.measure_start_ns + static_cast<int64_t>(s->options->duration_s * 1e9);
    s->started.set_value(true);
  }
};

void BenchThread(uint32_t t, Shared* shared, std::barrier<OnBarrier>* barrier,
                 const ConnectionFactory* factory, const Workload* workload, RunStats* out) {
  const BenchOptions& o = *shared->options;
  std::vector<std::unique_ptr<Connection>> connections;
  std::vector<RequestStream> streams;
  bool opened = true;
  for (uint32_t c = t; c < o.connections; c += o.threads) {
    auto connection = (*factory)(c);
    if (!connection.ok()) {
      std::lock_guard lock(shared->mu);
      if (shared->open_error.empty()) shared->open_error = connection.status().message();
      opened = false;
      break;
    }
    connections.push_back(std::move(connection).value());
    streams.emplace_back(*workload, o.seed, c);
  }
  std::optional<ThreadDriver> driver;
  if (opened) {
    DriverOptions d;
    d.window = o.window;
    d.timeout_ns = o.timeout_ms * 1'000'000;
    driver.emplace(*workload, d, std::move(connections), std::move(streams));
    shared->answered += driver->Handshake(shared->connect_deadline_ns);
  }
  barrier->arrive_and_wait();
  if (shared->abort) return;

  std::vector<uint32_t> lists;
  if (o.preload > 0 || o.touch_lists) {
    for (uint32_t l = t; l < o.lists; l += o.threads) lists.push_back(l);
  }
  if (o.touch_lists) {
    driver->Touch(lists);
  } else {
    driver->Preload(lists);
  }
  barrier->arrive_and_wait();
  if (!o.touch_lists) driver->Run(shared->phases);
  *out = driver->stats();
}

void SleepUntil(int64_t ns) {
  timespec ts{static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
  }
}

// --touch-lists: prints one line (or one JSON object) with what the touch did.
// Returns the exit status: 0, or 3 if no request succeeded.
int PrintTouched(const BenchSummary& s) {
  if (s.options->json) {
    std::printf("%s\n", FormatTouchJson(s).c_str());
  } else {
    std::fputs(FormatTouchLine(s).c_str(), stdout);
  }
  if (s.stats.preload[static_cast<int>(Outcome::kOk)] == 0) {
    std::fprintf(stderr, "todo-bench: error: no request succeeded\n");
    return 3;
  }
  return 0;
}

int Main(int argc, char** argv) {
  int exit_code = 0;
  std::optional<BenchOptions> parsed = ParseBenchFlags(argc, argv, &exit_code);
  if (!parsed) return exit_code;
  const BenchOptions& o = *parsed;

  Workload workload(o.Workload());
  zmq::context_t ctx(static_cast<int>(o.io_threads));
  int hwm = static_cast<int>(std::max<uint32_t>(1000, 2 * o.window));
  ConnectionFactory factory = [&](uint32_t index) -> StatusOr<std::unique_ptr<Connection>> {
    auto c =
        ZmqConnection::Open(ctx, o.endpoint, hwm, o.curve ? &*o.curve : nullptr, o.rids, index);
    if (!c.ok()) return c.status();
    return std::unique_ptr<Connection>(std::move(c).value());
  };
  BenchSummary summary;
  summary.options = &o;
  std::optional<SmartMap> smart_map;
  std::vector<std::shared_ptr<SmartHub>> smart_hubs;
  if (o.smart) {
    auto map = FetchMap(ctx, o.endpoint, static_cast<int>(o.connect_timeout_s * 1000));
    if (map.ok()) {
      summary.smart_map = true;
      summary.smart_note = "map version " + std::to_string(map->version) + " from " + o.endpoint +
                           ": " + std::to_string(map->nodes.size()) + " nodes, " +
                           std::to_string(map->partitions) + " partitions";
      smart_map = *std::move(map);
      // One hub per bench thread (connection c belongs to thread c mod T,
      // and only that thread touches hubs[c mod T]), shared by its
      // connections: each node's socket carries up to all their windows.
      smart_hubs.resize(o.threads);
      const uint32_t per_thread = (o.connections + o.threads - 1) / o.threads;
      const int smart_hwm =
          static_cast<int>(std::max<uint64_t>(1000, 2ull * o.window * per_thread));
      factory = [&, smart_hwm](uint32_t index) -> StatusOr<std::unique_ptr<Connection>> {
        std::shared_ptr<SmartHub>& hub = smart_hubs[index % o.threads];
        if (!hub) {
          auto h = SmartHub::Open(ctx, o.endpoint, smart_hwm, *smart_map, o.window);
          if (!h.ok()) return h.status();
          hub = std::shared_ptr<SmartHub>(std::move(h).value());
        }
        return std::unique_ptr<Connection>(new SmartConnection(hub, o.rids, index));
      };
    } else {
      summary.smart_note =
          "no map (" + map.status().message() + "): every request to " + o.endpoint;
    }
    std::fprintf(stderr, "todo-bench: --smart: %s\n", summary.smart_note.c_str());
  }
  RedisEndpoint redis;
  RedisScripts scripts;
  if (o.backend == "redis") {
    redis = *ParseRedisEndpoint(o.endpoint);  // Validate() checked it
    auto loaded = LoadRedisScripts(redis, o.connect_timeout_s);
    if (!loaded.ok()) {
      std::fprintf(stderr, "todo-bench: error: %s\n", loaded.status().message().c_str());
      return 1;
    }
    scripts = *std::move(loaded);
    factory = [&](uint32_t) -> StatusOr<std::unique_ptr<Connection>> {
      auto c = RedisConnection::Open(redis, scripts);
      if (!c.ok()) return c.status();
      return std::unique_ptr<Connection>(std::move(c).value());
    };
  }

  Shared shared;
  shared.options = &o;
  shared.connect_deadline_ns = NowNs() + static_cast<int64_t>(o.connect_timeout_s * 1e9);
  std::future<bool> started = shared.started.get_future();
  std::barrier<OnBarrier> barrier(o.threads, OnBarrier{&shared});
  std::vector<RunStats> per_thread(o.threads);
  std::vector<std::thread> threads;
  for (uint32_t t = 0; t < o.threads; ++t) {
    threads.emplace_back(BenchThread, t, &shared, &barrier, &factory, &workload, &per_thread[t]);
  }

  bool running = started.get();
  if (running && !o.touch_lists) {
    SleepUntil(shared.phases.measure_start_ns);
    if (o.mark_phases) std::fputs("todo-bench: phase measure-start\n", stderr);
    CpuTimes before = ProcessCpu();
    SleepUntil(shared.phases.measure_end_ns);
    CpuTimes after = ProcessCpu();
    if (o.mark_phases) std::fputs("todo-bench: phase measure-end\n", stderr);
    summary.cpu_measured = {after.user_s - before.user_s, after.sys_s - before.sys_s};
  }
  for (std::thread& t : threads) t.join();

  if (!running) {
    std::lock_guard lock(shared.mu);
    if (!shared.open_error.empty()) {
      std::fprintf(stderr, "todo-bench: error: %s\n", shared.open_error.c_str());
    } else {
      std::fprintf(stderr,
                   "todo-bench: error: could not connect: %u of %u connections got no reply from "
                   "%s within %g s (is a router or node listening there?)\n",
                   o.connections - shared.answered.load(), o.connections, o.endpoint.c_str(),
                   o.connect_timeout_s);
    }
    return 1;
  }

  for (const RunStats& s : per_thread) summary.stats.Merge(s);
  summary.preload_s = static_cast<double>(shared.preload_end_ns - shared.preload_start_ns) / 1e9;
  summary.cpu_total = ProcessCpu();
  if (o.touch_lists) return PrintTouched(summary);
  std::string table = FormatTable(summary);
  if (o.json) {
    std::fputs(table.c_str(), stderr);
    std::printf("%s\n", FormatJson(summary).c_str());
  } else {
    std::fputs(table.c_str(), stdout);
  }
  uint64_t ok = 0;
  for (const auto& by_op : summary.stats.outcomes) ok += by_op[static_cast<int>(Outcome::kOk)];
  if (ok == 0) {
    std::fprintf(stderr, "todo-bench: error: no request succeeded in the measured window\n");
    return 3;
  }
  return 0;
}

}  // namespace
}  // namespace todo::bench

int main(int argc, char** argv) { return todo::bench::Main(argc, argv); }
