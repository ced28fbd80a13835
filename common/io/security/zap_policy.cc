#include "common/io/security/zap_policy.h"

#include <cstring>

namespace todo::security {
namespace {

// Frames of a ZAP request before the credentials (RFC 27).
constexpr size_t kZapHeaderFrames = 6;

// A printable rendering of a peer-supplied string, for the log.
std::string Printable(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 64)) {
    unsigned char u = static_cast<unsigned char>(c);
    out += (u < 0x20 || u >= 0x7f) ? '?' : c;
  }
  return out;
}

}  // namespace

ZapPolicy::ZapPolicy(std::string domain, const std::vector<CurveKey>& allowed)
    : domain_(std::move(domain)), allowed_(allowed.begin(), allowed.end()) {}

ZapVerdict ZapPolicy::Decide(const std::vector<std::string_view>& frames) const {
  ZapVerdict v;
  if (frames.size() >= 2) v.request_id = std::string(frames[1]);
  if (frames.size() < kZapHeaderFrames || frames[0] != "1.0") {
    v.status_code = "500";
    v.status_text = "malformed ZAP request";
    return v;
  }
  std::string_view domain = frames[2];
  std::string_view mechanism = frames[5];
  v.address = Printable(frames[3]);
  v.credential = Printable(mechanism);
  v.status_code = "400";
  if (mechanism != "CURVE") {
    v.status_text = "mechanism " + Printable(mechanism) + " refused: CURVE required";
    return v;
  }
  if (frames.size() != kZapHeaderFrames + 1 || frames[6].size() != sizeof(CurveKey)) {
    v.status_text = "malformed CURVE credentials";
    return v;
  }
  CurveKey key;
  std::memcpy(key.data(), frames[6].data(), key.size());
  v.credential = "CURVE key " + EncodeZ85Key(key);
  if (domain != domain_) {
    v.status_text = "unknown ZAP domain '" + Printable(domain) + "'";
    return v;
  }
  if (allowed_.count(key) == 0) {
    v.status_text = "client key not in the allow-list (--curve-allow)";
    return v;
  }
  v.status_code = "200";
  v.status_text = "OK";
  v.user_id = EncodeZ85Key(key);
  return v;
}

bool LogBudget::Take(Clock::time_point now, uint64_t* suppressed) {
  if (used_ == 0 || now - window_start_ >= window_) {
    window_start_ = now;
    used_ = 0;
  }
  if (used_ >= lines_) {
    ++suppressed_;
    return false;
  }
  ++used_;
  *suppressed = suppressed_;
  suppressed_ = 0;
  return true;
}

}  // namespace todo::security
