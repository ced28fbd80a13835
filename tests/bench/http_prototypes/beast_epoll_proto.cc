// Prototype: Boost.Beast's parser over a hand-written epoll loop (what the
// router's poll loop could drive), one thread, a fixed 19-byte body.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/buffer.hpp>
#include <boost/beast/http.hpp>
#include <cerrno>
#include <cstring>
#include <optional>
#include <string>
#include <vector>
namespace http = boost::beast::http;
struct Conn {
  int fd;
  std::string in;
  std::string out;
  std::optional<http::request_parser<http::empty_body>> p;
};
int main(int argc, char** argv) {
  int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  int one = 1;
  setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(atoi(argv[1]));
  inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  if (bind(ls, (sockaddr*)&a, sizeof a)) return 1;
  listen(ls, 4096);
  int ep = epoll_create1(0);
  epoll_event ev{EPOLLIN, {.ptr = nullptr}};
  epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
  std::vector<epoll_event> evs(256);
  char buf[16384];
  for (;;) {
    int n = epoll_wait(ep, evs.data(), evs.size(), -1);
    for (int i = 0; i < n; ++i) {
      Conn* c = (Conn*)evs[i].data.ptr;
      if (!c) {
        for (;;) {
          int fd = accept4(ls, nullptr, nullptr, SOCK_NONBLOCK);
          if (fd < 0) break;
          setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          Conn* nc = new Conn{fd, {}, {}, {}};
          epoll_event e{EPOLLIN | EPOLLRDHUP, {.ptr = nc}};
          epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
        }
        continue;
      }
      bool close_it = false;
      ssize_t r = read(c->fd, buf, sizeof buf);
      if (r <= 0) {
        if (r < 0 && errno == EAGAIN) continue;
        close_it = true;
      } else {
        c->in.append(buf, r);
        size_t off = 0;
        while (off < c->in.size()) {
          if (!c->p) {
            c->p.emplace();
            c->p->header_limit(8192);
            c->p->eager(true);
          }
          boost::beast::error_code ec;
          size_t used = c->p->put(boost::asio::buffer(c->in.data() + off, c->in.size() - off), ec);
          off += used;
          if (ec == http::error::need_more) break;
          if (ec) {
            close_it = true;
            break;
          }
          if (c->p->is_done()) {
            bool ka = c->p->get().keep_alive();
            c->out +=
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: "
                "19\r\n\r\n2026-12-19 Dentist\n";
            c->p.reset();
            if (!ka) close_it = true;
          }
        }
        c->in.erase(0, off);
        if (!c->out.empty()) {
          ssize_t w = write(c->fd, c->out.data(), c->out.size());
          if (w > 0) c->out.erase(0, w);
        }
      }
      if (close_it) {
        close(c->fd);
        delete c;
      }
    }
  }
}
