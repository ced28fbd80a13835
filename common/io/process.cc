#include "common/io/process.h"

#include <malloc.h>
#include <signal.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

// gperftools' C entry point (gperftools/malloc_extension_c.h), declared
// weak: null unless tcmalloc is in the process.
extern "C" void MallocExtension_ReleaseFreeMemory(void) __attribute__((weak));

namespace todo::io {

StatusOr<StopSignals> StopSignals::Install() {
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  if (int e = pthread_sigmask(SIG_BLOCK, &stop, nullptr); e != 0) {
    return Status::Internal(std::string("pthread_sigmask: ") + std::strerror(e));
  }
  if (signal(SIGPIPE, SIG_IGN) == SIG_ERR) {
    return Status::Internal(std::string("signal(SIGPIPE): ") + std::strerror(errno));
  }
  int fd = signalfd(-1, &stop, SFD_CLOEXEC);
  if (fd < 0) return Status::Internal(std::string("signalfd: ") + std::strerror(errno));
  return StopSignals(fd);
}

StopSignals& StopSignals::operator=(StopSignals&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) close(fd_);
    fd_ = other.fd_;
    other.fd_ = -1;
  }
  return *this;
}

StopSignals::~StopSignals() {
  if (fd_ >= 0) close(fd_);
}

void SetUpLogging(const std::string& logger_name, std::string_view tag, std::string_view level) {
  auto logger = spdlog::get(logger_name);
  if (!logger) logger = spdlog::stderr_color_mt(logger_name);
  spdlog::set_default_logger(logger);
  auto lvl = spdlog::level::from_str(std::string(level));
  if (lvl == spdlog::level::off && level != "off") lvl = spdlog::level::info;
  spdlog::set_level(lvl);
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ [" + std::string(tag) + "] %v");
}

StatusOr<FileLimit> RaiseOpenFileLimit() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
    return Status::Internal(std::string("getrlimit(RLIMIT_NOFILE): ") + std::strerror(errno));
  }
  FileLimit limit;
  limit.before = rl.rlim_cur;
  if (rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
      return Status::Internal(std::string("setrlimit(RLIMIT_NOFILE, ") +
                              std::to_string(rl.rlim_max) + "): " + std::strerror(errno));
    }
  }
  limit.after = rl.rlim_cur;
  return limit;
}

const char* AllocatorName() {
  return MallocExtension_ReleaseFreeMemory != nullptr ? "tcmalloc_minimal" : "glibc";
}

void ReleaseFreeMemory() {
  if (MallocExtension_ReleaseFreeMemory != nullptr) {
    MallocExtension_ReleaseFreeMemory();
  } else {
    malloc_trim(0);
  }
}

}  // namespace todo::io
