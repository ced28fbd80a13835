// todo-node, black box: every bad input the spec names gets bad_request (or
// unknown_op) with a message, and none of them changes anything.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/integration/harness.h"
#include "tests/integration/node_fixture.h"

namespace todo::testing {
namespace {

using namespace std::string_literals;

struct BadCase {
  std::string name;
  std::string body;
  std::string code = "bad_request";
};

Map Add(Value list, Value date, Value title) {
  return {{"op", "add_entry"}, {"list", list}, {"date", date}, {"title", title}};
}
Map Update(Value entry_id, std::vector<std::pair<Value, Value>> more) {
  Map m = {{"op", "update_entry"}, {"list", "l"}, {"entry_id", entry_id}};
  m.insert(m.end(), more.begin(), more.end());
  return m;
}

std::vector<BadCase> NotMsgpackOrNotAMap() {
  const std::string ping = Pack({{"op", "ping"}});
  return {
      {"never-used byte 0xc1", "\xc1"},
      {"map missing a value", "\x81\xa2op"},
      {"map shorter than declared", "\x82\xa2op\xa4ping"},
      {"str32 claiming 4 GiB", "\x81\xa2op\xdb\xff\xff\xff\xffping"},
      {"map32 claiming 2^32-1 pairs", "\xdf\xff\xff\xff\xff\xa2op\xa4ping"},
      {"array32 claiming 2^32-1 items", "\x82\xa2op\xa4ping\xa1x\xdd\xff\xff\xff\xff\xc0"},
      {"truncated ext8", "\xc7"},
      {"plain text", "hello world"},
      {"JSON", R"({"op":"ping"})"},
      {"array", "\x92\xa2op\xa4ping"},
      {"str", PackValue("ping")},
      {"uint", PackValue(5)},
      {"nil", PackValue(Value::Nil())},
      {"bool", PackValue(Value::Bool(true))},
      {"float", PackValue(Value::Double(1.0))},
      {"bin", PackValue(Value::Bin(ping))},
      {"empty map", Pack({})},
      {"trailing nil", ping + "\xc0"},
      {"trailing zero byte", ping + "\x00"s},
      {"two maps", ping + ping},
  };
}

std::vector<BadCase> BadKeysAndTypes() {
  const Value bin_map = Value::Raw(Pack({}));
  const Value arr = Value::Raw("\x91\x01");
  return {
      {"bin key op", Pack({{Value::Bin("op"), "ping"}})},
      {"bin key among valid keys", Pack({{"op", "ping"}, {Value::Bin("x"), 1}})},
      {"int key", Pack({{"op", "ping"}, {1, "x"}})},
      {"nil key", Pack({{"op", "ping"}, {Value::Nil(), "x"}})},
      {"array key", Pack({{"op", "ping"}, {arr, "x"}})},
      {"bin op", Pack({{"op", Value::Bin("ping")}})},
      {"int op", Pack({{"op", 1}})},
      {"nil op", Pack({{"op", Value::Nil()}})},
      {"map op", Pack({{"op", bin_map}})},
      {"id negative", Pack({{"op", "ping"}, {"id", -1}})},
      {"id nil", Pack({{"op", "ping"}, {"id", Value::Nil()}})},
      {"id bool", Pack({{"op", "ping"}, {"id", Value::Bool(true)}})},
      {"id float", Pack({{"op", "ping"}, {"id", Value::Double(1.0)}})},
      {"id float 1.5", Pack({{"op", "ping"}, {"id", Value::Double(1.5)}})},
      {"id bin", Pack({{"op", "ping"}, {"id", Value::Bin("abc")}})},
      {"id array", Pack({{"op", "ping"}, {"id", arr}})},
      {"id map", Pack({{"op", "ping"}, {"id", bin_map}})},
      {"bin list (entries)", Pack({{"op", "entries"}, {"list", Value::Bin("l")}})},
      {"bin list (add)", Pack(Add(Value::Bin("l"), "2026-01-01", "t"))},
      {"bin date", Pack(Add("l", Value::Bin("2026-01-01"), "t"))},
      {"bin title", Pack(Add("l", "2026-01-01", Value::Bin("t")))},
      {"int list", Pack({{"op", "entries"}, {"list", 7}})},
      {"nil list", Pack({{"op", "entries"}, {"list", Value::Nil()}})},
      {"array list", Pack({{"op", "entries"}, {"list", arr}})},
      {"int date", Pack(Add("l", 20260101, "t"))},
      {"int title", Pack(Add("l", "2026-01-01", 5))},
      {"entry_id str", Pack(Update("1", {{"title", "x"}}))},
      {"entry_id negative", Pack(Update(-1, {{"title", "x"}}))},
      {"entry_id float", Pack(Update(Value::Double(1.0), {{"title", "x"}}))},
      {"entry_id float 1.5", Pack(Update(Value::Double(1.5), {{"title", "x"}}))},
      {"entry_id nil", Pack(Update(Value::Nil(), {{"title", "x"}}))},
      {"entry_id bool", Pack(Update(Value::Bool(true), {{"title", "x"}}))},
      {"delete entry_id str", Pack({{"op", "delete_entry"}, {"list", "l"}, {"entry_id", "1"}})},
  };
}

std::vector<BadCase> BadListsAndTitles() {
  std::vector<BadCase> cases;
  const std::vector<std::pair<std::string, std::string>> bad_lists = {
      {"empty list", ""},
      {"256-byte list", std::string(256, 'L')},
      {"list 0xff", "\xff"},
      {"list truncated 2-byte", "a\xc3"},
      {"list overlong", "\xc0\xaf"},
      {"list surrogate", "\xed\xa0\x80"},
      {"list above U+10FFFF", "\xf4\x90\x80\x80"},
      {"list lone continuation", "ab\x80"},
  };
  for (const auto& [name, list] : bad_lists) {
    cases.push_back({name + " (add)", Pack(Add(list, "2026-01-01", "t"))});
    cases.push_back({name + " (entries)", Pack({{"op", "entries"}, {"list", list}})});
    cases.push_back({name + " (locate)", Pack({{"op", "locate"}, {"list", list}})});
    cases.push_back(
        {name + " (delete)", Pack({{"op", "delete_entry"}, {"list", list}, {"entry_id", 1}})});
  }
  const std::vector<std::pair<std::string, std::string>> bad_titles = {
      {"empty title", ""},
      {"1025-byte title", std::string(1025, 'T')},
      {"1025-byte title ending in a 2-byte char", std::string(1023, 'T') + "\xc3\xa9"},
      {"title 0xff", "\xff"},
      {"title truncated 3-byte", "ok\xe2\x82"},
      {"title surrogate", "x\xed\xbf\xbf"},
  };
  for (const auto& [name, title] : bad_titles) {
    cases.push_back({name + " (add)", Pack(Add("l", "2026-01-01", title))});
    cases.push_back({name + " (update)", Pack(Update(1, {{"title", title}}))});
  }
  return cases;
}

std::vector<BadCase> BadDates() {
  std::vector<BadCase> cases;
  for (const std::string date :
       {"2026-02-29", "2100-02-29",  "1900-02-29",  "2026-13-01",  "2026-00-10",
        "2026-01-00", "2026-01-32",  "2026-04-31",  "2026-06-31",  "0000-01-01",
        "0000-12-31", "2026-1-01",   "2026-01-1",   "26-01-01",    "2026/01/01",
        "",           "2026-01-01x", " 2026-01-01", "2026-01-01 ", "20260101",
        "+026-01-01", "-001-01-01",  "2026-0a-01",  "10000-01-01", "2026-01-01T00:00"}) {
    cases.push_back({"date '" + date + "' (add)", Pack(Add("l", date, "t"))});
  }
  cases.push_back({"date 2026-02-29 (entries filter)", Pack(EntriesOnDateReq("l", "2026-02-29"))});
  cases.push_back({"date 2026-02-29 (update)", Pack(Update(1, {{"date", "2026-02-29"}}))});
  cases.push_back({"date 2026-13-01 (update with title)",
                   Pack(Update(1, {{"date", "2026-13-01"}, {"title", "x"}}))});
  return cases;
}

std::vector<BadCase> MissingKeys() {
  return {
      {"no op", Pack({{"list", "l"}, {"id", 1}})},
      {"add_entry without list",
       Pack({{"op", "add_entry"}, {"date", "2026-01-01"}, {"title", "t"}})},
      {"add_entry without date", Pack({{"op", "add_entry"}, {"list", "l"}, {"title", "t"}})},
      {"add_entry without title",
       Pack({{"op", "add_entry"}, {"list", "l"}, {"date", "2026-01-01"}})},
      {"entries without list", Pack({{"op", "entries"}})},
      {"entries without list but with date", Pack({{"op", "entries"}, {"date", "2026-01-01"}})},
      {"update_entry without list",
       Pack({{"op", "update_entry"}, {"entry_id", 1}, {"title", "x"}})},
      {"update_entry without entry_id",
       Pack({{"op", "update_entry"}, {"list", "l"}, {"title", "x"}})},
      {"update_entry with neither date nor title", Pack(Update(1, {}))},
      {"delete_entry without list", Pack({{"op", "delete_entry"}, {"entry_id", 1}})},
      {"delete_entry without entry_id", Pack({{"op", "delete_entry"}, {"list", "l"}})},
      {"locate without list", Pack({{"op", "locate"}})},
  };
}

std::vector<BadCase> UnknownOps() {
  std::vector<BadCase> cases;
  for (const std::string op :
       {"frobnicate", "", "PING", "Add_Entry", "add-entry", "entries ", "get", "delete"}) {
    cases.push_back({"op '" + op + "'", Pack({{"op", op}, {"list", "l"}}), "unknown_op"});
  }
  cases.push_back({"unknown op without list", Pack({{"op", "frobnicate"}}), "unknown_op"});
  return cases;
}

class NodeBadInputTest : public NodeTest {
 protected:
  void RunCases(const std::vector<BadCase>& cases, Client::Mode mode = Client::Mode::kDealer) {
    ASSERT_NE(StartNode(), nullptr);
    Client c(endpoint_, mode);
    ASSERT_EQ(AddOk(c, "l", "2026-01-01", "keep"), 1u);
    for (const BadCase& bc : cases) {
      SCOPED_TRACE(bc.name);
      ExpectError(MustCallBody(c, bc.body), bc.code);
    }
    // Nothing was applied, and the node still serves.
    EXPECT_EQ(EntriesOk(c, "l"), (std::vector<WireEntry>{{1, "2026-01-01", "keep"}}));
    EXPECT_EQ(AddOk(c, "l", "2026-01-02", "next"), 2u);
    EXPECT_EQ(EntriesOk(c, std::string(255, 'L')), std::vector<WireEntry>{});
  }
};

TEST_F(NodeBadInputTest, NotMsgpackNotAMapOrTrailingBytes) { RunCases(NotMsgpackOrNotAMap()); }

TEST_F(NodeBadInputTest, BinKeysAndIllTypedValues) { RunCases(BadKeysAndTypes()); }

TEST_F(NodeBadInputTest, BadListNamesAndTitles) { RunCases(BadListsAndTitles()); }

TEST_F(NodeBadInputTest, BadDates) { RunCases(BadDates()); }

TEST_F(NodeBadInputTest, MissingKeys) { RunCases(MissingKeys()); }

TEST_F(NodeBadInputTest, UnknownOps) { RunCases(UnknownOps()); }

TEST_F(NodeBadInputTest, ValidIdIsEchoedWhateverTheKeyOrder) {
  ASSERT_NE(StartNode(), nullptr);
  Client c(endpoint_);
  const std::vector<std::pair<std::string, Map>> cases = {
      {"int op, id first", {{"id", 5}, {"op", 7}}},
      {"int op, id last", {{"op", 7}, {"id", 5}}},
      {"no op, id first", {{"id", 5}, {"list", "l"}}},
      {"long list, id last", {{"op", "entries"}, {"list", std::string(256, 'x')}, {"id", 5}}},
      {"bad date, id last",
       {{"op", "add_entry"}, {"list", "l"}, {"date", "2026-02-30"}, {"title", "t"}, {"id", 5}}},
      {"bin title, id first",
       {{"id", 5},
        {"op", "add_entry"},
        {"list", "l"},
        {"date", "2026-01-01"},
        {"title", Value::Bin("t")}}},
      {"bin key, id last", {{"op", "ping"}, {Value::Bin("k"), 1}, {"id", 5}}},
      {"int key, id first", {{"id", 5}, {"op", "ping"}, {2, 1}}},
      {"update without changes, id last",
       {{"op", "update_entry"}, {"list", "l"}, {"entry_id", 1}, {"id", 5}}},
  };
  for (const auto& [name, map] : cases) {
    SCOPED_TRACE(name);
    Reply r = MustCall(c, map);
    ExpectError(r, "bad_request");
    EXPECT_EQ(AsUint(r.Get("id")), std::optional<uint64_t>(5)) << r.ToString();
  }
  Reply r = MustCall(c, {{"list", "l"}, {"op", "nope"}, {"id", "s"}});
  ExpectError(r, "unknown_op");
  EXPECT_EQ(AsStr(r.Get("id")), std::optional<std::string>("s")) << r.ToString();
}

TEST_F(NodeBadInputTest, BadInputOverReqSocket) {
  std::vector<BadCase> cases = NotMsgpackOrNotAMap();
  std::vector<BadCase> more = MissingKeys();
  cases.insert(cases.end(), more.begin(), more.end());
  RunCases(cases, Client::Mode::kReq);
}

}  // namespace
}  // namespace todo::testing
