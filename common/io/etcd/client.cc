#include "common/io/etcd/client.h"

#include <httplib.h>

#include <algorithm>
#include <charconv>
#include <optional>
#include <set>
#include <thread>

#include "common/io/etcd/codec.h"

namespace todo::io {
namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

// gRPC codes that etcd's gateway reports.
constexpr int kGrpcInvalidArgument = 3;
constexpr int kGrpcDeadlineExceeded = 4;
constexpr int kGrpcNotFound = 5;
constexpr int kGrpcPermissionDenied = 7;
constexpr int kGrpcResourceExhausted = 8;
constexpr int kGrpcFailedPrecondition = 9;
constexpr int kGrpcOutOfRange = 11;
constexpr int kGrpcUnavailable = 14;
constexpr int kGrpcUnauthenticated = 16;

// Pause between rounds over every endpoint, doubling up to the maximum.
constexpr auto kFirstBackoff = std::chrono::milliseconds(50);
constexpr auto kMaxBackoff = std::chrono::milliseconds(500);

long long Ms(Clock::duration d) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
}

// An etcd error that says the request was refused before anything was
// proposed to raft, so nothing can have been applied.
bool RefusedBeforeApplying(const std::string& message) {
  return message.find("no leader") != std::string::npos ||
         message.find("too many requests") != std::string::npos;
}

ErrorCode CodeOfGrpc(int code) {
  switch (code) {
    case kGrpcNotFound:
      return ErrorCode::kNotFound;
    case kGrpcInvalidArgument:
    case kGrpcFailedPrecondition:
    case kGrpcOutOfRange:
    case kGrpcPermissionDenied:
    case kGrpcUnauthenticated:
      return ErrorCode::kBadRequest;
    case kGrpcDeadlineExceeded:
      return ErrorCode::kTimeout;
    case kGrpcResourceExhausted:
      return ErrorCode::kOverloaded;
    case kGrpcUnavailable:
      return ErrorCode::kUnavailable;
    default:
      return ErrorCode::kInternal;
  }
}

}  // namespace

StatusOr<EtcdEndpoint> ParseEtcdEndpoint(std::string_view url) {
  const std::string given(url);
  auto bad = [&](const std::string& why) {
    return Status::BadRequest("etcd endpoint " + codec::Printable(given) + ": " + why);
  };
  std::string_view rest = url;
  if (rest.substr(0, 8) == "https://") return bad("https is not supported (use http://)");
  if (rest.substr(0, 7) == "http://") rest.remove_prefix(7);
  if (rest.find("://") != std::string_view::npos) return bad("only http:// URLs");
  if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  if (rest.find('/') != std::string_view::npos) return bad("a path is not allowed");
  size_t colon = rest.rfind(':');
  if (colon == std::string_view::npos) return bad("no port (want http://HOST:PORT)");
  std::string_view host = rest.substr(0, colon), port = rest.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  } else if (host.find(':') != std::string_view::npos) {
    return bad("an IPv6 address needs brackets ([::1]:2379)");
  }
  if (host.empty()) return bad("no host");
  int p = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
  if (ec != std::errc() || end != port.data() + port.size() || p < 1 || p > 65535) {
    return bad("port must be 1-65535");
  }
  EtcdEndpoint e;
  e.host = std::string(host);
  e.port = p;
  e.url = "http://" + std::string(rest);
  return e;
}

StatusOr<std::vector<std::string>> ParseEtcdEndpointList(std::string_view list) {
  std::vector<std::string> out;
  std::set<std::string> seen;
  while (true) {
    size_t comma = list.find(',');
    std::string_view one = list.substr(0, comma);
    auto e = ParseEtcdEndpoint(one);
    if (!e.ok()) return e.status();
    if (!seen.insert(e->url).second)
      return Status::BadRequest("etcd endpoint " + e->url + " given twice");
    out.push_back(e->url);
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return out;
}

Status EtcdClient::Options::Validate() const {
  if (attempt_timeout.count() <= 0 || call_timeout.count() <= 0) {
    return Status::BadRequest("etcd timeouts must be positive");
  }
  if (attempt_timeout > call_timeout) {
    return Status::BadRequest("etcd attempt_timeout must not exceed call_timeout");
  }
  if (max_response_bytes == 0) return Status::BadRequest("etcd max_response_bytes must be > 0");
  return Status::Ok();
}

// Idle connections to one endpoint.
struct EtcdClient::Pool {
  std::mutex mu;
  std::vector<std::unique_ptr<httplib::Client>> idle;  // guarded by mu
};

// How one try ended.
struct EtcdClient::Attempt {
  enum class Outcome {
    kAnswer,      // 200 with a JSON body
    kEtcdError,   // etcd answered with an error that stands (not found...)
    kNotApplied,  // nothing can have been applied: try elsewhere
    kUnknown,     // sent, then no usable answer: may have been applied
  };
  Outcome outcome = Outcome::kUnknown;
  json body;
  Status error;  // unless kAnswer; message without the endpoint
  bool timed_out = false;
};

EtcdClient::EtcdClient(std::vector<EtcdEndpoint> endpoints, Options options)
    : endpoints_(std::move(endpoints)), options_(options) {
  for (size_t i = 0; i < endpoints_.size(); ++i) pools_.push_back(std::make_unique<Pool>());
}

EtcdClient::~EtcdClient() = default;

StatusOr<std::unique_ptr<EtcdClient>> EtcdClient::Create(std::vector<std::string> endpoints,
                                                         Options options) {
  if (Status s = options.Validate(); !s.ok()) return s;
  if (endpoints.empty()) return Status::BadRequest("no etcd endpoint given");
  std::vector<EtcdEndpoint> parsed;
  std::set<std::string> seen;
  for (const std::string& url : endpoints) {
    auto e = ParseEtcdEndpoint(url);
    if (!e.ok()) return e.status();
    if (!seen.insert(e->url).second) {
      return Status::BadRequest("etcd endpoint " + e->url + " given twice");
    }
    parsed.push_back(*e);
  }
  return std::unique_ptr<EtcdClient>(new EtcdClient(std::move(parsed), options));
}

std::unique_ptr<httplib::Client> EtcdClient::TakeConnection(const EtcdEndpoint& ep, Pool& pool) {
  {
    std::lock_guard<std::mutex> lock(pool.mu);
    if (!pool.idle.empty()) {
      auto c = std::move(pool.idle.back());
      pool.idle.pop_back();
      return c;
    }
  }
  auto c = std::make_unique<httplib::Client>(ep.host, ep.port);
  c->set_keep_alive(true);
  c->set_tcp_nodelay(true);
  return c;
}

void EtcdClient::ReturnConnection(Pool& pool, std::unique_ptr<httplib::Client> c) {
  std::lock_guard<std::mutex> lock(pool.mu);
  if (pool.idle.size() < options_.max_idle_connections) pool.idle.push_back(std::move(c));
}

EtcdClient::Attempt EtcdClient::TryOnce(const EtcdEndpoint& ep, Pool& pool,
                                        const std::string& method, std::string_view path,
                                        const std::string& body, Clock::time_point deadline) {
  Attempt a;
  const auto start = Clock::now();
  auto budget = std::max<Clock::duration>(deadline - start, std::chrono::milliseconds(1));
  auto conn = TakeConnection(ep, pool);
  conn->set_connection_timeout(budget);
  conn->set_read_timeout(budget);
  conn->set_write_timeout(budget);

  httplib::Request req;
  req.method = method;
  req.path = std::string(path);
  if (method == "POST") {
    req.body = body;
    req.set_header("Content-Type", "application/json");
  }
  int status = -1;
  bool has_trailer = false;
  req.response_handler = [&](const httplib::Response& r) {
    status = r.status;
    has_trailer = r.has_header("Trailer");
    return true;
  };
  std::string answer;
  bool too_big = false, too_late = false;
  req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
    if (answer.size() + n > options_.max_response_bytes) {
      too_big = true;
      return false;
    }
    if (Clock::now() > deadline) {
      too_late = true;
      return false;
    }
    answer.append(data, n);
    return true;
  };
  httplib::Response res;
  httplib::Error err = httplib::Error::Success;
  bool sent = conn->send(req, res, err);

  json parsed = json::parse(answer, nullptr, /*allow_exceptions=*/false);
  if (!sent) {
    // httplib 0.11 fails a chunked body followed by trailers, which the
    // gateway sends with every error answer (Grpc-Trailer-*); by then the
    // whole body has reached the receiver.
    bool trailer_quirk = err == httplib::Error::Read && status > 0 && has_trailer && !too_big &&
                         !too_late && !parsed.is_discarded();
    if (!trailer_quirk) {
      if (too_big) {
        a.error = Status::Internal("answer larger than " +
                                   std::to_string(options_.max_response_bytes) + " bytes");
      } else if (err == httplib::Error::Connection || err == httplib::Error::ConnectionTimeout ||
                 err == httplib::Error::BindIPAddress || err == httplib::Error::Write) {
        a.outcome = Attempt::Outcome::kNotApplied;
        a.timed_out = Clock::now() >= deadline;
        a.error =
            Status(ErrorCode::kUnavailable,
                   (a.timed_out ? "could not connect within " + std::to_string(Ms(budget)) + " ms"
                                : "could not connect or send (" + httplib::to_string(err) + ")"));
      } else {
        // httplib's own timeout may fire a hair before ours.
        a.timed_out = too_late || Clock::now() + std::chrono::milliseconds(5) >= deadline;
        a.error = Status(
            a.timed_out ? ErrorCode::kTimeout : ErrorCode::kUnavailable,
            a.timed_out ? "no answer within " + std::to_string(Ms(budget)) + " ms"
                        : "connection lost before the answer (" + httplib::to_string(err) + ")");
      }
      return a;
    }
  } else if (conn->is_socket_open()) {
    ReturnConnection(pool, std::move(conn));
  }

  if (status == 200) {
    if (parsed.is_discarded()) {
      a.error = Status::Internal("malformed answer: not JSON (" + std::to_string(answer.size()) +
                                 " bytes, starting " + codec::Printable(answer) + ")");
      return a;  // kUnknown: a 200 may have applied it
    }
    a.outcome = Attempt::Outcome::kAnswer;
    a.body = std::move(parsed);
    return a;
  }
  auto grpc = parsed.is_discarded() ? std::nullopt : codec::DecodeGatewayError(parsed);
  if (!grpc) {
    // Not the gateway's error format: not etcd, or a proxy in front of it.
    a.outcome = status >= 500 ? Attempt::Outcome::kUnknown : Attempt::Outcome::kNotApplied;
    a.error = Status(ErrorCode::kUnavailable, "HTTP " + std::to_string(status) +
                                                  " without an etcd error (not etcd's gateway?)");
    return a;
  }
  a.error = Status(CodeOfGrpc(grpc->code), grpc->message);
  if (grpc->code == kGrpcUnavailable || grpc->code == kGrpcResourceExhausted) {
    a.outcome = RefusedBeforeApplying(grpc->message) ? Attempt::Outcome::kNotApplied
                                                     : Attempt::Outcome::kUnknown;
  } else {
    a.outcome = Attempt::Outcome::kEtcdError;
  }
  return a;
}

StatusOr<json> EtcdClient::Call(std::string_view path, const std::string& body, Retry retry,
                                std::string_view what) {
  const auto deadline = Clock::now() + options_.call_timeout;
  const size_t n = endpoints_.size();
  const size_t first = preferred_.load(std::memory_order_relaxed) % n;
  std::vector<std::string> last_error(n);
  // The code of the failures if they all had the same, else unavailable.
  std::optional<ErrorCode> code;
  auto backoff = std::chrono::duration_cast<Clock::duration>(kFirstBackoff);
  auto failure = [&](ErrorCode final_code, const std::string& why) {
    std::string m = "etcd " + std::string(what) + ": " + why;
    for (size_t i = 0; i < n; ++i) {
      if (!last_error[i].empty()) m += "; " + endpoints_[i].url + ": " + last_error[i];
    }
    return Status(final_code, m);
  };
  while (true) {
    for (size_t k = 0; k < n; ++k) {
      const size_t i = (first + k) % n;
      auto now = Clock::now();
      if (now >= deadline) break;
      Attempt a = TryOnce(endpoints_[i], *pools_[i], "POST", path, body,
                          std::min(deadline, now + options_.attempt_timeout));
      if (a.outcome == Attempt::Outcome::kAnswer || a.outcome == Attempt::Outcome::kEtcdError) {
        preferred_.store(i, std::memory_order_relaxed);
        if (a.outcome == Attempt::Outcome::kAnswer) return std::move(a.body);
        return Status(a.error.code(), "etcd " + std::string(what) + " at " + endpoints_[i].url +
                                          ": " + a.error.message());
      }
      last_error[i] = a.error.message();
      const ErrorCode c = a.timed_out ? ErrorCode::kTimeout : a.error.code();
      code = !code || *code == c ? c : ErrorCode::kUnavailable;
      if (a.outcome == Attempt::Outcome::kUnknown && retry == Retry::kIfNotApplied) {
        return failure(ErrorCode::kTimeout, "outcome unknown (sent, then no usable answer)");
      }
    }
    if (Clock::now() + backoff >= deadline) break;
    std::this_thread::sleep_for(backoff);
    backoff = std::min<Clock::duration>(backoff * 2, kMaxBackoff);
  }
  return failure(
      code.value_or(ErrorCode::kTimeout),
      "no endpoint answered (tried for " + std::to_string(options_.call_timeout.count()) + " ms)");
}

StatusOr<json> EtcdClient::CallOne(std::string_view endpoint, const std::string& method,
                                   std::string_view path, const std::string& body,
                                   std::string_view what) {
  auto ep = ParseEtcdEndpoint(endpoint);
  if (!ep.ok()) return ep.status();
  Pool scratch;
  Pool* pool = &scratch;
  for (size_t i = 0; i < endpoints_.size(); ++i) {
    if (endpoints_[i].url == ep->url) pool = pools_[i].get();
  }
  Attempt a = TryOnce(*ep, *pool, method, path, body, Clock::now() + options_.attempt_timeout);
  if (a.outcome == Attempt::Outcome::kAnswer) return std::move(a.body);
  return Status(a.error.code(),
                "etcd " + std::string(what) + " at " + ep->url + ": " + a.error.message());
}

}  // namespace todo::io
