// NodeOptions: every flag of todo-node, with its default, and how flags are
// parsed. Defaults admit at least 1,000 requests in flight on one list and
// 10,000 on one node before anything answers `overloaded` (protocol.md).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/io/security/curve.h"
#include "common/status.h"

namespace todo::node {

// Worker threads by default: half the cores, at least one. The other half is
// for the socket loop, ZeroMQ's I/O thread and the shard writers; on a
// 2-core machine one worker measured 15-25% less CPU per request than two
// (fewer hand-offs and context switches; tests/bench/compare).
int DefaultWorkers();

// LevelDB shards of a new data dir by default: half the cores, at least one
// (at most 16). Each shard is a writer thread and an fsync per group commit;
// on a 2-core VM one shard measured 8.1 us of node CPU per request against
// 11.6 with four, and 161k ops/s against 117k (bigger groups, fewer syncs
// and wake-ups). A dir keeps the count it was created with (its MANIFEST).
uint32_t DefaultShards();

struct NodeOptions {
  std::string name;                // --name: this node's name in the cluster (required)
  std::string listen;              // --listen: ZeroMQ endpoint to bind (required)
  std::string data;                // --data: the data dir (required; created if missing)
  uint32_t shards = 0;             // --shards: LevelDB shards (fixed per data dir; 0 = the
                                   // dir's MANIFEST, or DefaultShards() for a new dir)
  int workers = DefaultWorkers();  // --workers: threads running list actors
  double idle_timeout_s = 60;      // --idle-timeout: seconds before an idle list leaves memory
  size_t max_lists = 100000;       // --max-lists: live list actors at most
  size_t cache_mb = 512;           // --cache-mb: memory budget of the live lists (MiB)
  size_t mailbox = 4096;           // --mailbox: queued requests per list at most
  size_t max_inflight = 65536;     // --max-inflight: requests inside the node at most
  size_t max_inflight_mb = 24;     // --max-inflight-mb: their MiB; as many of unsent big replies
  size_t writer_queue = 16384;     // --writer-queue: queued writes per shard at most
  size_t max_batch = 4096;         // --max-batch: writes per group commit at most
  size_t write_buffer_mb = 4;      // --write-buffer-mb: LevelDB memtable per shard (MiB)
  bool sync = true;                // --no-sync turns fsync off (tests/benchmarks only)
  // --rid-ttl: rid records (retried writes' outcomes) are kept at least this
  // long, then dropped in the background; 1 s to 365 days.
  std::chrono::milliseconds rid_ttl = std::chrono::hours(24);
  // --rid-filter-mb: the in-memory filter that spares first writes with a
  // rid a disk lookup (node/store/rid_filter.h); 0 turns it off.
  size_t rid_filter_mb = 16;
  std::string log_level = "info";  // --log-level: trace|debug|info|warn|error
  std::string metrics;             // --metrics ADDR:PORT: serve /metrics and /health ("" = off)

  // Replicated mode (shared/spec/replication.md): on with --etcd.
  std::string etcd;                   // --etcd URL[,URL...]: etcd's client URLs ("" = static mode)
  std::string cluster_name = "todo";  // --cluster-name: keys under /todo/<name>/ in etcd
  std::string advertise;              // --advertise: the endpoint clients and routers use
                                      // (default: --listen)
  int64_t lease_ms = 2000;            // --lease-ms: the etcd lease's TTL (etcd grants seconds)
  std::string repl_listen;            // --repl-listen: the replication endpoint (default: the
                                      // --listen host, a port the OS picks; advertised in etcd)
  std::string repl_advertise;         // --repl-advertise (default: from --advertise's host)
  int64_t repl_timeout_ms = 1000;     // --repl-timeout-ms: a backup slower than this leaves
                                      // the in-sync set
  size_t catchup_rate_mb = 32;        // --catchup-rate-mb: MiB/s of snapshots sent, at most
  size_t retained_mb = 256;           // --retained-mb: records kept for backups to resume
                                      // from (all the partitions of the node)
  size_t max_incoming_snapshots = 2;  // --max-incoming-snapshots: snapshots received at once
  bool controller = true;             // --no-controller: never host the controller
  size_t max_moves = 1;               // --max-moves: partitions moving at once (as controller)
  size_t max_handoffs = 16;           // --max-handoffs: leadership-only moves at once (as
                                      // controller)
  bool replicated() const { return !etcd.empty(); }

  // CurveZMQ (common/io/security/curve.h): --curve-secret (the node's server
  // key) and --curve-allow (the routers' public keys); off by default.
  security::CurveConfig curve;

  // OK, or bad_request naming the flag and the rule.
  Status Validate() const;
};

// A duration flag's value: a number (fractions allowed) with an optional
// unit, ms, s (the default), m, h or d: "90", "1.5s", "500ms", "24h".
// bad_request naming `flag` if it is not one.
StatusOr<std::chrono::milliseconds> ParseDuration(std::string_view flag, std::string_view text);

// Parses argv. On success returns the options; on --help prints usage and
// sets *exit_code = 0; on an error prints one line "todo-node: error: ..." to
// stderr and sets *exit_code = 2. Returns nullopt in both latter cases.
std::optional<NodeOptions> ParseNodeFlags(int argc, char** argv, int* exit_code);

}  // namespace todo::node
