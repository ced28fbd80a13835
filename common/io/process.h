// Process set-up shared by todo-node, todo-router and todo-admin: stop
// signals read from a signalfd, SIGPIPE ignored, the stderr logger, and the
// open-file limit.
//
// Call these from main() before any thread starts: the signal mask is
// inherited by every thread created afterwards, so only the signalfd ever
// sees SIGTERM and SIGINT.
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"

namespace todo::io {

// A signalfd readable when SIGTERM or SIGINT arrives. Owns the fd (closed on
// destruction). Move-only.
class StopSignals {
 public:
  // Blocks SIGTERM and SIGINT in the calling thread (and so in every thread
  // it starts afterwards), ignores SIGPIPE (a write to a closed socket
  // returns EPIPE instead of killing the process), and opens the signalfd.
  // internal naming the call that failed.
  static StatusOr<StopSignals> Install();

  StopSignals(StopSignals&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  StopSignals& operator=(StopSignals&& other) noexcept;
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;
  ~StopSignals();

  // The signalfd (read a signalfd_siginfo from it); -1 once moved from.
  int fd() const { return fd_; }

 private:
  explicit StopSignals(int fd) : fd_(fd) {}
  int fd_ = -1;
};

// Makes a colour stderr logger named `logger_name` the default, at `level`
// (trace, debug, info, warn or warning, error or err, critical, off;
// anything else is info), with lines "2026-12-19T09:30:00.123 info [TAG] message".
// Call once per process.
void SetUpLogging(const std::string& logger_name, std::string_view tag, std::string_view level);

// What RaiseOpenFileLimit did.
struct FileLimit {
  uint64_t before = 0;  // the soft limit found
  uint64_t after = 0;   // the soft limit now (== the hard limit on success)
};

// Raises the soft RLIMIT_NOFILE to the hard limit (every connection, LevelDB
// table and etcd stream is a descriptor; the soft default of 1024 is low
// for a server). internal if getrlimit/setrlimit fail; the limit is then
// unchanged.
StatusOr<FileLimit> RaiseOpenFileLimit();

// The allocator serving malloc in this process: "tcmalloc_minimal" when
// gperftools' tcmalloc is linked in (TODO_MALLOC, CMakeLists.txt) or
// preloaded, else "glibc". Found at run time, from tcmalloc's C entry
// points (weak references), so a library needs no build flag to know.
const char* AllocatorName();

// Hands the memory the allocator holds free back to the OS: tcmalloc's
// ReleaseFreeMemory (it otherwise keeps freed pages in its page heap and
// returns them only slowly), glibc's malloc_trim(0) (its arenas). Costs a
// walk of the free lists; call after freeing much at once (idle lists
// evicted), not per request.
void ReleaseFreeMemory();

}  // namespace todo::io
