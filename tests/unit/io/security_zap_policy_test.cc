// ZAP decisions (RFC 27) and the refusal log budget (common/io/security/zap_policy.h).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/io/security/zap_policy.h"

namespace todo::security {
namespace {

constexpr char kAllowed[] = "Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID";
constexpr char kStranger[] = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7";

std::string Raw(const char* z85) {
  auto k = DecodeZ85Key(z85);
  EXPECT_TRUE(k.ok());
  return std::string(reinterpret_cast<const char*>(k->data()), k->size());
}

// A ZAP request as libzmq sends it for a CURVE client.
struct Request {
  std::vector<std::string> frames;
  explicit Request(std::string key, std::string mechanism = "CURVE", std::string domain = "todo") {
    frames = {"1.0", "req-7", domain, "192.0.2.9", "", mechanism};
    if (!key.empty()) frames.push_back(key);
  }
  std::vector<std::string_view> views() const { return {frames.begin(), frames.end()}; }
};

ZapPolicy Policy() { return ZapPolicy("todo", {*DecodeZ85Key(kAllowed)}); }

TEST(ZapPolicyTest, AcceptsAnAllowedCurveKey) {
  ZapVerdict v = Policy().Decide(Request(Raw(kAllowed)).views());
  EXPECT_TRUE(v.accepted());
  EXPECT_EQ(v.status_code, "200");
  EXPECT_EQ(v.request_id, "req-7");
  EXPECT_EQ(v.user_id, kAllowed);
  EXPECT_EQ(v.address, "192.0.2.9");
}

TEST(ZapPolicyTest, RefusesAnUnknownKeyAndSaysWhichKey) {
  ZapVerdict v = Policy().Decide(Request(Raw(kStranger)).views());
  EXPECT_FALSE(v.accepted());
  EXPECT_EQ(v.status_code, "400");
  EXPECT_EQ(v.request_id, "req-7");
  EXPECT_TRUE(v.user_id.empty());
  EXPECT_NE(v.status_text.find("allow-list"), std::string::npos);
  EXPECT_EQ(v.credential, std::string("CURVE key ") + kStranger);
}

TEST(ZapPolicyTest, RefusesOtherMechanismsDomainsAndMalformedCredentials) {
  ZapPolicy p = Policy();
  EXPECT_EQ(p.Decide(Request("", "NULL").views()).status_code, "400");
  EXPECT_EQ(p.Decide(Request("user", "PLAIN").views()).status_code, "400");
  EXPECT_NE(p.Decide(Request("", "NULL").views()).status_text.find("CURVE required"),
            std::string::npos);
  EXPECT_EQ(p.Decide(Request(Raw(kAllowed), "CURVE", "other").views()).status_code, "400");
  EXPECT_EQ(p.Decide(Request("short").views()).status_code, "400");
  Request two_keys(Raw(kAllowed));
  two_keys.frames.push_back(Raw(kAllowed));
  EXPECT_EQ(p.Decide(two_keys.views()).status_code, "400");
}

TEST(ZapPolicyTest, MalformedRequestsGet500) {
  ZapPolicy p = Policy();
  Request wrong_version(Raw(kAllowed));
  wrong_version.frames[0] = "2.0";
  EXPECT_EQ(p.Decide(wrong_version.views()).status_code, "500");
  EXPECT_EQ(p.Decide(wrong_version.views()).request_id, "req-7");
  std::vector<std::string_view> too_few = {"1.0", "id", "todo"};
  EXPECT_EQ(p.Decide(too_few).status_code, "500");
  EXPECT_EQ(p.Decide({}).status_code, "500");
}

TEST(ZapPolicyTest, UnprintablePeerTextIsMadePrintable) {
  Request r("", std::string("NU\x01L"));
  r.frames[3] = std::string("\x1b[31mevil", 9);
  ZapVerdict v = Policy().Decide(r.views());
  EXPECT_EQ(v.address, "?[31mevil");
  EXPECT_EQ(v.credential, "NU?L");
}

TEST(LogBudgetTest, AtMostNLinesPerWindowThenReportsTheSuppressed) {
  using std::chrono::seconds;
  LogBudget budget(2, seconds(10));
  LogBudget::Clock::time_point t0{seconds(1000)};
  uint64_t suppressed = 99;
  EXPECT_TRUE(budget.Take(t0, &suppressed));
  EXPECT_EQ(suppressed, 0u);
  EXPECT_TRUE(budget.Take(t0 + seconds(1), &suppressed));
  EXPECT_FALSE(budget.Take(t0 + seconds(2), &suppressed));
  EXPECT_FALSE(budget.Take(t0 + seconds(9), &suppressed));
  EXPECT_TRUE(budget.Take(t0 + seconds(10), &suppressed));  // a new window
  EXPECT_EQ(suppressed, 2u);
  EXPECT_TRUE(budget.Take(t0 + seconds(11), &suppressed));
  EXPECT_EQ(suppressed, 0u);
}

}  // namespace
}  // namespace todo::security
