#include "tests/unit/io/fake_http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

namespace todo::io::testing {
namespace {

constexpr size_t kMaxRequest = 1 << 20;

// Reads a request from `fd` (head, then Content-Length bytes of body) for
// up to 5 s; "" if the peer sent nothing usable.
std::string ReadRequest(int fd, int stop_fd) {
  std::string in;
  size_t need = std::string::npos;
  for (int waited = 0; waited < 5000 && in.size() < kMaxRequest;) {
    if (need == std::string::npos) {
      size_t end = in.find("\r\n\r\n");
      if (end != std::string::npos) {
        size_t body = 0;
        size_t cl = in.find("Content-Length:");
        if (cl != std::string::npos && cl < end)
          body = std::strtoul(in.c_str() + cl + 15, nullptr, 10);
        need = end + 4 + body;
      }
    }
    if (need != std::string::npos && in.size() >= need) return in;
    pollfd p[2] = {{fd, POLLIN, 0}, {stop_fd, POLLIN, 0}};
    int n = poll(p, 2, 100);
    if (n == 0) {
      waited += 100;
      continue;
    }
    if (n < 0 || (p[1].revents & POLLIN)) return in;
    char buf[16384];
    ssize_t r = recv(fd, buf, sizeof buf, 0);
    if (r <= 0) return in;
    in.append(buf, static_cast<size_t>(r));
  }
  return in;
}

void SendAll(int fd, const std::string& bytes) {
  size_t sent = 0;
  while (sent < bytes.size()) {
    ssize_t n = send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return;
    sent += static_cast<size_t>(n);
  }
}

}  // namespace

FakeHttpServer::FakeHttpServer(Handler handler) : handler_(std::move(handler)) {
  listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (listen_fd_ < 0 || bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      listen(listen_fd_, 16) != 0 ||
      getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    throw std::runtime_error("fake server: cannot listen");
  }
  port_ = ntohs(addr.sin_port);
  stop_fd_ = eventfd(0, EFD_CLOEXEC);
  thread_ = std::thread([this] { Loop(); });
}

FakeHttpServer::~FakeHttpServer() {
  uint64_t one = 1;
  (void)!write(stop_fd_, &one, sizeof one);
  thread_.join();
  for (int fd : held_) close(fd);
  close(listen_fd_);
  close(stop_fd_);
}

void FakeHttpServer::Loop() {
  while (true) {
    pollfd p[2] = {{listen_fd_, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
    if (poll(p, 2, -1) < 0) continue;
    if (p[1].revents & POLLIN) return;
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    std::string request = ReadRequest(fd, stop_fd_);
    if (request.empty()) {
      close(fd);
      continue;
    }
    requests_.fetch_add(1);
    Reply reply = handler_(request);
    SendAll(fd, reply.bytes);
    if (reply.hold) {
      held_.push_back(fd);
    } else {
      close(fd);
    }
  }
}

int FakeHttpServer::UnusedPort() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    throw std::runtime_error("cannot bind a loopback port");
  }
  close(fd);
  return ntohs(addr.sin_port);
}

std::string FakeHttpServer::Answer(int status, const std::string& body,
                                   const std::string& content_type) {
  return "HTTP/1.1 " + std::to_string(status) + " X\r\nContent-Type: " + content_type +
         "\r\nContent-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" +
         body;
}

std::string FakeHttpServer::Chunked(int status, const std::vector<std::string>& chunks,
                                    const std::string& trailers, bool end) {
  char hex[32];
  std::string out = "HTTP/1.1 " + std::to_string(status) +
                    " X\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n";
  if (!trailers.empty()) out += "Trailer: Grpc-Trailer-Content-Type\r\n";
  out += "Connection: close\r\n\r\n";
  for (const std::string& c : chunks) {
    snprintf(hex, sizeof hex, "%zx", c.size());
    out += std::string(hex) + "\r\n" + c + "\r\n";
  }
  if (end) out += "0\r\n" + trailers + "\r\n";
  return out;
}

}  // namespace todo::io::testing
