// EtcdCluster: a throwaway local etcd cluster for tests: 1 or 3 (any N)
// members of /usr/bin/etcd (Debian's etcd-server; $TODO_ETCD_BIN overrides)
// on 127.0.0.1 with free random ports, data in a temporary directory.
//
// Every wait is bounded; every member is killed by pid (SIGKILL, then
// reaped) when the cluster is destroyed, and by the kernel if the test
// process dies (PR_SET_PDEATHSIG, see harness.h). Members keep etcd's
// fsync; heartbeat and election timeouts are etcd's defaults (100 ms,
// 1000 ms) unless the options lower them.
//
// Not thread-safe: one test owns it.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "tests/integration/harness.h"

namespace todo::testing {

struct EtcdClusterOptions {
  int members = 1;
  int heartbeat_ms = 100;  // --heartbeat-interval
  int election_ms = 1000;  // --election-timeout
  // Extra flags for every member (e.g. "--auto-compaction-retention=1").
  std::vector<std::string> extra_flags;

  static EtcdClusterOptions Members(int n) {
    EtcdClusterOptions o;
    o.members = n;
    return o;
  }
};

class EtcdCluster {
 public:
  // The etcd binary: $TODO_ETCD_BIN, else /usr/bin/etcd.
  static std::string Binary();

  explicit EtcdCluster(EtcdClusterOptions options = {});
  ~EtcdCluster();  // kills every member, removes the data
  EtcdCluster(const EtcdCluster&) = delete;
  EtcdCluster& operator=(const EtcdCluster&) = delete;

  // Starts every member and waits up to `timeout` until each says it is
  // healthy (GET /health: it has a leader). "" on success, else why (with
  // the tail of the members' logs). Picks new ports and tries again (up to
  // 3 times) if a member could not bind its ports.
  std::string Start(Millis timeout = Millis(30000));

  size_t size() const { return members_.size(); }
  // Client URLs, "http://127.0.0.1:PORT", one per member.
  std::vector<std::string> endpoints() const;
  const std::string& endpoint(size_t i) const { return members_[i].client_url; }
  // The member's pid, -1 if it is not running.
  pid_t pid(size_t i) const;
  bool Running(size_t i);

  // GET /health on member i answers {"health":"true"} within `timeout`.
  bool WaitHealthy(size_t i, Millis timeout);
  // Every running member healthy within `timeout`.
  bool WaitAllHealthy(Millis timeout);

  void Kill(size_t i);    // SIGKILL and reap
  void Stop(size_t i);    // SIGTERM, then SIGKILL after 10 s
  bool Pause(size_t i);   // Process::Freeze: SIGSTOP, returns once every thread stopped
  bool Resume(size_t i);  // SIGCONT
  // Starts a stopped or killed member again on its data and ports; waits
  // up to `timeout` until it is healthy. "" on success, else why.
  std::string Restart(size_t i, Millis timeout = Millis(20000));

  // The member's log (etcd's stderr).
  std::string Log(size_t i) const;
  // The last `lines` lines of every member's log, for failure messages.
  std::string LogTails(size_t lines = 20) const;

 private:
  struct Member {
    std::string name;
    std::string client_url;
    std::string peer_url;
    std::string data_dir;
    std::string log_path;
    std::unique_ptr<Process> process;
  };
  void PickPorts();
  std::vector<std::string> Args(size_t i) const;
  bool Launch(size_t i);

  const EtcdClusterOptions options_;
  TempDir dir_;
  std::string token_;
  std::vector<Member> members_;
};

}  // namespace todo::testing
