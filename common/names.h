// What a node name and a ZeroMQ endpoint may be. Pure; shared by todo-node
// (its --name, --listen) and todo-router (--node, cluster files), so that
// every name a node accepts is one a router accepts, and the other way round.
#pragma once

#include <string_view>

namespace todo {

// True if `name` is 1-64 bytes of [A-Za-z0-9_.-].
bool IsValidNodeName(std::string_view name);
// True if `endpoint` is tcp://, ipc:// or inproc:// followed by at least one
// byte, with no whitespace or control bytes; a tcp:// endpoint ends in
// ":PORT", PORT being "*" or 0-65535 (tcp://127.0.0.1:99999 is refused),
// its host an IPv4 address, a host name or an interface, not an IPv6
// literal (tcp://[::1]:7000 is refused: the sockets are IPv4 only).
bool IsValidEndpoint(std::string_view endpoint);

}  // namespace todo
