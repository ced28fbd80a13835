// DecodeRequest: every op's valid forms, the id, and every body and key rule
// of shared/spec/protocol.md. Bodies are packed by hand (msgpack_builder.h).
#include "common/protocol.h"

#include <gtest/gtest.h>

#include <deque>
#include <string>

#include "tests/unit/common/msgpack_builder.h"

namespace todo::protocol {
namespace {

using namespace ::todo::test_msgpack;  // NOLINT: the builder vocabulary

class DecodeTest : public ::testing::Test {
 protected:
  // Keeps the body alive: a decoded Request points into it.
  const DecodeResult& Decode(std::string body) {
    bodies_.push_back(std::move(body));
    results_.push_back(DecodeRequest(bodies_.back()));
    return results_.back();
  }
  // Decodes and expects a bad_request whose message contains `needle`.
  void ExpectBad(std::string body, std::string_view needle,
                 ErrorCode code = ErrorCode::kBadRequest) {
    const DecodeResult& r = Decode(std::move(body));
    EXPECT_EQ(r.status.code(), code) << r.status.ToString();
    EXPECT_NE(r.status.message().find(needle), std::string::npos)
        << "message '" << r.status.message() << "' lacks '" << needle << "'";
  }
  // True if `view` points into the last decoded body (zero-copy decoding).
  bool InBody(std::string_view view) const {
    const std::string& b = bodies_.back();
    return view.data() >= b.data() && view.data() + view.size() <= b.data() + b.size();
  }

  std::deque<std::string> bodies_;
  std::deque<DecodeResult> results_;
};

// --- valid forms of every op ---

TEST_F(DecodeTest, AddEntry) {
  const auto& r = Decode(Body(
      {{"op", "add_entry"}, {"list", "groceries"}, {"date", "2026-03-01"}, {"title", "milk"}}));
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_EQ(r.request.op, Op::kAddEntry);
  EXPECT_EQ(r.request.list, "groceries");
  ASSERT_TRUE(r.request.date.has_value());
  EXPECT_EQ(FormatDate(*r.request.date), "2026-03-01");
  ASSERT_TRUE(r.request.title.has_value());
  EXPECT_EQ(*r.request.title, "milk");
  EXPECT_EQ(r.id.kind, RequestId::Kind::kNone);
  EXPECT_EQ(r.request.id.kind, RequestId::Kind::kNone);
  EXPECT_TRUE(InBody(r.request.list));
  EXPECT_TRUE(InBody(*r.request.title));
}

TEST_F(DecodeTest, KeyOrderDoesNotMatter) {
  const auto& r = Decode(Body(
      {{"title", "milk"}, {"date", "2026-03-01"}, {"list", "groceries"}, {"op", "add_entry"}}));
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_EQ(r.request.op, Op::kAddEntry);
  EXPECT_EQ(*r.request.title, "milk");
}

TEST_F(DecodeTest, EntriesWithAndWithoutDate) {
  const auto& all = Decode(Body({{"op", "entries"}, {"list", "l"}}));
  ASSERT_TRUE(all.status.ok()) << all.status.ToString();
  EXPECT_EQ(all.request.op, Op::kEntries);
  EXPECT_EQ(all.request.list, "l");
  EXPECT_FALSE(all.request.date.has_value());
  const auto& on = Decode(Body({{"op", "entries"}, {"list", "l"}, {"date", "2024-02-29"}}));
  ASSERT_TRUE(on.status.ok()) << on.status.ToString();
  EXPECT_EQ(on.request.date->packed, 20240229u);
}

TEST_F(DecodeTest, UpdateEntryForms) {
  const auto& date_only = Decode(
      Body({{"op", "update_entry"}, {"list", "l"}, {"entry_id", U(3)}, {"date", "2026-01-02"}}));
  ASSERT_TRUE(date_only.status.ok()) << date_only.status.ToString();
  EXPECT_EQ(date_only.request.op, Op::kUpdateEntry);
  EXPECT_EQ(date_only.request.entry_id, 3u);
  EXPECT_EQ(date_only.request.date->packed, 20260102u);
  EXPECT_FALSE(date_only.request.title.has_value());

  const auto& title_only =
      Decode(Body({{"op", "update_entry"}, {"list", "l"}, {"entry_id", U(4)}, {"title", "t"}}));
  ASSERT_TRUE(title_only.status.ok()) << title_only.status.ToString();
  EXPECT_EQ(title_only.request.entry_id, 4u);
  EXPECT_FALSE(title_only.request.date.has_value());
  EXPECT_EQ(*title_only.request.title, "t");

  const auto& both = Decode(Body({{"op", "update_entry"},
                                  {"list", "l"},
                                  {"entry_id", U(5)},
                                  {"date", "2026-01-02"},
                                  {"title", "t2"}}));
  ASSERT_TRUE(both.status.ok()) << both.status.ToString();
  EXPECT_EQ(both.request.date->packed, 20260102u);
  EXPECT_EQ(*both.request.title, "t2");
}

TEST_F(DecodeTest, DeleteEntry) {
  const auto& r = Decode(Body({{"op", "delete_entry"}, {"list", "l"}, {"entry_id", U(9)}}));
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_EQ(r.request.op, Op::kDeleteEntry);
  EXPECT_EQ(r.request.list, "l");
  EXPECT_EQ(r.request.entry_id, 9u);
}

TEST_F(DecodeTest, EntryIdAcceptsWholeUintRange) {
  for (uint64_t id : {uint64_t{0}, uint64_t{1}, uint64_t{127}, uint64_t{128}, uint64_t{65536},
                      uint64_t{1} << 32, UINT64_MAX}) {
    const auto& r = Decode(Body({{"op", "delete_entry"}, {"list", "l"}, {"entry_id", U(id)}}));
    ASSERT_TRUE(r.status.ok()) << r.status.ToString();
    EXPECT_EQ(r.request.entry_id, id);
  }
}

// Regression: msgpack-c reports every int8..int64 encoding through
// visit_negative_integer, even a non-negative value; such a value is a uint.
TEST_F(DecodeTest, NonNegativeSignedEncodingsAreUints) {
  const auto& a = Decode(Body({{"op", "delete_entry"}, {"list", "l"}, {"entry_id", Int8(5)}}));
  ASSERT_TRUE(a.status.ok()) << a.status.ToString();
  EXPECT_EQ(a.request.entry_id, 5u);
  const auto& b = Decode(Body({{"op", "delete_entry"}, {"list", "l"}, {"entry_id", Int64(0)}}));
  ASSERT_TRUE(b.status.ok()) << b.status.ToString();
  EXPECT_EQ(b.request.entry_id, 0u);
  const auto& c = Decode(Body({{"op", "ping"}, {"id", Int64(INT64_MAX)}}));
  ASSERT_TRUE(c.status.ok()) << c.status.ToString();
  EXPECT_EQ(c.id.kind, RequestId::Kind::kUint);
  EXPECT_EQ(c.id.uint_value, uint64_t{INT64_MAX});
}

TEST_F(DecodeTest, Locate) {
  const auto& r = Decode(Body({{"op", "locate"}, {"list", "some list"}}));
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_EQ(r.request.op, Op::kLocate);
  EXPECT_EQ(r.request.list, "some list");
}

TEST_F(DecodeTest, PingNeedsNoList) {
  const auto& r = Decode(Body({{"op", "ping"}}));
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_EQ(r.request.op, Op::kPing);
  EXPECT_TRUE(r.request.list.empty());
  // ping does not use 'list', so like an unknown key it is not validated.
  EXPECT_TRUE(Decode(Body({{"op", "ping"}, {"list", U(1)}})).status.ok());
}

TEST_F(DecodeTest, KeysAnOpDoesNotUseAreIgnored) {
  const auto& r = Decode(Body(
      {{"op", "locate"}, {"list", "l"}, {"date", U(1)}, {"title", Nil()}, {"entry_id", "nope"}}));
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_FALSE(r.request.date.has_value());
  EXPECT_FALSE(r.request.title.has_value());
  const auto& add = Decode(Body({{"op", "add_entry"},
                                 {"list", "l"},
                                 {"date", "2026-01-01"},
                                 {"title", "t"},
                                 {"entry_id", Bin("x")}}));
  EXPECT_TRUE(add.status.ok()) << add.status.ToString();
  const auto& del =
      Decode(Body({{"op", "delete_entry"}, {"list", "l"}, {"entry_id", U(1)}, {"date", "bad"}}));
  EXPECT_TRUE(del.status.ok()) << del.status.ToString();
}

// --- the id ---

TEST_F(DecodeTest, UintIdIsEchoed) {
  for (uint64_t id : {uint64_t{0}, uint64_t{42}, uint64_t{1} << 40, UINT64_MAX}) {
    const auto& r = Decode(Body({{"op", "ping"}, {"id", U(id)}}));
    ASSERT_TRUE(r.status.ok());
    EXPECT_EQ(r.id.kind, RequestId::Kind::kUint);
    EXPECT_EQ(r.id.uint_value, id);
    EXPECT_EQ(r.request.id.kind, RequestId::Kind::kUint);
    EXPECT_EQ(r.request.id.uint_value, id);
  }
}

TEST_F(DecodeTest, StrIdIsEchoed) {
  for (std::string id : {std::string("req-1"), std::string(""), std::string("\xff\x00z", 3)}) {
    const auto& r = Decode(Body({{"id", id}, {"op", "ping"}}));
    ASSERT_TRUE(r.status.ok());
    EXPECT_EQ(r.id.kind, RequestId::Kind::kStr);
    EXPECT_EQ(r.id.str_value, id);
    EXPECT_EQ(r.request.id.str_value, id);
  }
}

TEST_F(DecodeTest, IdOfOtherTypeIsBadRequest) {
  for (const V& id : {Nil(), Bool(true), Bool(false), I(-1), Int64(INT64_MIN), F64(1.0), F32(2.5f),
                      Bin("7"), Arr({U(1)}), Map({{"a", U(1)}}), Ext(1, "x")}) {
    const auto& r = Decode(Body({{"op", "ping"}, {"id", id}}));
    EXPECT_EQ(r.status.code(), ErrorCode::kBadRequest);
    EXPECT_NE(r.status.message().find("'id'"), std::string::npos) << r.status.message();
    EXPECT_EQ(r.id.kind, RequestId::Kind::kNone);
  }
}

TEST_F(DecodeTest, IdIsEchoedEvenWhenSomethingElseIsBad) {
  struct Case {
    std::string body;
    ErrorCode code;
  };
  std::vector<Case> cases = {
      {Body({{"op", "frobnicate"}, {"id", U(77)}}), ErrorCode::kUnknownOp},
      {Body({{"op", "add_entry"},
             {"id", U(77)},
             {"list", "l"},
             {"date", "2026-02-29"},
             {"title", "t"}}),
       ErrorCode::kBadRequest},
      // The bad key comes before the id: the whole map is still read.
      {Body({{"list", ""}, {"op", "entries"}, {"id", U(77)}}), ErrorCode::kBadRequest},
      {Body({{"id", U(77)}}), ErrorCode::kBadRequest},                           // no op
      {Body({{"id", U(77)}, {"op", "ping"}}) + '\x00', ErrorCode::kBadRequest},  // trailing
      {Body({{"id", U(77)}, {U(1), "x"}}), ErrorCode::kBadRequest},              // non-str key
      {Body({{"id", U(77)}, {Bin("op"), "ping"}}), ErrorCode::kBadRequest},
      {Body({{"id", U(77)}, {"op", "ping"}, {"op", "ping"}}), ErrorCode::kBadRequest},
      {Body({{"id", U(77)}, {"deep", Nest(40)}}), ErrorCode::kBadRequest},
      {Body({{"id", U(77)}, {"op", "ping"}}).substr(0, 6), ErrorCode::kBadRequest},  // cut
  };
  for (const Case& c : cases) {
    const auto& r = Decode(c.body);
    EXPECT_EQ(r.status.code(), c.code) << r.status.ToString();
    EXPECT_EQ(r.id.kind, RequestId::Kind::kUint) << r.status.ToString();
    EXPECT_EQ(r.id.uint_value, 77u) << r.status.ToString();
  }
  const auto& s = Decode(Body({{"id", "abc"}, {"op", "nope"}}));
  EXPECT_EQ(s.status.code(), ErrorCode::kUnknownOp);
  EXPECT_EQ(s.id.kind, RequestId::Kind::kStr);
  EXPECT_EQ(s.id.str_value, "abc");
}

TEST_F(DecodeTest, IdAfterABadKeyIsStillEchoed) {
  // A bad key is remembered and its value skipped; the rest of the map is
  // still read, so a valid id after it is echoed (regression: decoding used
  // to stop at the first non-str key).
  for (const std::string& body : {Body({{U(1), "x"}, {"id", U(77)}, {"op", "ping"}}),
                                  Body({{Bin("k"), U(1)}, {"id", U(77)}, {"op", "ping"}}),
                                  Body({{Arr({U(1)}), U(1)}, {"id", U(77)}, {"op", "ping"}}),
                                  Body({{"op", "ping"}, {"op", "entries"}, {"id", U(77)}})}) {
    const auto& r = Decode(body);
    EXPECT_EQ(r.status.code(), ErrorCode::kBadRequest) << r.status.ToString();
    EXPECT_EQ(r.id.kind, RequestId::Kind::kUint) << r.status.ToString();
    EXPECT_EQ(r.id.uint_value, 77u);
  }
}

// --- body structure ---

TEST_F(DecodeTest, EmptyBody) { ExpectBad("", "msgpack"); }

TEST_F(DecodeTest, NotMsgpack) {
  ExpectBad("\xc1", "not valid msgpack");  // 0xc1 is never used
  ExpectBad(std::string("\x81\xa2op\xc1", 5), "not valid msgpack");
  ExpectBad("\x81\xa2op", "truncated");            // a map cut after its key
  ExpectBad("\x82\xa2op\xa4ping", "truncated");    // one pair short
  ExpectBad("\xdf\xff\xff\xff\xff", "truncated");  // map32 of 2^32-1 pairs, no pairs
}

TEST_F(DecodeTest, TopLevelMustBeAMap) {
  ExpectBad(Arr({}).bytes(), "map");
  ExpectBad(Arr({Map({{"op", "ping"}})}).bytes(), "map");
  for (const V& v :
       {U(0), U(1000), I(-5), V("ping"), Bin("x"), Nil(), Bool(true), F64(1.5), Ext(3, "abc")}) {
    ExpectBad(v.bytes(), "map");
  }
  // "hello" as raw bytes: 'h' is a positive fixint, then trailing bytes.
  ExpectBad("hello", "map");
}

TEST_F(DecodeTest, TrailingBytes) {
  std::string ok = Body({{"op", "ping"}});
  ExpectBad(ok + '\x00', "trailing");
  ExpectBad(ok + ok, "trailing");
  ExpectBad(ok + "\xc1", "trailing");
  ExpectBad(ok + "\xa2", "trailing");  // an incomplete second value
}

TEST_F(DecodeTest, EmptyMapLacksOp) { ExpectBad(Body({}), "missing key 'op'"); }

TEST_F(DecodeTest, NonStrKeys) {
  for (const V& k : {U(1), I(-1), Nil(), Bool(false), F64(0.5), Ext(1, "k"), Arr({}), Arr({"op"}),
                     Map({}), Map({{"op", "ping"}})}) {
    ExpectBad(Body({{"op", "ping"}, {k, "x"}}), "keys must be str");
  }
}

TEST_F(DecodeTest, BinKey) {
  ExpectBad(Body({{Bin("op"), "ping"}}), "bin");
  ExpectBad(Body({{"op", "ping"}, {Bin("unknown"), "x"}}), "keys must be str, not bin");
}

TEST_F(DecodeTest, BinWhereStrIsDue) {
  ExpectBad(Body({{"op", Bin("ping")}}), "key 'op' must be a str, not bin");
  ExpectBad(Body({{"op", "entries"}, {"list", Bin("l")}}), "key 'list' must be a str, not bin");
  ExpectBad(Body({{"op", "add_entry"}, {"list", "l"}, {"date", "2026-01-01"}, {"title", Bin("t")}}),
            "key 'title' must be a str, not bin");
  ExpectBad(Body({{"op", "add_entry"}, {"list", "l"}, {"date", Bin("2026-01-01")}, {"title", "t"}}),
            "key 'date' must be a str, not bin");
  ExpectBad(Body({{"op", "entries"}, {"list", "l"}, {"date", Bin("2026-01-01")}}),
            "key 'date' must be a str, not bin");
}

// --- op ---

TEST_F(DecodeTest, MissingOp) {
  ExpectBad(Body({{"list", "l"}}), "missing key 'op'");
  ExpectBad(Body({{"OP", "ping"}}), "missing key 'op'");  // keys are case-sensitive
}

TEST_F(DecodeTest, OpNotStr) {
  for (const V& v : {U(1), Nil(), Bool(true), F64(1), Arr({"ping"}), Map({{"op", "ping"}})}) {
    ExpectBad(Body({{"op", v}}), "key 'op' must be a str");
  }
}

TEST_F(DecodeTest, UnknownOp) {
  for (std::string op : {std::string("frobnicate"), std::string(""), std::string("PING"),
                         std::string("ping "), std::string("ping\0", 5), std::string("\xff")}) {
    ExpectBad(Body({{"op", op}}), "unknown op", ErrorCode::kUnknownOp);
  }
  // The op is checked before the keys it would need.
  ExpectBad(Body({{"op", "add_things"}, {"list", U(3)}}), "unknown op", ErrorCode::kUnknownOp);
}

TEST(OpTest, NamesAndClasses) {
  for (Op op :
       {Op::kAddEntry, Op::kEntries, Op::kUpdateEntry, Op::kDeleteEntry, Op::kLocate, Op::kPing}) {
    EXPECT_EQ(ParseOp(OpName(op)), op);
  }
  EXPECT_EQ(OpName(Op::kAddEntry), "add_entry");
  EXPECT_EQ(OpName(Op::kEntries), "entries");
  EXPECT_EQ(OpName(Op::kUpdateEntry), "update_entry");
  EXPECT_EQ(OpName(Op::kDeleteEntry), "delete_entry");
  EXPECT_EQ(OpName(Op::kLocate), "locate");
  EXPECT_EQ(OpName(Op::kPing), "ping");
  EXPECT_FALSE(ParseOp("Ping").has_value());
  EXPECT_TRUE(IsMutating(Op::kAddEntry));
  EXPECT_TRUE(IsMutating(Op::kUpdateEntry));
  EXPECT_TRUE(IsMutating(Op::kDeleteEntry));
  EXPECT_FALSE(IsMutating(Op::kEntries));
  EXPECT_FALSE(IsMutating(Op::kLocate));
  EXPECT_FALSE(IsMutating(Op::kPing));
  EXPECT_FALSE(NeedsList(Op::kPing));
  EXPECT_TRUE(NeedsList(Op::kLocate));
  EXPECT_TRUE(NeedsList(Op::kEntries));
}

// --- list ---

TEST_F(DecodeTest, ListRules) {
  for (const char* op : {"entries", "locate"}) {
    ExpectBad(Body({{"op", op}}), "missing key 'list'");
    ExpectBad(Body({{"op", op}, {"list", ""}}), "key 'list' must be 1-255 bytes, not 0");
    ExpectBad(Body({{"op", op}, {"list", StrOf(256)}}), "key 'list' must be 1-255 bytes, not 256");
    ExpectBad(Body({{"op", op}, {"list", "ab\xff"}}), "key 'list' is not valid UTF-8");
    ExpectBad(Body({{"op", op}, {"list", "\xed\xa0\x80"}}), "key 'list' is not valid UTF-8");
    ExpectBad(Body({{"op", op}, {"list", U(5)}}), "key 'list' must be a str, not uint");
    ExpectBad(Body({{"op", op}, {"list", Nil()}}), "key 'list' must be a str, not nil");
    ExpectBad(Body({{"op", op}, {"list", Arr({"l"})}}), "key 'list' must be a str, not array");
  }
  ExpectBad(Body({{"op", "add_entry"}, {"date", "2026-01-01"}, {"title", "t"}}),
            "missing key 'list'");
  ExpectBad(Body({{"op", "update_entry"}, {"entry_id", U(1)}, {"title", "t"}}),
            "missing key 'list'");
  ExpectBad(Body({{"op", "delete_entry"}, {"entry_id", U(1)}}), "missing key 'list'");
}

TEST_F(DecodeTest, ListLimitsAccepted) {
  std::string euros;  // 85 x "€": 255 bytes of 3-byte characters
  for (int i = 0; i < 85; ++i) euros += "\xe2\x82\xac";
  for (const std::string& list : {std::string("a"), std::string(255, 'z'), std::string("a/b"),
                                  std::string("\0", 1), std::string("\xf0\x9f\x98\x80"), euros}) {
    const auto& r = Decode(Body({{"op", "locate"}, {"list", list}}));
    ASSERT_TRUE(r.status.ok()) << r.status.ToString();
    EXPECT_EQ(r.request.list, list);
  }
}

// --- title ---

TEST_F(DecodeTest, TitleRules) {
  auto add = [](V title) {
    return Body({{"op", "add_entry"}, {"list", "l"}, {"date", "2026-01-01"}, {"title", title}});
  };
  ExpectBad(add(""), "key 'title' must be 1-1024 bytes, not 0");
  ExpectBad(add(StrOf(1025)), "key 'title' must be 1-1024 bytes, not 1025");
  ExpectBad(add("milk\xc0\xaf"), "key 'title' is not valid UTF-8");
  ExpectBad(add("\xf4\x90\x80\x80"), "key 'title' is not valid UTF-8");
  ExpectBad(add(U(1)), "key 'title' must be a str, not uint");
  ExpectBad(Body({{"op", "add_entry"}, {"list", "l"}, {"date", "2026-01-01"}}),
            "missing key 'title'");
  for (size_t n : {size_t{1}, size_t{1024}}) {
    const auto& r = Decode(add(StrOf(n)));
    ASSERT_TRUE(r.status.ok()) << r.status.ToString();
    EXPECT_EQ(r.request.title->size(), n);
  }
  const auto& nul = Decode(add(std::string("a\0b", 3)));
  ASSERT_TRUE(nul.status.ok());
  EXPECT_EQ(*nul.request.title, std::string("a\0b", 3));
  auto upd = [](V title) {
    return Body({{"op", "update_entry"}, {"list", "l"}, {"entry_id", U(1)}, {"title", title}});
  };
  ExpectBad(upd(""), "key 'title' must be 1-1024 bytes");
  ExpectBad(upd(StrOf(1025)), "key 'title' must be 1-1024 bytes");
  ExpectBad(upd("\xff"), "key 'title' is not valid UTF-8");
}

// --- date ---

TEST_F(DecodeTest, DateRules) {
  auto add = [](V date) {
    return Body({{"op", "add_entry"}, {"list", "l"}, {"date", date}, {"title", "t"}});
  };
  for (const char* bad : {"2026-02-29", "0000-01-01", "2026-13-01", "2026-01-00", "2026-1-01",
                          "2026/01/01", "2026-01-01 ", "today", ""}) {
    ExpectBad(add(bad), "key 'date' must be a real calendar date");
    ExpectBad(Body({{"op", "entries"}, {"list", "l"}, {"date", bad}}), "key 'date'");
    ExpectBad(Body({{"op", "update_entry"}, {"list", "l"}, {"entry_id", U(1)}, {"date", bad}}),
              "key 'date'");
  }
  ExpectBad(add(U(20260101)), "key 'date' must be a str, not uint");
  ExpectBad(add(Nil()), "key 'date' must be a str, not nil");
  ExpectBad(Body({{"op", "add_entry"}, {"list", "l"}, {"title", "t"}}), "missing key 'date'");
  // The offending value is quoted, with unprintable bytes escaped.
  ExpectBad(add("\x01\x02"), "'\\x01\\x02'");
}

// --- entry_id ---

TEST_F(DecodeTest, EntryIdRules) {
  for (const char* op : {"update_entry", "delete_entry"}) {
    auto body = [&](V id) {
      return Body({{"op", op}, {"list", "l"}, {"entry_id", id}, {"title", "t"}});
    };
    ExpectBad(body(I(-1)), "key 'entry_id' must be a uint, not negative int");
    ExpectBad(body(Int64(INT64_MIN)), "key 'entry_id' must be a uint, not negative int");
    ExpectBad(body("1"), "key 'entry_id' must be a uint, not str");
    ExpectBad(body(F64(1.0)), "key 'entry_id' must be a uint, not float");
    ExpectBad(body(Nil()), "key 'entry_id' must be a uint, not nil");
    ExpectBad(body(Bin("\x01")), "key 'entry_id' must be a uint, not bin");
    ExpectBad(body(Arr({U(1)})), "key 'entry_id' must be a uint, not array");
    ExpectBad(Body({{"op", op}, {"list", "l"}, {"title", "t"}}), "missing key 'entry_id'");
  }
}

TEST_F(DecodeTest, UpdateNeedsDateOrTitle) {
  const auto& r = Decode(Body({{"op", "update_entry"}, {"list", "l"}, {"entry_id", U(1)}}));
  EXPECT_EQ(r.status.code(), ErrorCode::kBadRequest);
  EXPECT_NE(r.status.message().find("'date'"), std::string::npos) << r.status.message();
  EXPECT_NE(r.status.message().find("'title'"), std::string::npos) << r.status.message();
}

// --- unknown and duplicate keys ---

TEST_F(DecodeTest, UnknownKeysAreIgnoredWhateverTheirValues) {
  const auto& r = Decode(Body({
      {"op", "entries"},
      {"extra", U(1)},
      {"neg", I(-7)},
      {"blob", Bin("\xff\x00")},
      {"bad_utf8", "\xff\xfe"},
      {"nothing", Nil()},
      {"f", F64(3.5)},
      {"e", Ext(5, "data")},
      {"arr", Arr({U(1), Nil(), Arr({Bin("x")})})},
      // Nested maps with non-str keys (even bin, map and array keys) inside
      // an unknown key's value are not looked at.
      {"nested", Map({{U(1), "a"},
                      {Bin("k"), Map({{Nil(), U(2)}})},
                      {Arr({}), Map({})},
                      {Map({{U(3), U(4)}}), "v"}})},
      {"deepish", Nest(30)},
      {"Op", "ignored"},
      {"list", "l"},
      {"extra2", Map({{"op", "add_entry"}, {"op", "dup inside is fine"}})},
      {"extra", "duplicate unknown key"},
  }));
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_EQ(r.request.op, Op::kEntries);
  EXPECT_EQ(r.request.list, "l");
}

TEST_F(DecodeTest, NestedKnownKeyNamesDoNotCount) {
  // An "op" inside a nested map is not the request's op.
  ExpectBad(Body({{"x", Map({{"op", "ping"}})}}), "missing key 'op'");
  const auto& r = Decode(Body({{"op", "ping"}, {"x", Map({{"id", U(5)}, {"op", "locate"}})}}));
  ASSERT_TRUE(r.status.ok());
  EXPECT_EQ(r.request.op, Op::kPing);
  EXPECT_EQ(r.id.kind, RequestId::Kind::kNone);
}

TEST_F(DecodeTest, DuplicateKnownKeys) {
  ExpectBad(Body({{"op", "ping"}, {"op", "ping"}}), "duplicate key 'op'");
  ExpectBad(Body({{"op", "ping"}, {"id", U(1)}, {"id", U(1)}}), "duplicate key 'id'");
  ExpectBad(Body({{"op", "entries"}, {"list", "a"}, {"list", "b"}}), "duplicate key 'list'");
  ExpectBad(
      Body({{"op", "entries"}, {"list", "a"}, {"date", "2026-01-01"}, {"date", "2026-01-01"}}),
      "duplicate key 'date'");
  ExpectBad(Body({{"op", "update_entry"},
                  {"list", "a"},
                  {"entry_id", U(1)},
                  {"title", "x"},
                  {"title", "y"}}),
            "duplicate key 'title'");
  ExpectBad(Body({{"op", "delete_entry"}, {"list", "a"}, {"entry_id", U(1)}, {"entry_id", U(2)}}),
            "duplicate key 'entry_id'");
  // A duplicate is refused even when its first value was a container or nil.
  ExpectBad(Body({{"list", Arr({})}, {"op", "entries"}, {"list", "a"}}), "duplicate key 'list'");
  ExpectBad(Body({{"list", Nil()}, {"op", "entries"}, {"list", "a"}}), "duplicate key 'list'");
}

// --- rid: the optional request id of a write ---

TEST_F(DecodeTest, RidOnEveryWrite) {
  const auto& add = Decode(Body({{"op", "add_entry"},
                                 {"list", "l"},
                                 {"date", "2026-01-01"},
                                 {"title", "t"},
                                 {"rid", "8e03978e-40d5-43e8-bc93-6894a57f9324"}}));
  ASSERT_TRUE(add.status.ok()) << add.status.ToString();
  EXPECT_EQ(add.request.rid, "8e03978e-40d5-43e8-bc93-6894a57f9324");
  EXPECT_TRUE(InBody(add.request.rid));  // zero-copy, like every str
  const auto& upd = Decode(Body(
      {{"op", "update_entry"}, {"list", "l"}, {"entry_id", U(1)}, {"title", "t"}, {"rid", "u"}}));
  ASSERT_TRUE(upd.status.ok()) << upd.status.ToString();
  EXPECT_EQ(upd.request.rid, "u");
  const auto& del = Decode(
      Body({{"rid", StrOf(64, 'd')}, {"op", "delete_entry"}, {"list", "l"}, {"entry_id", U(2)}}));
  ASSERT_TRUE(del.status.ok()) << del.status.ToString();
  EXPECT_EQ(del.request.rid, std::string(64, 'd'));
  // Without one: none (v1 behaviour).
  const auto& none = Decode(Body({{"op", "delete_entry"}, {"list", "l"}, {"entry_id", U(2)}}));
  ASSERT_TRUE(none.status.ok());
  EXPECT_TRUE(none.request.rid.empty());
}

TEST_F(DecodeTest, RidMayHoldAnyBytes) {
  // A str of any bytes: NUL, 0xff, not UTF-8. Only its size is checked.
  const std::string rid("\0\xff\xc0\x80 '", 6);
  const auto& r =
      Decode(Body({{"op", "delete_entry"}, {"list", "l"}, {"entry_id", U(1)}, {"rid", rid}}));
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_EQ(r.request.rid, rid);
}

TEST_F(DecodeTest, RidRules) {
  auto del = [](V rid) {
    return Body({{"op", "delete_entry"}, {"list", "l"}, {"entry_id", U(1)}, {"rid", rid}});
  };
  ExpectBad(del(""), "key 'rid' must be 1-64 bytes, not 0");
  ExpectBad(del(StrOf(65)), "key 'rid' must be 1-64 bytes, not 65");
  ExpectBad(del(Bin("abc")), "key 'rid' must be a str, not bin");
  ExpectBad(del(U(7)), "key 'rid' must be a str, not uint");
  ExpectBad(del(Nil()), "key 'rid' must be a str, not nil");
  ExpectBad(del(Arr({"a"})), "key 'rid' must be a str, not array");
  ExpectBad(Body({{"op", "add_entry"},
                  {"list", "l"},
                  {"date", "2026-01-01"},
                  {"title", "t"},
                  {"rid", F64(1.5)}}),
            "key 'rid' must be a str, not float");
  ExpectBad(Body({{"op", "update_entry"},
                  {"list", "l"},
                  {"entry_id", U(1)},
                  {"date", "2026-01-01"},
                  {"rid", StrOf(100)}}),
            "key 'rid' must be 1-64 bytes, not 100");
  ExpectBad(
      Body({{"op", "delete_entry"}, {"list", "l"}, {"entry_id", U(1)}, {"rid", "a"}, {"rid", "a"}}),
      "duplicate key 'rid'");
}

TEST_F(DecodeTest, RidIsCheckedAfterTheOpsOwnKeys) {
  // Validation order: the op's keys first (step 7), then the rid (step 8).
  ExpectBad(Body({{"op", "add_entry"},
                  {"list", "l"},
                  {"date", "2026-02-30"},
                  {"title", "t"},
                  {"rid", ""}}),
            "key 'date'");
  ExpectBad(Body({{"op", "delete_entry"}, {"list", "l"}, {"rid", ""}}), "missing key 'entry_id'");
  ExpectBad(Body({{"op", "update_entry"}, {"list", "l"}, {"entry_id", U(1)}, {"rid", U(1)}}),
            "update_entry needs at least one of 'date', 'title'");
  ExpectBad(Body({{"op", "delete_entry"}, {"rid", U(1)}, {"entry_id", U(1)}}),
            "missing key 'list'");
  // And the id is echoed as for any other bad key.
  const auto& r = Decode(Body(
      {{"op", "delete_entry"}, {"list", "l"}, {"entry_id", U(1)}, {"rid", U(3)}, {"id", U(9)}}));
  EXPECT_EQ(r.status.code(), ErrorCode::kBadRequest);
  EXPECT_EQ(r.id.uint_value, 9u);
}

TEST_F(DecodeTest, RidOnOtherOpsIsIgnored) {
  // Like any key an op doesn't use: not validated, not kept.
  for (const char* op : {"entries", "locate"}) {
    const auto& r = Decode(Body({{"op", op}, {"list", "l"}, {"rid", U(5)}}));
    ASSERT_TRUE(r.status.ok()) << op << ": " << r.status.ToString();
    EXPECT_TRUE(r.request.rid.empty());
  }
  const auto& ping = Decode(Body({{"op", "ping"}, {"rid", StrOf(500)}}));
  ASSERT_TRUE(ping.status.ok());
  EXPECT_TRUE(ping.request.rid.empty());
}

}  // namespace
}  // namespace todo::protocol
