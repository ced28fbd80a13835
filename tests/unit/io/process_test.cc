// Process set-up (common/io/process.h): the stop signals arrive on the
// signalfd and not as signals, SIGPIPE is ignored, the open-file limit is
// raised, the logger is installed. The signal tests run in a forked child so
// the test binary's own signal handling stays as it was.
#include "common/io/process.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

namespace todo::io {
namespace {

// Runs `body` in a child process; returns its exit code (-1 if it did not
// exit normally within 10 s: then it is killed).
template <typename F>
int InChild(F body) {
  pid_t pid = fork();
  if (pid == 0) _exit(body());
  if (pid < 0) return -1;
  for (int i = 0; i < 1000; ++i) {
    int st = 0;
    if (waitpid(pid, &st, WNOHANG) == pid) return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  return -1;
}

// 0 if `sig` sent to the process (from another thread, so any thread could
// take it) shows on the signalfd within 5 s.
int SignalArrivesOnFd(int sig) {
  auto s = StopSignals::Install();
  if (!s.ok() || s->fd() < 0) return 10;
  std::thread other([sig] { kill(getpid(), sig); });
  other.join();
  pollfd p{s->fd(), POLLIN, 0};
  if (poll(&p, 1, 5000) != 1) return 11;
  signalfd_siginfo si{};
  if (read(s->fd(), &si, sizeof si) != sizeof si) return 12;
  return static_cast<int>(si.ssi_signo) == sig ? 0 : 13;
}

TEST(StopSignalsTest, SigtermArrivesOnTheFd) {
  EXPECT_EQ(InChild([] { return SignalArrivesOnFd(SIGTERM); }), 0);
}

TEST(StopSignalsTest, SigintArrivesOnTheFd) {
  EXPECT_EQ(InChild([] { return SignalArrivesOnFd(SIGINT); }), 0);
}

TEST(StopSignalsTest, SigpipeIsIgnoredAndTheFdClosedOnDestruction) {
  EXPECT_EQ(InChild([] {
              int fd = -1;
              {
                auto s = StopSignals::Install();
                if (!s.ok()) return 10;
                StopSignals moved = std::move(s).value();
                fd = moved.fd();
                if (fd < 0) return 11;
              }
              if (fcntl(fd, F_GETFD) != -1) return 12;  // closed
              int p[2];
              if (pipe(p) != 0) return 13;
              close(p[0]);
              char c = 'x';
              // Without SIG_IGN this would kill the child with SIGPIPE.
              if (write(p[1], &c, 1) != -1 || errno != EPIPE) return 14;
              return 0;
            }),
            0);
}

TEST(OpenFileLimitTest, SoftLimitRaisedToHard) {
  auto limit = RaiseOpenFileLimit();
  ASSERT_TRUE(limit.ok()) << limit.status().ToString();
  rlimit rl{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &rl), 0);
  EXPECT_EQ(rl.rlim_cur, rl.rlim_max);
  EXPECT_EQ(limit->after, rl.rlim_cur);
  EXPECT_LE(limit->before, limit->after);
}

TEST(LoggingTest, InstallsTheDefaultLoggerAtTheLevel) {
  SetUpLogging("process-test", "t", "warn");
  EXPECT_EQ(spdlog::default_logger()->name(), "process-test");
  EXPECT_EQ(spdlog::get_level(), spdlog::level::warn);
  SetUpLogging("process-test", "t", "error");  // again: the same logger
  EXPECT_EQ(spdlog::get_level(), spdlog::level::err);
  SetUpLogging("process-test", "t", "nonsense");
  EXPECT_EQ(spdlog::get_level(), spdlog::level::info);
}

// The allocator the build links in (TODO_MALLOC) is the one serving
// malloc, and ReleaseFreeMemory hands what it holds free back to the OS.
// (Sanitizer builds: the sanitizer's allocator, which keeps its own.)
#ifdef TODO_TEST_ALLOCATOR
long RssKib() {
  FILE* f = fopen("/proc/self/statm", "r");
  if (f == nullptr) return -1;
  long size = 0, resident = -1;
  if (fscanf(f, "%ld %ld", &size, &resident) != 2) resident = -1;
  fclose(f);
  return resident < 0 ? -1 : resident * (sysconf(_SC_PAGESIZE) / 1024);
}

TEST(AllocatorTest, TheLinkedAllocatorServesAndReleasesFreeMemory) {
  EXPECT_STREQ(AllocatorName(), TODO_TEST_ALLOCATOR);
  // ~128 MiB in 512-byte blocks (list-entry sized), each written, then freed.
  std::vector<std::unique_ptr<char[]>> blocks(256 * 1024);
  for (auto& b : blocks) {
    b.reset(new char[512]);
    memset(b.get(), 1, 512);
  }
  const long full = RssKib();
  blocks.clear();
  blocks.shrink_to_fit();
  ReleaseFreeMemory();
  const long after = RssKib();
  ASSERT_GT(full, 0);
  ASSERT_GT(after, 0);
  std::printf("RSS with 128 MiB allocated %ld KiB, freed and released %ld KiB (%s)\n", full, after,
              AllocatorName());
  EXPECT_LT(after, full - 64 * 1024) << "freed memory was kept";
}
#endif

}  // namespace
}  // namespace todo::io
