// The hop batch codec (common/hop_batch.h): round trips, every bound, and
// truncated or garbage blobs refused whole with a message that names the
// fault, never a crash or a partial result.
#include "common/hop_batch.h"

#include <gtest/gtest.h>

#include <msgpack.hpp>
#include <random>
#include <string>
#include <vector>

#include "common/protocol.h"

namespace todo::hop_batch {
namespace {

std::string Blob(const std::vector<std::vector<std::string>>& records) {
  BatchWriter w;
  for (const auto& r : records) {
    std::vector<std::string_view> frames(r.begin(), r.end());
    size_t bytes = 0;
    for (const auto& f : r) bytes += f.size();
    EXPECT_TRUE(w.Fits(frames.size(), bytes));
    w.Add(frames.data(), frames.size());
  }
  return std::string(w.blob());
}

TEST(HopBatch, RoundTripKeepsEveryFrameInOrder) {
  const std::vector<std::vector<std::string>> in = {
      {"R12345678id", "body one"},
      {"R12345678id2", std::string(), "", "body\0two"},
      {"H", std::string(1000, 'x')},
  };
  std::string blob = Blob(in);
  std::vector<Record> out;
  ASSERT_TRUE(DecodeBatch(blob, &out).ok());
  ASSERT_EQ(out.size(), in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    ASSERT_EQ(out[i].n, in[i].size());
    for (size_t j = 0; j < in[i].size(); ++j) EXPECT_EQ(out[i].frames[j], in[i][j]);
    EXPECT_EQ(out[i].head(), in[i].front());
    EXPECT_EQ(out[i].body(), in[i].back());
  }
}

TEST(HopBatch, WriterStopsAtRecordAndByteBounds) {
  BatchWriter w;
  const std::string_view frames[2] = {"head", "body"};
  for (size_t i = 0; i < kMaxRecords; ++i) {
    ASSERT_TRUE(w.Fits(2, 8));
    w.Add(frames, 2);
  }
  EXPECT_FALSE(w.Fits(2, 8));
  std::vector<Record> out;
  EXPECT_TRUE(DecodeBatch(w.blob(), &out).ok());
  EXPECT_EQ(out.size(), kMaxRecords);

  w.Clear();
  EXPECT_TRUE(w.empty());
  EXPECT_FALSE(w.Fits(2, kMaxBytes));  // its overhead passes the bound
  EXPECT_TRUE(w.Fits(2, kMaxBytes - RecordOverhead(2)));
  EXPECT_FALSE(w.Fits(1, 8));                     // no body
  EXPECT_FALSE(w.Fits(kMaxRecordFrames + 1, 8));  // too many frames
}

TEST(HopBatch, RefusesEmptyOversizedAndTooManyRecords) {
  std::vector<Record> out;
  Status s = DecodeBatch("", &out);
  EXPECT_EQ(s.code(), ErrorCode::kBadRequest);
  EXPECT_EQ(s.message(), "batch: is empty");

  std::string big(kMaxBytes + 1, '\0');
  s = DecodeBatch(big, &out);
  EXPECT_EQ(s.code(), ErrorCode::kBadRequest);
  EXPECT_NE(s.message().find("more than the 65536 allowed"), std::string::npos) << s.message();

  // kMaxRecords + 1 records, written by hand (the writer won't).
  std::string blob;
  for (size_t i = 0; i <= kMaxRecords; ++i) blob += Blob({{"h", "b"}});
  s = DecodeBatch(blob, &out);
  EXPECT_EQ(s.code(), ErrorCode::kBadRequest);
  EXPECT_NE(s.message().find("more than the 64 records"), std::string::npos) << s.message();
  EXPECT_TRUE(out.empty());
}

TEST(HopBatch, RefusesBadFrameCountsAndEmptyHead) {
  std::vector<Record> out;
  for (char n : {'\0', '\1', static_cast<char>(kMaxRecordFrames + 1), '\xff'}) {
    std::string blob(1, n);
    blob += std::string(200, '\0');
    Status s = DecodeBatch(blob, &out);
    EXPECT_EQ(s.code(), ErrorCode::kBadRequest);
    EXPECT_NE(s.message().find("record 0 has"), std::string::npos) << s.message();
    EXPECT_TRUE(out.empty());
  }
  Status s = DecodeBatch(Blob({{"", "body"}}), &out);
  EXPECT_EQ(s.message(), "batch: record 0 has an empty head");
}

TEST(HopBatch, EveryTruncationIsRefusedWhole) {
  const std::string blob = Blob({{"R12345678abc", "one"}, {"R12345678def", "", "two, longer"}});
  std::vector<Record> out;
  ASSERT_TRUE(DecodeBatch(blob, &out).ok());
  for (size_t len = 0; len < blob.size(); ++len) {
    const std::string cut = blob.substr(0, len);
    Status s = DecodeBatch(cut, &out);
    // A cut exactly between records is a valid (shorter) batch.
    if (len == Blob({{"R12345678abc", "one"}}).size()) {
      EXPECT_TRUE(s.ok());
      EXPECT_EQ(out.size(), 1u);
      continue;
    }
    EXPECT_EQ(s.code(), ErrorCode::kBadRequest) << "length " << len;
    EXPECT_TRUE(out.empty()) << "length " << len;
  }
  // A length that points past the end.
  std::string lying = blob;
  lying[1] = '\x7f';
  Status s = DecodeBatch(lying, &out);
  EXPECT_NE(s.message().find("record 0 frame 0 is"), std::string::npos) << s.message();
}

TEST(HopBatch, GarbageNeverCrashesAndViewsStayInside) {
  std::mt19937 rng(18);
  std::vector<Record> out;
  for (int round = 0; round < 20000; ++round) {
    std::string blob(rng() % 300, '\0');
    for (char& c : blob) c = static_cast<char>(rng() % 4 == 0 ? rng() % 4 : rng());
    Status s = DecodeBatch(blob, &out);
    if (!s.ok()) {
      EXPECT_TRUE(out.empty());
      continue;
    }
    for (const Record& r : out) {
      ASSERT_GE(r.n, 2u);
      ASSERT_LE(r.n, kMaxRecordFrames);
      for (size_t i = 0; i < r.n; ++i) {
        ASSERT_GE(r.frames[i].data(), blob.data());
        ASSERT_LE(r.frames[i].data() + r.frames[i].size(), blob.data() + blob.size());
      }
    }
  }
}

TEST(HopBatch, PingAsksAndPongGrants) {
  msgpack::sbuffer ping;
  EncodeBatchPing(ping);
  EXPECT_TRUE(PingAsksBatch(std::string_view(ping.data(), ping.size())));
  // It is a valid v1 ping (unknown keys are ignored).
  auto decoded = protocol::DecodeRequest(std::string_view(ping.data(), ping.size()));
  ASSERT_TRUE(decoded.status.ok());
  EXPECT_EQ(decoded.request.op, protocol::Op::kPing);

  msgpack::sbuffer plain;
  protocol::Request r;
  r.op = protocol::Op::kPing;
  protocol::EncodeRequest(plain, r);
  EXPECT_FALSE(PingAsksBatch(std::string_view(plain.data(), plain.size())));
  EXPECT_FALSE(PingAsksBatch("garbage"));
  EXPECT_FALSE(PingAsksBatch(""));

  msgpack::sbuffer pong;
  protocol::EncodePing(pong, {}, "node", "n1", kMaxRecords);
  EXPECT_EQ(PongBatchLimit(std::string_view(pong.data(), pong.size())), kMaxRecords);
  msgpack::sbuffer old_pong;
  protocol::EncodePing(old_pong, {}, "node", "n1");
  EXPECT_EQ(PongBatchLimit(std::string_view(old_pong.data(), old_pong.size())), 0u);
  EXPECT_EQ(PongBatchLimit("\xc1"), 0u);
  EXPECT_EQ(PongBatchLimit(""), 0u);
}

// Found by the fuzzer: the keys are read from the raw bytes, so a map that
// claims 2^32 - 1 entries (once the whole body, once a nested value before
// the key) ends at the input's end instead of an allocation for every
// claimed entry; the key after such a value is still found.
TEST(HopBatch, LyingCountsCostNothingAndKeysAfterNestedValuesAreFound) {
  const std::string huge_map("\xdf\xff\xff\xff\xff", 5);
  EXPECT_FALSE(PingAsksBatch(huge_map));
  EXPECT_EQ(PongBatchLimit(huge_map), 0u);
  // {"x": {2^32-1 entries...}} cut short.
  const std::string nested = std::string("\x81\xa1x", 3) + huge_map;
  EXPECT_FALSE(PingAsksBatch(nested));
  EXPECT_EQ(PongBatchLimit(std::string("\x81\xa6result", 8) + huge_map), 0u);
  // {"op": "ping", "x": [1, {"y": 2}], "batch": 64}
  msgpack::sbuffer b;
  msgpack::packer<msgpack::sbuffer> pk(b);
  pk.pack_map(3);
  pk.pack("op");
  pk.pack("ping");
  pk.pack("x");
  pk.pack_array(2);
  pk.pack(1);
  pk.pack_map(1);
  pk.pack("y");
  pk.pack(2);
  pk.pack("batch");
  pk.pack(uint64_t{64});
  EXPECT_TRUE(PingAsksBatch(std::string_view(b.data(), b.size())));
  // A non-str key before it is skipped; "batch": 0 or -1 does not ask.
  msgpack::sbuffer c;
  msgpack::packer<msgpack::sbuffer> pc(c);
  pc.pack_map(2);
  pc.pack(7);
  pc.pack("v");
  pc.pack("batch");
  pc.pack(-1);
  EXPECT_FALSE(PingAsksBatch(std::string_view(c.data(), c.size())));
}

}  // namespace
}  // namespace todo::hop_batch
