#include "common/io/etcd/http_stream.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>

namespace todo::io {
namespace {

constexpr size_t kMaxHead = 64 << 10;
constexpr size_t kMaxLine = 4 << 10;
constexpr size_t kRecvBytes = 64 << 10;

Status Unavailable(const std::string& m) { return Status(ErrorCode::kUnavailable, m); }

std::string Errno(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

bool IEquals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

}  // namespace

HttpStream::~HttpStream() {
  if (fd_ >= 0) close(fd_);
}

Status HttpStream::Wait(short events, Clock::time_point deadline) {
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return Status(ErrorCode::kTimeout, "timed out");
    pollfd p[2] = {{fd_, events, 0}, {cancel_fd_, POLLIN, 0}};
    int n = poll(p, cancel_fd_ >= 0 ? 2 : 1,
                 static_cast<int>(std::min<int64_t>(left.count() + 1, 60000)));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Unavailable(Errno("poll"));
    }
    if (cancel_fd_ >= 0 && (p[1].revents & POLLIN)) {
      canceled_ = true;
      return Unavailable("canceled");
    }
    if (p[0].revents != 0) return Status::Ok();  // ready, or an error recv/send will report
  }
}

ssize_t HttpStream::Fill() {
  char buf[kRecvBytes];
  while (true) {
    ssize_t n = recv(fd_, buf, sizeof buf, 0);
    if (n > 0) raw_.append(buf, static_cast<size_t>(n));
    if (n == 0) eof_ = true;
    if (n < 0 && errno == EINTR) continue;
    return n;
  }
}

Status HttpStream::Open(const std::string& host, int port, std::string_view method,
                        std::string_view path, std::string_view body,
                        std::string_view extra_headers, Clock::time_point deadline) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  const std::string port_text = std::to_string(port);
  if (int e = getaddrinfo(host.c_str(), port_text.c_str(), &hints, &res); e != 0 || !res) {
    return Unavailable("cannot resolve " + host + ": " + gai_strerror(e));
  }
  fd_ = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd_ < 0) {
    freeaddrinfo(res);
    return Unavailable(Errno("socket"));
  }
  int one = 1;
  setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  int rc = connect(fd_, res->ai_addr, res->ai_addrlen);
  freeaddrinfo(res);
  if (rc != 0 && errno != EINPROGRESS) return Unavailable(Errno("connect"));
  if (rc != 0) {
    if (Status s = Wait(POLLOUT, deadline); !s.ok()) {
      return Status(s.code(), "connect: " + s.message());
    }
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) return Unavailable(std::string("connect: ") + std::strerror(err));
  }

  std::string request;
  request.reserve(body.size() + 256);
  request.append(method).append(" ").append(path).append(" HTTP/1.1\r\n");
  request.append("Host: ").append(host).append(":").append(port_text).append("\r\n");
  request.append("Content-Type: application/json\r\nAccept: application/json\r\n");
  request.append("Content-Length: ").append(std::to_string(body.size())).append("\r\n");
  request.append("Connection: close\r\n").append(extra_headers).append("\r\n").append(body);
  size_t sent = 0;
  while (sent < request.size()) {
    ssize_t n = send(fd_, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<size_t>(n);
    } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      if (Status s = Wait(POLLOUT, deadline); !s.ok()) {
        return Status(s.code(), "send: " + s.message());
      }
    } else {
      return Unavailable(Errno("send"));
    }
  }

  while (true) {
    size_t end = raw_.find("\r\n\r\n");
    if (end != std::string::npos && end + 4 > kMaxHead) {
      return Unavailable("answer headers over 64 KiB");
    }
    if (end != std::string::npos) {
      std::string head = raw_.substr(0, end + 2);
      raw_.erase(0, end + 4);
      return ParseHead(head);
    }
    if (raw_.size() > kMaxHead) return Unavailable("answer headers over 64 KiB");
    if (eof_) return Unavailable("connection closed before the answer's headers");
    if (Status s = Wait(POLLIN, deadline); !s.ok()) {
      return Status(s.code(), "waiting for the answer: " + s.message());
    }
    if (Fill() < 0 && errno != EAGAIN) return Unavailable(Errno("recv"));
  }
}

Status HttpStream::ParseHead(std::string_view head) {
  size_t eol = head.find("\r\n");
  std::string_view line = head.substr(0, eol);
  // "HTTP/1.1 200 OK"
  if (line.size() < 12 || line.substr(0, 5) != "HTTP/" || line[8] != ' ') {
    return Unavailable("not an HTTP answer");
  }
  auto [p, ec] = std::from_chars(line.data() + 9, line.data() + 12, status_);
  if (ec != std::errc() || p != line.data() + 12 || status_ < 100 || status_ > 999) {
    return Unavailable("malformed HTTP status line");
  }
  bool chunked = false, has_length = false;
  head.remove_prefix(eol + 2);
  while (!head.empty()) {
    eol = head.find("\r\n");
    std::string_view h = head.substr(0, eol);
    head.remove_prefix(eol == std::string_view::npos ? head.size() : eol + 2);
    size_t colon = h.find(':');
    if (colon == std::string_view::npos) return Unavailable("malformed HTTP header line");
    std::string_view name = Trim(h.substr(0, colon)), value = Trim(h.substr(colon + 1));
    if (IEquals(name, "Transfer-Encoding")) {
      if (!IEquals(value, "chunked")) return Unavailable("unsupported Transfer-Encoding");
      chunked = true;
    } else if (IEquals(name, "Content-Length")) {
      auto [q, e] = std::from_chars(value.data(), value.data() + value.size(), remaining_);
      if (e != std::errc() || q != value.data() + value.size()) {
        return Unavailable("malformed Content-Length");
      }
      has_length = true;
    }
  }
  framing_ = chunked ? Framing::kChunked : has_length ? Framing::kLength : Framing::kUntilClose;
  return Status::Ok();
}

bool HttpStream::TakeLine(std::string* line, Status* error) {
  size_t eol = raw_.find("\r\n");
  if (eol == std::string::npos) {
    if (raw_.size() > kMaxLine) *error = Unavailable("chunk framing line over 4 KiB");
    return false;
  }
  line->assign(raw_, 0, eol);
  raw_.erase(0, eol + 2);
  return true;
}

bool HttpStream::done() const {
  switch (framing_) {
    case Framing::kLength:
      return remaining_ == 0;
    case Framing::kChunked:
      return chunk_ == ChunkState::kDone;
    case Framing::kUntilClose:
      return eof_ && raw_.empty();
  }
  return true;
}

bool HttpStream::Decode(std::string* out, Status* error) {
  if (framing_ == Framing::kUntilClose) {
    out->append(raw_);
    raw_.clear();
    return true;
  }
  if (framing_ == Framing::kLength) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(remaining_, raw_.size()));
    out->append(raw_, 0, n);
    raw_.erase(0, n);
    remaining_ -= n;
    return true;
  }
  std::string line;
  while (true) {
    switch (chunk_) {
      case ChunkState::kSize: {
        if (!TakeLine(&line, error)) return error->ok();
        std::string_view size = line;
        size = size.substr(0, size.find(';'));  // chunk extensions
        size = Trim(size);
        auto [p, ec] = std::from_chars(size.data(), size.data() + size.size(), remaining_, 16);
        if (ec != std::errc() || p != size.data() + size.size() || size.empty()) {
          *error = Unavailable("malformed chunk size");
          return false;
        }
        chunk_ = remaining_ == 0 ? ChunkState::kTrailers : ChunkState::kData;
        break;
      }
      case ChunkState::kData: {
        if (raw_.empty()) return true;
        size_t n = static_cast<size_t>(std::min<uint64_t>(remaining_, raw_.size()));
        out->append(raw_, 0, n);
        raw_.erase(0, n);
        remaining_ -= n;
        if (remaining_ == 0) chunk_ = ChunkState::kDataEnd;
        break;
      }
      case ChunkState::kDataEnd:
        if (!TakeLine(&line, error)) return error->ok();
        if (!line.empty()) {
          *error = Unavailable("malformed chunk end");
          return false;
        }
        chunk_ = ChunkState::kSize;
        break;
      case ChunkState::kTrailers:
        // Trailer lines (grpc-gateway's Grpc-Trailer-*) until an empty one.
        if (!TakeLine(&line, error)) return error->ok();
        if (line.empty()) chunk_ = ChunkState::kDone;
        break;
      case ChunkState::kDone:
        return true;
    }
  }
}

HttpStream::Read HttpStream::ReadSome(std::string* out, Clock::time_point deadline, Status* error) {
  *error = Status::Ok();
  while (true) {
    size_t before = out->size();
    if (!Decode(out, error)) return Read::kError;
    if (out->size() > before) return Read::kData;
    if (done()) return Read::kEnd;
    if (eof_) {
      *error = Unavailable("connection closed mid-answer");
      return Read::kError;
    }
    if (Status s = Wait(POLLIN, deadline); !s.ok()) {
      if (s.code() == ErrorCode::kTimeout) return Read::kIdle;
      *error = s;
      return Read::kError;
    }
    if (Fill() < 0 && errno != EAGAIN) {
      *error = Unavailable(Errno("recv"));
      return Read::kError;
    }
  }
}

Status HttpStream::ReadAll(std::string* out, size_t max, Clock::time_point deadline) {
  while (true) {
    Status error;
    switch (ReadSome(out, deadline, &error)) {
      case Read::kData:
        if (out->size() > max) {
          return Status::Internal("answer larger than " + std::to_string(max) + " bytes");
        }
        break;
      case Read::kEnd:
        return Status::Ok();
      case Read::kIdle:
        return Status(ErrorCode::kTimeout, "timed out reading the answer");
      case Read::kError:
        return error;
    }
  }
}

}  // namespace todo::io
