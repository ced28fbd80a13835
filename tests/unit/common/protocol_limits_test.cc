// DecodeRequest limits (body size, nesting) and robustness against damaged
// bodies: every prefix and every single-byte change of valid bodies.
#include <gtest/gtest.h>

#include <string>

#include "common/protocol.h"
#include "tests/unit/common/msgpack_builder.h"

namespace todo::protocol {
namespace {

using namespace ::todo::test_msgpack;  // NOLINT: the builder vocabulary

// A ping with id 7 padded by an unknown key to exactly `size` bytes.
std::string PingOfSize(size_t size) {
  auto make = [](size_t pad) { return Body({{"id", U(7)}, {"op", "ping"}, {"pad", StrOf(pad)}}); };
  size_t pad = size - 100;  // a str16 header for any pad in 256..65535
  pad += size - make(pad).size();
  std::string body = make(pad);
  EXPECT_EQ(body.size(), size);
  return body;
}

TEST(DecodeLimitsTest, BodyOfExactly64KiBIsDecoded) {
  std::string body = PingOfSize(kMaxBodyBytes);
  DecodeResult r = DecodeRequest(body);
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_EQ(r.id.uint_value, 7u);
}

TEST(DecodeLimitsTest, LargerBodyIsRefusedWithoutDecoding) {
  EXPECT_EQ(kMaxBodyBytes, 65536u);
  for (size_t size : {kMaxBodyBytes + 1, size_t{1} << 20}) {
    std::string body = size < 65600 ? PingOfSize(size)
                                    : Body({{"id", U(7)}, {"op", "ping"}, {"pad", StrOf(size)}});
    DecodeResult r = DecodeRequest(body);
    EXPECT_EQ(r.status.code(), ErrorCode::kBadRequest);
    EXPECT_NE(r.status.message().find("65536"), std::string::npos) << r.status.message();
    // Not decoded: the id in the body is not even read.
    EXPECT_EQ(r.id.kind, RequestId::Kind::kNone);
  }
  // Garbage of that size is refused the same way, before msgpack sees it.
  DecodeResult g = DecodeRequest(std::string(kMaxBodyBytes + 1, '\xc1'));
  EXPECT_NE(g.status.message().find("65536"), std::string::npos) << g.status.message();
}

TEST(DecodeLimitsTest, NestingUpTo32LevelsIsAccepted) {
  EXPECT_EQ(kMaxNesting, 32);
  // The request map is level 1; Nest(31) adds 31 more.
  DecodeResult r = DecodeRequest(Body({{"op", "ping"}, {"x", Nest(31)}}));
  EXPECT_TRUE(r.status.ok()) << r.status.ToString();
  V maps = V::Raw(std::string(1, '\0'));
  for (int i = 0; i < 31; ++i) maps = Map({{U(static_cast<uint64_t>(i)), maps}});
  DecodeResult m = DecodeRequest(Body({{"op", "ping"}, {"x", maps}}));
  EXPECT_TRUE(m.status.ok()) << m.status.ToString();
}

TEST(DecodeLimitsTest, DeeperNestingIsRefused) {
  for (int levels : {32, 33, 1000, 60000}) {
    DecodeResult r = DecodeRequest(Body({{"op", "ping"}, {"x", Nest(levels)}}));
    EXPECT_EQ(r.status.code(), ErrorCode::kBadRequest) << levels;
    EXPECT_NE(r.status.message().find("nesting deeper than 32"), std::string::npos)
        << r.status.message();
  }
  V maps = V::Raw(std::string(1, '\0'));
  for (int i = 0; i < 32; ++i) maps = Map({{"k", maps}});
  DecodeResult m = DecodeRequest(Body({{"op", "ping"}, {"x", maps}}));
  EXPECT_NE(m.status.message().find("nesting"), std::string::npos) << m.status.message();
  // In a known key's value too, and at the top level (the top level is
  // refused as not-a-map first, without recursing).
  DecodeResult t = DecodeRequest(Body({{"op", "ping"}, {"title", Nest(40)}}));
  EXPECT_NE(t.status.message().find("nesting"), std::string::npos) << t.status.message();
  DecodeResult top = DecodeRequest(std::string(60000, '\x91'));
  EXPECT_EQ(top.status.code(), ErrorCode::kBadRequest);
  // A deep chain of maps as the top-level value.
  DecodeResult top_maps = DecodeRequest(std::string(20000, '\x81') + '\0');
  EXPECT_EQ(top_maps.status.code(), ErrorCode::kBadRequest);
}

std::vector<std::string> ValidBodies() {
  return {
      Body({{"op", "add_entry"},
            {"id", U(300)},
            {"list", "groceries"},
            {"date", "2026-03-01"},
            {"title", "milk \xe2\x82\xac"}}),
      Body({{"op", "update_entry"},
            {"id", "r1"},
            {"list", "l"},
            {"entry_id", U(70000)},
            {"date", "2026-03-01"},
            {"title", "t"}}),
      Body({{"op", "entries"}, {"list", "l"}, {"x", Map({{U(1), Arr({Nil(), F64(1)})}})}}),
      Body({{"op", "delete_entry"}, {"list", "l"}, {"entry_id", U(1)}}),
  };
}

TEST(DecodeRobustnessTest, EveryProperPrefixIsBadRequest) {
  for (const std::string& body : ValidBodies()) {
    ASSERT_TRUE(DecodeRequest(body).status.ok());
    for (size_t n = 0; n < body.size(); ++n) {
      std::string prefix = body.substr(0, n);
      DecodeResult r = DecodeRequest(prefix);
      EXPECT_EQ(r.status.code(), ErrorCode::kBadRequest) << "prefix of " << n << " bytes";
    }
  }
}

TEST(DecodeRobustnessTest, EverySingleByteChangeIsHandled) {
  for (const std::string& body : ValidBodies()) {
    for (size_t pos = 0; pos < body.size(); ++pos) {
      for (int b = 0; b < 256; ++b) {
        std::string damaged = body;
        damaged[pos] = static_cast<char>(b);
        DecodeResult r = DecodeRequest(damaged);
        ErrorCode c = r.status.code();
        ASSERT_TRUE(c == ErrorCode::kOk || c == ErrorCode::kBadRequest ||
                    c == ErrorCode::kUnknownOp)
            << r.status.ToString();
        if (c != ErrorCode::kOk) {
          ASSERT_FALSE(r.status.message().empty());
          continue;
        }
        // A request that passes keeps every rule.
        const Request& q = r.request;
        if (NeedsList(q.op)) {
          ASSERT_GE(q.list.size(), 1u);
          ASSERT_LE(q.list.size(), kMaxListBytes);
        }
        if (q.title) {
          ASSERT_GE(q.title->size(), 1u);
          ASSERT_LE(q.title->size(), kMaxTitleBytes);
        }
        if (q.date) {
          ASSERT_TRUE(IsValidDate(q.date->year(), q.date->month(), q.date->day()));
        }
      }
    }
  }
}

}  // namespace
}  // namespace todo::protocol
