#include "tests/integration/etcd_fixture.h"

#include <httplib.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <random>
#include <sstream>
#include <thread>

namespace todo::testing {
namespace {

using Clock = std::chrono::steady_clock;

bool HealthOk(const std::string& url, Millis timeout) {
  // url = "http://127.0.0.1:PORT"
  httplib::Client c(url);
  c.set_connection_timeout(timeout);
  c.set_read_timeout(timeout);
  c.set_write_timeout(timeout);
  auto res = c.Get("/health");
  return res && res->status == 200 && res->body.find("\"health\":\"true\"") != std::string::npos;
}

std::string Tail(const std::string& text, size_t lines) {
  size_t pos = text.size();
  for (size_t n = 0; n <= lines && pos > 0; ++n) {
    pos = text.rfind('\n', pos - 1);
    if (pos == std::string::npos) return text;
  }
  return text.substr(pos + 1);
}

}  // namespace

std::string EtcdCluster::Binary() {
  const char* env = std::getenv("TODO_ETCD_BIN");
  return env && *env ? env : "/usr/bin/etcd";
}

EtcdCluster::EtcdCluster(EtcdClusterOptions options) : options_(std::move(options)) {
  std::random_device rd;
  token_ = "todo-test-" + std::to_string(getpid()) + "-" + std::to_string(rd());
  for (int i = 0; i < options_.members; ++i) {
    Member m;
    m.name = "e" + std::to_string(i);
    m.data_dir = dir_.Sub(m.name);
    m.log_path = dir_.Sub(m.name + ".log");
    members_.push_back(std::move(m));
  }
}

EtcdCluster::~EtcdCluster() {
  for (Member& m : members_) {
    if (m.process) {
      m.process->Signal(SIGCONT);  // a paused member still dies of SIGKILL, but be tidy
      m.process->Kill9();
    }
  }
}

void EtcdCluster::PickPorts() {
  for (Member& m : members_) {
    m.client_url = "http://127.0.0.1:" + std::to_string(FreeTcpPort());
    m.peer_url = "http://127.0.0.1:" + std::to_string(FreeTcpPort());
  }
}

std::vector<std::string> EtcdCluster::endpoints() const {
  std::vector<std::string> out;
  for (const Member& m : members_) out.push_back(m.client_url);
  return out;
}

std::vector<std::string> EtcdCluster::Args(size_t i) const {
  const Member& m = members_[i];
  std::string initial;
  for (const Member& other : members_) {
    if (!initial.empty()) initial += ",";
    initial += other.name + "=" + other.peer_url;
  }
  std::vector<std::string> args = {"--name",
                                   m.name,
                                   "--data-dir",
                                   m.data_dir,
                                   "--listen-client-urls",
                                   m.client_url,
                                   "--advertise-client-urls",
                                   m.client_url,
                                   "--listen-peer-urls",
                                   m.peer_url,
                                   "--initial-advertise-peer-urls",
                                   m.peer_url,
                                   "--initial-cluster",
                                   initial,
                                   "--initial-cluster-state",
                                   "new",
                                   "--initial-cluster-token",
                                   token_,
                                   "--heartbeat-interval",
                                   std::to_string(options_.heartbeat_ms),
                                   "--election-timeout",
                                   std::to_string(options_.election_ms),
                                   "--logger",
                                   "zap",
                                   "--log-outputs",
                                   "stderr",
                                   "--log-level",
                                   "warn"};
  args.insert(args.end(), options_.extra_flags.begin(), options_.extra_flags.end());
  return args;
}

bool EtcdCluster::Launch(size_t i) {
  members_[i].process = Process::Start(Binary(), Args(i), members_[i].log_path);
  return members_[i].process != nullptr;
}

std::string EtcdCluster::Start(Millis timeout) {
  if (access(Binary().c_str(), X_OK) != 0) {
    return Binary() + " not found: install etcd-server (deploy/install-deps)";
  }
  std::string why;
  for (int round = 0; round < 3; ++round) {
    PickPorts();
    for (size_t i = 0; i < members_.size(); ++i) {
      if (!Launch(i)) return "cannot start " + Binary();
    }
    if (WaitAllHealthy(timeout)) return "";
    bool port_clash = false;
    for (size_t i = 0; i < members_.size(); ++i) {
      port_clash = port_clash || Log(i).find("address already in use") != std::string::npos;
    }
    why = "etcd cluster of " + std::to_string(members_.size()) + " not healthy within " +
          std::to_string(timeout.count()) + " ms\n" + LogTails();
    for (Member& m : members_) {
      if (m.process) m.process->Kill9();
      m.process.reset();
    }
    if (!port_clash) break;
    // Another test took a port: fresh data dirs and ports.
    for (Member& m : members_) {
      std::string rm = "rm -rf '" + m.data_dir + "'";
      if (std::system(rm.c_str()) != 0) return "cannot remove " + m.data_dir;
    }
  }
  return why;
}

pid_t EtcdCluster::pid(size_t i) const {
  const auto& p = members_[i].process;
  return p && !p->exit_status() ? p->pid() : -1;
}

bool EtcdCluster::Running(size_t i) {
  return members_[i].process && members_[i].process->Running();
}

bool EtcdCluster::WaitHealthy(size_t i, Millis timeout) {
  auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (!Running(i)) return false;
    if (HealthOk(members_[i].client_url, Millis(500))) return true;
    std::this_thread::sleep_for(Millis(50));
  }
  return false;
}

bool EtcdCluster::WaitAllHealthy(Millis timeout) {
  auto deadline = Clock::now() + timeout;
  for (size_t i = 0; i < members_.size(); ++i) {
    if (!Running(i)) continue;
    auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now());
    if (left.count() <= 0 || !WaitHealthy(i, left)) return false;
  }
  return true;
}

void EtcdCluster::Kill(size_t i) {
  if (members_[i].process) {
    members_[i].process->Signal(SIGCONT);
    members_[i].process->Kill9();
  }
}

void EtcdCluster::Stop(size_t i) {
  if (members_[i].process) {
    members_[i].process->Signal(SIGCONT);
    members_[i].process->Stop(Millis(10000));
  }
}

bool EtcdCluster::Pause(size_t i) { return members_[i].process && members_[i].process->Freeze(); }

bool EtcdCluster::Resume(size_t i) {
  return members_[i].process && members_[i].process->Signal(SIGCONT);
}

std::string EtcdCluster::Restart(size_t i, Millis timeout) {
  if (Running(i)) return members_[i].name + " is still running";
  if (!Launch(i)) return "cannot start " + Binary();
  if (!WaitHealthy(i, timeout)) {
    return members_[i].name + " not healthy within " + std::to_string(timeout.count()) +
           " ms after a restart\n" + LogTails();
  }
  return "";
}

std::string EtcdCluster::Log(size_t i) const { return ReadFile(members_[i].log_path); }

std::string EtcdCluster::LogTails(size_t lines) const {
  std::ostringstream out;
  for (size_t i = 0; i < members_.size(); ++i) {
    out << "--- " << members_[i].name << " (" << members_[i].log_path << "):\n"
        << Tail(Log(i), lines) << "\n";
  }
  return out.str();
}

}  // namespace todo::testing
