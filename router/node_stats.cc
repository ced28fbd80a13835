#include "router/node_stats.h"

#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <msgpack.hpp>

#include "common/protocol.h"
#include "router/http_mapping.h"

namespace todo::router {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// The longest single poll wait, so Stop() is seen promptly even if the
// eventfd were missed.
constexpr milliseconds kPollSlice{100};

std::string_view View(const zmq::message_t& m) {
  return std::string_view(static_cast<const char*>(m.data()), m.size());
}

}  // namespace

struct NodeStatsPoller::Peer {
  std::string endpoint;
  std::unique_ptr<zmq::socket_t> socket;
  bool waiting = false;  // asked this round, not answered yet
};

StatusOr<nlohmann::ordered_json> DecodeStatsReply(std::string_view body) {
  auto reply = http::DecodeReply(body);
  if (!reply.ok()) return reply.status();
  if (!reply->ok) {
    return Status::Internal("stats answered " + std::string(ErrorCodeName(reply->code)) + ": " +
                            reply->message);
  }
  if (!reply->result.is_object()) return Status::Internal("stats result is not a map");
  return std::move(reply->result);
}

NodeStatsPoller::NodeStatsPoller(zmq::context_t* ctx, NodeStatsOptions options)
    : ctx_(ctx), options_(options) {
  wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  thread_ = std::thread([this] { Run(); });
}

NodeStatsPoller::~NodeStatsPoller() {
  Stop();
  if (wake_fd_ >= 0) close(wake_fd_);
}

void NodeStatsPoller::Wake() {
  if (wake_fd_ >= 0) {
    const uint64_t one = 1;
    (void)!write(wake_fd_, &one, sizeof one);
  }
}

void NodeStatsPoller::Stop() {
  if (!stop_.exchange(true)) Wake();
  if (thread_.joinable()) thread_.join();
}

void NodeStatsPoller::SetActive(bool active) {
  if (active_.exchange(active, std::memory_order_relaxed) != active && active) Wake();
}

void NodeStatsPoller::SetTargets(std::map<std::string, std::string> targets) {
  while (targets.size() > kMaxTargets) targets.erase(std::prev(targets.end()));
  std::lock_guard<std::mutex> lock(mu_);
  targets_ = std::move(targets);
  for (auto it = latest_.begin(); it != latest_.end();) {
    it = targets_.contains(it->first) ? std::next(it) : latest_.erase(it);
  }
}

std::map<std::string, NodeStatsEntry> NodeStatsPoller::Latest() const {
  std::lock_guard<std::mutex> lock(mu_);
  return latest_;
}

bool NodeStatsPoller::Sleep(milliseconds d) {
  const Clock::time_point until = Clock::now() + d;
  while (!stop_.load(std::memory_order_relaxed)) {
    const auto left = std::chrono::ceil<milliseconds>(until - Clock::now());
    if (left <= milliseconds(0)) return true;
    zmq::pollitem_t item{nullptr, wake_fd_, ZMQ_POLLIN, 0};
    try {
      zmq::poll(&item, 1, std::min(left, kPollSlice));
    } catch (const zmq::error_t&) {
      continue;  // EINTR: go on waiting
    }
    if (item.revents & ZMQ_POLLIN) {
      uint64_t n;
      (void)!read(wake_fd_, &n, sizeof n);
      break;
    }
  }
  return !stop_.load(std::memory_order_relaxed);
}

void NodeStatsPoller::Run() {
  std::map<std::string, Peer> peers;
  uint64_t round = 0;
  while (!stop_.load(std::memory_order_relaxed)) {
    const Clock::time_point start = Clock::now();
    {
      // The sockets follow the targets even while inactive, so their
      // connections are up when the page is first looked at.
      std::map<std::string, std::string> targets;
      {
        std::lock_guard<std::mutex> lock(mu_);
        targets = targets_;
      }
      // One DEALER per target; a new endpoint gets a new socket.
      for (auto it = peers.begin(); it != peers.end();) {
        auto t = targets.find(it->first);
        it = (t == targets.end() || t->second != it->second.endpoint) ? peers.erase(it)
                                                                      : std::next(it);
      }
      for (const auto& [name, endpoint] : targets) {
        if (peers.contains(name)) continue;
        Peer p;
        p.endpoint = endpoint;
        try {
          p.socket = std::make_unique<zmq::socket_t>(*ctx_, zmq::socket_type::dealer);
          p.socket->set(zmq::sockopt::linger, 0);
          p.socket->set(zmq::sockopt::immediate, 1);
          p.socket->set(zmq::sockopt::sndhwm, 4);
          p.socket->set(zmq::sockopt::rcvhwm, 16);
          p.socket->set(zmq::sockopt::maxmsgsize, options_.max_answer_bytes);
          p.socket->connect(endpoint);
        } catch (const zmq::error_t& e) {
          std::lock_guard<std::mutex> lock(mu_);
          NodeStatsEntry& entry = latest_[name];
          entry.last_ok = false;
          entry.last_error = "cannot connect to " + endpoint + ": " + e.what();
          continue;
        }
        peers.emplace(name, std::move(p));
      }
    }
    if (active()) {
      Round(peers, ++round);
      rounds_.fetch_add(1, std::memory_order_relaxed);
    }
    const auto spent = std::chrono::duration_cast<milliseconds>(Clock::now() - start);
    if (!Sleep(std::max(milliseconds(50), options_.interval - spent))) break;
  }
  peers.clear();  // closes the sockets on this thread
}

void NodeStatsPoller::Round(std::map<std::string, Peer>& peers, uint64_t round) {
  msgpack::sbuffer request;
  protocol::Request r;
  r.op = protocol::Op::kStats;
  r.id = protocol::RequestId::Uint(round);
  protocol::EncodeRequest(request, r);
  std::map<std::string, std::string> failed;  // name -> why
  size_t waiting = 0;
  for (auto& [name, peer] : peers) {
    peer.waiting = false;
    // Answers of earlier rounds that came after their timeout.
    zmq::message_t stale;
    while (peer.socket->recv(stale, zmq::recv_flags::dontwait)) {
    }
    try {
      if (peer.socket->send(zmq::buffer(request.data(), request.size()),
                            zmq::send_flags::dontwait)) {
        peer.waiting = true;
        ++waiting;
      } else {
        failed[name] = "not connected (" + peer.endpoint + ")";
      }
    } catch (const zmq::error_t& e) {
      failed[name] = std::string("send failed: ") + e.what();
    }
  }
  const Clock::time_point deadline = Clock::now() + options_.timeout;
  std::vector<zmq::pollitem_t> items;
  std::vector<std::string> names;
  while (waiting > 0 && !stop_.load(std::memory_order_relaxed)) {
    const auto left = std::chrono::ceil<milliseconds>(deadline - Clock::now());
    if (left <= milliseconds(0)) break;
    items.clear();
    names.clear();
    for (auto& [name, peer] : peers) {
      if (!peer.waiting) continue;
      items.push_back({static_cast<void*>(*peer.socket), 0, ZMQ_POLLIN, 0});
      names.push_back(name);
    }
    items.push_back({nullptr, wake_fd_, ZMQ_POLLIN, 0});
    try {
      zmq::poll(items.data(), items.size(), std::min(left, kPollSlice));
    } catch (const zmq::error_t&) {
      continue;  // EINTR
    }
    if (items.back().revents & ZMQ_POLLIN) {
      uint64_t n;
      (void)!read(wake_fd_, &n, sizeof n);  // Stop() is seen by the loop's test
    }
    for (size_t i = 0; i < names.size(); ++i) {
      if (!(items[i].revents & ZMQ_POLLIN)) continue;
      Peer& peer = peers.at(names[i]);
      zmq::message_t answer;
      while (peer.waiting && peer.socket->recv(answer, zmq::recv_flags::dontwait)) {
        auto header = protocol::DecodeReplyHeader(View(answer));
        if (header.ok() &&
            (header->id_kind != protocol::RequestId::Kind::kUint || header->id_uint != round)) {
          continue;  // an old round's answer
        }
        peer.waiting = false;
        --waiting;
        auto result = DecodeStatsReply(View(answer));
        std::lock_guard<std::mutex> lock(mu_);
        NodeStatsEntry& entry = latest_[names[i]];
        if (result.ok()) {
          entry.result = std::make_shared<const nlohmann::ordered_json>(std::move(result).value());
          entry.answered_at = Clock::now();
          entry.last_ok = true;
          entry.last_error.clear();
        } else {
          entry.last_ok = false;
          entry.last_error = result.status().message();
        }
      }
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [name, peer] : peers) {
    if (!targets_.contains(name)) continue;
    if (peer.waiting) {
      failed[name] = "no answer within " + std::to_string(options_.timeout.count()) + " ms";
    }
  }
  for (const auto& [name, why] : failed) {
    if (!targets_.contains(name)) continue;
    NodeStatsEntry& entry = latest_[name];
    entry.last_ok = false;
    entry.last_error = why;
  }
}

}  // namespace todo::router
