// Listening sockets that never share an address. Every listener of the
// cluster's programs (a node's or router's ZeroMQ endpoint, the router's
// --http, a node's --metrics) refuses a port or ipc:// path that another
// process is serving, instead of sharing or stealing it.
//
// Why: Linux lets two sockets bind one TCP port when both set SO_REUSEPORT,
// and then splits the connections between them (cpp-httplib sets it on
// every listener); libzmq unlinks an ipc:// path before binding it, taking
// the path from a live process. SO_REUSEADDR alone, which libzmq uses for
// TCP, still refuses a port that has a listener (and lets a restarted
// server bind over connections in TIME_WAIT).
// Thread-safety: stateless; any thread.
#pragma once

#include <string>

#include "common/status.h"

namespace todo::io {

// The options of a TCP listening socket: SO_REUSEADDR, and never
// SO_REUSEPORT. For servers that take a socket-options hook
// (httplib::Server::set_socket_options).
void SetExclusiveListenOptions(int fd);

// A TCP socket with those options, bound to host:port (port 0: one the
// kernel picks; host: a numeric address or a name, "0.0.0.0" or "::" for
// every address) and listening with `backlog`: its fd (the caller owns it,
// close-on-exec). internal naming the address and the reason otherwise
// ("... is already in use" for EADDRINUSE). For a server that accepts on a
// socket it is handed.
StatusOr<int> ListenTcp(const std::string& host, int port, int backlog);

// For a ZeroMQ endpoint about to be bound: internal if it is ipc://PATH and
// a process accepts connections on PATH (libzmq would unlink the path and
// take it over); OK otherwise. A stale socket file that nobody listens on is
// left for libzmq to replace. tcp:// needs no check (libzmq refuses a port
// in use); neither does inproc:// (private to the process). A process that
// binds PATH between this check and the bind is not seen.
Status CheckZmqEndpointFree(const std::string& endpoint);

}  // namespace todo::io
