// Black-box test harness: start real binaries (todo-node, todo-router) on
// loopback, talk to them over ZeroMQ, and always clean up.
//
// The harness deliberately does not use common/protocol.h: requests and
// replies are built and read with msgpack-cxx directly, so the tests stay
// independent of the codec they exercise.
//
// Nothing here blocks without a bound: every wait takes a timeout. A Process
// is killed and reaped by pid when it goes out of scope, and the child is
// also killed by the kernel (PR_SET_PDEATHSIG) if the test binary dies.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <msgpack.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>
#include <zmq.hpp>

namespace todo::testing {

using Millis = std::chrono::milliseconds;

// ---------------------------------------------------------------------------
// Binaries under test.

// Absolute path of todo-node, or "" if the build has no such target.
std::string NodeBinary();
// Absolute path of todo-router, or "" if the build has no such target.
std::string RouterBinary();

// ---------------------------------------------------------------------------
// Files and ports.

// A fresh directory (mkdtemp under $TMPDIR or /tmp), removed recursively on
// destruction unless the environment sets TODO_KEEP_TEMP=1.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  // path()/name (not created).
  std::string Sub(std::string_view name) const;

 private:
  std::string path_;
};

// A TCP port on 127.0.0.1 that was free a moment ago (bind port 0, read it,
// close). Another process may take it before the caller does; good enough
// for tests on one machine.
int FreeTcpPort();
// "tcp://127.0.0.1:PORT".
std::string LoopbackEndpoint(int port);
// A fresh loopback endpoint on a free port.
std::string FreeLoopbackEndpoint();

// The whole content of a file ("" if it can't be read).
std::string ReadFile(const std::string& path);

// ---------------------------------------------------------------------------
// Processes.

// How a process ended, as waitpid reported it.
struct ExitStatus {
  int raw = 0;
  bool exited() const;  // normal exit; code() is valid
  int code() const;
  bool signaled() const;  // killed by a signal; signal() is valid
  int signal() const;
  std::string ToString() const;  // "exit 0", "signal 9"
};

// A child process running `binary` with `args`. Its stdout and stderr go to
// log files. Not thread-safe; owned by one test.
class Process {
 public:
  // Forks and execs. stdout and stderr go to `log_path` (appended), or, if
  // `stderr_path` is non-empty, stderr goes there instead. Returns nullptr if
  // fork or a log file fails; an exec failure shows as exit status 127 with
  // the reason in the log.
  static std::unique_ptr<Process> Start(const std::string& binary,
                                        const std::vector<std::string>& args,
                                        const std::string& log_path,
                                        const std::string& stderr_path = "");

  // Kills (SIGKILL) and reaps the child if it has not been reaped yet.
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  const std::string& log_path() const { return log_path_; }
  // Where stderr goes (== log_path() unless given separately).
  const std::string& stderr_path() const { return stderr_path_; }
  std::string ReadLog() const { return ReadFile(log_path_); }
  std::string ReadStderr() const { return ReadFile(stderr_path_); }

  // True while the child has not been reaped and has not exited.
  bool Running();
  // Sends `sig`; false if the child is already reaped or kill() fails.
  bool Signal(int sig);
  // SIGSTOP, then waits (up to `timeout`) until every thread of the child
  // is stopped; false if it could not be signalled or did not stop in time.
  // kill() returns before the group stop completes: until the thread that
  // took the signal runs (on a busy VM, milliseconds later) the others go on
  // working, and a "frozen" process could still answer a request. Resume
  // with Signal(SIGCONT).
  bool Freeze(Millis timeout = Millis(5000));
  // Waits up to `timeout` for the child to exit and reaps it. Returns its
  // status, or nullopt if it is still running. Idempotent once exited.
  std::optional<ExitStatus> WaitExit(Millis timeout);
  // SIGTERM, wait up to `timeout`, then SIGKILL and reap. Always returns the
  // final status (a SIGKILL shows as signaled()).
  ExitStatus Stop(Millis timeout = Millis(15000));
  // SIGKILL and reap.
  ExitStatus Kill9();
  // The status once reaped.
  const std::optional<ExitStatus>& exit_status() const { return status_; }

 private:
  Process() = default;
  bool TryReap(int flags);

  pid_t pid_ = -1;
  std::string log_path_;
  std::string stderr_path_;
  std::optional<ExitStatus> status_;
};

// Polls the file at `path` until it contains `needle` or `timeout` passes.
bool WaitForFileContent(const std::string& path, std::string_view needle, Millis timeout);

// N processes stopped together: StopAll sends SIGTERM to all, waits, then
// SIGKILLs the rest. The destructor kills what is left.
class ProcessGroup {
 public:
  // Starts a process and keeps it; returns it (nullptr on failure).
  Process* Start(const std::string& binary, const std::vector<std::string>& args,
                 const std::string& log_path, const std::string& stderr_path = "");
  // Takes ownership of an already-started process.
  Process* Adopt(std::unique_ptr<Process> process);
  std::vector<std::unique_ptr<Process>>& processes() { return processes_; }
  size_t size() const { return processes_.size(); }
  Process& operator[](size_t i) { return *processes_[i]; }
  // SIGTERM to every running process, then waits up to `timeout` in total,
  // then SIGKILL. Returns the statuses in order.
  std::vector<ExitStatus> StopAll(Millis timeout = Millis(15000));

 private:
  std::vector<std::unique_ptr<Process>> processes_;
};

// Command line for todo-node.
std::vector<std::string> NodeArgs(const std::string& name, const std::string& endpoint,
                                  const std::string& data_dir,
                                  const std::vector<std::string>& extra = {});

// ---------------------------------------------------------------------------
// Request bodies.

// One msgpack value for a request map, key or value. Strings are packed as
// msgpack str; Bin and Raw give the other shapes tests need.
class Value {
 public:
  Value(const char* s) : kind_(Kind::kStr), bytes_(s) {}             // NOLINT: implicit
  Value(std::string s) : kind_(Kind::kStr), bytes_(std::move(s)) {}  // NOLINT
  Value(std::string_view s) : kind_(Kind::kStr), bytes_(s) {}        // NOLINT
  Value(int v) : Value(static_cast<long long>(v)) {}                 // NOLINT
  Value(long v) : Value(static_cast<long long>(v)) {}                // NOLINT
  Value(long long v);  // NOLINT: negative -> msgpack int, else uint
  Value(unsigned v) : Value(static_cast<unsigned long long>(v)) {}       // NOLINT
  Value(unsigned long v) : Value(static_cast<unsigned long long>(v)) {}  // NOLINT
  Value(unsigned long long v) : kind_(Kind::kUint), uint_(v) {}          // NOLINT

  static Value Nil();
  static Value Bool(bool b);
  // Always encoded as msgpack float64, even when integral.
  static Value Double(double d);
  // A msgpack bin with these bytes.
  static Value Bin(std::string bytes);
  // Pre-encoded msgpack bytes inserted verbatim (e.g. an array or a map).
  static Value Raw(std::string msgpack_bytes);

  // Appends the msgpack encoding to `out`.
  void PackTo(msgpack::sbuffer& out) const;

 private:
  enum class Kind { kNil, kBool, kInt, kUint, kDouble, kStr, kBin, kRaw };
  Value() = default;
  Kind kind_ = Kind::kNil;
  std::string bytes_;
  long long int_ = 0;
  unsigned long long uint_ = 0;
  double double_ = 0;
  bool bool_ = false;
};

// A request map in key order. Keys are usually strings:
//   Map{{"op", "add_entry"}, {"list", "l"}, {"id", 7}}
using Map = std::vector<std::pair<Value, Value>>;

// The msgpack encoding of `map` (a map whose keys and values are as given).
std::string Pack(const Map& map);
// The msgpack encoding of one value.
std::string PackValue(const Value& value);

// ---------------------------------------------------------------------------
// Replies.

// A received message: its frames and, if the last frame is exactly one
// msgpack value, that value. Copyable (the decoded value is shared).
class Reply {
 public:
  Reply() = default;
  explicit Reply(std::vector<std::string> frames);

  const std::vector<std::string>& frames() const { return frames_; }
  // The last frame ("" if none).
  const std::string& body() const;
  // Every frame before the last.
  std::vector<std::string> envelope() const;

  // True if the body decodes to exactly one msgpack value, with no trailing
  // bytes, and that value is a map.
  bool is_map() const;
  // The decoded value (nil if the body did not decode).
  const msgpack::object& root() const;
  // A top-level key of the map, or nullptr.
  const msgpack::object* Get(std::string_view key) const;

  // "ok" is the boolean true.
  bool ok() const;
  // error.code and error.message as strings ("" if absent or not str).
  std::string error_code() const;
  std::string error_message() const;
  // "result", or nullptr.
  const msgpack::object* result() const;
  // A JSON-like rendering of the whole reply, for failure messages.
  std::string ToString() const;

 private:
  std::vector<std::string> frames_;
  std::shared_ptr<msgpack::object_handle> handle_;
  bool decoded_ = false;
};

// Lookups on decoded objects; all tolerate nullptr and wrong types.
const msgpack::object* MapGet(const msgpack::object* map, std::string_view key);
std::optional<std::string> AsStr(const msgpack::object* o);
std::optional<uint64_t> AsUint(const msgpack::object* o);
std::optional<bool> AsBool(const msgpack::object* o);
// Array elements (empty if `o` is not an array).
std::vector<const msgpack::object*> AsArray(const msgpack::object* o);
std::string ToString(const msgpack::object* o);

// ---------------------------------------------------------------------------
// Clients.

// A client socket connected to one endpoint. Sends and receives are bounded
// (send timeout 5 s, receive timeout per call). HWMs are unlimited so a test
// can pipeline thousands of requests without the client dropping or blocking.
class Client {
 public:
  enum class Mode {
    kDealer,               // DEALER; a request is [body]
    kDealerWithDelimiter,  // DEALER; a request is ["", body]
    kReq,                  // REQ; the socket adds the delimiter itself
  };

  explicit Client(std::string endpoint, Mode mode = Mode::kDealer);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  Mode mode() const { return mode_; }
  const std::string& endpoint() const { return endpoint_; }

  // Sends one request framed per mode(). False on send failure/timeout.
  bool Send(const Map& request);
  bool SendBody(std::string_view body);
  // Sends these frames as one multipart message, verbatim (DEALER modes;
  // on REQ the socket still prepends its delimiter).
  bool SendFrames(const std::vector<std::string>& frames);

  // Receives one whole message within `timeout`. In kDealerWithDelimiter mode
  // the frames are returned as received (delimiter included), so tests can
  // check the framing. nullopt on timeout.
  std::optional<Reply> Recv(Millis timeout);
  // Send + Recv. On a REQ socket a timed-out call resets the socket so the
  // next call can send.
  std::optional<Reply> Call(const Map& request, Millis timeout = Millis(10000));
  std::optional<Reply> CallBody(std::string_view body, Millis timeout = Millis(10000));

  // Closes and reopens the socket (drops anything pending).
  void Reset();

 private:
  void Open();

  std::string endpoint_;
  Mode mode_;
  zmq::context_t context_{1};
  std::unique_ptr<zmq::socket_t> socket_;
};

// Pings `endpoint` until it answers with an ok reply or `timeout` passes.
// If `process` is given, gives up as soon as it has exited.
bool WaitUntilReady(const std::string& endpoint, Millis timeout, Process* process = nullptr);

}  // namespace todo::testing
