#include "common/io/etcd/lease_keeper.h"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace todo::io {
namespace {

using std::chrono::milliseconds;
// Failed calls in a row are logged at most this often.
constexpr auto kLogEvery = std::chrono::seconds(5);

int64_t RoundUpSeconds(milliseconds ms) { return (ms.count() + 999) / 1000; }

}  // namespace

Status LeaseKeeper::Options::Validate() const {
  if (ttl.count() <= 0) return Status::BadRequest("lease TTL must be positive");
  if (retry_interval.count() <= 0)
    return Status::BadRequest("lease retry interval must be positive");
  if (margin.count() < 0 || keepalive_interval.count() < 0) {
    return Status::BadRequest("lease margin and keepalive interval must not be negative");
  }
  const milliseconds rounded(RoundUpSeconds(ttl) * 1000);
  if (margin >= rounded) return Status::BadRequest("lease margin must be below the TTL");
  if (keepalive_interval.count() > 0 && keepalive_interval >= rounded - margin) {
    return Status::BadRequest("lease keepalive interval must be below the TTL less the margin");
  }
  return Status::Ok();
}

LeaseKeeper::LeaseKeeper(EtcdClient* client, Options options, Listener listener)
    : client_(client), options_(options), listener_(std::move(listener)) {}

LeaseKeeper::~LeaseKeeper() { Stop(); }

Status LeaseKeeper::Start() {
  if (Status s = options_.Validate(); !s.ok()) return s;
  if (thread_.joinable()) return Status::Internal("lease keeper already started");
  try {
    thread_ = std::thread([this] { Loop(); });
  } catch (const std::system_error& e) {
    return Status::Internal(std::string("cannot start the lease thread: ") + e.what());
  }
  return Status::Ok();
}

void LeaseKeeper::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
  }
  cv_.notify_all();
  if (!thread_.joinable()) return;
  thread_.join();
  if (!options_.revoke_on_stop) return;  // still valid until valid_until(), unrenewed
  int64_t id = lease_id_.exchange(0, std::memory_order_acq_rel);
  valid_until_.store(0, std::memory_order_release);
  if (id != 0) {
    if (Status s = client_->Revoke(id); !s.ok() && s.code() != ErrorCode::kNotFound) {
      spdlog::warn("lease {:x}: revoke on stop failed ({}); it expires by itself", id, s.message());
    }
  }
}

bool LeaseKeeper::WaitValid(milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, timeout, [this] { return stopping_ || Valid(); }) && Valid();
}

bool LeaseKeeper::WaitUntil(Clock::time_point t) {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_until(lock, t, [this] { return stopping_; });
}

void LeaseKeeper::SetValidUntil(Clock::time_point t) {
  {
    std::lock_guard<std::mutex> lock(mu_);  // so WaitValid sees it
    valid_until_.store(t.time_since_epoch().count(), std::memory_order_release);
  }
  cv_.notify_all();
}

milliseconds LeaseKeeper::Margin(int64_t ttl_s) const {
  if (options_.margin.count() > 0) return options_.margin;
  return std::max(milliseconds(200), milliseconds(ttl_s * 1000 / 10));
}

milliseconds LeaseKeeper::Interval(int64_t ttl_s) const {
  if (options_.keepalive_interval.count() > 0) return options_.keepalive_interval;
  return milliseconds(ttl_s * 1000 / 8);
}

void LeaseKeeper::Lose(int64_t id) {
  lease_id_.store(0, std::memory_order_release);
  granted_ttl_.store(0, std::memory_order_release);
  SetValidUntil(Clock::time_point());
  losses_.fetch_add(1, std::memory_order_relaxed);
  if (listener_) listener_(Event::kLost, id);
}

void LeaseKeeper::Loop() {
  const int64_t ttl_s = RoundUpSeconds(options_.ttl);
  Clock::time_point next{};      // when to renew
  Clock::time_point last_log{};  // of a failure
  int64_t lost = 0;              // a lost lease to revoke once a new one is granted
  auto log_failure = [&](const char* what, int64_t id, const Status& s) {
    auto now = Clock::now();
    if (now - last_log >= kLogEvery) {
      last_log = now;
      spdlog::warn("lease {:x}: {} failed: {}", id, what, s.message());
    }
  };
  while (true) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return;
    }
    int64_t id = lease_id_.load(std::memory_order_acquire);
    if (id == 0) {
      auto sent = Clock::now();
      auto g = client_->Grant(ttl_s);
      if (!g.ok()) {
        log_failure("grant", 0, g.status());
        if (WaitUntil(Clock::now() + options_.retry_interval)) return;
        continue;
      }
      last_log = {};
      granted_ttl_.store(g->ttl, std::memory_order_release);
      lease_id_.store(g->id, std::memory_order_release);
      SetValidUntil(sent + std::chrono::seconds(g->ttl) - Margin(g->ttl));
      grants_.fetch_add(1, std::memory_order_relaxed);
      spdlog::info("lease {:x} granted, TTL {} s (asked {} s)", g->id, g->ttl, ttl_s);
      if (listener_) listener_(Event::kGranted, g->id);
      next = sent + Interval(g->ttl);
      if (lost != 0) {
        (void)client_->Revoke(lost);  // best effort: etcd may have expired it already
        lost = 0;
      }
      continue;
    }
    if (WaitUntil(next)) return;
    auto sent = Clock::now();
    if (sent >= valid_until()) {
      spdlog::warn("lease {:x}: lost (no renewal answered before it could expire)", id);
      lost = id;
      Lose(id);
      continue;
    }
    auto ttl = client_->KeepAliveOnce(id);
    if (ttl.ok() && *ttl > 0) {
      last_log = {};
      granted_ttl_.store(*ttl, std::memory_order_release);
      SetValidUntil(sent + std::chrono::seconds(*ttl) - Margin(*ttl));
      next = sent + Interval(*ttl);
    } else if (ttl.ok()) {
      spdlog::warn("lease {:x}: lost (etcd says it is gone)", id);
      Lose(id);
    } else {
      log_failure("keepalive", id, ttl.status());
      next = std::min(Clock::now() + options_.retry_interval, valid_until());
    }
  }
}

}  // namespace todo::io
