#include "common/io/etcd/watch.h"

#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

#include "common/io/etcd/codec.h"
#include "common/io/etcd/http_stream.h"

namespace todo::io {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kWatchFirstBackoff = std::chrono::milliseconds(50);
// Bytes of a non-200 answer's body read for its error message.
constexpr size_t kMaxErrorBody = 64 << 10;

}  // namespace

EtcdWatch::Options EtcdWatch::Options::Prefix(std::string prefix, int64_t start_revision) {
  Options o;
  Op op = Op::GetPrefix(std::move(prefix));
  o.key = std::move(op.key);
  o.range_end = std::move(op.range_end);
  o.start_revision = start_revision;
  return o;
}

EtcdWatch::EtcdWatch(EtcdClient* client, Options options, Callback callback)
    : client_(client), options_(std::move(options)), callback_(std::move(callback)) {
  next_revision_.store(options_.start_revision, std::memory_order_relaxed);
}

EtcdWatch::~EtcdWatch() {
  Stop();
  if (thread_.joinable()) thread_.join();  // Stop() was called from the callback
  if (stop_fd_ >= 0) close(stop_fd_);
}

Status EtcdWatch::Start() {
  if (stop_fd_ >= 0) return Status::Internal("watch already started");
  stop_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (stop_fd_ < 0) return Status::Internal(std::string("eventfd: ") + std::strerror(errno));
  try {
    thread_ = std::thread([this] { Loop(); });
  } catch (const std::system_error& e) {
    return Status::Internal(std::string("cannot start the watch thread: ") + e.what());
  }
  return Status::Ok();
}

void EtcdWatch::Stop() {
  stopping_.store(true, std::memory_order_release);
  if (stop_fd_ >= 0) {
    uint64_t one = 1;
    (void)!write(stop_fd_, &one, sizeof one);
  }
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

std::chrono::milliseconds EtcdWatch::attempt_timeout() const {
  return options_.attempt_timeout.count() > 0 ? options_.attempt_timeout
                                              : client_->options().attempt_timeout;
}

bool EtcdWatch::SleepUnlessStopped(std::chrono::milliseconds d) {
  pollfd p{stop_fd_, POLLIN, 0};
  auto until = Clock::now() + d;
  while (!stopping_.load(std::memory_order_acquire)) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now());
    if (left.count() <= 0) return false;
    poll(&p, 1, static_cast<int>(left.count()) + 1);
  }
  return true;
}

void EtcdWatch::Report(WatchUpdate update) {
  if (stopping_.load(std::memory_order_acquire)) return;
  callback_(update);
}

void EtcdWatch::Loop() {
  const size_t n = client_->endpoints().size();
  size_t index = client_->preferred_endpoint() % n;
  auto backoff = std::chrono::milliseconds(kWatchFirstBackoff);
  while (!stopping_.load(std::memory_order_acquire)) {
    connected_once_ = false;
    Status why;
    if (StreamOnce(index, &why) == End::kStop) break;
    if (stopping_.load(std::memory_order_acquire)) break;
    WatchUpdate lost;
    lost.kind = WatchUpdate::Kind::kConnectionLost;
    lost.endpoint = client_->endpoints()[index].url;
    lost.status = why;
    Report(std::move(lost));
    index = (index + 1) % n;
    if (connected_once_) backoff = std::chrono::milliseconds(kWatchFirstBackoff);
    if (SleepUnlessStopped(backoff)) break;
    backoff = std::min(backoff * 2, options_.max_backoff);
  }
  ended_.store(true, std::memory_order_release);
}

StatusOr<int64_t> EtcdWatch::Probe(const EtcdEndpoint& ep) {
  HttpStream probe(stop_fd_);
  auto deadline = Clock::now() + attempt_timeout();
  std::string body = codec::NewestKeyBody(options_.key, options_.range_end);
  if (Status s = probe.Open(ep.host, ep.port, "POST", "/v3/kv/range", body, "", deadline);
      !s.ok()) {
    return s;
  }
  std::string answer;
  if (Status s = probe.ReadAll(&answer, 1 << 20, deadline); !s.ok()) return s;
  if (probe.status() != 200) {
    return Status(ErrorCode::kUnavailable, "probe answered HTTP " + std::to_string(probe.status()));
  }
  auto j = nlohmann::json::parse(answer, nullptr, false);
  auto r = codec::DecodeRange(j);
  if (!r.ok()) return r.status();
  return r->kvs.empty() ? int64_t{0} : r->kvs.front().mod_revision;
}

EtcdWatch::End EtcdWatch::StreamOnce(size_t index, Status* why) {
  const EtcdEndpoint& ep = client_->endpoints()[index];
  HttpStream stream(stop_fd_);
  const int64_t start = next_revision();
  std::string body = codec::WatchCreateBody(options_.key, options_.range_end, start, false);
  auto deadline = Clock::now() + attempt_timeout();
  if (Status s = stream.Open(ep.host, ep.port, "POST", "/v3/watch", body, "", deadline); !s.ok()) {
    *why = s;
    return End::kReconnect;
  }
  if (stream.status() != 200) {
    std::string answer;
    (void)stream.ReadAll(&answer, kMaxErrorBody, deadline);
    auto error = codec::DecodeGatewayError(nlohmann::json::parse(answer, nullptr, false));
    std::string what = "HTTP " + std::to_string(stream.status());
    if (error) what += ": " + error->message;
    *why = Status(ErrorCode::kUnavailable, "watch refused: " + what);
    // A request etcd calls invalid stays invalid: end rather than loop.
    if (error && stream.status() >= 400 && stream.status() < 500 && error->code == 3) {
      WatchUpdate failed;
      failed.kind = WatchUpdate::Kind::kFailed;
      failed.endpoint = ep.url;
      failed.status = *why;
      Report(std::move(failed));
      return End::kStop;
    }
    return End::kReconnect;
  }

  bool created = false;
  std::string buffer;  // received, not yet a whole line
  auto idle_since = Clock::now();
  int64_t undelivered = 0;  // a revision the last probe saw and the stream had not delivered
  while (true) {
    auto read_deadline = created ? idle_since + options_.probe_interval : deadline;
    Status error;
    size_t scanned = buffer.size();
    switch (stream.ReadSome(&buffer, read_deadline, &error)) {
      case HttpStream::Read::kData: {
        idle_since = Clock::now();
        size_t begin = 0;
        for (size_t eol = buffer.find('\n', scanned); eol != std::string::npos;
             eol = buffer.find('\n', begin)) {
          std::string line = buffer.substr(begin, eol - begin);
          begin = eol + 1;
          if (line.find_first_not_of(" \r\t") == std::string::npos) continue;
          End end = End::kReconnect;
          if (!HandleLine(line, index, &created, &end, why)) return end;
        }
        buffer.erase(0, begin);
        if (buffer.size() > options_.max_message_bytes) {
          *why = Status(
              ErrorCode::kUnavailable,
              "a watch message over " + std::to_string(options_.max_message_bytes) + " bytes");
          return End::kReconnect;
        }
        break;
      }
      case HttpStream::Read::kIdle:
        if (!created) {
          *why = Status(ErrorCode::kTimeout, "watch not created within " +
                                                 std::to_string(attempt_timeout().count()) + " ms");
          return End::kReconnect;
        }
        {
          auto newest = Probe(ep);
          if (!newest.ok()) {
            *why = Status(newest.status().code(), "probe failed: " + newest.status().message());
            return End::kReconnect;
          }
          if (undelivered != 0 && next_revision() <= undelivered) {
            *why =
                Status(ErrorCode::kUnavailable,
                       "the stream fell silent: etcd has revision " + std::to_string(undelivered) +
                           " of the watched keys, the stream delivered up to " +
                           std::to_string(next_revision() - 1));
            return End::kReconnect;
          }
          // Seen now, not yet delivered: it may be on its way; at the next
          // probe it must have arrived.
          undelivered = *newest >= next_revision() ? *newest : 0;
        }
        idle_since = Clock::now();
        break;
      case HttpStream::Read::kEnd:
        *why = Status(ErrorCode::kUnavailable, "the watch stream ended");
        return End::kReconnect;
      case HttpStream::Read::kError:
        *why = error;
        return End::kReconnect;
    }
  }
}

bool EtcdWatch::HandleLine(const std::string& line, size_t index, bool* created, End* end,
                           Status* why) {
  const std::string& url = client_->endpoints()[index].url;
  auto message = codec::DecodeWatchMessage(nlohmann::json::parse(line, nullptr, false));
  if (!message.ok()) {
    *why = message.status();
    *end = End::kReconnect;
    return false;
  }
  WatchMessage& m = *message;
  if (m.canceled) {
    WatchUpdate u;
    u.endpoint = url;
    if (m.compact_revision > 0) {
      u.kind = WatchUpdate::Kind::kCompacted;
      u.revision = m.compact_revision;
      u.status = Status(ErrorCode::kBadRequest,
                        "watch from revision " + std::to_string(next_revision()) +
                            ": compacted at revision " + std::to_string(m.compact_revision));
      Report(std::move(u));
      *end = End::kStop;
      return false;
    }
    *why = Status(ErrorCode::kUnavailable,
                  "etcd canceled the watch" +
                      (m.cancel_reason.empty() ? std::string() : ": " + m.cancel_reason));
    *end = End::kReconnect;
    return false;
  }
  if (m.created && !*created) {
    *created = true;
    connected_once_ = true;
    // From now: the events that follow are after the header revision.
    if (next_revision() == 0) next_revision_.store(m.revision + 1, std::memory_order_release);
    WatchUpdate u;
    u.kind = WatchUpdate::Kind::kConnected;
    u.endpoint = url;
    u.revision = m.revision;
    Report(std::move(u));
  }
  if (!m.events.empty()) {
    WatchUpdate u;
    u.kind = WatchUpdate::Kind::kEvents;
    u.revision = m.revision;
    const int64_t from = next_revision();
    for (Event& e : m.events) {
      if (e.kv.mod_revision >= from) u.events.push_back(std::move(e));
    }
    if (!u.events.empty()) {
      next_revision_.store(u.events.back().kv.mod_revision + 1, std::memory_order_release);
      Report(std::move(u));
    }
  }
  return true;
}

}  // namespace todo::io
