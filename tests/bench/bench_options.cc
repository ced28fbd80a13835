#include "tests/bench/bench_options.h"

#include <CLI/CLI.hpp>
#include <iostream>

#include "common/io/security/keys.h"
#include "tests/bench/redis_connection.h"

namespace todo::bench {

namespace {

// Fills o->curve from --curve-server-key and --curve-key (both or neither).
Status LoadCurveKeys(BenchOptions* o) {
  if (o->curve_server_key.empty() && o->curve_key.empty()) return Status::Ok();
  if (o->curve_server_key.empty() || o->curve_key.empty()) {
    return Status::BadRequest("CURVE needs both --curve-server-key and --curve-key");
  }
  if (o->backend != "zmq") return Status::BadRequest("--curve-* go with --backend zmq");
  auto server = security::ParseKeyOrFile(o->curve_server_key);
  if (!server.ok()) return Status::BadRequest("--curve-server-key: " + server.status().message());
  std::string secret = o->curve_key.ends_with(".key") ? o->curve_key : o->curve_key + ".key";
  auto own = security::LoadSecretKeyFile(secret, nullptr);
  if (!own.ok()) return Status::BadRequest("--curve-key: " + own.status().message());
  o->curve = ZmqCurveKeys{*server, *own};
  return Status::Ok();
}

}  // namespace

Status BenchOptions::Validate() {
  bool endpoint_ok = false;
  for (std::string_view scheme : {"tcp://", "ipc://", "inproc://"}) {
    endpoint_ok |= endpoint.size() > scheme.size() && endpoint.starts_with(scheme);
  }
  if (!endpoint_ok)
    return Status::BadRequest("--endpoint must be a tcp://, ipc:// or inproc:// endpoint");
  if (backend != "zmq" && backend != "redis")
    return Status::BadRequest("--backend must be zmq or redis");
  if (backend == "redis") {
    if (auto redis = ParseRedisEndpoint(endpoint); !redis.ok()) return redis.status();
  }
  if (connections < 1 || connections > 4096)
    return Status::BadRequest("--connections must be 1-4096");
  if (window < 1 || window > 65536) return Status::BadRequest("--window must be 1-65536");
  if (threads < 1 || threads > connections) {
    return Status::BadRequest("--threads must be 1..--connections");
  }
  if (io_threads < 1 || io_threads > 64) return Status::BadRequest("--io-threads must be 1-64");
  if (lists < 1 || lists > 100'000'000) return Status::BadRequest("--lists must be 1-100000000");
  if (list_prefix.size() > 200)
    return Status::BadRequest("--list-prefix must be at most 200 bytes");
  if (!(duration_s > 0) || duration_s > 86400) {
    return Status::BadRequest("--duration must be > 0 and at most 86400 seconds");
  }
  if (!(warmup_s >= 0) || warmup_s > 86400) {
    return Status::BadRequest("--warmup must be 0-86400 seconds");
  }
  if (preload > 1'000'000) return Status::BadRequest("--preload must be 0-1000000");
  if (touch_lists && preload > 0)
    return Status::BadRequest("--touch-lists and --preload can't be used together");
  if (dates < 1 || dates > 100000) return Status::BadRequest("--dates must be 1-100000");
  if (title_bytes < 1 || title_bytes > 1024)
    return Status::BadRequest("--title-bytes must be 1-1024");
  if (timeout_ms < 1 || timeout_ms > 3'600'000) {
    return Status::BadRequest("--timeout-ms must be 1-3600000");
  }
  if (!(connect_timeout_s > 0) || connect_timeout_s > 3600) {
    return Status::BadRequest("--connect-timeout must be > 0 and at most 3600 seconds");
  }
  if (rids && backend != "zmq") return Status::BadRequest("--rids goes with --backend zmq");
  if (smart && backend != "zmq") return Status::BadRequest("--smart goes with --backend zmq");
  if (smart && !(curve_server_key.empty() && curve_key.empty())) {
    return Status::BadRequest("--smart does not go with --curve-* (each node has its own key)");
  }
  auto m = ParseMix(mix);
  if (!m.ok()) return m.status();
  parsed_mix = *m;
  return Status::Ok();
}

WorkloadOptions BenchOptions::Workload() const {
  WorkloadOptions w;
  w.lists = lists;
  w.list_prefix = list_prefix;
  w.dates = dates;
  w.title_bytes = title_bytes;
  w.preload = preload;
  w.mix = parsed_mix;
  return w;
}

std::optional<BenchOptions> ParseBenchFlags(int argc, char** argv, int* exit_code) {
  BenchOptions o;
  CLI::App app("todo-bench: closed-loop load generator for a todo router or node", "todo-bench");
  app.add_option("--endpoint", o.endpoint, "router or node to load (with redis: tcp://HOST:PORT)")
      ->capture_default_str();
  app.add_option("--backend", o.backend,
                 "zmq (the todo protocol) or redis (the same requests as Redis commands)")
      ->capture_default_str();
  app.add_option("--connections", o.connections, "DEALER connections")->capture_default_str();
  app.add_option("--window", o.window, "requests kept in flight per connection")
      ->capture_default_str();
  app.add_option("--threads", o.threads, "bench threads; connections spread over them")
      ->capture_default_str();
  app.add_option("--io-threads", o.io_threads, "ZeroMQ I/O threads")->capture_default_str();
  app.add_option("--lists", o.lists, "distinct lists, picked uniformly")->capture_default_str();
  app.add_option("--list-prefix", o.list_prefix, "list names are PREFIX0 .. PREFIX<lists-1>")
      ->capture_default_str();
  app.add_option("--mix", o.mix, "op weights: add, entries, entries_all, update, delete")
      ->capture_default_str();
  app.add_option("--duration", o.duration_s, "measured seconds")->capture_default_str();
  app.add_option("--warmup", o.warmup_s, "seconds of load before measuring")->capture_default_str();
  app.add_option("--seed", o.seed, "seed of the request streams")->capture_default_str();
  app.add_option("--preload", o.preload, "entries added to every list before the run")
      ->capture_default_str();
  app.add_option("--dates", o.dates, "distinct dates (from 2026-01-01)")->capture_default_str();
  app.add_option("--title-bytes", o.title_bytes, "bytes per title")->capture_default_str();
  app.add_option("--timeout-ms", o.timeout_ms, "per-request deadline (then client_timeout)")
      ->capture_default_str();
  app.add_option("--connect-timeout", o.connect_timeout_s,
                 "seconds for every connection to answer a ping")
      ->capture_default_str();
  app.add_flag("--json", o.json, "print one JSON object on stdout (the table goes to stderr)");
  app.add_flag("--touch-lists", o.touch_lists,
               "no timed run: send one entries (no date) to each of --lists lists, then exit");
  app.add_flag("--mark-phases", o.mark_phases,
               "print 'todo-bench: phase measure-start|measure-end' on stderr at the window's "
               "edges");
  app.add_flag("--rids", o.rids,
               "put a fresh rid (request id, 36 bytes) on every write, as the Python client and "
               "todo do, so that the server records each write for safe retries");
  app.add_flag("--smart", o.smart,
               "skip the router: fetch the partition map (`map`) from --endpoint (a router or "
               "node, replicated mode) and send each request straight to its partition's primary; "
               "resend reads (and writes with --rids) after 'not primary' or unavailable to the "
               "refreshed map's primary; without a map (static mode) send to --endpoint");
  app.add_option("--curve-server-key", o.curve_server_key,
                 "CURVE: the server's public key, Z85 or a .pub file (with --curve-key)")
      ->type_name("Z85|FILE");
  app.add_option("--curve-key", o.curve_key,
                 "CURVE: this client's keypair PREFIX.key (todo-keygen; with --curve-server-key)")
      ->type_name("PREFIX");
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    std::cout << app.help();
    *exit_code = 0;
    return std::nullopt;
  } catch (const CLI::ParseError& e) {
    std::cerr << "todo-bench: error: " << e.what() << "\n";
    *exit_code = 2;
    return std::nullopt;
  }
  if (Status s = o.Validate(); !s.ok()) {
    std::cerr << "todo-bench: error: " << s.message() << "\n";
    *exit_code = 2;
    return std::nullopt;
  }
  if (Status s = LoadCurveKeys(&o); !s.ok()) {
    std::cerr << "todo-bench: error: " << s.message() << "\n";
    *exit_code = 2;
    return std::nullopt;
  }
  return o;
}

}  // namespace todo::bench
