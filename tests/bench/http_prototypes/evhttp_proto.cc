// Prototype: libevent evhttp, one thread, a fixed 19-byte body.
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>

#include <cstdio>
#include <cstdlib>
static void handler(evhttp_request* req, void*) {
  evbuffer* out = evhttp_request_get_output_buffer(req);
  evbuffer_add(out, "2026-12-19 Dentist\n", 19);
  evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                    "text/plain; charset=utf-8");
  evhttp_send_reply(req, 200, "OK", nullptr);
}
int main(int argc, char** argv) {
  int port = atoi(argv[1]);
  event_base* base = event_base_new();
  evhttp* http = evhttp_new(base);
  evhttp_set_gencb(http, handler, nullptr);
  evhttp_set_timeout(http, 10);
  evhttp_bound_socket* s = evhttp_bind_socket_with_handle(http, "127.0.0.1", port);
  if (!s) return 1;
  event_base_dispatch(base);
}
