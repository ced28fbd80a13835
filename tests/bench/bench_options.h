// todo-bench's command line: the options struct with its defaults, its
// validation, and the CLI11 parser.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "common/io/security/keys.h"
#include "common/status.h"
#include "tests/bench/workload.h"

namespace todo::bench {

// The keys of a CURVE client connection (common/io/security/keys.h).
struct ZmqCurveKeys {
  security::CurveKey server_key;  // the router's (or node's) public key
  security::KeyPair own;          // this client's keypair
};

struct BenchOptions {
  std::string endpoint = "tcp://127.0.0.1:7000";  // router or node (or Redis) to load
  std::string backend = "zmq";                    // zmq (todo protocol) or redis (Redis commands)
  uint32_t connections = 16;                      // DEALER sockets (or Redis connections)
  uint32_t window = 32;                           // requests in flight per connection, always
  uint32_t threads = 1;                           // connections are spread round-robin over them
  uint32_t io_threads = 1;                        // ZeroMQ I/O threads of the shared context
  uint32_t lists = 10000;                         // distinct lists, picked uniformly
  std::string list_prefix = "bench-";
  std::string mix = "add=70,entries=30";
  double duration_s = 10;  // measured seconds
  double warmup_s = 1;     // seconds of load before measuring
  uint64_t seed = 1;
  uint32_t preload = 0;  // adds per list before the run (not measured)
  uint32_t dates = 30;   // distinct dates
  uint32_t title_bytes = 24;
  int64_t timeout_ms = 10000;    // per request; then client_timeout
  double connect_timeout_s = 5;  // no reply on some connection by then: exit 1
  bool json = false;             // one JSON object on stdout
  bool touch_lists = false;      // only send one entries_all to every list, then exit
  bool mark_phases = false;      // stderr lines at the measured window's start and end
  bool rids = false;             // a fresh rid (request id) on every write (zmq backend)
  // Skip the router (zmq backend): fetch the partition map from --endpoint
  // (a router or a node in replicated mode) and send each request straight
  // to its partition's primary (smart_connection.h); without a map (static
  // mode, an error), everything goes to --endpoint as without --smart.
  bool smart = false;

  // CurveZMQ (a server run with --curve-secret; zmq backend only):
  std::string curve_server_key;       // --curve-server-key Z85|FILE: the server's public key
  std::string curve_key;              // --curve-key PREFIX: this client's keypair (PREFIX.key)
  std::optional<ZmqCurveKeys> curve;  // loaded from the two above by ParseBenchFlags

  Mix parsed_mix;  // filled by Validate()

  // OK, or bad_request naming the flag and its rule. Parses --mix.
  Status Validate();
  // The workload part.
  WorkloadOptions Workload() const;
};

// Parses argv. On --help prints the help and sets *exit_code = 0; on a bad
// flag prints one line to stderr and sets *exit_code = 2; both return nullopt.
std::optional<BenchOptions> ParseBenchFlags(int argc, char** argv, int* exit_code);

}  // namespace todo::bench
