// FakeHttpServer: a tiny TCP server on 127.0.0.1 (a free port) for tests of
// HTTP clients against answers no real server gives: garbage, malformed
// JSON, huge bodies, silence. One thread serves connections one at a time:
// it reads a request (head and Content-Length body, at most 1 MiB, 5 s),
// asks the handler for the bytes to send, sends them, and closes the
// connection, or holds it open until the server is destroyed (a server
// that never answers). Every wait is a poll bounded by a timeout or woken
// by the destructor through an eventfd.
#pragma once

#include <atomic>
#include <functional>
#include <string>
#include <thread>
#include <vector>

namespace todo::io::testing {

class FakeHttpServer {
 public:
  struct Reply {
    std::string bytes;  // sent as is
    bool hold = false;  // keep the connection open (after sending) until destruction
  };
  // Gets the whole request (head and body).
  using Handler = std::function<Reply(const std::string& request)>;

  explicit FakeHttpServer(Handler handler);
  ~FakeHttpServer();
  FakeHttpServer(const FakeHttpServer&) = delete;
  FakeHttpServer& operator=(const FakeHttpServer&) = delete;

  int port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  // Requests read so far.
  int requests() const { return requests_.load(); }

  // A loopback port nothing listens on (bound a moment ago, then closed).
  static int UnusedPort();

  // An HTTP/1.1 answer with Content-Length.
  static std::string Answer(int status, const std::string& body,
                            const std::string& content_type = "application/json");
  // A chunked answer: each chunk as given, then the trailer lines (each
  // "Name: value\r\n") the gateway adds to its error answers.
  static std::string Chunked(int status, const std::vector<std::string>& chunks,
                             const std::string& trailers = "", bool end = true);

 private:
  void Loop();

  Handler handler_;
  int listen_fd_ = -1;
  int stop_fd_ = -1;
  int port_ = 0;
  std::vector<int> held_;  // the thread's
  std::atomic<int> requests_{0};
  std::thread thread_;
};

}  // namespace todo::io::testing
