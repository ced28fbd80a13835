// common/metrics.h (histograms, Prometheus text, listen addresses) and
// protocol::PeekReplyCode, the cheap reply-code read the socket loops use
// for their metrics.
#include "common/metrics.h"

#include <gtest/gtest.h>

#include <msgpack.hpp>

#include "common/protocol.h"

namespace todo {
namespace {

using metrics::Histogram;
using metrics::TextWriter;

TEST(Histogram, BucketsAreUpperBoundsInclusive) {
  static constexpr double kBounds[] = {1, 5, 10};
  Histogram h(kBounds);
  for (double v : {0.5, 1.0, 1.5, 5.0, 9.9, 10.0, 11.0, 1e9}) h.Observe(v);
  EXPECT_EQ(h.counts(), (std::vector<uint64_t>{2, 2, 2, 2}));
  EXPECT_EQ(h.count(), 8u);
  EXPECT_DOUBLE_EQ(h.sum(), 0.5 + 1 + 1.5 + 5 + 9.9 + 10 + 11 + 1e9);
  h.ObserveN(3, 10);
  EXPECT_EQ(h.counts()[1], 12u);
  EXPECT_EQ(h.count(), 18u);
}

TEST(Histogram, SetBucketKeepsTheCount) {
  Histogram h(metrics::kBatchSizes);
  h.SetBucket(0, 5);
  h.SetBucket(3, 2);
  h.SetBucket(0, 4);
  EXPECT_EQ(h.count(), 6u);
  EXPECT_EQ(h.counts().size(), std::size(metrics::kBatchSizes) + 1);
}

TEST(TextWriter, FamiliesSamplesAndEscapes) {
  TextWriter w;
  w.Family("todo_x_total", "counter", "Things.\nSecond \\ line.");
  w.Sample("todo_x_total", {{"op", "add_entry"}, {"name", "a\"b\\c\nd"}}, 3);
  w.Sample("todo_x_total", {}, 0.25);
  EXPECT_EQ(w.text(),
            "# HELP todo_x_total Things.\\nSecond \\\\ line.\n"
            "# TYPE todo_x_total counter\n"
            "todo_x_total{op=\"add_entry\",name=\"a\\\"b\\\\c\\nd\"} 3\n"
            "todo_x_total 0.25\n");
}

TEST(TextWriter, HistogramsAreCumulativeWithInfSumAndCount) {
  static constexpr double kBounds[] = {0.001, 0.01};
  Histogram h(kBounds);
  h.Observe(0.0005);
  h.Observe(0.005);
  h.Observe(0.005);
  h.Observe(2);
  TextWriter w;
  w.HistogramSamples("lat", {{"op", "x"}}, h);
  EXPECT_EQ(w.text(),
            "lat_bucket{op=\"x\",le=\"0.001\"} 1\n"
            "lat_bucket{op=\"x\",le=\"0.01\"} 3\n"
            "lat_bucket{op=\"x\",le=\"+Inf\"} 4\n"
            "lat_sum{op=\"x\"} 2.0105\n"
            "lat_count{op=\"x\"} 4\n");
}

TEST(TextWriter, FormatNumber) {
  EXPECT_EQ(TextWriter::FormatNumber(0), "0");
  EXPECT_EQ(TextWriter::FormatNumber(18446744073709551615.0), "1.84467441e+19");
  EXPECT_EQ(TextWriter::FormatNumber(9007199254740991.0), "9007199254740991");
  EXPECT_EQ(TextWriter::FormatNumber(5e-05), "5e-05");
  EXPECT_EQ(TextWriter::FormatNumber(1.0 / 0.0), "+Inf");
  EXPECT_EQ(TextWriter::FormatNumber(-1.0 / 0.0), "-Inf");
  EXPECT_EQ(TextWriter::FormatNumber(0.0 / 0.0), "NaN");
}

TEST(ParseListenAddress, HostAndPort) {
  auto a = metrics::ParseListenAddress("127.0.0.1:7080");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, 7080);
  EXPECT_EQ(metrics::ParseListenAddress("localhost:0")->port, 0);
  EXPECT_EQ(metrics::ParseListenAddress("[::1]:65535")->host, "::1");
  for (const char* bad : {"", "7080", ":7080", "host:", "host:65536", "host:-1", "host:80x",
                          "::1:80", "[::1]", "[]:80", "a b:80", "host:123456"}) {
    EXPECT_FALSE(metrics::ParseListenAddress(bad)) << bad;
  }
}

// --- PeekReplyCode ---

std::string Body(const msgpack::sbuffer& b) { return std::string(b.data(), b.size()); }

TEST(PeekReplyCode, ReadsEveryEncoderAndEveryIdForm) {
  using protocol::RequestId;
  const std::string long_id(300, 'i');
  const std::string huge_id(70000, 'x');
  for (RequestId id :
       {RequestId::None(), RequestId::Uint(0), RequestId::Uint(127), RequestId::Uint(128),
        RequestId::Uint(70000), RequestId::Uint(UINT64_MAX), RequestId::Str(""),
        RequestId::Str("\xa2ok\xc3"), RequestId::Str(long_id), RequestId::Str(huge_id)}) {
    msgpack::sbuffer add, entries, entry, del, locate, ping, begin;
    protocol::EncodeAddResult(add, id, 1);
    protocol::EncodeEntries(entries, id, {});
    protocol::EncodeEntry(entry, id, Entry{1, *ParseDate("2026-12-19"), "t"});
    protocol::EncodeDeleted(del, id, false);
    protocol::EncodeLocate(locate, id, "n1");
    protocol::EncodePing(ping, id, "node", "n1");
    protocol::BeginOkReply(begin, id);
    msgpack::packer<msgpack::sbuffer>(begin).pack_nil();
    for (const auto* b : {&add, &entries, &entry, &del, &locate, &ping, &begin}) {
      EXPECT_EQ(protocol::PeekReplyCode(Body(*b)), ErrorCode::kOk);
    }
    for (ErrorCode c : {ErrorCode::kBadRequest, ErrorCode::kUnknownOp, ErrorCode::kNotFound,
                        ErrorCode::kOverloaded, ErrorCode::kUnavailable, ErrorCode::kTimeout,
                        ErrorCode::kInternal}) {
      msgpack::sbuffer err;
      protocol::EncodeError(err, id, c, "message");
      EXPECT_EQ(protocol::PeekReplyCode(Body(err)), c);
    }
  }
}

TEST(PeekReplyCode, AnythingElseIsUnreadable) {
  msgpack::sbuffer ok;
  protocol::EncodeAddResult(ok, protocol::RequestId::Uint(300), 1);
  std::string body = Body(ok);
  for (size_t n = 0; n + 1 < body.size(); ++n) {
    // Every truncation before the ok flag is unreadable, never a crash.
    auto code = protocol::PeekReplyCode(body.substr(0, n));
    if (code) {
      EXPECT_GT(n, body.find("\xa2ok") + 3);
    }
  }
  EXPECT_FALSE(protocol::PeekReplyCode(""));
  EXPECT_FALSE(protocol::PeekReplyCode("\x80"));            // empty map
  EXPECT_FALSE(protocol::PeekReplyCode("\x82\xa2ko\xc3"));  // another key
  EXPECT_FALSE(protocol::PeekReplyCode("\x83\xa2id\xc0"));  // nil id
  EXPECT_FALSE(
      protocol::PeekReplyCode("\x82\xa2ok\xc2\xa5"
                              "error\x82\xa4"
                              "code\xa3"
                              "odd"));
  EXPECT_FALSE(protocol::PeekReplyCode("\x92\x01\x02"));  // an array
}

}  // namespace
}  // namespace todo
