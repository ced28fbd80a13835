// common/io/listen.h: listeners never share or steal an address. Real
// sockets on loopback and in a temp dir.
#include "common/io/listen.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>

namespace todo::io {
namespace {

int PortOf(int fd) {
  sockaddr_in addr{};
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  return ntohs(addr.sin_port);
}

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/todo-io-XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string Sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// An AF_UNIX stream socket bound to `path`, listening if `listen_too`.
int UnixSocket(const std::string& path, bool listen_too) {
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
  EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  if (listen_too) {
    EXPECT_EQ(listen(fd, 4), 0);
  }
  return fd;
}

TEST(ListenTcp, SecondListenerOnAPortIsRefused) {
  auto first = ListenTcp("127.0.0.1", 0, 16);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  const int port = PortOf(*first);
  int reuseport = -1;
  socklen_t len = sizeof reuseport;
  getsockopt(*first, SOL_SOCKET, SO_REUSEPORT, &reuseport, &len);
  EXPECT_EQ(reuseport, 0) << "SO_REUSEPORT would let another listener share the port";
  auto second = ListenTcp("127.0.0.1", port, 16);
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.status().message().find("127.0.0.1:" + std::to_string(port) +
                                           ": the address is already in use"),
            std::string::npos)
      << second.status().message();
  close(*first);
  auto again = ListenTcp("127.0.0.1", port, 16);  // free again (SO_REUSEADDR)
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  close(*again);
}

TEST(ListenTcp, PortHeldWithReusePortByAnotherProgramIsRefused) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  int yes = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &yes, sizeof yes);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(listen(fd, 4), 0);
  auto mine = ListenTcp("127.0.0.1", PortOf(fd), 16);
  EXPECT_FALSE(mine.ok());
  close(fd);
}

TEST(ListenTcp, BadAddressesAreErrors) {
  EXPECT_EQ(ListenTcp("127.0.0.1", 70000, 16).status().code(), ErrorCode::kBadRequest);
  EXPECT_FALSE(ListenTcp("no-such-host.invalid", 0, 16).ok());
}

TEST(CheckZmqEndpointFree, RefusesOnlyALiveIpcListener) {
  TempDir dir;
  EXPECT_TRUE(CheckZmqEndpointFree("tcp://127.0.0.1:1").ok());
  EXPECT_TRUE(CheckZmqEndpointFree("inproc://x").ok());
  EXPECT_TRUE(CheckZmqEndpointFree("ipc://*").ok());
  EXPECT_TRUE(CheckZmqEndpointFree("ipc://" + dir.Sub("none.sock")).ok());
  const std::string live = dir.Sub("live.sock");
  int listener = UnixSocket(live, true);
  auto s = CheckZmqEndpointFree("ipc://" + live);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.message(), "cannot bind ipc://" + live + ": another process is listening on " + live +
                             " (binding would take the path from it)");
  close(listener);  // the file stays, nobody listens: stale, free to take
  EXPECT_TRUE(std::filesystem::exists(live));
  EXPECT_TRUE(CheckZmqEndpointFree("ipc://" + live).ok());
  const std::string bound = dir.Sub("bound.sock");
  int fd = UnixSocket(bound, false);  // bound, never listening
  EXPECT_TRUE(CheckZmqEndpointFree("ipc://" + bound).ok());
  close(fd);
}

}  // namespace
}  // namespace todo::io
