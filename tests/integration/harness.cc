// The process half of the harness: binaries, temp dirs, ports, processes.
#include "tests/integration/harness.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <mutex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace todo::testing {

namespace {

using Clock = std::chrono::steady_clock;

constexpr Millis kPollStep(5);

}  // namespace

// --- Binaries ---------------------------------------------------------------

std::string NodeBinary() {
#ifdef TODO_NODE_BIN
  return TODO_NODE_BIN;
#else
  return "";
#endif
}

std::string RouterBinary() {
#ifdef TODO_ROUTER_BIN
  return TODO_ROUTER_BIN;
#else
  return "";
#endif
}

// --- Files and ports ----------------------------------------------------------

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl =
      std::string(base != nullptr && *base != '\0' ? base : "/tmp") + "/todo-integ-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (mkdtemp(buf.data()) == nullptr) {
    throw std::runtime_error("mkdtemp failed: " + std::string(std::strerror(errno)));
  }
  path_ = buf.data();
}

TempDir::~TempDir() {
  const char* keep = std::getenv("TODO_KEEP_TEMP");
  if (keep != nullptr && std::string(keep) == "1") return;
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string TempDir::Sub(std::string_view name) const { return path_ + "/" + std::string(name); }

namespace {

// A port the kernel has free now (bound to port 0, then released).
int KernelFreeTcpPort() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error("socket failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    close(fd);
    throw std::runtime_error("bind/getsockname failed");
  }
  close(fd);
  return ntohs(addr.sin_port);
}

}  // namespace

int FreeTcpPort() {
  // A released port is free again, so the kernel may hand it out twice
  // before its first taker binds it (a cluster picks all its endpoints
  // first): never give the same port twice in one process.
  static std::mutex mu;
  static std::set<int> given;
  std::lock_guard<std::mutex> lock(mu);
  for (int attempt = 0; attempt < 1000; ++attempt) {
    const int port = KernelFreeTcpPort();
    if (given.insert(port).second) return port;
  }
  throw std::runtime_error("no unused loopback port after 1000 attempts");
}

std::string LoopbackEndpoint(int port) { return "tcp://127.0.0.1:" + std::to_string(port); }

std::string FreeLoopbackEndpoint() { return LoopbackEndpoint(FreeTcpPort()); }

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// --- Processes ----------------------------------------------------------------

bool ExitStatus::exited() const { return WIFEXITED(raw); }
int ExitStatus::code() const { return WEXITSTATUS(raw); }
bool ExitStatus::signaled() const { return WIFSIGNALED(raw); }
int ExitStatus::signal() const { return WTERMSIG(raw); }
std::string ExitStatus::ToString() const {
  if (exited()) return "exit " + std::to_string(code());
  if (signaled()) return "signal " + std::to_string(signal());
  return "wait status " + std::to_string(raw);
}

std::unique_ptr<Process> Process::Start(const std::string& binary,
                                        const std::vector<std::string>& args,
                                        const std::string& log_path,
                                        const std::string& stderr_path) {
  const int flags = O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC;
  int out_fd = open(log_path.c_str(), flags, 0644);
  if (out_fd < 0) return nullptr;
  int err_fd = stderr_path.empty() ? out_fd : open(stderr_path.c_str(), flags, 0644);
  if (err_fd < 0) {
    close(out_fd);
    return nullptr;
  }
  int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

  // Everything the child needs is prepared before fork: after fork only
  // async-signal-safe calls are allowed (the parent has zmq threads).
  std::vector<std::string> argv_storage;
  argv_storage.push_back(binary);
  argv_storage.insert(argv_storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_storage) argv.push_back(a.data());
  argv.push_back(nullptr);
  const std::string exec_error = "harness: exec failed: " + binary + "\n";
  const pid_t parent = getpid();

  pid_t pid = fork();
  if (pid == 0) {
    // Die with the test binary, whatever kills it.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(126);
    if (null_fd >= 0) dup2(null_fd, STDIN_FILENO);
    dup2(out_fd, STDOUT_FILENO);
    dup2(err_fd, STDERR_FILENO);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    execv(binary.c_str(), argv.data());
    ssize_t ignored = write(STDERR_FILENO, exec_error.data(), exec_error.size());
    (void)ignored;
    _exit(127);
  }
  if (null_fd >= 0) close(null_fd);
  if (err_fd != out_fd) close(err_fd);
  close(out_fd);
  if (pid < 0) return nullptr;

  std::unique_ptr<Process> p(new Process());
  p->pid_ = pid;
  p->log_path_ = log_path;
  p->stderr_path_ = stderr_path.empty() ? log_path : stderr_path;
  return p;
}

Process::~Process() {
  if (pid_ > 0 && !status_) Kill9();
}

bool Process::TryReap(int flags) {
  if (status_) return true;
  int st = 0;
  pid_t r;
  do {
    r = waitpid(pid_, &st, flags);
  } while (r < 0 && errno == EINTR);
  if (r == pid_) {
    status_ = ExitStatus{st};
    return true;
  }
  if (r < 0 && errno == ECHILD) {
    // Reaped elsewhere; nothing more to wait for.
    status_ = ExitStatus{0};
    return true;
  }
  return false;
}

bool Process::Running() { return !TryReap(WNOHANG); }

bool Process::Signal(int sig) {
  if (status_ || pid_ <= 0) return false;
  return kill(pid_, sig) == 0;
}

namespace {

// Whether every thread of `pid` is stopped ('T' in /proc/PID/task/*/stat).
bool AllThreadsStopped(pid_t pid) {
  const std::filesystem::path tasks = "/proc/" + std::to_string(pid) + "/task";
  std::error_code ec;
  size_t seen = 0;
  for (const auto& t : std::filesystem::directory_iterator(tasks, ec)) {
    std::ifstream in(t.path() / "stat");
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    // "pid (comm) S ...": the state follows the last ')'.
    const auto close = stat.rfind(')');
    if (close == std::string::npos || close + 2 >= stat.size()) return false;
    if (stat[close + 2] != 'T' && stat[close + 2] != 't') return false;
    ++seen;
  }
  return !ec && seen > 0;
}

}  // namespace

bool Process::Freeze(Millis timeout) {
  if (!Signal(SIGSTOP)) return false;
  const auto deadline = Clock::now() + timeout;
  while (!AllThreadsStopped(pid_)) {
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(Millis(1));
  }
  return true;
}

std::optional<ExitStatus> Process::WaitExit(Millis timeout) {
  const auto deadline = Clock::now() + timeout;
  while (!TryReap(WNOHANG)) {
    if (Clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(kPollStep);
  }
  return status_;
}

ExitStatus Process::Stop(Millis timeout) {
  if (status_) return *status_;
  Signal(SIGTERM);
  if (auto st = WaitExit(timeout)) return *st;
  return Kill9();
}

ExitStatus Process::Kill9() {
  if (status_) return *status_;
  kill(pid_, SIGKILL);
  // SIGKILL cannot be caught; a blocking reap is bounded by the kernel.
  TryReap(0);
  return *status_;
}

bool WaitForFileContent(const std::string& path, std::string_view needle, Millis timeout) {
  const auto deadline = Clock::now() + timeout;
  while (true) {
    if (ReadFile(path).find(needle) != std::string::npos) return true;
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(Millis(20));
  }
}

Process* ProcessGroup::Start(const std::string& binary, const std::vector<std::string>& args,
                             const std::string& log_path, const std::string& stderr_path) {
  return Adopt(Process::Start(binary, args, log_path, stderr_path));
}

Process* ProcessGroup::Adopt(std::unique_ptr<Process> process) {
  if (!process) return nullptr;
  processes_.push_back(std::move(process));
  return processes_.back().get();
}

std::vector<ExitStatus> ProcessGroup::StopAll(Millis timeout) {
  for (auto& p : processes_) p->Signal(SIGTERM);
  const auto deadline = Clock::now() + timeout;
  std::vector<ExitStatus> result;
  for (auto& p : processes_) {
    auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now());
    if (left < Millis(0)) left = Millis(0);
    auto st = p->WaitExit(left);
    result.push_back(st ? *st : p->Kill9());
  }
  return result;
}

std::vector<std::string> NodeArgs(const std::string& name, const std::string& endpoint,
                                  const std::string& data_dir,
                                  const std::vector<std::string>& extra) {
  std::vector<std::string> args = {"--name", name, "--listen", endpoint, "--data", data_dir};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

}  // namespace todo::testing
