// EtcdClient: etcd's v3 API (etcd 3.4 or later) through its JSON gateway,
// the HTTP/1.1 + JSON face of the gRPC API that every etcd server serves on
// its client URLs under /v3/.
//
// Why the gateway rather than gRPC: the project already links an HTTP
// client (cpp-httplib) and a JSON library (nlohmann-json); gRPC would need
// libgrpc++ and protobuf, etcd's .proto files (which Debian does not ship,
// so they would be vendored and kept in step), and code generation in the
// build, for the same calls. The gateway is part of every etcd 3.4 server,
// needs no flag, and its cost (JSON and base64, one HTTP request per call)
// is small beside a raft round trip for the few calls a second the cluster
// makes. Its quirks are in codec.h.
//
// Design: calls are blocking and synchronous. Each call has a deadline
// (Options::call_timeout) and each try of one endpoint a shorter one
// (attempt_timeout); a call that fails on one endpoint in a way that leaves
// nothing applied (connection refused, a 5xx, etcd "no leader") goes on to
// the next endpoint, and the client then prefers the endpoint that answered,
// so losing one member of three costs callers at most one attempt_timeout,
// once. Connections are kept alive in a small pool per endpoint (at most
// max_idle_connections idle); a call takes one for itself, so calls from
// several threads run in parallel.
//
// Retries and unknown outcomes: reads (Get, GetPrefix, TimeToLive, Status)
// and idempotent writes (Put, Delete, KeepAliveOnce, Revoke, Grant: a
// duplicate grant only leaves a lease nobody uses, which expires) are tried
// on the next endpoint after any failure. A Txn is tried again only when
// etcd cannot have applied it (not connected, or etcd said "no leader");
// after a timeout or a connection lost once it was sent, the call fails with
// kTimeout ("outcome unknown"): the caller re-reads and decides.
//
// Errors (never exceptions): kUnavailable when no endpoint could be reached
// or each refused (the message names every endpoint tried and what failed),
// kTimeout at the deadline or when a Txn's outcome is unknown, kNotFound for
// etcd's "not found" (e.g. an unknown lease), kBadRequest for a request etcd
// refused (e.g. a revision already compacted, gRPC code 11), kInternal for
// an answer that is not etcd's (malformed JSON, over max_response_bytes).
//
// Bounds: an answer over max_response_bytes is refused. Each read of a try
// waits at most what is left of the try's deadline, and the body is
// abandoned once the deadline passes; only a server that trickles its
// headers a byte at a time could hold one try longer (etcd does not).
//
// Thread-safety: every method may be called from any thread at once.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "common/io/etcd/types.h"
#include "common/status.h"

namespace httplib {
class Client;
}

namespace todo::io {

// An etcd client URL: "http://host:port" (or "host:port"). https is not
// supported yet.
struct EtcdEndpoint {
  std::string url;   // as given, normalised to "http://host:port"
  std::string host;  // without brackets for IPv6
  int port = 0;
};

// Parses one endpoint; bad_request naming it and what is wrong.
StatusOr<EtcdEndpoint> ParseEtcdEndpoint(std::string_view url);
// Parses a --etcd flag: URLs separated by commas, at least one, no repeats.
StatusOr<std::vector<std::string>> ParseEtcdEndpointList(std::string_view list);

class EtcdClient {
 public:
  struct Options {
    // One endpoint's try of a call (connect, send, answer).
    std::chrono::milliseconds attempt_timeout{1000};
    // A whole call, over every endpoint it tries (and tries again after a
    // round of quick failures, such as during an etcd leader election).
    std::chrono::milliseconds call_timeout{3000};
    // An answer larger than this is refused (internal).
    size_t max_response_bytes = 64u << 20;
    // Idle keep-alive connections kept per endpoint.
    size_t max_idle_connections = 4;

    // bad_request if a timeout is not positive, attempt > call, or a bound is 0.
    Status Validate() const;
  };

  // bad_request if `endpoints` is empty, one does not parse (names it) or
  // `options` is invalid.
  static StatusOr<std::unique_ptr<EtcdClient>> Create(std::vector<std::string> endpoints,
                                                      Options options);
  ~EtcdClient();
  EtcdClient(const EtcdClient&) = delete;
  EtcdClient& operator=(const EtcdClient&) = delete;

  const std::vector<EtcdEndpoint>& endpoints() const { return endpoints_; }
  const Options& options() const { return options_; }

  // --- Keys ---------------------------------------------------------------
  StatusOr<GetResult> Get(std::string_view key);
  // Every key starting with `prefix`, in key order; at most `limit` (0: all;
  // `more` says whether the limit cut the answer).
  StatusOr<RangeResult> GetPrefix(std::string_view prefix, int64_t limit = 0);
  // The general range [key, range_end) ("" = the key alone), at `revision`
  // (0: latest), keys only (no values) if asked.
  StatusOr<RangeResult> Range(std::string_view key, std::string_view range_end, int64_t limit,
                              int64_t revision = 0, bool keys_only = false);
  // Returns the revision of the put. kNotFound if `lease` does not exist.
  StatusOr<int64_t> Put(std::string_view key, std::string_view value, int64_t lease = 0);
  StatusOr<DeleteResult> Delete(std::string_view key);
  StatusOr<DeleteResult> DeletePrefix(std::string_view prefix);
  StatusOr<TxnResult> Txn(const TxnRequest& txn);
  // Compacts the store's history up to `revision` (watches from before it
  // then get "compacted"). Returns the header revision.
  StatusOr<int64_t> Compact(int64_t revision);

  // --- Leases -------------------------------------------------------------
  // etcd raises a TTL below its minimum (ceil(1.5 x election timeout): 2 s
  // with the default 1 s election timeout) to it; the result says what
  // was granted.
  StatusOr<LeaseGrant> Grant(int64_t ttl_seconds);
  // Renews the lease; returns its TTL, or 0 if the lease is gone (expired
  // or revoked): then it is lost for good.
  StatusOr<int64_t> KeepAliveOnce(int64_t lease_id);
  // Revokes the lease, deleting its keys. kNotFound if it is gone already.
  Status Revoke(int64_t lease_id);
  // ttl -1 if the lease has expired or never existed.
  StatusOr<LeaseInfo> TimeToLive(int64_t lease_id, bool with_keys = false);

  // --- One member ---------------------------------------------------------
  // POST /v3/maintenance/status on `endpoint` only (one of endpoints() or
  // another URL), within attempt_timeout.
  StatusOr<MemberStatus> EndpointStatus(std::string_view endpoint);
  // GET /health on `endpoint` only: OK if it says {"health":"true"}, else
  // unavailable with what it said.
  Status EndpointHealth(std::string_view endpoint);

  // --- Raw calls (for the watch's probes and tests) -------------------------
  enum class Retry {
    kAlways,       // safe to repeat: any failure moves on to the next endpoint
    kIfNotApplied  // only when etcd cannot have applied it
  };
  // POSTs `body` to `path` (e.g. "/v3/kv/range") with failover; returns the
  // JSON of a 200 answer. `what` names the call in errors ("put 'a/b'").
  StatusOr<nlohmann::json> Call(std::string_view path, const std::string& body, Retry retry,
                                std::string_view what);

  // The index in endpoints() the next call starts with (the last one that
  // answered).
  size_t preferred_endpoint() const { return preferred_.load(std::memory_order_relaxed); }

 private:
  struct Pool;
  struct Attempt;
  EtcdClient(std::vector<EtcdEndpoint> endpoints, Options options);

  // One try on `ep` (connections from `pool`) before `deadline`.
  Attempt TryOnce(const EtcdEndpoint& ep, Pool& pool, const std::string& method,
                  std::string_view path, const std::string& body,
                  std::chrono::steady_clock::time_point deadline);
  // One try on `endpoint` alone, within attempt_timeout.
  StatusOr<nlohmann::json> CallOne(std::string_view endpoint, const std::string& method,
                                   std::string_view path, const std::string& body,
                                   std::string_view what);
  std::unique_ptr<httplib::Client> TakeConnection(const EtcdEndpoint& ep, Pool& pool);
  void ReturnConnection(Pool& pool, std::unique_ptr<httplib::Client> c);

  const std::vector<EtcdEndpoint> endpoints_;
  const Options options_;
  std::vector<std::unique_ptr<Pool>> pools_;  // one per endpoint
  std::atomic<size_t> preferred_{0};
};

}  // namespace todo::io
