// ZapPolicy: who may connect to a CURVE server socket, decided per ZAP
// request (ZeroMQ RFC 27) — the pure part of the ZAP handler, no sockets.
// LogBudget: rate-limits the log lines about refusals.
#pragma once

#include <chrono>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/io/security/keys.h"

namespace todo::security {

// The answer to one ZAP request.
struct ZapVerdict {
  std::string request_id;   // echoed from the request
  std::string status_code;  // "200" accepted, "400" refused, "500" malformed request
  std::string status_text;  // why, for the reply and the log
  std::string user_id;      // on 200: the client's public key in Z85
  // For the log: the peer's address and what it presented ("CURVE key
  // <Z85>", or the mechanism's name).
  std::string address;
  std::string credential;
  bool accepted() const { return status_code == "200"; }
};

class ZapPolicy {
 public:
  // Accepts mechanism CURVE with a client public key in `allowed`, on
  // `domain`; refuses everything else.
  ZapPolicy(std::string domain, const std::vector<CurveKey>& allowed);

  // Decides the request in `frames` (RFC 27: version "1.0", request id,
  // domain, address, identity, mechanism, credentials...). Wrong version or
  // too few frames: 500. Another domain, another mechanism, or a key not in
  // the allow-list: 400. Otherwise 200 with the key as the user id.
  ZapVerdict Decide(const std::vector<std::string_view>& frames) const;

  size_t allowed_count() const { return allowed_.size(); }

 private:
  std::string domain_;
  std::set<CurveKey> allowed_;
};

// At most `lines` log lines per `window`; the lines not logged are counted
// and reported with the next one that is.
class LogBudget {
 public:
  using Clock = std::chrono::steady_clock;
  LogBudget(int lines, Clock::duration window) : lines_(lines), window_(window) {}

  // True if a line may be logged at `now`. When true, *suppressed is the
  // number of lines refused since the last line logged (then reset).
  bool Take(Clock::time_point now, uint64_t* suppressed);

 private:
  const int lines_;
  const Clock::duration window_;
  Clock::time_point window_start_{};
  int used_ = 0;
  uint64_t suppressed_ = 0;
};

}  // namespace todo::security
