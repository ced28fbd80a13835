#include "tests/bench/driver.h"

#include <time.h>

#include <algorithm>
#include <cerrno>
#include <deque>
#include <limits>

namespace todo::bench {
namespace {

constexpr int64_t kExpiryCheckNs = 10'000'000;  // how often deadlines are checked
constexpr int64_t kMaxPollNs = 100'000'000;     // wake up at least this often

uint64_t Tag(uint32_t gen, uint32_t slot) { return (uint64_t{gen} << 32) | slot; }

}  // namespace

int64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

void RunStats::Merge(const RunStats& other) {
  for (int op = 0; op < kNumLoadOps; ++op) {
    latency[op].Merge(other.latency[op]);
    for (int o = 0; o < kNumOutcomes; ++o) outcomes[op][o] += other.outcomes[op][o];
  }
  for (int o = 0; o < kNumOutcomes; ++o) preload[o] += other.preload[o];
  warmup_ok += other.warmup_ok;
  late_replies += other.late_replies;
  stray_replies += other.stray_replies;
  redirected += other.redirected;
  unfinished += other.unfinished;
  broken_connections += other.broken_connections;
}

ThreadDriver::ThreadDriver(const Workload& workload, DriverOptions options,
                           std::vector<std::unique_ptr<Connection>> connections,
                           std::vector<RequestStream> streams)
    : workload_(workload), options_(options), streams_(std::move(streams)) {
  conns_.resize(connections.size());
  for (size_t c = 0; c < conns_.size(); ++c) {
    Conn& conn = conns_[c];
    conn.connection = std::move(connections[c]);
    conn.slots.resize(options_.window);
    conn.free.reserve(options_.window);
    for (uint32_t s = options_.window; s-- > 0;) conn.free.push_back(s);
  }
  completions_.reserve(2 * options_.window);
}

void ThreadDriver::TopUp(size_t c, Source& source, int64_t timeout_ns) {
  Conn& conn = conns_[c];
  if (conn.broken) return;
  conn.blocked = false;
  bool sent_any = false;
  while (!conn.free.empty()) {
    BenchRequest request;
    uint64_t cookie = 0;
    if (conn.pending) {
      request = *conn.pending;
      cookie = conn.pending_cookie;
    } else if (!source.Next(c, &request, &cookie)) {
      break;
    }
    uint32_t index = conn.free.back();
    Slot& slot = conn.slots[index];
    uint32_t gen = slot.gen + 1;
    Connection::SendResult result = conn.connection->Send(request, Tag(gen, index));
    if (result == Connection::SendResult::kWouldBlock) {
      conn.pending = request;
      conn.pending_cookie = cookie;
      conn.blocked = true;
      break;
    }
    conn.pending.reset();
    if (result == Connection::SendResult::kFailed) {
      conn.broken = true;
      ++stats_.broken_connections;
      return;
    }
    conn.free.pop_back();
    slot.gen = gen;
    slot.busy = true;
    slot.op = request.op;
    slot.sent_ns = NowNs();
    slot.deadline_ns = slot.sent_ns + timeout_ns;
    slot.cookie = cookie;
    ++in_flight_;
    sent_any = true;
  }
  if (sent_any || conn.connection->WantsWrite()) {
    if (!conn.connection->Flush().ok()) {
      conn.broken = true;
      ++stats_.broken_connections;
    }
  }
}

void ThreadDriver::ExpireDue(Source& source, int64_t now_ns) {
  for (size_t c = 0; c < conns_.size(); ++c) {
    Conn& conn = conns_[c];
    for (uint32_t i = 0; i < conn.slots.size(); ++i) {
      Slot& slot = conn.slots[i];
      if (!slot.busy || slot.deadline_ns > now_ns) continue;
      // The generation stays: a late reply finds the slot free or reused.
      slot.busy = false;
      conn.free.push_back(i);
      --in_flight_;
      source.Done(c, slot, Outcome::kClientTimeout, now_ns);
    }
  }
}

void ThreadDriver::Pump(Source& source, int64_t until_ns, int64_t timeout_ns) {
  int64_t next_expiry_ns = NowNs() + kExpiryCheckNs;
  for (;;) {
    int64_t now = NowNs();
    if (now >= until_ns) break;
    for (size_t c = 0; c < conns_.size(); ++c) TopUp(c, source, timeout_ns);
    bool pending = false, all_broken = true;
    for (const Conn& conn : conns_) {
      pending |= conn.pending.has_value();
      all_broken &= conn.broken;
    }
    if (in_flight_ == 0 && !pending && source.Exhausted()) break;
    if (in_flight_ == 0 && all_broken) break;  // nothing can be sent or answered any more

    items_.clear();
    item_conn_.clear();
    item_first_.assign(conns_.size() + 1, 0);
    for (size_t c = 0; c < conns_.size(); ++c) {
      const Conn& conn = conns_[c];
      const size_t first = items_.size();
      item_first_[c] = static_cast<uint32_t>(first);
      conn.connection->AppendPollItems(&items_);
      for (size_t i = first; i < items_.size(); ++i) {
        items_[i].revents = 0;
        if (conn.broken) {
          items_[i].events = 0;
        } else if (conn.blocked || conn.connection->WantsWrite()) {
          items_[i].events |= ZMQ_POLLOUT;
        }
        item_conn_.push_back(static_cast<uint32_t>(c));
      }
    }
    int64_t wait_ns = std::min({until_ns - now, next_expiry_ns - now, kMaxPollNs});
    long wait_ms = static_cast<long>((std::max<int64_t>(wait_ns, 0) + 999'999) / 1'000'000);
    if (zmq_poll(items_.data(), static_cast<int>(items_.size()), wait_ms) < 0 && errno != EINTR) {
      break;  // only on a closed context or bad items: nothing more to do
    }

    item_first_[conns_.size()] = static_cast<uint32_t>(items_.size());
    readable_.assign(conns_.size(), 0);
    for (size_t i = 0; i < items_.size(); ++i) {
      if (items_[i].revents & ZMQ_POLLIN) readable_[item_conn_[i]] = 1;
    }
    for (size_t c = 0; c < conns_.size(); ++c) {
      Conn& conn = conns_[c];
      if (!readable_[c] && !(conn.connection->HasTimers() && !conn.broken)) continue;
      // Connection c's items: [item_first_[c], item_first_[c + 1]).
      conn.connection->NoteReady(items_.data() + item_first_[c],
                                 item_first_[c + 1] - item_first_[c]);
      completions_.clear();
      conn.connection->Receive(&completions_, 2 * options_.window);
      int64_t received = NowNs();
      for (const Completion& done : completions_) {
        uint32_t index = static_cast<uint32_t>(done.tag);
        uint32_t gen = static_cast<uint32_t>(done.tag >> 32);
        if (index >= conn.slots.size() || !conn.slots[index].busy || conn.slots[index].gen != gen) {
          ++stats_.late_replies;
          continue;
        }
        Slot& slot = conn.slots[index];
        slot.busy = false;
        conn.free.push_back(index);
        --in_flight_;
        source.Done(c, slot, done.outcome, received);
      }
    }
    now = NowNs();
    if (now >= next_expiry_ns) {
      ExpireDue(source, now);
      next_expiry_ns = now + kExpiryCheckNs;
    }
  }
}

uint32_t ThreadDriver::Handshake(int64_t deadline_ns) {
  class PingSource : public Source {
   public:
    explicit PingSource(size_t n) : answered_(n, false), sent_(n, false) {}
    bool Next(size_t c, BenchRequest* out, uint64_t*) override {
      if (answered_[c] || sent_[c]) return false;
      sent_[c] = true;
      *out = BenchRequest{};  // kPing
      return true;
    }
    void Done(size_t c, const Slot&, Outcome outcome, int64_t) override {
      if (outcome == Outcome::kClientTimeout) {
        sent_[c] = false;  // ask again
      } else {
        answered_[c] = true;
      }
    }
    bool Exhausted() const override {
      return std::all_of(answered_.begin(), answered_.end(), [](bool a) { return a; });
    }
    uint32_t answered() const {
      return static_cast<uint32_t>(std::count(answered_.begin(), answered_.end(), true));
    }

   private:
    std::vector<bool> answered_, sent_;
  };
  PingSource source(conns_.size());
  // A ping is re-sent every second, so a server that comes up late is seen.
  Pump(source, deadline_ns, 1'000'000'000);
  return source.answered();
}

void ThreadDriver::Preload(const std::vector<uint32_t>& lists) {
  Fill(lists, workload_.options().preload, /*touch=*/false);
}

void ThreadDriver::Touch(const std::vector<uint32_t>& lists) { Fill(lists, 1, /*touch=*/true); }

void ThreadDriver::Fill(const std::vector<uint32_t>& lists, uint32_t per_list, bool touch) {
  // Items are numbered n = list position * per_list + k; a cookie is
  // n << 8 | attempts so far.
  class PreloadSource : public Source {
   public:
    PreloadSource(const Workload& w, const std::vector<uint32_t>& lists, uint32_t per_list,
                  bool touch, RunStats* stats)
        : workload_(w),
          lists_(lists),
          per_list_(per_list),
          touch_(touch),
          total_(uint64_t{per_list_} * lists.size()),
          stats_(stats) {}
    bool Next(size_t, BenchRequest* out, uint64_t* cookie) override {
      uint64_t item;
      uint32_t attempts = 0;
      if (!retries_.empty() && retries_.front().ready_ns <= NowNs()) {
        item = retries_.front().item;
        attempts = retries_.front().attempts;
        retries_.pop_front();
      } else if (next_ < total_) {
        item = next_++;
      } else {
        return false;
      }
      uint32_t list = lists_[item / per_list_];
      *out = touch_ ? workload_.TouchRequest(list)
                    : workload_.PreloadRequest(list, static_cast<uint32_t>(item % per_list_));
      *cookie = item << 8 | attempts;
      return true;
    }
    void Done(size_t, const Slot& slot, Outcome outcome, int64_t now_ns) override {
      uint32_t attempts = static_cast<uint32_t>(slot.cookie & 0xff) + 1;
      bool retryable = outcome == Outcome::kOverloaded || outcome == Outcome::kUnavailable;
      if (retryable && attempts < kPreloadAttempts) {
        // 10 ms, 20 ms, 40 ms ... up to 500 ms: about 8 s before giving up.
        int64_t backoff_ns =
            std::min<int64_t>(int64_t{10'000'000} << std::min(attempts, 6u), 500'000'000);
        retries_.push_back({now_ns + backoff_ns, slot.cookie >> 8, attempts});
        return;
      }
      ++stats_->preload[static_cast<int>(outcome)];
    }
    bool Exhausted() const override { return next_ >= total_ && retries_.empty(); }

   private:
    struct Retry {
      int64_t ready_ns;
      uint64_t item;
      uint32_t attempts;
    };
    const Workload& workload_;
    const std::vector<uint32_t>& lists_;
    uint32_t per_list_;
    bool touch_;
    uint64_t total_;
    uint64_t next_ = 0;
    // Ready times grow with the attempt count, not strictly in order; a retry
    // waits at most one back-off longer behind an earlier one. Good enough.
    std::deque<Retry> retries_;
    RunStats* stats_;
  };
  if (per_list == 0 || lists.empty()) return;
  PreloadSource source(workload_, lists, per_list, touch, &stats_);
  Pump(source, std::numeric_limits<int64_t>::max(), options_.timeout_ns);
}

void ThreadDriver::Run(const Phases& phases) {
  class RunSource : public Source {
   public:
    RunSource(const Phases& p, std::vector<RequestStream>* streams, RunStats* stats)
        : phases_(p), streams_(streams), stats_(stats) {}
    bool Next(size_t c, BenchRequest* out, uint64_t*) override {
      if (!sending_) return false;
      *out = (*streams_)[c].Next();
      return true;
    }
    void Done(size_t, const Slot& slot, Outcome outcome, int64_t now_ns) override {
      if (now_ns < phases_.measure_start_ns) {
        stats_->warmup_ok += outcome == Outcome::kOk;
        return;
      }
      if (now_ns >= phases_.measure_end_ns) return;  // the drain: not counted
      int op = static_cast<int>(slot.op);
      ++stats_->outcomes[op][static_cast<int>(outcome)];
      if (outcome == Outcome::kOk) {
        stats_->latency[op].Record(static_cast<uint64_t>(now_ns - slot.sent_ns));
      }
    }
    bool Exhausted() const override { return !sending_; }
    void StopSending() { sending_ = false; }

   private:
    const Phases& phases_;
    std::vector<RequestStream>* streams_;
    RunStats* stats_;
    bool sending_ = true;
  };
  RunSource source(phases, &streams_, &stats_);
  Pump(source, phases.measure_end_ns, options_.timeout_ns);
  source.StopSending();
  for (Conn& conn : conns_) conn.pending.reset();
  // Every request left has a deadline at most timeout_ns away.
  Pump(source, NowNs() + options_.timeout_ns + 2 * kExpiryCheckNs, options_.timeout_ns);
  stats_.unfinished = in_flight_;
  for (const Conn& conn : conns_) {
    stats_.stray_replies += conn.connection->stray_replies();
    stats_.redirected += conn.connection->redirected();
  }
}

}  // namespace todo::bench
