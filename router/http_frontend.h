// HttpFrontend: the router's HTTP API -- the book's two endpoints, the JSON
// API under /lists/, /health and /metrics -- on an HttpServer
// (router/http_server.h) that runs inside the router's own poll loop. What
// each endpoint means is in router/http_mapping.h.
//
// Design: the frontend is the router's LoopGuest (router/router.h): the
// loop polls the server's epoll fd and calls Serve() after every wake-up,
// on its own thread. A request for the to-do lists is mapped to a protocol
// v1 request (http_mapping.h), encoded once, and handed to
// Router::Submit() with a token naming its pending entry; the router treats
// it exactly as a ZeroMQ client's (routing, --max-inflight, --timeout-ms,
// `overloaded`, `unavailable`) and gives the reply back to OnReply(), which
// maps it to the HTTP answer. No thread hand-off, no socket between them.
// Local routes (/health, /metrics, and any added with AddLocalRoute()) are
// answered on the spot from the router's own state and are never
// forwarded; async local routes (AddAsyncRoute(): the operator page's list
// look-up) answer once the protocol requests they submitted are answered.
// Bounded: the server's limits (connections, header and body bytes,
// requests awaiting answers per connection and in all); pending entries are
// at most the requests awaiting answers, each freed by its one reply.
// Not thread-safe: everything runs on the router loop's thread.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"
#include "router/http_mapping.h"
#include "router/http_server.h"
#include "router/metrics.h"
#include "router/router.h"

namespace todo::router {

class HttpFrontend final : public LoopGuest, private HttpHandler {
 public:
  // `router` and `metrics` must outlive the frontend.
  HttpFrontend(HttpServerOptions options, Router* router, RouterMetrics* metrics);
  ~HttpFrontend() override;
  HttpFrontend(const HttpFrontend&) = delete;
  HttpFrontend& operator=(const HttpFrontend&) = delete;

  // Binds the address; internal (naming it) if it can't. Then hand the
  // frontend to Router::SetGuest() before Router::Run().
  Status Start();
  int port() const;  // the bound port

  // A route answered on the loop's thread without asking any node: `path`
  // exactly (decoded, without the query), for GET (and HEAD). Another
  // method gets 405. `route` labels it in /metrics. Before Run().
  using LocalHandler = std::function<http::HttpReply(const HttpRequest&)>;
  void AddLocalRoute(std::string path, HttpRoute route, LocalHandler handler);

  // A local route whose answer may need the nodes: the handler gets the
  // request and a Responder to call exactly once, now or later (e.g. when
  // the replies of SubmitRequest() are in), on the loop's thread. The
  // request's views are valid only during the handler. Before Run().
  using Responder = std::function<void(const http::HttpReply&)>;
  using AsyncHandler = std::function<void(const HttpRequest&, Responder)>;
  void AddAsyncRoute(std::string path, HttpRoute route, AsyncHandler handler);

  // Hands `request` to the router exactly as the API's requests go (routed,
  // bounded, timed out); `done` gets the reply body (the router's own, a
  // node's, or `timeout`) exactly once, maybe before this returns, on the
  // loop's thread. `done` must not call SubmitRequest(). Loop thread only.
  using ReplyCallback = std::function<void(std::string_view reply_body)>;
  void SubmitRequest(const http::OwnedRequest& request, ReplyCallback done);

  HttpServerStats ServerStats() const;

  // LoopGuest (called by the router's loop).
  int poll_fd() const override;
  void Serve(bool ready) override;
  void OnReply(uint64_t token, std::string_view reply_body) override;
  void StopReading() override;
  bool Idle() const override;

 private:
  // HttpHandler (called by the server).
  void OnRequest(HttpExchangeId id, const HttpRequest& request) override;
  bool AnswersAtOnce(std::string_view target) const override;
  http::HttpReply ErrorReply(std::string_view target, int status, std::string_view code,
                             const std::string& message) override;

  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace todo::router
