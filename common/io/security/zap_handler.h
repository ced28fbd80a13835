// ZapHandler: the ZAP (ZeroMQ RFC 27) authenticator of a process's CURVE
// server socket, on a thread of its own.
//
// Design: once a client completes the CURVE handshake, libzmq asks the
// handler bound at "inproc://zeromq.zap.01" in the socket's context whether
// to let it in, passing the client's public key, and delivers nothing from
// the client before the answer. The handler is a REP socket there, answered
// on its own thread: the one thread the security layer owns (an exception to
// "only node/runtime creates threads"), so that authentication never waits
// on the socket loop's work and the loops stay unchanged. The thread polls
// the REP socket and an eventfd that Stop() signals; it shares nothing but
// atomic counters and the thread-safe spdlog logger. Decisions are the pure
// ZapPolicy's; refusals are logged as warnings, at most kLogLines per
// kLogWindow (then a count of those not logged).
//
// Lifetime: Start() must succeed before the server socket binds, and the
// handler must outlive that socket: declare it after the context and before
// the socket's owner. The server socket also sets ZMQ_ZAP_ENFORCE_DOMAIN
// (see curve.h), so a handshake that finds no handler is refused, never
// let in unauthenticated.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <zmq.hpp>

#include "common/io/security/zap_policy.h"
#include "common/status.h"

namespace todo::security {

class ZapHandler {
 public:
  // `ctx` must outlive the handler (and the handler be destroyed before the
  // context is closed).
  ZapHandler(zmq::context_t* ctx, ZapPolicy policy);
  ~ZapHandler();  // Stop()
  ZapHandler(const ZapHandler&) = delete;
  ZapHandler& operator=(const ZapHandler&) = delete;

  // Binds inproc://zeromq.zap.01 and starts the thread. internal if the
  // endpoint is taken (another handler in this context) or no thread.
  Status Start();

  // Stops and joins the thread, closing the REP socket, and logs the
  // counts. Idempotent.
  void Stop();

  uint64_t accepted() const { return accepted_.load(std::memory_order_relaxed); }
  uint64_t refused() const { return refused_.load(std::memory_order_relaxed); }

 private:
  void Loop();
  void HandleOne();

  zmq::context_t* const ctx_;
  const ZapPolicy policy_;
  std::unique_ptr<zmq::socket_t> socket_;  // used by the thread only, once started
  int stop_fd_ = -1;                       // eventfd
  std::thread thread_;
  LogBudget log_budget_;  // the thread's
  std::atomic<uint64_t> accepted_{0};
  std::atomic<uint64_t> refused_{0};
};

}  // namespace todo::security
