// The etcd gateway's JSON (common/io/etcd/codec.h): base64, request bodies,
// and answers as etcd 3.4.23 sends them (samples captured from a real
// server), plus malformed answers, which must give an error naming the
// field and never throw.
#include <gtest/gtest.h>

#include <random>

#include "common/io/etcd/codec.h"

namespace todo::io::codec {
namespace {

using nlohmann::json;

json J(const char* text) { return json::parse(text); }

TEST(Base64Test, KnownVectors) {
  EXPECT_EQ(Base64Encode(""), "");
  EXPECT_EQ(Base64Encode("f"), "Zg==");
  EXPECT_EQ(Base64Encode("fo"), "Zm8=");
  EXPECT_EQ(Base64Encode("foo"), "Zm9v");
  EXPECT_EQ(Base64Encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(Base64Encode(std::string("\0\xff\xfe", 3)), "AP/+");
  EXPECT_EQ(*Base64Decode("Zm9vYg=="), "foob");
  EXPECT_EQ(*Base64Decode("Zm9vYg"), "foob");  // unpadded
  EXPECT_EQ(*Base64Decode("AP/+"), std::string("\0\xff\xfe", 3));
  EXPECT_EQ(*Base64Decode(""), "");
}

TEST(Base64Test, RoundTripsEveryLengthAndByte) {
  std::mt19937 rng(7);
  for (size_t n = 0; n < 300; ++n) {
    std::string bytes(n, '\0');
    for (char& c : bytes) c = static_cast<char>(rng());
    auto back = Base64Decode(Base64Encode(bytes));
    ASSERT_TRUE(back.has_value()) << n;
    EXPECT_EQ(*back, bytes) << n;
  }
}

TEST(Base64Test, RefusesWhatIsNotBase64) {
  for (const char* bad : {"Zm9v!", "Z", "Zm9vY", "Zg===", "Zm9v\n", "Zh==", "Zm=9", "-_8="}) {
    EXPECT_FALSE(Base64Decode(bad).has_value()) << bad;
  }
}

TEST(PrefixEndTest, IncrementsTheLastByteBelowFf) {
  EXPECT_EQ(PrefixEnd("a/"), "a0");
  EXPECT_EQ(PrefixEnd("ab"), "ac");
  EXPECT_EQ(PrefixEnd(std::string("a\xff", 2)), "b");
  EXPECT_EQ(PrefixEnd(std::string("\xff\xff", 2)), std::string(1, '\0'));
  EXPECT_EQ(PrefixEnd(""), std::string(1, '\0'));
  Op all = Op::GetPrefix("");
  EXPECT_EQ(all.key, std::string(1, '\0'));
  EXPECT_EQ(all.range_end, std::string(1, '\0'));
}

TEST(RequestBodyTest, Int64sAsStringsAndBytesAsBase64) {
  EXPECT_EQ(json::parse(RangeBody("foo", "fop", 10, true, false, 7)),
            J(R"({"key":"Zm9v","range_end":"Zm9w","limit":"10","revision":"7","keys_only":true})"));
  EXPECT_EQ(json::parse(RangeBody("foo", "")), J(R"({"key":"Zm9v"})"));
  EXPECT_EQ(json::parse(PutBody("foo", "bar", 0)), J(R"({"key":"Zm9v","value":"YmFy"})"));
  EXPECT_EQ(json::parse(PutBody("foo", "", 42)), J(R"({"key":"Zm9v","value":"","lease":"42"})"));
  EXPECT_EQ(json::parse(DeleteBody("a", "b")), J(R"({"key":"YQ==","range_end":"Yg=="})"));
  EXPECT_EQ(json::parse(LeaseGrantBody(5)), J(R"({"TTL":"5"})"));
  EXPECT_EQ(json::parse(LeaseIdBody(-3, true)), J(R"({"ID":"-3","keys":true})"));
  EXPECT_EQ(json::parse(CompactBody(9)), J(R"({"revision":"9"})"));
  EXPECT_EQ(json::parse(WatchCreateBody("a", "b", 5, false)),
            J(R"({"create_request":{"key":"YQ==","range_end":"Yg==","start_revision":"5"}})"));
  EXPECT_EQ(json::parse(WatchCreateBody("a", "", 0, true)),
            J(R"({"create_request":{"key":"YQ==","prev_kv":true}})"));
}

TEST(RequestBodyTest, TxnCarriesEveryCompareTargetAndOp) {
  TxnRequest t;
  t.compares = {
      Compare::CreateRevision("k", CompareOp::kEqual, 0),
      Compare::ModRevision("k", CompareOp::kLess, 9), Compare::Version("k", CompareOp::kGreater, 1),
      Compare::Value("k", CompareOp::kNotEqual, "v"), Compare::Lease("k", CompareOp::kEqual, 77)};
  t.success = {Op::Put("k", "v", 77), Op::Delete("d")};
  t.failure = {Op::GetPrefix("p/", 3), Op::DeletePrefix("q")};
  EXPECT_EQ(json::parse(TxnBody(t)), J(R"({
    "compare":[
      {"key":"aw==","target":"CREATE","result":"EQUAL","create_revision":"0"},
      {"key":"aw==","target":"MOD","result":"LESS","mod_revision":"9"},
      {"key":"aw==","target":"VERSION","result":"GREATER","version":"1"},
      {"key":"aw==","target":"VALUE","result":"NOT_EQUAL","value":"dg=="},
      {"key":"aw==","target":"LEASE","result":"EQUAL","lease":"77"}],
    "success":[{"request_put":{"key":"aw==","value":"dg==","lease":"77"}},
               {"request_delete_range":{"key":"ZA=="}}],
    "failure":[{"request_range":{"key":"cC8=","range_end":"cDA=","limit":"3"}},
               {"request_delete_range":{"key":"cQ==","range_end":"cg=="}}]})"));
}

// Answers of etcd 3.4.23, as captured.
TEST(AnswerTest, Range) {
  auto r = DecodeRange(J(
      R"({"header":{"cluster_id":"10209395086029371855","member_id":"13510015062231200447","revision":"2","raft_term":"2"},"kvs":[{"key":"Zm9v","create_revision":"2","mod_revision":"2","version":"1","value":"YmFy"}],"count":"1"})"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->revision, 2);
  EXPECT_EQ(r->count, 1);
  EXPECT_FALSE(r->more);
  ASSERT_EQ(r->kvs.size(), 1u);
  EXPECT_EQ(r->kvs[0].key, "foo");
  EXPECT_EQ(r->kvs[0].value, "bar");
  EXPECT_EQ(r->kvs[0].create_revision, 2);
  EXPECT_EQ(r->kvs[0].version, 1);
  EXPECT_EQ(r->kvs[0].lease, 0);
  // An empty range has neither kvs nor count.
  auto empty = DecodeRange(J(R"({"header":{"revision":"2","raft_term":"2"}})"));
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->kvs.empty());
  EXPECT_EQ(empty->count, 0);
}

TEST(AnswerTest, TxnSucceededAndFailed) {
  auto won = DecodeTxn(J(
      R"({"header":{"revision":"6"},"succeeded":true,"responses":[{"response_put":{"header":{"revision":"6"}}}]})"));
  ASSERT_TRUE(won.ok());
  EXPECT_TRUE(won->succeeded);
  EXPECT_EQ(won->revision, 6);
  ASSERT_EQ(won->responses.size(), 1u);
  EXPECT_EQ(won->responses[0].type, Op::Type::kPut);
  auto lost = DecodeTxn(J(
      R"({"header":{"revision":"6"},"responses":[{"response_range":{"header":{"revision":"6"},"kvs":[{"key":"ZWxlYw==","create_revision":"6","mod_revision":"6","version":"1","value":"bWU=","lease":"99"}],"count":"1"}},{"response_delete_range":{"header":{"revision":"6"},"deleted":"2"}}]})"));
  ASSERT_TRUE(lost.ok()) << lost.status().ToString();
  EXPECT_FALSE(lost->succeeded);
  ASSERT_EQ(lost->responses.size(), 2u);
  EXPECT_EQ(lost->responses[0].range.kvs.at(0).value, "me");
  EXPECT_EQ(lost->responses[0].range.kvs.at(0).lease, 99);
  EXPECT_EQ(lost->responses[1].deleted, 2);
}

TEST(AnswerTest, Leases) {
  auto g =
      DecodeLeaseGrant(J(R"({"header":{"revision":"2"},"ID":"3656819865557545481","TTL":"2"})"));
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(g->id, 3656819865557545481);
  EXPECT_EQ(g->ttl, 2);
  EXPECT_EQ(*DecodeKeepAlive(J(R"({"result":{"header":{"revision":"2"},"ID":"36","TTL":"5"}})")),
            5);
  // A lease that is gone: no TTL.
  EXPECT_EQ(*DecodeKeepAlive(J(R"({"result":{"header":{"revision":"3"},"ID":"12345"}})")), 0);
  auto ttl = DecodeTimeToLive(
      J(R"({"header":{"revision":"2"},"ID":"36","TTL":"4","grantedTTL":"5","keys":["Zm9v"]})"));
  ASSERT_TRUE(ttl.ok());
  EXPECT_EQ(ttl->ttl, 4);
  EXPECT_EQ(ttl->granted_ttl, 5);
  EXPECT_EQ(ttl->keys, std::vector<std::string>{"foo"});
  EXPECT_EQ(DecodeTimeToLive(J(R"({"header":{},"ID":"12345","TTL":"-1"})"))->ttl, -1);
}

TEST(AnswerTest, MemberStatus) {
  auto m = DecodeMemberStatus(J(
      R"({"header":{"cluster_id":"10209395086029371855","member_id":"13510015062231200447","revision":"2","raft_term":"2"},"version":"3.4.23","dbSize":"20480","leader":"13510015062231200447","raftIndex":"7","raftTerm":"2","raftAppliedIndex":"7","dbSizeInUse":"16384"})"));
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->version, "3.4.23");
  EXPECT_EQ(m->member_id, 13510015062231200447u);  // above INT64_MAX
  EXPECT_TRUE(m->is_leader());
  EXPECT_EQ(m->db_size, 20480);
  EXPECT_EQ(m->raft_index, 7);
}

TEST(AnswerTest, WatchStreamLines) {
  auto created = DecodeWatchMessage(J(R"({"result":{"header":{"revision":"3"},"created":true}})"));
  ASSERT_TRUE(created.ok());
  EXPECT_TRUE(created->created);
  EXPECT_EQ(created->revision, 3);
  auto events = DecodeWatchMessage(J(
      R"({"result":{"header":{"revision":"5"},"events":[{"kv":{"key":"Zm9v","create_revision":"2","mod_revision":"4","version":"3","value":"YmF6"}},{"type":"DELETE","kv":{"key":"Zm9v","mod_revision":"5"}}]}})"));
  ASSERT_TRUE(events.ok()) << events.status().ToString();
  ASSERT_EQ(events->events.size(), 2u);
  EXPECT_EQ(events->events[0].type, EventType::kPut);  // PUT is the default: no "type"
  EXPECT_EQ(events->events[0].kv.value, "baz");
  EXPECT_EQ(events->events[1].type, EventType::kDelete);
  EXPECT_EQ(events->events[1].kv.mod_revision, 5);
  auto compacted = DecodeWatchMessage(
      J(R"({"result":{"header":{"raft_term":"2"},"canceled":true,"compact_revision":"4"}})"));
  ASSERT_TRUE(compacted.ok());
  EXPECT_TRUE(compacted->canceled);
  EXPECT_EQ(compacted->compact_revision, 4);
  auto error = DecodeWatchMessage(
      J(R"({"error":{"grpc_code":14,"http_code":503,"message":"etcdserver: no leader"}})"));
  ASSERT_FALSE(error.ok());
  EXPECT_EQ(error.status().code(), ErrorCode::kUnavailable);
  EXPECT_NE(error.status().message().find("no leader"), std::string::npos);
}

TEST(AnswerTest, GatewayError) {
  auto e = DecodeGatewayError(J(
      R"({"error":"etcdserver: requested lease not found","message":"etcdserver: requested lease not found","code":5})"));
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->code, 5);
  EXPECT_EQ(e->message, "etcdserver: requested lease not found");
  EXPECT_FALSE(DecodeGatewayError(J(R"({"health":"true"})")).has_value());
  EXPECT_FALSE(DecodeGatewayError(J("[1]")).has_value());
}

// Every malformed answer: an internal error naming the field, no throw.
TEST(AnswerTest, MalformedAnswersNameTheField) {
  struct Case {
    const char* body;
    const char* field;
  };
  for (const Case& c : std::vector<Case>{
           {R"([1,2])", "body"},
           {R"("text")", "body"},
           {R"({"kvs":"x"})", "range.kvs"},
           {R"({"kvs":[1]})", "range.kvs[0]"},
           {R"({"kvs":[{"key":"!!"}]})", "range.kvs[0].key"},
           {R"({"kvs":[{"key":"YQ==","mod_revision":"12x"}]})", "range.kvs[0].mod_revision"},
           {R"({"kvs":[{"key":"YQ==","version":1.5}]})", "range.kvs[0].version"},
           {R"({"kvs":[{"key":"YQ==","lease":18446744073709551615}]})", "range.kvs[0].lease"},
           {R"({"header":[]})", "range.header"},
           {R"({"header":{"revision":true}})", "range.header.revision"},
           {R"({"count":"-"})", "range.count"},
           {R"({"more":"yes"})", "range.more"},
       }) {
    StatusOr<RangeResult> r = Status::Internal("not run");
    ASSERT_NO_THROW(r = DecodeRange(json::parse(c.body))) << c.body;
    ASSERT_FALSE(r.ok()) << c.body;
    EXPECT_EQ(r.status().code(), ErrorCode::kInternal) << c.body;
    EXPECT_NE(r.status().message().find(c.field), std::string::npos)
        << c.body << " -> " << r.status().message();
  }
  EXPECT_FALSE(DecodeTxn(J(R"({"responses":[{"response_nothing":{}}]})")).ok());
  EXPECT_FALSE(DecodeTxn(J(R"({"succeeded":1})")).ok());
  EXPECT_FALSE(DecodeLeaseGrant(J(R"({"ID":"1"})")).ok());    // no TTL
  EXPECT_FALSE(DecodeKeepAlive(J(R"({"header":{}})")).ok());  // not a stream line
  EXPECT_FALSE(DecodeKeepAlive(J(R"({"result":{"TTL":"-5"}})")).ok());
  EXPECT_FALSE(DecodeMemberStatus(J(R"({"version":"3.4"})")).ok());  // no member id
  EXPECT_FALSE(DecodeWatchMessage(J(R"({"result":{"events":[{"type":"EXPLODE","kv":{}}]}})")).ok());
  EXPECT_FALSE(DecodeWatchMessage(J(R"({"result":{"events":[{"type":"PUT"}]}})")).ok());
  EXPECT_FALSE(DecodeWatchMessage(J(R"({"result":5})")).ok());
  EXPECT_FALSE(DecodeWatchMessage(json::parse("not json", nullptr, false)).ok());  // discarded
  EXPECT_FALSE(DecodeRange(json::parse("{", nullptr, false)).ok());
}

}  // namespace
}  // namespace todo::io::codec
