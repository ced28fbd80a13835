#include "common/io/listen.h"

#include <netdb.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace todo::io {

void SetExclusiveListenOptions(int fd) {
  int yes = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
}

StatusOr<int> ListenTcp(const std::string& host, int port, int backlog) {
  const std::string where = host + ":" + std::to_string(port);
  if (port < 0 || port > 65535) return Status::BadRequest("port out of range in " + where);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* found = nullptr;
  const std::string service = std::to_string(port);
  if (int rc = getaddrinfo(host.empty() ? nullptr : host.c_str(), service.c_str(), &hints, &found);
      rc != 0) {
    return Status::Internal("cannot resolve " + where + ": " + gai_strerror(rc));
  }
  int err = 0;
  for (addrinfo* a = found; a != nullptr; a = a->ai_next) {
    int fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) {
      err = errno;
      continue;
    }
    SetExclusiveListenOptions(fd);
    if (bind(fd, a->ai_addr, a->ai_addrlen) == 0 && listen(fd, backlog) == 0) {
      freeaddrinfo(found);
      return fd;
    }
    err = errno;
    close(fd);
  }
  freeaddrinfo(found);
  if (err == EADDRINUSE) {
    return Status::Internal("cannot listen on " + where +
                            ": the address is already in use (another process serves it)");
  }
  return Status::Internal("cannot listen on " + where + ": " + std::strerror(err));
}

Status CheckZmqEndpointFree(const std::string& endpoint) {
  constexpr std::string_view kIpc = "ipc://";
  if (!endpoint.starts_with(kIpc)) return Status::Ok();
  const std::string path = endpoint.substr(kIpc.size());
  sockaddr_un addr{};
  // "*" (a path libzmq picks), an abstract name ("@..."), or a path too long
  // for a socket address: libzmq unlinks nothing a peer uses.
  if (path.empty() || path == "*" || path[0] == '@' || path.size() >= sizeof addr.sun_path) {
    return Status::Ok();
  }
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), path.size());
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return Status::Ok();  // can't check; the bind will tell
  const int rc = connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
  const int err = rc == 0 ? 0 : errno;
  close(fd);
  // Connected, or the listener's backlog is full: someone serves the path.
  if (rc == 0 || err == EAGAIN || err == EINPROGRESS) {
    return Status::Internal("cannot bind " + endpoint + ": another process is listening on " +
                            path + " (binding would take the path from it)");
  }
  return Status::Ok();  // ENOENT: free; ECONNREFUSED: a stale file; else the bind will tell
}

}  // namespace todo::io
