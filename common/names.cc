#include "common/names.h"

namespace todo {

bool IsValidNodeName(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-';
    if (!ok) return false;
  }
  return true;
}

namespace {

// "*" (any port) or a decimal port 0-65535 (0: one the OS picks).
bool IsValidPort(std::string_view port) {
  if (port == "*") return true;
  if (port.empty() || port.size() > 5) return false;
  unsigned n = 0;
  for (char c : port) {
    if (c < '0' || c > '9') return false;
    n = n * 10 + static_cast<unsigned>(c - '0');
  }
  return n <= 65535;
}

}  // namespace

bool IsValidEndpoint(std::string_view endpoint) {
  for (std::string_view scheme : {"tcp://", "ipc://", "inproc://"}) {
    if (endpoint.size() > scheme.size() && endpoint.substr(0, scheme.size()) == scheme) {
      for (char c : endpoint) {
        if (c == ' ' || static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return false;
      }
      if (scheme == "tcp://") {
        // libzmq reads a port past 65535 modulo 65536 (99999 is 34463).
        const std::string_view rest = endpoint.substr(scheme.size());
        // An IPv6 literal ([::1]) would pass here and fail at bind with
        // libzmq's "No such device": the sockets are IPv4 (no ZMQ_IPV6).
        if (rest.front() == '[') return false;
        const size_t colon = rest.rfind(':');
        if (colon == std::string_view::npos || colon == 0) return false;
        return IsValidPort(rest.substr(colon + 1));
      }
      return true;
    }
  }
  return false;
}

}  // namespace todo
