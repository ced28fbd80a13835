#include "node/reply_queue.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <stdexcept>

namespace todo::node {

ReplyQueue::ReplyQueue() : fd_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
  if (fd_ < 0) throw std::runtime_error("eventfd failed");
}

ReplyQueue::~ReplyQueue() { close(fd_); }

void ReplyQueue::Wake() {
  uint64_t one = 1;
  while (write(fd_, &one, sizeof one) < 0 && errno == EINTR) {
  }
}

void ReplyQueue::Push(Reply reply) {
  bool wake;
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back(std::move(reply));
    wake = !signalled_;
    signalled_ = true;
  }
  if (wake) Wake();
}

void ReplyQueue::PushAll(std::vector<Reply>& replies) {
  if (replies.empty()) return;
  bool wake;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (queue_.empty()) {
      queue_.swap(replies);
    } else {
      for (auto& r : replies) queue_.push_back(std::move(r));
    }
    wake = !signalled_;
    signalled_ = true;
  }
  replies.clear();
  if (wake) Wake();
}

void ReplyQueue::Drain(std::vector<Reply>* out) {
  out->clear();
  uint64_t n;
  while (read(fd_, &n, sizeof n) < 0 && errno == EINTR) {
  }
  std::lock_guard<std::mutex> lock(mu_);
  out->swap(queue_);
  signalled_ = false;
}

bool ReplyQueue::HasReplies() {
  std::lock_guard<std::mutex> lock(mu_);
  return !queue_.empty();
}

}  // namespace todo::node
