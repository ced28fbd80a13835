#include "router/http_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <spdlog/spdlog.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <utility>
#include <vector>

namespace todo::router {
namespace {

namespace beast_http = boost::beast::http;
using Clock = std::chrono::steady_clock;
using TimePoint = Clock::time_point;
using Parser = beast_http::request_parser<beast_http::string_body>;

constexpr uint64_t kListenerTag = ~uint64_t{0};
constexpr int kListenBacklog = 4096;
constexpr int kMaxEvents = 256;
constexpr int kAcceptsPerServe = 256;
constexpr size_t kReadBytes = 64 * 1024;
// A buffer this large or larger is released when it empties (smaller ones
// are kept: a busy connection reuses them).
constexpr size_t kKeepBufferBytes = 4096;
constexpr std::chrono::seconds kRefusalLogEvery{10};
constexpr std::chrono::milliseconds kAcceptPause{100};

std::string_view Reason(int status) {
  switch (status) {
    case 100:
      return "Continue";
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 204:
      return "No Content";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 413:
      return "Payload Too Large";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    default:
      return "Unknown";
  }
}

void AppendNumber(std::string& out, uint64_t v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

// "Date: <IMF-fixdate>\r\n" (RFC 9110 6.6.1) for the current second,
// formatted once a second.
std::string_view DateHeader() {
  static thread_local time_t cached_at = 0;
  static thread_local char line[64];
  static thread_local size_t len = 0;
  const time_t now = ::time(nullptr);
  if (now != cached_at || len == 0) {
    cached_at = now;
    struct tm tm {};
    gmtime_r(&now, &tm);
    len = strftime(line, sizeof line, "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
  }
  return {line, len};
}

// Appends the whole answer (status line, headers, body unless `head`).
void Serialize(std::string& out, const http::HttpReply& r, bool head, bool close,
               bool http10_keep_alive) {
  out.append("HTTP/1.1 ");
  AppendNumber(out, static_cast<uint64_t>(r.status));
  out.push_back(' ');
  out.append(Reason(r.status));
  out.append("\r\n");
  out.append(DateHeader());
  if (!r.content_type.empty()) out.append("Content-Type: ").append(r.content_type).append("\r\n");
  for (const auto& [k, v] : r.headers) out.append(k).append(": ").append(v).append("\r\n");
  out.append("Content-Length: ");
  AppendNumber(out, r.body.size());
  out.append("\r\n");
  if (close) {
    out.append("Connection: close\r\n");
  } else if (http10_keep_alive) {
    out.append("Connection: keep-alive\r\n");
  }
  out.append("\r\n");
  if (!head) out.append(r.body);
}

bool IEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

// A request target in absolute form ("http://host:port/path?query", RFC
// 9112 3.2.2, which a server must accept) as its origin form
// ("/path?query"); any other target as it is.
std::string_view OriginForm(std::string_view t) {
  size_t scheme = 0;
  if (t.size() >= 7 && IEquals(t.substr(0, 7), "http://")) {
    scheme = 7;
  } else if (t.size() >= 8 && IEquals(t.substr(0, 8), "https://")) {
    scheme = 8;
  } else {
    return t;
  }
  const size_t path = t.find_first_of("/?", scheme);
  if (path == std::string_view::npos) return "/";
  return t.substr(path);  // "?query" alone (no path) finds no resource
}

void ReleaseIfEmpty(std::string& s) {
  if (s.empty() && s.capacity() >= kKeepBufferBytes) std::string().swap(s);
}

class BeastRequest final : public HttpRequest {
 public:
  explicit BeastRequest(const beast_http::request<beast_http::string_body>& m) : m_(m) {}
  std::string_view method() const override {
    auto s = m_.method_string();
    return {s.data(), s.size()};
  }
  std::string_view target() const override {
    auto s = m_.target();
    return OriginForm({s.data(), s.size()});
  }
  std::string_view body() const override { return m_.body(); }
  std::optional<std::string_view> header(std::string_view name) const override {
    auto it = m_.find(boost::beast::string_view(name.data(), name.size()));
    if (it == m_.end()) return std::nullopt;
    auto v = it->value();
    return std::string_view(v.data(), v.size());
  }
  std::vector<std::string_view> headers(std::string_view name) const override {
    std::vector<std::string_view> out;
    auto range = m_.equal_range(boost::beast::string_view(name.data(), name.size()));
    for (auto it = range.first; it != range.second; ++it) {
      auto v = it->value();
      out.emplace_back(v.data(), v.size());
    }
    return out;
  }

 private:
  const beast_http::request<beast_http::string_body>& m_;
};

}  // namespace

struct HttpServer::Impl {
  // The timer a connection is on; each has its own FIFO list, in deadline
  // order because each deadline is "now + that timer's constant". (A
  // member, not in the anonymous namespace: Conn's field of this type would
  // give Impl internal linkage, which GCC warns of in a unity build.)
  enum class Timer : uint8_t { kNone, kHeader, kBody, kIdle, kSend, kLinger };
  static constexpr size_t kNumTimers = 6;

  // An answer in request order: written once every answer before it is.
  struct Slot {
    uint32_t serial = 0;
    bool done = false;
    bool handed = false;  // given to the handler (counts as awaiting)
    bool head = false;
    bool close = false;  // the connection closes after this answer
    bool http10_keep_alive = false;
    std::string bytes;  // the serialized answer once done
  };

  struct Conn {
    int fd = -1;
    uint32_t index = 0;
    uint32_t gen = 0;
    uint32_t events = 0;  // the epoll mask in force
    std::string in;       // received, not yet parsed
    std::string out;      // serialized answers, not yet written
    size_t out_off = 0;
    std::unique_ptr<Parser> parser;
    bool header_done = false;
    bool continue_sent = false;
    std::vector<Slot> slots;        // answers in request order
    size_t awaiting = 0;            // slots handed to the handler, not answered
    bool no_more_requests = false;  // "Connection: close", an error, or stopping
    bool lingering = false;         // our side shut down; discarding input
    bool write_blocked = false;
    bool dirty = false;
    // Timer list membership.
    Timer timer = Timer::kNone;
    TimePoint deadline;
    Conn* prev = nullptr;
    Conn* next = nullptr;
  };

  struct TimerList {
    Conn* head = nullptr;
    Conn* tail = nullptr;
  };

  HttpServerOptions o;
  HttpHandler* handler;
  int listen_fd = -1;
  int epoll_fd = -1;
  int bound_port = 0;
  bool listening = false;  // the listener is in the epoll set
  bool stopped = false;
  TimePoint accept_resume{};
  std::vector<std::unique_ptr<Conn>> conns;  // by index; null = free
  std::vector<uint32_t> free_indices;
  uint32_t next_gen = 1;
  uint32_t next_serial = 1;
  std::vector<Conn*> dirty;
  TimerList timers[kNumTimers];
  std::vector<epoll_event> events = std::vector<epoll_event>(kMaxEvents);
  std::unique_ptr<char[]> read_buf = std::make_unique<char[]>(kReadBytes);
  HttpServerStats stats;
  uint64_t refused_since_log = 0;
  TimePoint last_refusal_log{};
  TimePoint refusal_window_start{};  // the first refusal not yet logged
  std::string refusal_why;
  TimePoint now{};

  Impl(HttpServerOptions options, HttpHandler* h) : o(std::move(options)), handler(h) {}

  ~Impl() {
    for (auto& c : conns) {
      if (c) ::close(c->fd);
    }
    if (listen_fd >= 0) ::close(listen_fd);
    if (epoll_fd >= 0) ::close(epoll_fd);
  }

  std::chrono::milliseconds TimerLength(Timer t) const {
    switch (t) {
      case Timer::kHeader:
        return o.header_timeout;
      case Timer::kBody:
        return o.body_timeout;
      case Timer::kIdle:
        return o.idle_timeout;
      case Timer::kSend:
        return o.send_timeout;
      case Timer::kLinger:
        return o.linger;
      case Timer::kNone:
        break;
    }
    return std::chrono::milliseconds(0);
  }

  // --- timers ---

  void Unlink(Conn* c) {
    if (c->timer == Timer::kNone) return;
    TimerList& l = timers[static_cast<size_t>(c->timer)];
    (c->prev ? c->prev->next : l.head) = c->next;
    (c->next ? c->next->prev : l.tail) = c->prev;
    c->prev = c->next = nullptr;
    c->timer = Timer::kNone;
  }

  // Puts `c` on timer `t`, starting now; if it is on `t` already, keeps its
  // deadline unless `restart`.
  void SetTimer(Conn* c, Timer t, bool restart = false) {
    if (c->timer == t && !restart) return;
    Unlink(c);
    if (t == Timer::kNone) return;
    TimerList& l = timers[static_cast<size_t>(t)];
    c->timer = t;
    c->deadline = now + TimerLength(t);
    c->prev = l.tail;
    c->next = nullptr;
    (l.tail ? l.tail->next : l.head) = c;
    l.tail = c;
  }

  // The timer that fits the connection's state.
  void UpdateTimer(Conn* c) {
    if (c->lingering) return SetTimer(c, Timer::kLinger);
    if (c->write_blocked) return SetTimer(c, Timer::kSend);
    if (c->parser) return SetTimer(c, c->header_done ? Timer::kBody : Timer::kHeader);
    if (!c->slots.empty()) return SetTimer(c, Timer::kNone);
    SetTimer(c, Timer::kIdle, /*restart=*/true);
  }

  void ExpireTimers() {
    for (size_t t = 1; t < kNumTimers; ++t) {
      while (timers[t].head && timers[t].head->deadline <= now) {
        Conn* c = timers[t].head;
        switch (static_cast<Timer>(t)) {
          case Timer::kHeader:
            ++stats.header_timeouts;
            break;
          case Timer::kBody:
            ++stats.body_timeouts;
            break;
          case Timer::kIdle:
            ++stats.idle_timeouts;
            break;
          case Timer::kSend: {
            ++stats.send_timeouts;
            // A reset, not a FIN: a FIN would leave what the client never
            // read in the kernel's send buffer (megabytes) until it reads or
            // the kernel gives up; the answers are void anyway.
            linger l{1, 0};
            (void)::setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
            break;
          }
          default:
            break;
        }
        Close(c);
      }
    }
  }

  // --- connections ---

  Conn* Lookup(uint64_t tag) {
    uint32_t index = static_cast<uint32_t>(tag >> 32);
    if (index >= conns.size() || !conns[index]) return nullptr;
    Conn* c = conns[index].get();
    return c->gen == static_cast<uint32_t>(tag) ? c : nullptr;
  }

  void SetEvents(Conn* c, uint32_t want) {
    if (c->events == want) return;
    epoll_event ev{};
    ev.events = want;
    ev.data.u64 = (uint64_t{c->index} << 32) | c->gen;
    if (epoll_ctl(epoll_fd, EPOLL_CTL_MOD, c->fd, &ev) == 0) c->events = want;
  }

  void Close(Conn* c) {
    Unlink(c);
    if (c->dirty) {
      for (Conn*& d : dirty) {
        if (d == c) d = nullptr;
      }
    }
    stats.awaiting -= c->awaiting;
    stats.unsent_bytes -= c->out.size() - c->out_off;
    for (const Slot& s : c->slots) stats.unsent_bytes -= s.bytes.size();
    ::close(c->fd);  // also leaves the epoll set
    --stats.connections_open;
    uint32_t index = c->index;
    conns[index].reset();
    free_indices.push_back(index);
  }

  void Accept() {
    for (int i = 0; i < kAcceptsPerServe; ++i) {
      int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
        if (errno == ECONNABORTED) continue;
        // EMFILE, ENFILE, ENOBUFS: out of descriptors or memory. Leave the
        // connection in the backlog and stop accepting for a moment, or the
        // level-triggered listener would spin.
        ++stats.connections_refused;
        NoteRefusal(std::string("accept failed: ") + std::strerror(errno));
        PauseAccepting();
        return;
      }
      if (stats.connections_open >= o.max_connections) {
        ++stats.connections_refused;
        // One try to say why; the socket buffer is empty, so it fits.
        std::string bytes;
        http::HttpReply r =
            handler->ErrorReply("", 503, "unavailable",
                                "too many open connections (--http-max-connections " +
                                    std::to_string(o.max_connections) + "); retry later");
        r.headers.emplace_back("Retry-After", "1");
        Serialize(bytes, r, false, true, false);
        (void)!::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        ::close(fd);
        NoteRefusal("at --http-max-connections " + std::to_string(o.max_connections));
        continue;
      }
      int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      uint32_t index;
      if (!free_indices.empty()) {
        index = free_indices.back();
        free_indices.pop_back();
      } else {
        index = static_cast<uint32_t>(conns.size());
        conns.emplace_back();
      }
      auto c = std::make_unique<Conn>();
      c->fd = fd;
      c->index = index;
      c->gen = next_gen++;
      if (c->gen == 0) c->gen = next_gen++;
      c->events = EPOLLIN;
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.u64 = (uint64_t{index} << 32) | c->gen;
      if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        ::close(fd);
        free_indices.push_back(index);
        ++stats.connections_refused;
        continue;
      }
      ++stats.connections_open;
      ++stats.connections_accepted;
      Conn* raw = c.get();
      conns[index] = std::move(c);
      // Until the first byte, an accepted connection is on the header timer
      // (a client that connects and says nothing is a slow header).
      SetTimer(raw, Timer::kHeader);
    }
  }

  // Refusals are logged at most once per kRefusalLogEvery: the first at
  // once, the ones after it when the period is over (from Serve(), so a
  // burst that ends is still reported).
  void NoteRefusal(const std::string& why) {
    if (refused_since_log == 0) refusal_window_start = now;
    ++refused_since_log;
    refusal_why = why;
    MaybeLogRefusals();
  }

  void MaybeLogRefusals() {
    if (refused_since_log == 0 || now - last_refusal_log < kRefusalLogEvery) return;
    const double window = std::chrono::duration<double>(now - refusal_window_start).count();
    spdlog::warn("HTTP: refused {} connection(s) in the last {:.0f} s ({}; {} open)",
                 refused_since_log, std::max(1.0, window), refusal_why, stats.connections_open);
    refused_since_log = 0;
    last_refusal_log = now;
  }

  void PauseAccepting() {
    if (!listening) return;
    epoll_ctl(epoll_fd, EPOLL_CTL_DEL, listen_fd, nullptr);
    listening = false;
    accept_resume = now + kAcceptPause;
  }

  void ResumeAccepting() {
    if (listening || stopped || listen_fd < 0 || now < accept_resume) return;
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = kListenerTag;
    if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, listen_fd, &ev) == 0) listening = true;
  }

  // --- reading and parsing ---

  // True if the connection may take another request now.
  bool CanTakeRequest(const Conn* c) const {
    return !c->no_more_requests && c->slots.size() < 2 * o.max_pipeline &&
           c->out.size() - c->out_off < o.max_unsent_bytes;
  }

  void OnReadable(Conn* c) {
    ssize_t n = ::recv(c->fd, read_buf.get(), kReadBytes, 0);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
      return Close(c);  // ECONNRESET and the like
    }
    if (n == 0) {
      // The client closed (or half-closed) its side: no more requests. The
      // answers still owed are written when they come (a half-closed client
      // reads them; for a gone one the write fails), then the connection
      // closes; the router's deadline bounds the wait.
      if (c->lingering || (c->slots.empty() && c->out.size() == c->out_off)) return Close(c);
      c->no_more_requests = true;
      c->in.clear();
      c->parser.reset();
      SetEvents(c, c->events & ~uint32_t{EPOLLIN});
      MarkDirty(c);
      return;
    }
    // Lingering, or past the last request (an error, "Connection: close"):
    // what the client still sends is discarded, never kept.
    if (c->lingering || c->no_more_requests) return;
    c->in.append(read_buf.get(), static_cast<size_t>(n));
    Parse(c);
  }

  void Parse(Conn* c) {
    size_t off = 0;
    while (off < c->in.size() && CanTakeRequest(c)) {
      if (!c->parser) {
        // Empty lines before a request line are ignored (RFC 9112 2.2: some
        // clients send a CRLF after a POST body).
        while (off < c->in.size() && (c->in[off] == '\r' || c->in[off] == '\n')) ++off;
        if (off == c->in.size()) break;
        c->parser = std::make_unique<Parser>();
        c->parser->header_limit(static_cast<uint32_t>(o.max_header_bytes));
        c->parser->body_limit(o.max_body_bytes);
        c->parser->eager(true);
        c->header_done = false;
        c->continue_sent = false;
        SetTimer(c, Timer::kHeader);  // from accept, or from this first byte
      }
      boost::beast::error_code ec;
      size_t used = c->parser->put(boost::asio::buffer(c->in.data() + off, c->in.size() - off), ec);
      off += used;
      if (!c->header_done && c->parser->is_header_done()) {
        c->header_done = true;
        SetTimer(c, Timer::kBody);
        if (std::string fault = HeaderFault(*c->parser); !fault.empty()) {
          ++stats.bad_requests;
          Refuse(c, 400, "bad_request", fault);
          break;
        }
        if (!ec || ec == beast_http::error::need_more) MaybeContinue(c);
      }
      if (ec == beast_http::error::need_more) break;
      if (ec) {
        ParseError(c, ec);
        break;
      }
      if (c->parser->is_done()) Dispatch(c);
    }
    c->in.erase(0, off);
    ReleaseIfEmpty(c->in);
    if (c->parser && !c->header_done && c->in.size() > o.max_header_bytes) {
      // Beast has seen the bytes and said need_more: it can't be here, but
      // never hold more than the limit.
      ParseError(c, beast_http::error::header_limit);
    }
    if (!CanTakeRequest(c) && !c->no_more_requests) {
      SetEvents(c, c->events & ~uint32_t{EPOLLIN});  // back-pressure until answers drain
    }
    UpdateTimer(c);
  }

  // What makes a complete header unacceptable, beyond what Beast checks
  // ("" if nothing). A Transfer-Encoding whose last coding is not chunked
  // leaves the body's length unknown (RFC 9112 6.3: answer 400 and close);
  // reading it as "no body" would take the body for the next request
  // (request smuggling behind a proxy that reads it otherwise).
  static std::string HeaderFault(const Parser& p) {
    const auto& m = p.get();
    auto te = m.find(beast_http::field::transfer_encoding);
    if (te != m.end() && !p.chunked()) {
      return "Transfer-Encoding " + std::string(te->value()) +
             " is not supported: only chunked, as the last coding, is";
    }
    return {};
  }

  void MaybeContinue(Conn* c) {
    if (c->continue_sent || c->parser->is_done() || !c->slots.empty()) return;
    // An HTTP/1.0 client's expectation is ignored (RFC 9110 10.1.1).
    if (c->parser->get().version() < 11) return;
    auto expect = c->parser->get().find(beast_http::field::expect);
    if (expect == c->parser->get().end()) return;
    auto v = expect->value();
    if (!IEquals(std::string_view(v.data(), v.size()), "100-continue")) return;
    c->continue_sent = true;
    const size_t before = c->out.size();
    c->out.append("HTTP/1.1 100 Continue\r\n\r\n");
    stats.unsent_bytes += c->out.size() - before;
    MarkDirty(c);
  }

  void ParseError(Conn* c, boost::beast::error_code ec) {
    int status = 400;
    std::string code = "bad_request";
    std::string message;
    if (ec == beast_http::error::header_limit) {
      status = 431;
      code = "header_too_large";
      message = "request header is larger than " + std::to_string(o.max_header_bytes) + " bytes";
      ++stats.too_large;
    } else if (ec == beast_http::error::body_limit) {
      status = 413;
      code = "payload_too_large";
      message = "request body is larger than " + std::to_string(o.max_body_bytes) + " bytes";
      ++stats.too_large;
    } else {
      message = "malformed HTTP request: " + ec.message();
      ++stats.bad_requests;
    }
    Refuse(c, status, code, message);
  }

  // Answers the request being read with an error, and reads no more from
  // the connection (the answer says close).
  void Refuse(Conn* c, int status, const std::string& code, const std::string& message) {
    std::string target;
    if (c->header_done) {
      auto t = c->parser->get().target();
      target.assign(t.data(), t.size());
    }
    Slot& s = NewSlot(c);
    s.close = true;
    c->no_more_requests = true;
    c->parser.reset();
    c->in.clear();
    Fill(c, s, handler->ErrorReply(target, status, code, message));
  }

  Slot& NewSlot(Conn* c) {
    Slot& s = c->slots.emplace_back();
    s.serial = next_serial++;
    return s;
  }

  void Dispatch(Conn* c) {
    auto& m = c->parser->get();
    Slot& slot = NewSlot(c);
    slot.head = m.method() == beast_http::verb::head;
    const bool keep_alive = m.keep_alive() && !stopped;
    slot.close = !keep_alive;
    slot.http10_keep_alive = keep_alive && m.version() < 11;
    if (!keep_alive) c->no_more_requests = true;
    const uint32_t serial = slot.serial;
    const HttpExchangeId id = (uint64_t{c->index} << 32) | serial;
    if (c->awaiting >= o.max_pipeline ||
        (stats.awaiting >= o.max_inflight &&
         !handler->AnswersAtOnce(OriginForm({m.target().data(), m.target().size()})))) {
      ++stats.overloaded;
      std::string why =
          c->awaiting >= o.max_pipeline
              ? std::to_string(c->awaiting) +
                    " requests of this connection are awaiting answers (--http-max-pipeline)"
              : std::to_string(stats.awaiting) +
                    " HTTP requests are awaiting answers (--http-max-inflight)";
      auto t = m.target();
      http::HttpReply r = handler->ErrorReply(std::string_view(t.data(), t.size()), 429,
                                              "overloaded", why + "; retry later");
      c->parser.reset();
      Fill(c, slot, r);
      return;
    }
    slot.handed = true;
    ++c->awaiting;
    ++stats.awaiting;
    // The message stays in the parser until the handler returns (it may
    // answer at once, which may write and so must not see the parser).
    std::unique_ptr<Parser> parser = std::move(c->parser);
    BeastRequest request(parser->get());
    handler->OnRequest(id, request);
  }

  // Serializes `r` into slot `s` of connection `c` (the connection is live).
  void Fill(Conn* c, Slot& s, const http::HttpReply& r) {
    s.done = true;
    // The last answer a connection will give says so (stopping, or the
    // client closed its side).
    if (c->no_more_requests && &s == &c->slots.back()) s.close = true;
    if (s.handed) {
      --c->awaiting;
      --stats.awaiting;
    }
    // The first pending answer goes straight to the output buffer.
    std::string& to = &s == &c->slots.front() ? c->out : s.bytes;
    const size_t before = to.size();
    Serialize(to, r, s.head, s.close, s.http10_keep_alive);
    stats.unsent_bytes += to.size() - before;
    MarkDirty(c);
  }

  void MarkDirty(Conn* c) {
    if (c->dirty) return;
    c->dirty = true;
    dirty.push_back(c);
  }

  // --- writing ---

  // Moves finished answers in order to the output and writes what it can.
  void Flush(Conn* c) {
    c->dirty = false;
    bool close_after = false;
    size_t done = 0;
    for (Slot& s : c->slots) {
      if (!s.done) break;
      c->out.append(s.bytes);  // empty if it went to `out` when filled
      ++done;
      if (s.close) {
        close_after = true;
        break;
      }
    }
    if (done > 0) c->slots.erase(c->slots.begin(), c->slots.begin() + static_cast<long>(done));
    if (close_after) {
      // Nothing after a closing answer is sent; answers still owed for
      // pipelined requests behind it are dropped with the connection.
      for (Slot& s : c->slots) {
        if (s.handed && !s.done) {
          --c->awaiting;
          --stats.awaiting;
        }
        stats.unsent_bytes -= s.bytes.size();
      }
      c->slots.clear();
      c->no_more_requests = true;
      c->parser.reset();
      c->in.clear();
    }
    size_t before = c->out.size() - c->out_off;
    while (c->out_off < c->out.size()) {
      ssize_t n = ::send(c->fd, c->out.data() + c->out_off, c->out.size() - c->out_off,
                         MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        return Close(c);  // EPIPE, ECONNRESET
      }
      c->out_off += static_cast<size_t>(n);
      stats.unsent_bytes -= static_cast<size_t>(n);
    }
    const bool progress = c->out.size() - c->out_off < before;
    if (c->out_off == c->out.size()) {
      c->out.clear();
      c->out_off = 0;
      ReleaseIfEmpty(c->out);
      c->write_blocked = false;
    } else {
      if (c->out_off > c->out.size() / 2) {
        c->out.erase(0, c->out_off);
        c->out_off = 0;
      }
      if (!c->write_blocked || progress) {
        c->write_blocked = true;
        SetTimer(c, Timer::kSend, /*restart=*/true);
      }
    }
    if (c->lingering) return;
    // Everything owed is written and no more requests come: a lingering
    // close.
    if (c->no_more_requests && c->slots.empty() && !c->write_blocked) return StartLinger(c);
    SetEvents(c, (c->write_blocked ? uint32_t{EPOLLOUT} : 0u) |
                     (CanTakeRequest(c) ? uint32_t{EPOLLIN} : 0u));
    // Requests already received wait behind a full pipeline: go on.
    if (!c->in.empty() && CanTakeRequest(c)) return Parse(c);
    UpdateTimer(c);
  }

  void StartLinger(Conn* c) {
    ::shutdown(c->fd, SHUT_WR);
    c->lingering = true;
    c->in.clear();
    ReleaseIfEmpty(c->in);
    SetEvents(c, EPOLLIN);
    SetTimer(c, Timer::kLinger);
  }

  void FlushDirty() {
    // Flush() may dirty its own connection again (it parses requests that
    // waited, which may be answered at once): those are flushed in this
    // pass too. A closed connection's entries are null (Close()).
    for (size_t i = 0; i < dirty.size(); ++i) {
      if (Conn* c = dirty[i]) Flush(c);
    }
    dirty.clear();
  }

  // --- the loop ---

  void Serve(bool fd_ready) {
    now = Clock::now();
    if (fd_ready) {
      int n = epoll_wait(epoll_fd, events.data(), kMaxEvents, 0);
      for (int i = 0; i < n; ++i) {
        const uint64_t tag = events[i].data.u64;
        if (tag == kListenerTag) {
          if (!stopped) Accept();
          continue;
        }
        Conn* c = Lookup(tag);
        if (c == nullptr) continue;  // closed by an earlier event of this batch
        const uint32_t ev = events[i].events;
        if (ev & EPOLLOUT) MarkDirty(c);
        if (ev & (EPOLLIN | EPOLLHUP | EPOLLERR)) OnReadable(c);
      }
    }
    FlushDirty();
    ExpireTimers();
    ResumeAccepting();
    MaybeLogRefusals();
  }
};

HttpServer::HttpServer(HttpServerOptions options, HttpHandler* handler)
    : impl_(std::make_unique<Impl>(std::move(options), handler)) {}

HttpServer::~HttpServer() = default;

Status HttpServer::Start() {
  Impl& m = *impl_;
  const auto& a = m.o.address;
  const std::string where = a.host + ":" + std::to_string(a.port);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  const std::string port = std::to_string(a.port);
  if (int rc = getaddrinfo(a.host.empty() ? nullptr : a.host.c_str(), port.c_str(), &hints, &res);
      rc != 0) {
    return Status::Internal("cannot bind HTTP on " + where + ": " + gai_strerror(rc));
  }
  std::string error = "no address";
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    int fd =
        ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
      error = std::strerror(errno);
      continue;
    }
    int one = 1;
    // SO_REUSEADDR only lets a restart bind while old connections are in
    // TIME_WAIT; a port another process listens on is still refused.
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || ::listen(fd, kListenBacklog) != 0) {
      error = std::strerror(errno);
      ::close(fd);
      continue;
    }
    m.listen_fd = fd;
    break;
  }
  freeaddrinfo(res);
  if (m.listen_fd < 0) return Status::Internal("cannot bind HTTP on " + where + ": " + error);
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  getsockname(m.listen_fd, reinterpret_cast<sockaddr*>(&ss), &len);
  m.bound_port = ntohs(ss.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port
                                                : reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  m.epoll_fd = epoll_create1(EPOLL_CLOEXEC);
  if (m.epoll_fd < 0) return Status::Internal(std::string("epoll_create1: ") + strerror(errno));
  m.now = Clock::now();
  m.ResumeAccepting();
  if (!m.listening) return Status::Internal("cannot poll the HTTP listener");
  return Status::Ok();
}

int HttpServer::port() const { return impl_->bound_port; }
int HttpServer::fd() const { return impl_->epoll_fd; }

void HttpServer::Serve(bool fd_ready) { impl_->Serve(fd_ready); }

bool HttpServer::Respond(HttpExchangeId id, const http::HttpReply& reply) {
  Impl& m = *impl_;
  uint32_t index = static_cast<uint32_t>(id >> 32);
  uint32_t serial = static_cast<uint32_t>(id);
  if (index >= m.conns.size() || !m.conns[index]) return false;
  Impl::Conn* c = m.conns[index].get();
  for (Impl::Slot& s : c->slots) {
    if (s.serial != serial) continue;
    if (s.done || !s.handed) return false;
    m.Fill(c, s, reply);
    return true;
  }
  return false;
}

void HttpServer::StopReading() {
  Impl& m = *impl_;
  if (m.stopped) return;
  m.stopped = true;
  if (m.listen_fd >= 0) {
    if (m.listening) epoll_ctl(m.epoll_fd, EPOLL_CTL_DEL, m.listen_fd, nullptr);
    ::close(m.listen_fd);
    m.listen_fd = -1;
    m.listening = false;
  }
  m.now = Clock::now();
  for (auto& p : m.conns) {
    if (!p) continue;
    Impl::Conn* c = p.get();
    c->no_more_requests = true;
    c->parser.reset();
    c->in.clear();
    if (c->slots.empty() && c->out.size() == c->out_off) {
      m.Close(c);
    } else {
      m.MarkDirty(c);
    }
  }
}

bool HttpServer::Idle() const {
  const Impl& m = *impl_;
  for (const auto& p : m.conns) {
    if (p && !p->lingering && (!p->slots.empty() || p->out.size() != p->out_off)) return false;
  }
  return true;
}

HttpServerStats HttpServer::Stats() const { return impl_->stats; }

size_t HttpServer::UnsentBytes() const { return impl_->stats.unsent_bytes; }

bool HttpServer::MayQueueLargeAnswer(size_t bytes) {
  Impl& m = *impl_;
  if (m.stats.unsent_bytes + bytes <= m.o.max_unsent_total_bytes) return true;
  ++m.stats.large_refused;
  return false;
}

}  // namespace todo::router
