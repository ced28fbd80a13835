#include "router/http_frontend.h"

#include <httplib.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <cstring>
#include <msgpack.hpp>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/io/listen.h"
#include "router/http_mapping.h"

namespace todo::router {
namespace {

using Clock = std::chrono::steady_clock;
using http::HttpReply;
using http::OwnedRequest;

// The accept backlog (the packaged httplib listens with a backlog of 5).
constexpr int kListenBacklog = 1024;
// Requests per keep-alive connection before the server closes it (so that
// connections waiting for a free worker get a turn; clients reconnect), and
// how long an idle connection is kept.
constexpr size_t kKeepAliveMaxRequests = 100;
constexpr time_t kKeepAliveSeconds = 5;
// /health waits for the router's ping reply at most this long.
constexpr std::chrono::milliseconds kHealthDeadline{1000};
constexpr std::string_view kPrometheusType = "text/plain; version=0.0.4; charset=utf-8";

// httplib::Server, with access to its listening socket.
class Server : public httplib::Server {
 public:
  int listen_socket() const { return svr_sock_; }
};

// Per worker thread: its DEALER to the router, and the request being timed.
struct WorkerState {
  const void* owner = nullptr;  // the Impl that made `socket`
  std::unique_ptr<zmq::socket_t> socket;
  uint64_t next_id = 0;
  Clock::time_point start;
  bool timed = false;
  HttpRoute route = HttpRoute::kOther;
};
thread_local WorkerState tl_worker;

// The uint id of a reply as the router's and nodes' encoders write it
// ({"id": N, ...} first), without decoding the rest; nullopt otherwise.
std::optional<uint64_t> PeekUintId(std::string_view body) {
  const auto* p = reinterpret_cast<const unsigned char*>(body.data());
  if (body.size() < 5 || p[0] != 0x83 || p[1] != 0xa2 || p[2] != 'i' || p[3] != 'd') {
    return std::nullopt;
  }
  size_t n = 0;
  if (p[4] <= 0x7f) return p[4];
  if (p[4] >= 0xcc && p[4] <= 0xcf) n = size_t{1} << (p[4] - 0xcc);
  if (n == 0 || body.size() < 5 + n) return std::nullopt;
  uint64_t v = 0;
  for (size_t i = 0; i < n; ++i) v = (v << 8) | p[5 + i];
  return v;
}

void Respond(httplib::Response& res, const HttpReply& r) {
  res.status = r.status;
  for (const auto& [k, v] : r.headers) res.set_header(k, v);
  res.set_content(r.body, r.content_type);
}

bool IsBookPath(const std::string& path) { return path == "/entries" || path == "/add_entry"; }

}  // namespace

struct HttpFrontend::Impl {
  HttpFrontendOptions options;
  zmq::context_t* ctx;
  RouterMetrics* metrics;
  Server server;
  std::thread listen_thread;
  int port = 0;
  bool stopped = false;

  Impl(HttpFrontendOptions o, zmq::context_t* c, RouterMetrics* m)
      : options(std::move(o)), ctx(c), metrics(m) {}

  // Sends `r` to the router through this thread's DEALER; the reply body,
  // or overloaded / timeout / internal.
  StatusOr<std::string> Call(const OwnedRequest& r, std::chrono::milliseconds deadline) {
    WorkerState& w = tl_worker;
    try {
      if (w.owner != this || !w.socket) {
        w.socket = std::make_unique<zmq::socket_t>(*ctx, zmq::socket_type::dealer);
        w.socket->set(zmq::sockopt::linger, 0);
        w.socket->connect(options.router_endpoint);
        w.owner = this;
      }
      const uint64_t id = ++w.next_id;
      msgpack::sbuffer buf(256);
      protocol::EncodeRequest(buf, r.View(protocol::RequestId::Uint(id)));
      zmq::message_t msg(buf.data(), buf.size());
      if (!w.socket->send(msg, zmq::send_flags::dontwait)) {
        return Status::Overloaded("the router's request queue is full; retry later");
      }
      const Clock::time_point end = Clock::now() + deadline;
      for (;;) {
        auto left = std::chrono::ceil<std::chrono::milliseconds>(end - Clock::now());
        if (left.count() <= 0) {
          return Status(ErrorCode::kTimeout, "no reply from the router within " +
                                                 std::to_string(deadline.count()) + " ms");
        }
        zmq::pollitem_t item{static_cast<void*>(*w.socket), 0, ZMQ_POLLIN, 0};
        zmq::poll(&item, 1, left);
        zmq::message_t reply;
        while (w.socket->recv(reply, zmq::recv_flags::dontwait)) {
          bool more = reply.more();
          std::string_view body(static_cast<const char*>(reply.data()), reply.size());
          if (!more && PeekUintId(body) == id) return std::string(body);
          // Otherwise a late reply to a request this worker gave up on.
          while (more) {
            zmq::message_t part;
            (void)w.socket->recv(part);
            more = part.more();
          }
        }
      }
    } catch (const zmq::error_t& e) {
      w.socket.reset();  // a fresh socket next time
      return Status::Internal(std::string("talking to the router loop failed: ") + e.what());
    }
  }

  StatusOr<std::string> Call(const OwnedRequest& r) { return Call(r, options.reply_deadline); }

  // Maps, calls and answers one request; `to_reply` turns a reply body
  // into the HTTP answer, `on_error` a Status.
  template <typename ToReply, typename OnError>
  void Serve(httplib::Response& res, const StatusOr<OwnedRequest>& request, ToReply to_reply,
             OnError on_error) {
    if (!request.ok()) return Respond(res, on_error(request.status()));
    auto reply = Call(*request);
    if (!reply.ok()) return Respond(res, on_error(reply.status()));
    Respond(res, to_reply(*reply));
  }

  template <typename ToReply>
  void ServeJson(httplib::Response& res, const StatusOr<OwnedRequest>& request, ToReply to_reply) {
    Serve(res, request, to_reply, [](const Status& s) { return http::JsonError(s); });
  }

  void HandleLists(const httplib::Request& req, httplib::Response& res) {
    auto path = http::ParseListPath(req.target);
    if (!path.ok()) return Respond(res, http::JsonError(path.status()));
    using Kind = http::ListPath::Kind;
    const std::string& m = req.method;
    auto json_result = [](const std::string& body) { return http::JsonResultReply(body); };
    switch (path->kind) {
      case Kind::kEntries:
        if (m == "GET" || m == "HEAD") {
          tl_worker.route = HttpRoute::kListEntries;
          return ServeJson(res, http::MapListEntriesFromTarget(*path, req.target), json_result);
        }
        if (m == "POST") {
          tl_worker.route = HttpRoute::kCreateEntry;
          auto request = http::MapCreateEntry(*path, req.body);
          return ServeJson(res, request, [&](const std::string& body) {
            return http::CreatedReply(body, *request);
          });
        }
        return Respond(res, http::MethodNotAllowed(m, "GET, POST"));
      case Kind::kEntry:
        if (m == "PATCH") {
          tl_worker.route = HttpRoute::kUpdateEntry;
          return ServeJson(res, http::MapUpdateEntry(*path, req.body), json_result);
        }
        if (m == "DELETE") {
          tl_worker.route = HttpRoute::kDeleteEntry;
          return ServeJson(res, http::MapDeleteEntry(*path), json_result);
        }
        return Respond(res, http::MethodNotAllowed(m, "PATCH, DELETE"));
      case Kind::kOwner:
        if (m == "GET" || m == "HEAD") {
          tl_worker.route = HttpRoute::kOwner;
          return ServeJson(res, http::MapOwner(*path), json_result);
        }
        return Respond(res, http::MethodNotAllowed(m, "GET"));
    }
  }

  // A POST/PUT/PATCH without a body (see the pre-routing handler): routed
  // like the handlers below would be.
  void ServeBodyless(const httplib::Request& req, httplib::Response& res) {
    if (req.path == "/add_entry" && req.method == "POST") return ServeBookAddEntry(req, res);
    if (req.path.starts_with("/lists/")) return HandleLists(req, res);
    if (req.path == "/entries" || req.path == "/health" || req.path == "/metrics") {
      return Respond(res, http::MethodNotAllowed(req.method, "GET"));
    }
    Respond(res, http::JsonError(404, "not_found", "no such resource: " + req.path));
  }

  void ServeBookAddEntry(const httplib::Request& req, httplib::Response& res) {
    tl_worker.route = HttpRoute::kBookAddEntry;
    Serve(res, http::MapBookAddEntryFromTarget(req.target), http::BookAddEntryReply,
          http::BookError);
  }

  void HandleHealth(httplib::Response& res) {
    tl_worker.route = HttpRoute::kHealth;
    OwnedRequest ping;
    ping.op = protocol::Op::kPing;
    auto reply = metrics->serving()
                     ? Call(ping, std::min(kHealthDeadline, options.reply_deadline))
                     : StatusOr<std::string>(Status(ErrorCode::kUnavailable, "router is stopping"));
    auto decoded =
        reply.ok() ? http::DecodeReply(*reply) : StatusOr<http::DecodedReply>(reply.status());
    if (!decoded.ok() || !decoded->ok) {
      std::string why = decoded.ok() ? decoded->message : decoded.status().message();
      return Respond(res, http::JsonError(503, "unavailable", "router is not serving: " + why));
    }
    nlohmann::ordered_json nodes = nlohmann::ordered_json::object();
    for (const auto& [name, state] : metrics->NodeStates()) nodes[name] = NodeStateName(state);
    nlohmann::ordered_json body = {{"status", "serving"},
                                   {"role", "router"},
                                   {"name", decoded->result.value("name", "")},
                                   {"nodes", nodes}};
    res.set_content(body.dump() + "\n", std::string(http::kJson));
  }

  void Install() {
    server.new_task_queue = [n = options.threads] {
      return new httplib::ThreadPool(static_cast<size_t>(n));
    };
    server.set_keep_alive_max_count(kKeepAliveMaxRequests);
    server.set_keep_alive_timeout(kKeepAliveSeconds);
    server.set_tcp_nodelay(true);
    // No SO_REUSEPORT (httplib's default): a port another process serves
    // is refused, not shared.
    server.set_socket_options(io::SetExclusiveListenOptions);
    server.set_payload_max_length(options.max_body_bytes);

    server.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
      tl_worker.start = Clock::now();
      tl_worker.timed = true;
      tl_worker.route = HttpRoute::kOther;
      // httplib 0.11 reads the body of a POST/PUT/PATCH that has neither
      // Content-Length nor Transfer-Encoding until the connection closes
      // (so a keep-alive client waits for the read timeout, then gets 400).
      // HTTP/1.1 says such a request has an empty body: serve it here,
      // before httplib tries to read one.
      if ((req.method == "POST" || req.method == "PUT" || req.method == "PATCH") &&
          !req.has_header("Content-Length") && !req.has_header("Transfer-Encoding")) {
        ServeBodyless(req, res);
        return httplib::Server::HandlerResponse::Handled;
      }
      return httplib::Server::HandlerResponse::Unhandled;
    });
    server.set_logger([this](const httplib::Request&, const httplib::Response& res) {
      WorkerState& w = tl_worker;
      std::optional<double> latency;
      if (w.timed) latency = std::chrono::duration<double>(Clock::now() - w.start).count();
      metrics->http().Record(w.route, res.status, latency);
      w.timed = false;
      w.route = HttpRoute::kOther;
    });
    // Statuses httplib sets itself (404 no route, 413, 400 unparsable) get
    // a body in the style of the endpoint.
    server.set_error_handler(httplib::Server::HandlerWithResponse(
        [this](const httplib::Request& req, httplib::Response& res) {
          if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
          std::string message;
          std::string code = "http_error";
          if (res.status == 404) {
            code = "not_found";
            message = "no such resource: " + req.path;
          } else if (res.status == 413) {
            code = "payload_too_large";
            message =
                "request body is larger than " + std::to_string(options.max_body_bytes) + " bytes";
          } else if (res.status == 400) {
            code = "bad_request";
            message = "malformed HTTP request";
          } else {
            message = "HTTP status " + std::to_string(res.status);
          }
          HttpReply r =
              IsBookPath(req.path)
                  ? HttpReply{res.status, std::string(http::kTextPlain), message + "\n", {}}
                  : http::JsonError(res.status, code, message);
          res.set_content(r.body, r.content_type);
          return httplib::Server::HandlerResponse::Handled;
        }));
    server.set_exception_handler(
        [](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
          std::string what = "unknown exception";
          try {
            std::rethrow_exception(ep);
          } catch (const std::exception& e) {
            what = e.what();
          } catch (...) {
          }
          spdlog::error("HTTP handler failed: {}", what);
          Respond(res, http::JsonError(Status::Internal("HTTP handler failed: " + what)));
        });

    server.Get("/entries", [this](const httplib::Request& req, httplib::Response& res) {
      tl_worker.route = HttpRoute::kBookEntries;
      Serve(res, http::MapBookEntriesFromTarget(req.target), http::BookEntriesReply,
            http::BookError);
    });
    server.Post("/add_entry", [this](const httplib::Request& req, httplib::Response& res) {
      ServeBookAddEntry(req, res);
    });
    server.Get("/health",
               [this](const httplib::Request&, httplib::Response& res) { HandleHealth(res); });
    server.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
      tl_worker.route = HttpRoute::kMetrics;
      res.set_content(metrics->PrometheusText(), std::string(kPrometheusType));
    });
    // The path httplib matches is already percent-decoded ("%2F" is "/"),
    // so match anything under /lists/ and parse the raw target instead.
    const std::string lists = R"(/lists/[\s\S]*)";
    auto lists_handler = [this](const httplib::Request& req, httplib::Response& res) {
      HandleLists(req, res);
    };
    server.Get(lists, lists_handler);
    server.Post(lists, lists_handler);
    server.Put(lists, lists_handler);
    server.Patch(lists, lists_handler);
    server.Delete(lists, lists_handler);
  }
};

HttpFrontend::HttpFrontend(HttpFrontendOptions options, zmq::context_t* ctx, RouterMetrics* metrics)
    : impl_(std::make_unique<Impl>(std::move(options), ctx, metrics)) {}

HttpFrontend::~HttpFrontend() { Stop(); }

Status HttpFrontend::Start() {
  Impl& m = *impl_;
  m.Install();
  const auto& a = m.options.address;
  const std::string where = a.host + ":" + std::to_string(a.port);
  if (a.port == 0) {
    m.port = m.server.bind_to_any_port(a.host);
    if (m.port < 0) return Status::Internal("cannot bind HTTP on " + where);
  } else {
    if (!m.server.bind_to_port(a.host, a.port)) {
      return Status::Internal("cannot bind HTTP on " + where + ": " + std::strerror(errno));
    }
    m.port = a.port;
  }
  // Listening again on a listening socket only raises its backlog.
  ::listen(m.server.listen_socket(), kListenBacklog);
  m.listen_thread = std::thread([&m] { m.server.listen_after_bind(); });
  // Stop() can only stop a server that has started its accept loop.
  for (int i = 0; i < 5000 && !m.server.is_running(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return Status::Ok();
}

int HttpFrontend::port() const { return impl_->port; }

void HttpFrontend::Stop() {
  Impl& m = *impl_;
  if (m.stopped || !m.listen_thread.joinable()) return;
  m.stopped = true;
  m.server.stop();
  m.listen_thread.join();
}

}  // namespace todo::router
