// Prototype: Boost.Beast over Asio, one io_context thread, a fixed 19-byte body.
// (<utility> first: Boost 1.74's asio/awaitable.hpp uses std::exchange
// without including it.)
#include <utility>
// clang-format off: keep <utility> first
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <memory>
#include <optional>
// clang-format on
namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
struct Session : std::enable_shared_from_this<Session> {
  beast::tcp_stream stream;
  beast::flat_buffer buf;
  std::optional<http::request_parser<http::string_body>> parser;
  http::response<http::string_body> res;
  explicit Session(tcp::socket s) : stream(std::move(s)) {}
  void Read() {
    parser.emplace();
    parser->header_limit(8192);
    parser->body_limit(65536);
    stream.expires_after(std::chrono::seconds(30));
    http::async_read(stream, buf, *parser,
                     [self = shared_from_this()](beast::error_code ec, size_t) {
                       if (ec) {
                         self->stream.socket().close();
                         return;
                       }
                       self->Respond();
                     });
  }
  void Respond() {
    auto& req = parser->get();
    res = {};
    res.version(11);
    res.result(http::status::ok);
    res.set(http::field::content_type, "text/plain; charset=utf-8");
    res.body() = "2026-12-19 Dentist\n";
    res.keep_alive(req.keep_alive());
    res.prepare_payload();
    http::async_write(stream, res, [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec || !self->res.keep_alive()) {
        self->stream.socket().close();
        return;
      }
      self->Read();
    });
  }
};
void Accept(tcp::acceptor& a) {
  a.async_accept([&a](beast::error_code ec, tcp::socket s) {
    if (!ec) {
      s.set_option(tcp::no_delay(true));
      std::make_shared<Session>(std::move(s))->Read();
    }
    Accept(a);
  });
}
int main(int argc, char** argv) {
  net::io_context io(1);
  tcp::acceptor a(io, {net::ip::make_address("127.0.0.1"), (unsigned short)atoi(argv[1])});
  a.listen(4096);
  Accept(a);
  io.run();
}
