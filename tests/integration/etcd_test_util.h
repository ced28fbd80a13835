// Helpers for the tests of common/io/etcd against a real etcd
// (etcd_fixture.h): clients with short timeouts, a recorder of watch
// updates with bounded waits, and polling with a deadline.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "common/io/etcd/client.h"
#include "common/io/etcd/watch.h"
#include "tests/integration/etcd_fixture.h"

namespace todo::testing {

inline std::unique_ptr<io::EtcdClient> EtcdClientOf(std::vector<std::string> endpoints,
                                                    Millis attempt = Millis(1000),
                                                    Millis call = Millis(5000)) {
  io::EtcdClient::Options o;
  o.attempt_timeout = attempt;
  o.call_timeout = call;
  auto c = io::EtcdClient::Create(std::move(endpoints), o);
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  return c.ok() ? std::move(c).value() : nullptr;
}

// Polls `done` every 20 ms until it is true or `timeout` passes.
inline bool Eventually(const std::function<bool()>& done, Millis timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(Millis(20));
  }
  return done();
}

// Every update a watch delivered, in order.
class WatchRecorder {
 public:
  std::function<void(const io::WatchUpdate&)> Callback() {
    return [this](const io::WatchUpdate& u) {
      std::lock_guard<std::mutex> lock(mu_);
      all_.push_back(u);
      cv_.notify_all();
    };
  }
  // The next update of `kind` from position *at on (advancing past it).
  std::optional<io::WatchUpdate> WaitFor(io::WatchUpdate::Kind kind, size_t* at,
                                         Millis timeout = Millis(15000)) {
    std::unique_lock<std::mutex> lock(mu_);
    std::optional<io::WatchUpdate> found;
    cv_.wait_for(lock, timeout, [&] {
      for (; *at < all_.size(); ++*at) {
        if (all_[*at].kind == kind) {
          found = all_[(*at)++];
          return true;
        }
      }
      return false;
    });
    return found;
  }
  // Every event delivered so far, in order.
  std::vector<io::Event> Events() {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<io::Event> out;
    for (const auto& u : all_) out.insert(out.end(), u.events.begin(), u.events.end());
    return out;
  }
  // Waits until at least `n` events were delivered.
  bool WaitEvents(size_t n, Millis timeout = Millis(15000)) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, [&] {
      size_t count = 0;
      for (const auto& u : all_) count += u.events.size();
      return count >= n;
    });
  }
  size_t Count(io::WatchUpdate::Kind kind) {
    std::lock_guard<std::mutex> lock(mu_);
    size_t n = 0;
    for (const auto& u : all_) n += u.kind == kind;
    return n;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<io::WatchUpdate> all_;
};

}  // namespace todo::testing
