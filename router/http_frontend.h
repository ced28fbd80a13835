// HttpFrontend: the router's HTTP/1.1 server (cpp-httplib): the book's two
// endpoints, the JSON API under /lists/, /health and /metrics. What each
// endpoint means is in router/http_mapping.h.
//
// Design: httplib's listen thread accepts connections and hands each to a
// pool of `threads` workers (httplib::ThreadPool); a worker serves one
// keep-alive connection at a time, request after request. A handler maps
// the HTTP request to a protocol v1 request (http_mapping.h) and sends it,
// like any other client, to the router's own frontend ROUTER socket over
// inproc: each worker owns a thread_local DEALER connected to
// `router_endpoint` (same zmq context), sends the msgpack body with a fresh
// uint id and waits up to `reply_deadline` (a little above the router's
// --timeout-ms, after which the router has answered `timeout` itself) for
// the reply with that id. A reply with another id answers a request the
// worker already gave up on, and is dropped. So the HTTP layer routes
// nothing: the router loop decides every request exactly as for ZeroMQ
// clients.
// Bounded: `threads` connections served at once (more wait in the pool's
// queue; a connection is closed after 100 requests, so waiting ones get a
// turn), request bodies of at most `max_body_bytes` (then 413), one request
// in flight per worker. A POST/PUT/PATCH without Content-Length is served
// as having an empty body (httplib 0.11 would wait for the connection to
// close).
// Stop() stops accepting, lets every worker finish the request it is serving
// (the router must still be serving then) and joins the threads.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <zmq.hpp>

#include "common/metrics.h"
#include "common/status.h"
#include "router/metrics.h"

namespace todo::router {

struct HttpFrontendOptions {
  metrics::ListenAddress address;  // where to listen (port 0: any free port)
  int threads = 32;                // worker threads
  std::string router_endpoint;     // the inproc endpoint the router's frontend binds
  std::chrono::milliseconds reply_deadline{6000};  // wait for a reply at most this long
  size_t max_body_bytes = 64 * 1024;               // larger request bodies get 413
};

class HttpFrontend {
 public:
  // `ctx` (the router's context) and `metrics` must outlive the frontend.
  HttpFrontend(HttpFrontendOptions options, zmq::context_t* ctx, RouterMetrics* metrics);
  ~HttpFrontend();  // Stop()s
  HttpFrontend(const HttpFrontend&) = delete;
  HttpFrontend& operator=(const HttpFrontend&) = delete;

  // Binds the address and serves on a thread of its own; internal (naming
  // the address) if it can't bind. Call once, after the router has bound
  // `router_endpoint`.
  Status Start();
  // The bound port (the chosen one if the address had port 0).
  int port() const;
  // Stops accepting, finishes the requests being served, joins. Idempotent.
  void Stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace todo::router
