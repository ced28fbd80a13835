// Reply encoders (checked by decoding their bytes with msgpack::unpack),
// EncodeRequest + DecodeRequest round trips, and DecodeReplyHeader.
#include <gtest/gtest.h>

#include <map>
#include <msgpack.hpp>
#include <set>
#include <string>
#include <vector>

#include "common/protocol.h"
#include "common/todo_list.h"
#include "tests/unit/common/msgpack_builder.h"

namespace todo::protocol {
namespace {

using ObjectMap = std::map<std::string, msgpack::object>;

// The str-keyed map `o`; fails the test on a non-str or duplicate key.
ObjectMap AsMap(const msgpack::object& o) {
  ObjectMap m;
  EXPECT_EQ(o.type, msgpack::type::MAP);
  if (o.type != msgpack::type::MAP) return m;
  for (uint32_t i = 0; i < o.via.map.size; ++i) {
    const auto& kv = o.via.map.ptr[i];
    EXPECT_EQ(kv.key.type, msgpack::type::STR);
    std::string k(kv.key.via.str.ptr, kv.key.via.str.size);
    EXPECT_TRUE(m.emplace(k, kv.val).second) << "duplicate key " << k;
  }
  return m;
}

std::set<std::string> Keys(const ObjectMap& m) {
  std::set<std::string> keys;
  for (const auto& [k, v] : m) keys.insert(k);
  return keys;
}

std::string AsStr(const msgpack::object& o) {
  EXPECT_EQ(o.type, msgpack::type::STR);
  if (o.type != msgpack::type::STR) return {};
  return std::string(o.via.str.ptr, o.via.str.size);
}

uint64_t AsUint(const msgpack::object& o) {
  EXPECT_EQ(o.type, msgpack::type::POSITIVE_INTEGER);
  return o.via.u64;
}

bool AsBool(const msgpack::object& o) {
  EXPECT_EQ(o.type, msgpack::type::BOOLEAN);
  return o.via.boolean;
}

// Unpacks exactly one value filling the whole buffer.
msgpack::object_handle UnpackOne(const msgpack::sbuffer& buf) {
  size_t off = 0;
  msgpack::object_handle oh = msgpack::unpack(buf.data(), buf.size(), off);
  EXPECT_EQ(off, buf.size()) << "trailing bytes after the reply";
  return oh;
}

const RequestId kNoId = RequestId::None();
const RequestId kUintId = RequestId::Uint(123456789012ULL);
const RequestId kStrId = RequestId::Str("req-7");

// Checks the envelope of a reply and returns its map.
ObjectMap CheckEnvelope(const msgpack::object& o, const RequestId& id, bool ok) {
  ObjectMap m = AsMap(o);
  std::set<std::string> want = {"ok", ok ? "result" : "error"};
  if (id.kind != RequestId::Kind::kNone) want.insert("id");
  EXPECT_EQ(Keys(m), want);
  EXPECT_EQ(AsBool(m["ok"]), ok);
  if (id.kind == RequestId::Kind::kUint) {
    EXPECT_EQ(AsUint(m["id"]), id.uint_value);
  }
  if (id.kind == RequestId::Kind::kStr) {
    EXPECT_EQ(AsStr(m["id"]), id.str_value);
  }
  return m;
}

TEST(EncodeReplyTest, ErrorWithEveryIdKind) {
  for (const RequestId& id : {kNoId, kUintId, kStrId}) {
    msgpack::sbuffer buf;
    EncodeError(buf, id, ErrorCode::kNotFound, "no entry 4 in list 'l'");
    auto oh = UnpackOne(buf);
    ObjectMap m = CheckEnvelope(oh.get(), id, false);
    ObjectMap err = AsMap(m["error"]);
    EXPECT_EQ(Keys(err), (std::set<std::string>{"code", "message"}));
    EXPECT_EQ(AsStr(err["code"]), "not_found");
    EXPECT_EQ(AsStr(err["message"]), "no entry 4 in list 'l'");
  }
}

TEST(EncodeReplyTest, ErrorFromStatusForEveryCode) {
  for (ErrorCode code :
       {ErrorCode::kBadRequest, ErrorCode::kUnknownOp, ErrorCode::kNotFound, ErrorCode::kOverloaded,
        ErrorCode::kUnavailable, ErrorCode::kTimeout, ErrorCode::kInternal}) {
    msgpack::sbuffer buf;
    EncodeError(buf, kUintId, Status(code, "why"));
    auto oh = UnpackOne(buf);
    ObjectMap err = AsMap(CheckEnvelope(oh.get(), kUintId, false)["error"]);
    EXPECT_EQ(AsStr(err["code"]), ErrorCodeName(code));
    EXPECT_EQ(AsStr(err["message"]), "why");
  }
}

TEST(EncodeReplyTest, AddResult) {
  for (const RequestId& id : {kNoId, kUintId, kStrId}) {
    msgpack::sbuffer buf;
    EncodeAddResult(buf, id, 42);
    auto oh = UnpackOne(buf);
    ObjectMap result = AsMap(CheckEnvelope(oh.get(), id, true)["result"]);
    EXPECT_EQ(Keys(result), (std::set<std::string>{"id"}));
    EXPECT_EQ(AsUint(result["id"]), 42u);
  }
}

void CheckEntry(const msgpack::object& o, const Entry& want) {
  ObjectMap m = AsMap(o);
  EXPECT_EQ(Keys(m), (std::set<std::string>{"id", "date", "title"}));
  EXPECT_EQ(AsUint(m["id"]), want.id);
  EXPECT_EQ(AsStr(m["date"]), FormatDate(want.date));
  EXPECT_EQ(AsStr(m["title"]), want.title);
}

TEST(EncodeReplyTest, Entries) {
  TodoList list;
  list.Add(*ParseDate("2026-01-02"), "first");
  list.Add(*ParseDate("0001-01-01"), std::string("nul\0and \xe2\x82\xac", 11));
  list.Add(*ParseDate("2026-01-02"), std::string(1024, 't'));
  for (const RequestId& id : {kNoId, kStrId}) {
    msgpack::sbuffer buf;
    EncodeEntries(buf, id, list.Entries());
    auto oh = UnpackOne(buf);
    ObjectMap m = CheckEnvelope(oh.get(), id, true);
    msgpack::object arr = m["result"];
    ASSERT_EQ(arr.type, msgpack::type::ARRAY);
    ASSERT_EQ(arr.via.array.size, 3u);
    auto entries = list.Entries();
    for (uint32_t i = 0; i < 3; ++i) CheckEntry(arr.via.array.ptr[i], entries[i].ToEntry());
  }
  msgpack::sbuffer one_date;
  EncodeEntries(one_date, kNoId, list.EntriesOn(*ParseDate("2026-01-02")));
  auto oh = UnpackOne(one_date);
  msgpack::object arr = AsMap(oh.get())["result"];
  ASSERT_EQ(arr.via.array.size, 2u);
  EXPECT_EQ(AsUint(AsMap(arr.via.array.ptr[0])["id"]), 1u);
  EXPECT_EQ(AsUint(AsMap(arr.via.array.ptr[1])["id"]), 3u);
}

TEST(EncodeReplyTest, EmptyEntriesIsAnEmptyArray) {
  msgpack::sbuffer buf;
  EncodeEntries(buf, kUintId, {});
  auto oh = UnpackOne(buf);
  msgpack::object arr = CheckEnvelope(oh.get(), kUintId, true)["result"];
  ASSERT_EQ(arr.type, msgpack::type::ARRAY);
  EXPECT_EQ(arr.via.array.size, 0u);
}

TEST(EncodeReplyTest, Entry) {
  Entry e{9, *ParseDate("9999-12-31"), "updated"};
  msgpack::sbuffer buf;
  EncodeEntry(buf, kStrId, e);
  auto oh = UnpackOne(buf);
  CheckEntry(CheckEnvelope(oh.get(), kStrId, true)["result"], e);
}

TEST(EncodeReplyTest, Deleted) {
  for (bool deleted : {true, false}) {
    msgpack::sbuffer buf;
    EncodeDeleted(buf, kNoId, deleted);
    auto oh = UnpackOne(buf);
    ObjectMap result = AsMap(CheckEnvelope(oh.get(), kNoId, true)["result"]);
    EXPECT_EQ(Keys(result), (std::set<std::string>{"deleted"}));
    EXPECT_EQ(AsBool(result["deleted"]), deleted);
  }
}

TEST(EncodeReplyTest, Locate) {
  msgpack::sbuffer buf;
  EncodeLocate(buf, kUintId, "n2");
  auto oh = UnpackOne(buf);
  ObjectMap result = AsMap(CheckEnvelope(oh.get(), kUintId, true)["result"]);
  EXPECT_EQ(Keys(result), (std::set<std::string>{"node"}));
  EXPECT_EQ(AsStr(result["node"]), "n2");
}

TEST(EncodeReplyTest, Ping) {
  msgpack::sbuffer buf;
  EncodePing(buf, kNoId, "router", "tcp://127.0.0.1:7000");
  auto oh = UnpackOne(buf);
  ObjectMap result = AsMap(CheckEnvelope(oh.get(), kNoId, true)["result"]);
  EXPECT_EQ(Keys(result), (std::set<std::string>{"pong", "role", "name"}));
  EXPECT_TRUE(AsBool(result["pong"]));
  EXPECT_EQ(AsStr(result["role"]), "router");
  EXPECT_EQ(AsStr(result["name"]), "tcp://127.0.0.1:7000");
}

TEST(EncodeReplyTest, EncodersAppend) {
  msgpack::sbuffer buf;
  EncodeAddResult(buf, kNoId, 1);
  EncodeDeleted(buf, kStrId, true);
  size_t off = 0;
  auto first = msgpack::unpack(buf.data(), buf.size(), off);
  auto second = msgpack::unpack(buf.data(), buf.size(), off);
  EXPECT_EQ(off, buf.size());
  EXPECT_EQ(AsUint(AsMap(AsMap(first.get())["result"])["id"]), 1u);
  EXPECT_EQ(AsStr(AsMap(second.get())["id"]), "req-7");
}

// --- EncodeRequest + DecodeRequest ---

std::vector<Request> SampleRequests() {
  std::vector<Request> out;
  Request add;
  add.op = Op::kAddEntry;
  add.list = "groceries/2026";
  add.date = ParseDate("2024-02-29");
  add.title = "milk \xe2\x82\xac";
  out.push_back(add);
  Request entries;
  entries.op = Op::kEntries;
  entries.list = "l";
  out.push_back(entries);
  entries.date = ParseDate("0001-01-01");
  out.push_back(entries);
  Request upd;
  upd.op = Op::kUpdateEntry;
  upd.list = std::string_view("nul\0list", 8);
  upd.entry_id = UINT64_MAX;
  upd.title = "t";
  out.push_back(upd);
  upd.date = ParseDate("9999-12-31");
  out.push_back(upd);
  upd.title.reset();
  out.push_back(upd);
  Request del;
  del.op = Op::kDeleteEntry;
  del.list = "l";
  del.entry_id = 0;
  out.push_back(del);
  Request loc;
  loc.op = Op::kLocate;
  static const std::string kLongList(255, 'q');
  loc.list = kLongList;
  out.push_back(loc);
  Request ping;
  ping.op = Op::kPing;
  out.push_back(ping);
  return out;
}

TEST(RequestRoundTripTest, EveryOpAndIdKind) {
  for (const RequestId& id : {kNoId, kUintId, kStrId}) {
    for (Request want : SampleRequests()) {
      want.id = id;
      msgpack::sbuffer buf;
      EncodeRequest(buf, want);
      std::string body(buf.data(), buf.size());
      DecodeResult r = DecodeRequest(body);
      ASSERT_TRUE(r.status.ok()) << OpName(want.op) << ": " << r.status.ToString();
      const Request& got = r.request;
      EXPECT_EQ(got.op, want.op);
      EXPECT_EQ(got.id.kind, id.kind);
      EXPECT_EQ(got.id.uint_value, id.uint_value);
      EXPECT_EQ(got.id.str_value, id.str_value);
      EXPECT_EQ(got.list, want.list);
      EXPECT_EQ(got.date, want.date);
      EXPECT_EQ(got.title, want.title);
      EXPECT_EQ(got.entry_id, want.entry_id);
    }
  }
}

TEST(RequestRoundTripTest, EncodesOnlyTheKeysTheOpUses) {
  struct Case {
    size_t index;  // into SampleRequests()
    std::set<std::string> keys;
  };
  std::vector<Request> reqs = SampleRequests();
  for (const Case& c :
       {Case{0, {"op", "list", "date", "title"}}, Case{1, {"op", "list"}},
        Case{2, {"op", "list", "date"}}, Case{3, {"op", "list", "entry_id", "title"}},
        Case{5, {"op", "list", "entry_id", "date"}}, Case{6, {"op", "list", "entry_id"}},
        Case{7, {"op", "list"}}, Case{8, {"op"}}}) {
    msgpack::sbuffer buf;
    EncodeRequest(buf, reqs[c.index]);
    auto oh = UnpackOne(buf);
    EXPECT_EQ(Keys(AsMap(oh.get())), c.keys) << c.index;
  }
  Request ping;
  ping.id = kStrId;
  msgpack::sbuffer buf;
  EncodeRequest(buf, ping);
  auto oh = UnpackOne(buf);
  ObjectMap m = AsMap(oh.get());
  EXPECT_EQ(Keys(m), (std::set<std::string>{"op", "id"}));
  EXPECT_EQ(AsStr(m["op"]), "ping");
  EXPECT_EQ(AsStr(m["id"]), "req-7");
}

TEST(RequestRoundTripTest, RidOnWritesOnly) {
  const std::string rid = std::string("r\0id-\xff", 7);  // any bytes
  for (Request want : SampleRequests()) {
    want.rid = rid;
    msgpack::sbuffer buf;
    EncodeRequest(buf, want);
    std::string body(buf.data(), buf.size());
    DecodeResult r = DecodeRequest(body);
    ASSERT_TRUE(r.status.ok()) << OpName(want.op) << ": " << r.status.ToString();
    auto oh = UnpackOne(buf);
    if (IsMutating(want.op)) {
      EXPECT_EQ(r.request.rid, rid) << OpName(want.op);
      EXPECT_TRUE(Keys(AsMap(oh.get())).contains("rid"));
    } else {
      // Only writes carry one: EncodeRequest leaves it out elsewhere.
      EXPECT_TRUE(r.request.rid.empty()) << OpName(want.op);
      EXPECT_FALSE(Keys(AsMap(oh.get())).contains("rid"));
    }
  }
}

// --- DecodeReplyHeader ---

TEST(DecodeReplyHeaderTest, OkReplies) {
  msgpack::sbuffer a;
  EncodeAddResult(a, kUintId, 5);
  auto h = DecodeReplyHeader(std::string_view(a.data(), a.size()));
  ASSERT_TRUE(h.ok()) << h.status().ToString();
  EXPECT_TRUE(h->ok);
  EXPECT_EQ(h->id_kind, RequestId::Kind::kUint);
  EXPECT_EQ(h->id_uint, kUintId.uint_value);

  msgpack::sbuffer b;
  EncodePing(b, kStrId, "node", "n1");
  h = DecodeReplyHeader(std::string_view(b.data(), b.size()));
  ASSERT_TRUE(h.ok());
  EXPECT_TRUE(h->ok);
  EXPECT_EQ(h->id_kind, RequestId::Kind::kStr);
  EXPECT_EQ(h->id_str, "req-7");

  msgpack::sbuffer c;
  EncodeEntries(c, kNoId, {});
  h = DecodeReplyHeader(std::string_view(c.data(), c.size()));
  ASSERT_TRUE(h.ok());
  EXPECT_TRUE(h->ok);
  EXPECT_EQ(h->id_kind, RequestId::Kind::kNone);
}

TEST(DecodeReplyHeaderTest, ErrorRepliesForEveryCode) {
  for (ErrorCode code :
       {ErrorCode::kBadRequest, ErrorCode::kUnknownOp, ErrorCode::kNotFound, ErrorCode::kOverloaded,
        ErrorCode::kUnavailable, ErrorCode::kTimeout, ErrorCode::kInternal}) {
    msgpack::sbuffer buf;
    EncodeError(buf, kStrId, code, "msg for " + std::string(ErrorCodeName(code)));
    auto h = DecodeReplyHeader(std::string_view(buf.data(), buf.size()));
    ASSERT_TRUE(h.ok());
    EXPECT_FALSE(h->ok);
    EXPECT_EQ(h->code, code);
    EXPECT_EQ(h->message, "msg for " + std::string(ErrorCodeName(code)));
    EXPECT_EQ(h->id_str, "req-7");
  }
}

TEST(DecodeReplyHeaderTest, UnknownCodeBecomesInternal) {
  using namespace ::todo::test_msgpack;  // NOLINT
  std::string body =
      Body({{"ok", Bool(false)}, {"error", Map({{"code", "brand_new"}, {"message", "m"}})}});
  auto h = DecodeReplyHeader(body);
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->code, ErrorCode::kInternal);
  EXPECT_EQ(h->message, "m");
}

TEST(DecodeReplyHeaderTest, ToleratesExtraKeys) {
  using namespace ::todo::test_msgpack;  // NOLINT
  std::string body = Body({{U(1), "x"}, {"ok", Bool(true)}, {"extra", Arr({})}, {"id", U(3)}});
  auto h = DecodeReplyHeader(body);
  ASSERT_TRUE(h.ok());
  EXPECT_TRUE(h->ok);
  EXPECT_EQ(h->id_uint, 3u);
}

TEST(DecodeReplyHeaderTest, RejectsMalformedReplies) {
  using namespace ::todo::test_msgpack;  // NOLINT
  std::string good = Body({{"ok", Bool(true)}, {"result", U(1)}});
  for (const std::string& body :
       {std::string(), std::string("\xc1"), Arr({}).bytes(), U(1).bytes(), good + good,
        good.substr(0, good.size() - 1), Body({{"result", U(1)}}),
        Body({{"ok", "true"}, {"result", U(1)}}), Body({{"ok", U(1)}})}) {
    auto h = DecodeReplyHeader(body);
    EXPECT_FALSE(h.ok()) << body.size();
    if (!h.ok()) {
      EXPECT_FALSE(h.status().message().empty());
    }
  }
}

}  // namespace
}  // namespace todo::protocol
