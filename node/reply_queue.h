// ReplyQueue: how worker and writer threads hand finished replies back to the
// socket loop, the only thread that touches the socket.
//
// Design: a mutex-protected vector that producers append to (one lock per
// batch of replies) and that the socket loop swaps out whole. An eventfd is
// written when the queue goes from empty to non-empty, so the socket loop can
// poll it beside the ROUTER socket; while the loop has not drained, further
// pushes cost no syscall. Bound: every reply answers a call that the socket
// loop admitted under its in-flight limit, so the queue never holds more than
// that limit.
#pragma once

#include <mutex>
#include <vector>

#include "node/message.h"

namespace todo::node {

class ReplyQueue {
 public:
  ReplyQueue();
  ~ReplyQueue();
  ReplyQueue(const ReplyQueue&) = delete;
  ReplyQueue& operator=(const ReplyQueue&) = delete;

  // Thread-safe. Appends the replies (moved from) and wakes the socket loop.
  void Push(Reply reply);
  void PushAll(std::vector<Reply>& replies);

  // Socket loop only: the file descriptor to poll for readability.
  int fd() const { return fd_; }
  // Socket loop only: takes everything queued into *out (cleared first) and
  // re-arms the eventfd.
  void Drain(std::vector<Reply>* out);
  // Any thread: true if a reply is queued (a lock, no syscall).
  bool HasReplies();

 private:
  void Wake();

  int fd_;
  std::mutex mu_;
  std::vector<Reply> queue_;  // guarded by mu_
  bool signalled_ = false;    // guarded by mu_
};

}  // namespace todo::node
