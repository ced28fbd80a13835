#include "router/http_frontend.h"

#include <spdlog/spdlog.h>

#include <msgpack.hpp>
#include <nlohmann/json.hpp>
#include <unordered_map>
#include <vector>
#include <zmq.hpp>

#include "common/protocol.h"
#include "router/http_query.h"

namespace todo::router {
namespace {

using Clock = std::chrono::steady_clock;
using http::HttpReply;
using http::OwnedRequest;

constexpr std::string_view kPrometheusType = "text/plain; version=0.0.4; charset=utf-8";
// Initial size of an encoded request (msgpack's default buffer is 8 KiB).
constexpr size_t kRequestBufferBytes = 256;
// A node's reply this large or larger is checked against the HTTP server's
// budget of answers not yet written (MayQueueLargeAnswer) before its answer
// is built.
constexpr size_t kLargeReplyBytes = 16 * 1024;

bool IsBookPath(std::string_view path) { return path == "/entries" || path == "/add_entry"; }

// The HTTP server's own counters as Prometheus text (appended to the
// router's on /metrics).
std::string ServerStatsText(const HttpServerStats& st) {
  std::string out;
  auto family = [&](std::string_view name, std::string_view type, std::string_view help) {
    out.append("# HELP ").append(name).append(" ").append(help).append("\n");
    out.append("# TYPE ").append(name).append(" ").append(type).append("\n");
  };
  auto sample = [&](std::string_view name, std::string_view labels, uint64_t v) {
    out.append(name).append(labels).append(" ").append(std::to_string(v)).append("\n");
  };
  family("todo_http_connections", "gauge", "Open HTTP connections.");
  sample("todo_http_connections", "", st.connections_open);
  family("todo_http_connections_accepted_total", "counter", "HTTP connections accepted.");
  sample("todo_http_connections_accepted_total", "", st.connections_accepted);
  family("todo_http_connections_refused_total", "counter",
         "HTTP connections refused (past --http-max-connections, or accept failed).");
  sample("todo_http_connections_refused_total", "", st.connections_refused);
  family("todo_http_deadline_closes_total", "counter",
         "HTTP connections closed by a deadline, by deadline.");
  sample("todo_http_deadline_closes_total", "{deadline=\"header\"}", st.header_timeouts);
  sample("todo_http_deadline_closes_total", "{deadline=\"body\"}", st.body_timeouts);
  sample("todo_http_deadline_closes_total", "{deadline=\"idle\"}", st.idle_timeouts);
  sample("todo_http_deadline_closes_total", "{deadline=\"send\"}", st.send_timeouts);
  family("todo_http_rejected_total", "counter",
         "HTTP requests the server answered itself: malformed (400), too large (413, 431), "
         "overloaded (429), large answers past --http-max-unsent-mb (429).");
  sample("todo_http_rejected_total", "{reason=\"malformed\"}", st.bad_requests);
  sample("todo_http_rejected_total", "{reason=\"too_large\"}", st.too_large);
  sample("todo_http_rejected_total", "{reason=\"overloaded\"}", st.overloaded);
  sample("todo_http_rejected_total", "{reason=\"unsent_budget\"}", st.large_refused);
  family("todo_http_awaiting", "gauge", "HTTP requests awaiting their answers.");
  sample("todo_http_awaiting", "", st.awaiting);
  family("todo_http_unsent_bytes", "gauge",
         "Bytes of HTTP answers not yet written to their clients (bounded by "
         "--http-max-unsent-mb for large answers).");
  sample("todo_http_unsent_bytes", "", st.unsent_bytes);
  return out;
}

}  // namespace

struct HttpFrontend::Impl {
  // How a protocol reply becomes the HTTP answer. (A member, not in the
  // anonymous namespace: Pending's field of this type would give Impl
  // internal linkage, which GCC warns of in a unity build.)
  enum class ReplyKind : uint8_t { kBookEntries, kBookAddEntry, kJsonResult, kCreated, kCallback };

  // A forwarded request awaiting the router's reply.
  struct Pending {
    uint32_t gen = 0;  // 0: free
    HttpExchangeId exchange = 0;
    HttpRoute route = HttpRoute::kOther;
    ReplyKind kind = ReplyKind::kJsonResult;
    OwnedRequest request;  // kept for kCreated's answer
    Clock::time_point start;
    ReplyCallback callback;  // kCallback
  };
  struct Local {
    HttpRoute route;
    LocalHandler handler;  // or
    AsyncHandler async_handler;
  };

  HttpServer server;
  Router* router;
  RouterMetrics* metrics;
  std::unordered_map<std::string, Local> local;
  std::vector<Pending> pending;
  std::vector<uint32_t> free_pending;
  uint32_t next_gen = 1;
  msgpack::sbuffer encode_buffer{kRequestBufferBytes};  // Forward()'s, reused

  Impl(HttpServerOptions o, HttpHandler* handler, Router* r, RouterMetrics* m)
      : server(o, handler), router(r), metrics(m) {}

  void Answer(HttpExchangeId id, HttpRoute route, const HttpReply& reply,
              std::optional<Clock::time_point> start) {
    server.Respond(id, reply);
    std::optional<double> latency;
    if (start) latency = std::chrono::duration<double>(Clock::now() - *start).count();
    metrics->http().Record(route, reply.status, latency);
  }

  // Hands `request` to the router; its reply is answered by OnReply(), or
  // given to `callback` (kCallback).
  void Forward(HttpExchangeId id, HttpRoute route, ReplyKind kind, OwnedRequest request,
               Clock::time_point start, ReplyCallback callback = nullptr) {
    uint32_t index;
    if (!free_pending.empty()) {
      index = free_pending.back();
      free_pending.pop_back();
    } else {
      index = static_cast<uint32_t>(pending.size());
      pending.emplace_back();
    }
    Pending& p = pending[index];
    p.gen = next_gen++;
    if (p.gen == 0) p.gen = next_gen++;
    p.exchange = id;
    p.route = route;
    p.kind = kind;
    p.request = std::move(request);
    p.start = start;
    p.callback = std::move(callback);
    const uint64_t token = (uint64_t{index} << 32) | p.gen;
    // Encoded into one reused buffer, then copied (a few dozen bytes) into a
    // message ZeroMQ allocates in one piece: a buffer of our own per request
    // cost a malloc for it and another for ZeroMQ's hold on it, both freed
    // on ZeroMQ's I/O thread.
    encode_buffer.clear();
    protocol::EncodeRequest(encode_buffer, p.request.View(protocol::RequestId::Uint(token)));
    router->Submit(token, zmq::message_t(encode_buffer.data(), encode_buffer.size()));
    // (Submit may have called OnReply() at once.)
  }

  void OnReply(uint64_t token, std::string_view body) {
    uint32_t index = static_cast<uint32_t>(token >> 32);
    if (index >= pending.size() || pending[index].gen != static_cast<uint32_t>(token)) {
      spdlog::error("HTTP: a reply for unknown token {} dropped", token);
      return;
    }
    Pending& p = pending[index];
    // A large answer (a big list's entries) past the budget of answers not
    // yet written is answered `overloaded` instead: clients that never
    // read their answers can't grow the router past it together (each
    // connection alone is bounded by the server). Checked on the node's
    // reply, before the answer is built from it (the operator's list
    // look-up too: it shows the refusal as the entries' error).
    msgpack::sbuffer refusal(0);  // allocates only if written (the default takes 8 KiB)
    if (body.size() >= kLargeReplyBytes && !server.MayQueueLargeAnswer(body.size())) {
      protocol::EncodeError(refusal, protocol::RequestId::Uint(token), ErrorCode::kOverloaded,
                            "the router holds " + std::to_string(server.UnsentBytes() >> 20) +
                                " MiB of HTTP answers its clients have not read yet "
                                "(--http-max-unsent-mb); retry later");
      body = std::string_view(refusal.data(), refusal.size());
    }
    if (p.kind == ReplyKind::kCallback) {
      ReplyCallback done = std::move(p.callback);
      p.gen = 0;
      p.callback = nullptr;
      p.request = OwnedRequest();
      free_pending.push_back(index);
      done(body);
      return;
    }
    HttpReply reply;
    switch (p.kind) {
      case ReplyKind::kBookEntries:
        reply = http::BookEntriesReply(body);
        break;
      case ReplyKind::kBookAddEntry:
        reply = http::BookAddEntryReply(body);
        break;
      case ReplyKind::kJsonResult:
        reply = http::JsonResultReply(body);
        break;
      case ReplyKind::kCreated:
        reply = http::CreatedReply(body, p.request);
        break;
      case ReplyKind::kCallback:
        break;  // handled above
    }
    p.gen = 0;
    p.request = OwnedRequest();
    free_pending.push_back(index);
    Answer(p.exchange, p.route, reply, p.start);
  }

  // Maps and forwards, or answers the mapping's error with `on_error`.
  template <typename OnError>
  void Serve(HttpExchangeId id, HttpRoute route, ReplyKind kind, StatusOr<OwnedRequest> request,
             OnError on_error, Clock::time_point start) {
    if (!request.ok()) return Answer(id, route, on_error(request.status()), start);
    Forward(id, route, kind, std::move(request).value(), start);
  }

  void ServeJson(HttpExchangeId id, HttpRoute route, ReplyKind kind, StatusOr<OwnedRequest> request,
                 Clock::time_point start) {
    Serve(
        id, route, kind, std::move(request), [](const Status& s) { return http::JsonError(s); },
        start);
  }

  static http::HeaderValues IdempotencyKey(const HttpRequest& req) {
    return req.headers(http::kIdempotencyKeyHeader);
  }

  void HandleLists(HttpExchangeId id, const HttpRequest& req, Clock::time_point start) {
    auto path = http::ParseListPath(req.target());
    if (!path.ok()) return Answer(id, HttpRoute::kOther, http::JsonError(path.status()), start);
    using Kind = http::ListPath::Kind;
    const std::string_view m = req.method();
    switch (path->kind) {
      case Kind::kEntries:
        if (m == "GET" || m == "HEAD") {
          return ServeJson(id, HttpRoute::kListEntries, ReplyKind::kJsonResult,
                           http::MapListEntriesFromTarget(*path, req.target()), start);
        }
        if (m == "POST") {
          return ServeJson(id, HttpRoute::kCreateEntry, ReplyKind::kCreated,
                           http::MapCreateEntry(*path, req.body(), IdempotencyKey(req)), start);
        }
        return Answer(id, HttpRoute::kOther, http::MethodNotAllowed(m, "GET, HEAD, POST"), start);
      case Kind::kEntry:
        if (m == "PATCH") {
          return ServeJson(id, HttpRoute::kUpdateEntry, ReplyKind::kJsonResult,
                           http::MapUpdateEntry(*path, req.body(), IdempotencyKey(req)), start);
        }
        if (m == "DELETE") {
          return ServeJson(id, HttpRoute::kDeleteEntry, ReplyKind::kJsonResult,
                           http::MapDeleteEntry(*path, IdempotencyKey(req)), start);
        }
        return Answer(id, HttpRoute::kOther, http::MethodNotAllowed(m, "PATCH, DELETE"), start);
      case Kind::kOwner:
        if (m == "GET" || m == "HEAD") {
          return ServeJson(id, HttpRoute::kOwner, ReplyKind::kJsonResult, http::MapOwner(*path),
                           start);
        }
        return Answer(id, HttpRoute::kOther, http::MethodNotAllowed(m, "GET, HEAD"), start);
    }
  }

  // The book's endpoints answer errors in plain text, as the book does.
  static HttpReply BookMethodNotAllowed(std::string_view method, std::string_view allow) {
    HttpReply r{405,
                std::string(http::kTextPlain),
                "method " + std::string(method) +
                    " not allowed here; allowed: " + std::string(allow) + "\n",
                {}};
    r.headers.emplace_back("Allow", std::string(allow));
    return r;
  }

  void OnRequest(HttpExchangeId id, const HttpRequest& req) {
    const Clock::time_point start = Clock::now();
    const std::string path = http::TargetPath(req.target());
    const std::string_view m = req.method();
    const bool get = m == "GET" || m == "HEAD";
    if (auto it = local.find(path); it != local.end()) {
      if (!get) {
        return Answer(id, HttpRoute::kOther, http::MethodNotAllowed(m, "GET, HEAD"), start);
      }
      const HttpRoute route = it->second.route;
      if (it->second.async_handler) {
        return it->second.async_handler(req, [this, id, route, start](const HttpReply& reply) {
          Answer(id, route, reply, start);
        });
      }
      return Answer(id, route, it->second.handler(req), start);
    }
    if (path == "/entries") {
      if (!get) return Answer(id, HttpRoute::kOther, BookMethodNotAllowed(m, "GET, HEAD"), start);
      return Serve(id, HttpRoute::kBookEntries, ReplyKind::kBookEntries,
                   http::MapBookEntriesFromTarget(req.target()), http::BookError, start);
    }
    if (path == "/add_entry") {
      if (m != "POST") return Answer(id, HttpRoute::kOther, BookMethodNotAllowed(m, "POST"), start);
      return Serve(id, HttpRoute::kBookAddEntry, ReplyKind::kBookAddEntry,
                   http::MapBookAddEntryFromTarget(req.target(), IdempotencyKey(req)),
                   http::BookError, start);
    }
    if (path.starts_with("/lists/")) return HandleLists(id, req, start);
    Answer(id, HttpRoute::kOther, http::JsonError(404, "not_found", "no such resource: " + path),
           start);
  }

  HttpReply Health() {
    if (!router->serving()) {
      return http::JsonError(503, "unavailable", "router is not serving: router is stopping");
    }
    nlohmann::ordered_json nodes = nlohmann::ordered_json::object();
    for (const auto& [name, state] : metrics->NodeStates()) nodes[name] = NodeStateName(state);
    nlohmann::ordered_json body = {
        {"status", "serving"}, {"role", "router"}, {"name", router->name()}, {"nodes", nodes}};
    return HttpReply{200, std::string(http::kJson), body.dump() + "\n", {}};
  }
};

HttpFrontend::HttpFrontend(HttpServerOptions options, Router* router, RouterMetrics* metrics)
    : impl_(std::make_unique<Impl>(std::move(options), static_cast<HttpHandler*>(this), router,
                                   metrics)) {
  AddLocalRoute("/health", HttpRoute::kHealth,
                [this](const HttpRequest&) { return impl_->Health(); });
  AddLocalRoute("/metrics", HttpRoute::kMetrics, [this](const HttpRequest&) {
    return HttpReply{200,
                     std::string(kPrometheusType),
                     impl_->metrics->PrometheusText() + ServerStatsText(impl_->server.Stats()),
                     {}};
  });
}

HttpFrontend::~HttpFrontend() = default;

Status HttpFrontend::Start() { return impl_->server.Start(); }
int HttpFrontend::port() const { return impl_->server.port(); }

void HttpFrontend::AddLocalRoute(std::string path, HttpRoute route, LocalHandler handler) {
  impl_->local[std::move(path)] = Impl::Local{route, std::move(handler), nullptr};
}

void HttpFrontend::AddAsyncRoute(std::string path, HttpRoute route, AsyncHandler handler) {
  impl_->local[std::move(path)] = Impl::Local{route, nullptr, std::move(handler)};
}

void HttpFrontend::SubmitRequest(const http::OwnedRequest& request, ReplyCallback done) {
  impl_->Forward(0, HttpRoute::kOther, Impl::ReplyKind::kCallback, request, Clock::now(),
                 std::move(done));
}

HttpServerStats HttpFrontend::ServerStats() const { return impl_->server.Stats(); }

int HttpFrontend::poll_fd() const { return impl_->server.fd(); }
void HttpFrontend::Serve(bool ready) { impl_->server.Serve(ready); }
void HttpFrontend::OnReply(uint64_t token, std::string_view reply_body) {
  impl_->OnReply(token, reply_body);
}
void HttpFrontend::StopReading() { impl_->server.StopReading(); }
bool HttpFrontend::Idle() const { return impl_->server.Idle(); }

void HttpFrontend::OnRequest(HttpExchangeId id, const HttpRequest& request) {
  impl_->OnRequest(id, request);
}

bool HttpFrontend::AnswersAtOnce(std::string_view target) const {
  auto it = impl_->local.find(http::TargetPath(target));
  return it != impl_->local.end() && it->second.handler != nullptr;
}

HttpReply HttpFrontend::ErrorReply(std::string_view target, int status, std::string_view code,
                                   const std::string& message) {
  const std::string path = http::TargetPath(target);
  HttpReply r = IsBookPath(path)
                    ? HttpReply{status, std::string(http::kTextPlain), message + "\n", {}}
                    : http::JsonError(status, code, message);
  if (status == 429 && IsBookPath(path)) r.headers.emplace_back("Retry-After", "1");
  impl_->metrics->http().Record(HttpRoute::kOther, status, std::nullopt);
  return r;
}

}  // namespace todo::router
