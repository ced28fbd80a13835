// Prototype: beast_epoll_proto with a thread hand-off: the HTTP thread
// batches the requests of each epoll round into a queue for a second thread
// (standing in for the router's loop), which answers them as a batch back
// through another queue; each side wakes the other with an eventfd. Measures
// what "HTTP on its own thread, batched to the router" costs against
// answering in the same loop (beast_epoll_proto).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/buffer.hpp>
#include <boost/beast/http.hpp>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>
namespace http = boost::beast::http;
struct Conn {
  int fd;
  std::string in;
  std::string out;
  std::optional<http::request_parser<http::empty_body>> p;
};
struct Queue {
  std::mutex mu;
  std::vector<Conn*> items;
  int efd = eventfd(0, EFD_NONBLOCK);
  bool waiting = true;
};
Queue to_router, to_http;
void Push(Queue& q, std::vector<Conn*>& batch) {
  if (batch.empty()) return;
  {
    std::lock_guard<std::mutex> l(q.mu);
    q.items.insert(q.items.end(), batch.begin(), batch.end());
  }
  uint64_t one = 1;
  (void)!write(q.efd, &one, 8);
  batch.clear();
}
std::vector<Conn*> Take(Queue& q) {
  uint64_t v;
  (void)!read(q.efd, &v, 8);
  std::lock_guard<std::mutex> l(q.mu);
  std::vector<Conn*> out;
  out.swap(q.items);
  return out;
}
int main(int argc, char** argv) {
  std::thread router([] {  // the "router loop": answers every request it is handed
    std::vector<Conn*> back;
    for (;;) {
    pollfd_wait:;
      fd_set s;
      FD_ZERO(&s);
      FD_SET(to_router.efd, &s);
      select(to_router.efd + 1, &s, nullptr, nullptr, nullptr);
      for (Conn* c : Take(to_router)) {
        back.push_back(c);
      }
      Push(to_http, back);
    }
  });
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
  epoll_event qev{EPOLLIN, {.ptr = (void*)1}};
  epoll_ctl(ep, EPOLL_CTL_ADD, to_http.efd, &qev);
  std::vector<epoll_event> evs(256);
  std::vector<Conn*> batch;
  char buf[16384];
  for (;;) {
    int n = epoll_wait(ep, evs.data(), evs.size(), -1);
    for (int i = 0; i < n; ++i) {
      Conn* c = (Conn*)evs[i].data.ptr;
      if (c == (Conn*)1) {
        for (Conn* d : Take(to_http)) {
          d->out +=
              "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: "
              "19\r\n\r\n2026-12-19 Dentist\n";
          ssize_t w = write(d->fd, d->out.data(), d->out.size());
          if (w > 0) d->out.erase(0, w);
        }
        continue;
      }
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
      ssize_t r = read(c->fd, buf, sizeof buf);
      if (r <= 0) {
        if (r < 0 && errno == EAGAIN) continue;
        epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, nullptr);
        continue;
      }
      c->in.append(buf, r);
      size_t off = 0;
      while (off < c->in.size()) {
        if (!c->p) {
          c->p.emplace();
          c->p->header_limit(8192);
          c->p->eager(true);
        }
        boost::beast::error_code ec;
        off += c->p->put(boost::asio::buffer(c->in.data() + off, c->in.size() - off), ec);
        if (ec == http::error::need_more) break;
        if (ec) break;
        if (c->p->is_done()) {
          c->p.reset();
          batch.push_back(c);
        }
      }
      c->in.erase(0, off);
    }
    Push(to_router, batch);  // one hand-off per epoll round
  }
}
