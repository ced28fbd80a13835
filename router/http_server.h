// HttpServer: an event-driven HTTP/1.1 server that runs on the thread of
// whoever calls Serve() -- in todo-router, the router's own poll loop, so an
// HTTP request reaches the router without a thread hand-off. It knows
// nothing of to-do lists: complete requests go to an HttpHandler, which
// answers each one, now or later, with Respond().
//
// Design: Boost.Beast's HTTP/1.1 request parser over non-blocking sockets
// and one epoll set (level-triggered). fd() is that epoll fd: the caller
// polls it beside its other fds (zmq_poll takes raw fds) and calls Serve()
// after every wake-up. Serve() accepts, reads at most one buffer per ready
// connection, parses, hands complete requests to the handler, writes the
// answers that are ready (in request order: pipelining), and closes the
// connections whose deadline has passed. A connection costs memory (a few
// hundred bytes idle; its input and output buffers are released when
// empty), never a thread.
//
// Deadlines, each per connection, one at a time (checked on every Serve(),
// so precise to the caller's longest poll wait, 100 ms in the router):
//   header: a request's header (request line included) must be complete
//           within header_timeout of its first byte;
//   body:   its body within body_timeout of the header's end;
//   idle:   a keep-alive connection with nothing to do is closed after
//           idle_timeout;
//   send:   an answer that the client does not read for send_timeout
//           (no progress at all) closes the connection.
// A request waiting for its answer has no deadline here: the handler's
// (the router's --timeout-ms) bounds it.
// Bounds:
//   connections: past max_connections a new one is answered 503 and closed
//           at once (one log line per 10 s says how many were refused);
//   header bytes (431) and body bytes (413), then the connection closes;
//   requests handed to the handler and not yet answered: per connection
//           max_pipeline, in all max_inflight; past either, 429 with
//           Retry-After: 1;
//   answers not yet written: past max_unsent_bytes on a connection (or
//           2 x max_pipeline answers queued), its input is not read until
//           the client reads, so a client that never reads holds only its
//           own connection (until send_timeout). Their sum over every
//           connection is UnsentBytes(): past max_unsent_total_bytes the
//           handler answers large replies `overloaded` instead
//           (MayQueueLargeAnswer), so many clients that never read cannot
//           together grow the process.
// Keep-alive (HTTP/1.1 by default, HTTP/1.0 with "Connection: keep-alive"),
// pipelining, chunked request bodies and "Expect: 100-continue" (answered at
// once when nothing is queued before it; ignored from HTTP/1.0 clients) are
// supported; empty lines before a request line are skipped, an absolute-form
// target is given to the handler in origin form, and every answer has a
// Date. A Transfer-Encoding whose last coding is not chunked is a 400 (RFC
// 9112 6.3: the body's length is unknown). Requests the handler answers at
// once (HttpHandler::AnswersAtOnce) are not held back by max_inflight. A
// connection closed by its send deadline is reset (SO_LINGER 0), so the
// kernel frees the answers it still held. After an error
// answer or "Connection: close" the server writes the answer, shuts its side
// down and discards what the client still sends for up to 2 s (a lingering
// close), so the client reads the answer instead of a reset.
//
// Not thread-safe: every call on the thread that calls Serve().
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/metrics.h"
#include "common/status.h"
#include "router/http_mapping.h"

namespace todo::router {

struct HttpServerOptions {
  metrics::ListenAddress address;        // where to listen (port 0: a free port)
  size_t max_connections = 16384;        // open connections at most
  size_t max_header_bytes = 16 * 1024;   // request line + header fields; then 431
  size_t max_body_bytes = 64 * 1024;     // decoded body (chunked too); then 413
  size_t max_pipeline = 16;              // per connection: requests awaiting answers
  size_t max_inflight = 20000;           // in all: requests awaiting answers
  size_t max_unsent_bytes = 256 * 1024;  // per connection: answers not yet written
  // In all: past it, MayQueueLargeAnswer() says no (the handler answers
  // `overloaded` instead of a large answer).
  size_t max_unsent_total_bytes = size_t{64} << 20;
  std::chrono::milliseconds header_timeout{5000};
  std::chrono::milliseconds body_timeout{10000};
  std::chrono::milliseconds idle_timeout{60000};
  std::chrono::milliseconds send_timeout{10000};
  std::chrono::milliseconds linger{2000};  // a lingering close lasts at most this
};

// Names one request on one connection; stale once answered or closed.
using HttpExchangeId = uint64_t;

// One complete request. Views valid only during HttpHandler::OnRequest.
class HttpRequest {
 public:
  virtual ~HttpRequest() = default;
  virtual std::string_view method() const = 0;  // as sent, e.g. "GET"
  virtual std::string_view target() const = 0;  // raw, still percent-encoded
  virtual std::string_view body() const = 0;    // decoded (chunked bodies joined)
  // The value of the first header field named `name` (any case), if any.
  virtual std::optional<std::string_view> header(std::string_view name) const = 0;
  // Every value of the header fields named `name` (any case), in order.
  virtual std::vector<std::string_view> headers(std::string_view name) const = 0;
  // HEAD: the answer is sent without its body (Content-Length stays).
  bool head() const { return method() == "HEAD"; }
};

class HttpHandler {
 public:
  virtual ~HttpHandler() = default;
  // A complete request: answer it exactly once with HttpServer::Respond(),
  // during this call or later. If the connection closes first, Respond()
  // returns false and nothing is sent.
  virtual void OnRequest(HttpExchangeId id, const HttpRequest& request) = 0;
  // True if a request for `target` is answered during OnRequest from the
  // handler's own state (health checks, metrics): such requests are not
  // held back by max_inflight (max_pipeline still applies), so a health
  // check answers while the router is saturated. Asked only at that bound.
  virtual bool AnswersAtOnce(std::string_view /*target*/) const { return false; }
  // The answer the server gives itself (400 malformed request, 413, 429,
  // 431, 503 too many connections) in the style of the endpoint named by
  // `target` (maybe unparsed: "" if unknown). `code` is a short token such as
  // "payload_too_large".
  virtual http::HttpReply ErrorReply(std::string_view target, int status, std::string_view code,
                                     const std::string& message) = 0;
};

// What the server counted; Stats() reads them.
struct HttpServerStats {
  uint64_t connections_open = 0;
  uint64_t connections_accepted = 0;
  uint64_t connections_refused = 0;  // past max_connections, or accept() failed
  uint64_t header_timeouts = 0;
  uint64_t body_timeouts = 0;
  uint64_t idle_timeouts = 0;
  uint64_t send_timeouts = 0;
  uint64_t bad_requests = 0;   // unparsable: 400
  uint64_t too_large = 0;      // 413 and 431
  uint64_t overloaded = 0;     // 429 from max_pipeline / max_inflight
  uint64_t awaiting = 0;       // requests handed to the handler, not yet answered
  uint64_t unsent_bytes = 0;   // answers (and 100 Continue) not yet written, in all
  uint64_t large_refused = 0;  // large answers refused past max_unsent_total_bytes
};

class HttpServer {
 public:
  // `handler` must outlive the server.
  HttpServer(HttpServerOptions options, HttpHandler* handler);
  ~HttpServer();  // closes every connection without another word
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and listens (no SO_REUSEPORT: a port another process holds is
  // refused); internal naming the address if it can't.
  Status Start();
  int port() const;  // the bound port
  int fd() const;    // the epoll fd: readable when Serve() has work

  // Does what is ready without blocking, then enforces the deadlines.
  // `fd_ready`: the caller saw fd() readable (else only deadlines and
  // pending writes are handled, without a system call).
  void Serve(bool fd_ready);

  // Answers exchange `id` (see HttpHandler). Written by the next Serve().
  // False if the exchange is unknown: its connection closed, or answered.
  bool Respond(HttpExchangeId id, const http::HttpReply& reply);

  // Stops accepting connections and reading requests; requests already
  // handed over are still answered and written. Idempotent.
  void StopReading();
  // True when nothing is left to write or wait for (after StopReading(),
  // the caller may stop calling Serve()).
  bool Idle() const;

  HttpServerStats Stats() const;
  // Bytes of answers not yet written, over every connection.
  size_t UnsentBytes() const;
  // Whether an answer of about `bytes` may be queued: false (and counted)
  // if it would take the answers not yet written past
  // max_unsent_total_bytes. The handler asks before building a large
  // answer, and answers `overloaded` instead on false.
  bool MayQueueLargeAnswer(size_t bytes);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace todo::router
