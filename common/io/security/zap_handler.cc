#include "common/io/security/zap_handler.h"

#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace todo::security {
namespace {

constexpr char kZapEndpoint[] = "inproc://zeromq.zap.01";
// Refusals logged per window at most.
constexpr int kLogLines = 20;
constexpr auto kLogWindow = std::chrono::seconds(10);
// Frames of a ZAP request at most (RFC 27: 6, plus the credentials).
constexpr size_t kMaxFrames = 16;

}  // namespace

ZapHandler::ZapHandler(zmq::context_t* ctx, ZapPolicy policy)
    : ctx_(ctx), policy_(std::move(policy)), log_budget_(kLogLines, kLogWindow) {}

ZapHandler::~ZapHandler() { Stop(); }

Status ZapHandler::Start() {
  if (thread_.joinable()) return Status::Ok();
  stop_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (stop_fd_ < 0) return Status::Internal(std::string("eventfd: ") + std::strerror(errno));
  try {
    socket_ = std::make_unique<zmq::socket_t>(*ctx_, zmq::socket_type::rep);
    socket_->set(zmq::sockopt::linger, 0);
    socket_->bind(kZapEndpoint);
  } catch (const zmq::error_t& e) {
    socket_.reset();
    return Status::Internal(std::string("cannot bind the ZAP handler at ") + kZapEndpoint + ": " +
                            e.what());
  }
  try {
    // The socket moves to the thread: creating a thread is a full barrier.
    thread_ = std::thread([this] { Loop(); });
  } catch (const std::system_error& e) {
    socket_.reset();
    return Status::Internal(std::string("cannot start the ZAP thread: ") + e.what());
  }
  return Status::Ok();
}

void ZapHandler::Stop() {
  if (thread_.joinable()) {
    uint64_t one = 1;
    (void)!write(stop_fd_, &one, sizeof one);
    thread_.join();
    spdlog::info("ZAP handler stopped: {} connections accepted, {} refused", accepted(), refused());
  }
  socket_.reset();
  if (stop_fd_ >= 0) {
    close(stop_fd_);
    stop_fd_ = -1;
  }
}

void ZapHandler::Loop() {
  zmq::pollitem_t items[] = {{socket_->handle(), 0, ZMQ_POLLIN, 0},
                             {nullptr, stop_fd_, ZMQ_POLLIN, 0}};
  while (true) {
    try {
      zmq::poll(items, 2, std::chrono::milliseconds(-1));
    } catch (const zmq::error_t& e) {
      if (e.num() == EINTR) continue;
      spdlog::error("ZAP handler: poll failed: {}; no more CURVE clients are admitted", e.what());
      break;
    }
    if (items[1].revents & ZMQ_POLLIN) break;
    if (items[0].revents & ZMQ_POLLIN) HandleOne();
  }
  socket_->close();  // on this thread, which owns it now
}

void ZapHandler::HandleOne() {
  std::vector<zmq::message_t> frames;
  try {
    do {
      zmq::message_t m;
      if (!socket_->recv(m, zmq::recv_flags::dontwait)) return;
      if (frames.size() < kMaxFrames) frames.push_back(std::move(m));
    } while (frames.back().more());
  } catch (const zmq::error_t& e) {
    spdlog::warn("ZAP handler: receive failed: {}", e.what());
    return;
  }
  std::vector<std::string_view> views;
  views.reserve(frames.size());
  for (const zmq::message_t& f : frames) views.push_back(f.to_string_view());
  ZapVerdict v = policy_.Decide(views);
  if (v.accepted()) {
    accepted_.fetch_add(1, std::memory_order_relaxed);
    spdlog::debug("ZAP: accepted {} from {}", v.credential, v.address);
  } else {
    refused_.fetch_add(1, std::memory_order_relaxed);
    uint64_t suppressed = 0;
    if (log_budget_.Take(LogBudget::Clock::now(), &suppressed)) {
      std::string more =
          suppressed ? " (" + std::to_string(suppressed) + " more refusals not logged)" : "";
      spdlog::warn("ZAP: refused {} from {}: {}{}", v.credential, v.address, v.status_text, more);
    }
  }
  // Reply: version, request id, status code, status text, user id, metadata.
  try {
    constexpr auto more = zmq::send_flags::sndmore;
    socket_->send(zmq::str_buffer("1.0"), more);
    socket_->send(zmq::buffer(v.request_id), more);
    socket_->send(zmq::buffer(v.status_code), more);
    socket_->send(zmq::buffer(v.status_text), more);
    socket_->send(zmq::buffer(v.user_id), more);
    socket_->send(zmq::const_buffer(nullptr, 0), zmq::send_flags::none);
  } catch (const zmq::error_t& e) {
    spdlog::warn("ZAP handler: reply failed: {}", e.what());
  }
}

}  // namespace todo::security
