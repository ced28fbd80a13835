// todo-node, black box: every operation and its result shape, ids, ordering,
// persistence across restarts and odd list names.
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/harness.h"
#include "tests/integration/node_fixture.h"

namespace todo::testing {
namespace {

using NodeOpsTest = NodeTest;

TEST_F(NodeOpsTest, PingAnswersRoleNodeAndOwnName) {
  ASSERT_NE(StartNode({}, "node-7"), nullptr);
  Client c(endpoint_);
  Reply r = MustCall(c, {{"op", "ping"}, {"id", 1}});
  const msgpack::object* result = ExpectOk(r);
  EXPECT_EQ(AsUint(r.Get("id")), std::optional<uint64_t>(1)) << r.ToString();
  EXPECT_EQ(AsBool(MapGet(result, "pong")), std::optional<bool>(true)) << r.ToString();
  EXPECT_EQ(AsStr(MapGet(result, "role")), std::optional<std::string>("node")) << r.ToString();
  EXPECT_EQ(AsStr(MapGet(result, "name")), std::optional<std::string>("node-7")) << r.ToString();
}

TEST_F(NodeOpsTest, ReplyWithoutRequestIdHasNoId) {
  ASSERT_NE(StartNode(), nullptr);
  Client c(endpoint_);
  Reply ok = MustCall(c, {{"op", "ping"}});
  ExpectOk(ok);
  EXPECT_EQ(ok.Get("id"), nullptr) << ok.ToString();
  Reply bad = MustCall(c, {{"op", "entries"}});
  ExpectError(bad, "bad_request");
  EXPECT_EQ(bad.Get("id"), nullptr) << bad.ToString();
}

TEST_F(NodeOpsTest, RequestIdIsEchoedVerbatim) {
  ASSERT_NE(StartNode(), nullptr);
  Client c(endpoint_);
  for (uint64_t id : {uint64_t{0}, uint64_t{1}, uint64_t{255}, uint64_t{65536},
                      std::numeric_limits<uint64_t>::max()}) {
    SCOPED_TRACE("uint id " + std::to_string(id));
    Reply r = MustCall(c, {{"op", "ping"}, {"id", id}});
    ExpectOk(r);
    EXPECT_EQ(AsUint(r.Get("id")), std::optional<uint64_t>(id)) << r.ToString();
  }
  for (const std::string& id :
       std::vector<std::string>{"", "abc", "req-\xc3\xa9-42", std::string(300, 'x')}) {
    SCOPED_TRACE("str id " + id);
    Reply r = MustCall(c, {{"op", "ping"}, {"id", id}});
    ExpectOk(r);
    EXPECT_EQ(AsStr(r.Get("id")), std::optional<std::string>(id)) << r.ToString();
  }
  // Echoed on every kind of reply, success or failure.
  Reply add = MustCall(c, WithId(AddReq("l", "2026-01-02", "t"), "a1"));
  ExpectOk(add);
  EXPECT_EQ(AsStr(add.Get("id")), std::optional<std::string>("a1")) << add.ToString();
  Reply bad = MustCall(c, WithId(AddReq("l", "2026-02-29", "t"), 77));
  ExpectError(bad, "bad_request");
  EXPECT_EQ(AsUint(bad.Get("id")), std::optional<uint64_t>(77)) << bad.ToString();
  Reply unknown = MustCall(c, {{"op", "frobnicate"}, {"id", "u"}});
  ExpectError(unknown, "unknown_op");
  EXPECT_EQ(AsStr(unknown.Get("id")), std::optional<std::string>("u")) << unknown.ToString();
  Reply missing = MustCall(
      c, {{"op", "update_entry"}, {"list", "l"}, {"entry_id", 9}, {"title", "x"}, {"id", 5}});
  ExpectError(missing, "not_found");
  EXPECT_EQ(AsUint(missing.Get("id")), std::optional<uint64_t>(5)) << missing.ToString();
}

TEST_F(NodeOpsTest, AddEntryNumbersEachListFromOne) {
  ASSERT_NE(StartNode(), nullptr);
  Client c(endpoint_);
  Reply r = MustCall(c, AddReq("groceries", "2026-03-01", "milk"));
  const msgpack::object* result = ExpectOk(r);
  ASSERT_NE(result, nullptr);
  EXPECT_EQ(result->type, msgpack::type::MAP) << r.ToString();
  EXPECT_EQ(AsUint(MapGet(result, "id")), std::optional<uint64_t>(1)) << r.ToString();
  EXPECT_EQ(AddOk(c, "groceries", "2026-03-01", "eggs"), 2u);
  EXPECT_EQ(AddOk(c, "groceries", "2026-03-02", "bread"), 3u);
  EXPECT_EQ(AddOk(c, "work", "2026-03-01", "report"), 1u);
  EXPECT_EQ(AddOk(c, "groceries", "2026-03-01", "milk"), 4u);  // same content, new entry
}

TEST_F(NodeOpsTest, EntriesAreAscendingByIdAndFilterByDate) {
  ASSERT_NE(StartNode(), nullptr);
  Client c(endpoint_);
  AddOk(c, "l", "2026-05-03", "c");
  AddOk(c, "l", "2026-05-01", "a");
  AddOk(c, "l", "2026-05-03", "c2");
  AddOk(c, "l", "2026-05-02", "b");
  AddOk(c, "l", "2026-05-01", "a2");
  std::vector<WireEntry> all = {{1, "2026-05-03", "c"},
                                {2, "2026-05-01", "a"},
                                {3, "2026-05-03", "c2"},
                                {4, "2026-05-02", "b"},
                                {5, "2026-05-01", "a2"}};
  EXPECT_EQ(EntriesOk(c, "l"), all);
  std::vector<WireEntry> may1 = {{2, "2026-05-01", "a"}, {5, "2026-05-01", "a2"}};
  EXPECT_EQ(EntriesOk(c, "l", "2026-05-01"), may1);
  std::vector<WireEntry> may3 = {{1, "2026-05-03", "c"}, {3, "2026-05-03", "c2"}};
  EXPECT_EQ(EntriesOk(c, "l", "2026-05-03"), may3);
  EXPECT_EQ(EntriesOk(c, "l", "2026-05-04"), std::vector<WireEntry>{});
}

TEST_F(NodeOpsTest, NeverWrittenListIsEmptyAndStoresNothing) {
  Process* node = StartNode();
  ASSERT_NE(node, nullptr);
  Client c(endpoint_);
  Reply r = MustCall(c, EntriesReq("ghost"));
  const msgpack::object* result = ExpectOk(r);
  ASSERT_NE(result, nullptr);
  EXPECT_EQ(result->type, msgpack::type::ARRAY) << r.ToString();
  EXPECT_EQ(result->via.array.size, 0u) << r.ToString();
  EXPECT_EQ(EntriesOk(c, "ghost", "2026-01-01"), std::vector<WireEntry>{});
  StopNodeCleanly(node);
  ASSERT_NE(StartNode(), nullptr);
  Client c2(endpoint_);
  EXPECT_EQ(EntriesOk(c2, "ghost"), std::vector<WireEntry>{});
  EXPECT_EQ(AddOk(c2, "ghost", "2026-01-01", "first"), 1u);
}

TEST_F(NodeOpsTest, UpdateEntryDateTitleOrBoth) {
  ASSERT_NE(StartNode(), nullptr);
  Client c(endpoint_);
  AddOk(c, "l", "2026-01-01", "one");
  AddOk(c, "l", "2026-01-02", "two");

  Reply r =
      MustCall(c, {{"op", "update_entry"}, {"list", "l"}, {"entry_id", 1}, {"date", "2026-06-30"}});
  auto e = ParseEntry(ExpectOk(r));
  EXPECT_EQ(e, (WireEntry{1, "2026-06-30", "one"})) << r.ToString();

  r = MustCall(c, {{"op", "update_entry"}, {"list", "l"}, {"entry_id", 1}, {"title", "uno"}});
  e = ParseEntry(ExpectOk(r));
  EXPECT_EQ(e, (WireEntry{1, "2026-06-30", "uno"})) << r.ToString();

  r = MustCall(c, {{"op", "update_entry"},
                   {"list", "l"},
                   {"entry_id", 2},
                   {"date", "2027-12-31"},
                   {"title", "dos"}});
  e = ParseEntry(ExpectOk(r));
  EXPECT_EQ(e, (WireEntry{2, "2027-12-31", "dos"})) << r.ToString();

  std::vector<WireEntry> want = {{1, "2026-06-30", "uno"}, {2, "2027-12-31", "dos"}};
  EXPECT_EQ(EntriesOk(c, "l"), want);
  EXPECT_EQ(EntriesOk(c, "l", "2026-06-30"), std::vector<WireEntry>{want[0]});
  EXPECT_EQ(EntriesOk(c, "l", "2026-01-01"), std::vector<WireEntry>{});
}

TEST_F(NodeOpsTest, UpdateOfMissingEntryIsNotFoundAndChangesNothing) {
  ASSERT_NE(StartNode(), nullptr);
  Client c(endpoint_);
  AddOk(c, "l", "2026-01-01", "one");
  AddOk(c, "l", "2026-01-02", "two");
  ASSERT_EQ(MustCall(c, DeleteReq("l", 2)).ok(), true);
  for (uint64_t id : {uint64_t{0}, uint64_t{2}, uint64_t{3}, uint64_t{1000},
                      std::numeric_limits<uint64_t>::max()}) {
    SCOPED_TRACE("entry_id " + std::to_string(id));
    ExpectError(
        MustCall(c, {{"op", "update_entry"}, {"list", "l"}, {"entry_id", id}, {"title", "x"}}),
        "not_found");
  }
  ExpectError(MustCall(c, {{"op", "update_entry"},
                           {"list", "never-written"},
                           {"entry_id", 1},
                           {"date", "2026-01-01"}}),
              "not_found");
  EXPECT_EQ(EntriesOk(c, "l"), (std::vector<WireEntry>{{1, "2026-01-01", "one"}}));
  EXPECT_EQ(EntriesOk(c, "never-written"), std::vector<WireEntry>{});
  EXPECT_EQ(AddOk(c, "l", "2026-01-03", "three"), 3u);
}

TEST_F(NodeOpsTest, DeleteEntryReportsWhetherItExisted) {
  ASSERT_NE(StartNode(), nullptr);
  Client c(endpoint_);
  AddOk(c, "l", "2026-01-01", "one");
  AddOk(c, "l", "2026-01-02", "two");
  Reply r = MustCall(c, DeleteReq("l", 1));
  const msgpack::object* result = ExpectOk(r);
  EXPECT_EQ(AsBool(MapGet(result, "deleted")), std::optional<bool>(true)) << r.ToString();
  r = MustCall(c, DeleteReq("l", 1));
  result = ExpectOk(r);
  EXPECT_EQ(AsBool(MapGet(result, "deleted")), std::optional<bool>(false)) << r.ToString();
  for (uint64_t id : {uint64_t{0}, uint64_t{3}, std::numeric_limits<uint64_t>::max()}) {
    r = MustCall(c, DeleteReq("l", id));
    result = ExpectOk(r);
    EXPECT_EQ(AsBool(MapGet(result, "deleted")), std::optional<bool>(false)) << r.ToString();
  }
  r = MustCall(c, DeleteReq("never-written", 1));
  result = ExpectOk(r);
  EXPECT_EQ(AsBool(MapGet(result, "deleted")), std::optional<bool>(false)) << r.ToString();
  EXPECT_EQ(EntriesOk(c, "l"), (std::vector<WireEntry>{{2, "2026-01-02", "two"}}));
  EXPECT_EQ(EntriesOk(c, "never-written"), std::vector<WireEntry>{});
}

TEST_F(NodeOpsTest, IdsAreNeverReusedAfterDelete) {
  ASSERT_NE(StartNode(), nullptr);
  Client c(endpoint_);
  for (int i = 1; i <= 3; ++i) EXPECT_EQ(AddOk(c, "l", "2026-01-01", "t"), uint64_t(i));
  EXPECT_TRUE(AsBool(MapGet(ExpectOk(MustCall(c, DeleteReq("l", 3))), "deleted")).value_or(false));
  EXPECT_EQ(AddOk(c, "l", "2026-01-01", "t"), 4u);
  for (uint64_t id = 1; id <= 4; ++id) MustCall(c, DeleteReq("l", id));
  EXPECT_EQ(EntriesOk(c, "l"), std::vector<WireEntry>{});
  EXPECT_EQ(AddOk(c, "l", "2026-01-01", "after"), 5u);
}

TEST_F(NodeOpsTest, LocateAnswersOwnName) {
  ASSERT_NE(StartNode({}, "node-7.b_X"), nullptr);
  Client c(endpoint_);
  for (std::string list : {"a", "b", "some/other list"}) {
    Reply r = MustCall(c, {{"op", "locate"}, {"list", list}, {"id", 3}});
    const msgpack::object* result = ExpectOk(r);
    EXPECT_EQ(AsStr(MapGet(result, "node")), std::optional<std::string>("node-7.b_X"))
        << r.ToString();
    EXPECT_EQ(AsUint(r.Get("id")), std::optional<uint64_t>(3)) << r.ToString();
  }
}

TEST_F(NodeOpsTest, UnknownKeysAreIgnored) {
  ASSERT_NE(StartNode(), nullptr);
  Client c(endpoint_);
  std::string nested =
      Pack({{"a", Value::Raw(PackValue(Value::Bin("\x01\x02")))}, {"b", Value::Double(1.5)}});
  Reply r = MustCall(c, {{"op", "add_entry"},
                         {"extra", Value::Raw(nested)},
                         {"list", "l"},
                         {"n", Value::Nil()},
                         {"date", "2026-01-01"},
                         {"flag", Value::Bool(true)},
                         {"title", "t"},
                         {"neg", -5}});
  EXPECT_EQ(AsUint(MapGet(ExpectOk(r), "id")), std::optional<uint64_t>(1)) << r.ToString();
}

TEST_F(NodeOpsTest, BoundaryValuesAreAccepted) {
  ASSERT_NE(StartNode(), nullptr);
  Client c(endpoint_);
  const std::string list255(255, 'L');
  const std::string title1024(1024, 'T');
  // 1020 ASCII bytes + a 4-byte emoji: exactly 1024 bytes.
  const std::string title_utf8 = std::string(1020, 'u') + "\xf0\x9f\x99\x82";
  const std::string list_utf8 = std::string(251, 'm') + "\xf0\x9f\x99\x82";
  EXPECT_EQ(AddOk(c, list255, "0001-01-01", title1024), 1u);
  EXPECT_EQ(AddOk(c, list255, "9999-12-31", "x"), 2u);
  EXPECT_EQ(AddOk(c, list255, "2024-02-29", title_utf8), 3u);
  EXPECT_EQ(AddOk(c, list255, "2000-02-29", "\xe6\x97\xa5\xe6\x9c\xac"), 4u);
  EXPECT_EQ(AddOk(c, list_utf8, "2026-12-31", "y"), 1u);
  std::vector<WireEntry> want = {{1, "0001-01-01", title1024},
                                 {2, "9999-12-31", "x"},
                                 {3, "2024-02-29", title_utf8},
                                 {4, "2000-02-29", "\xe6\x97\xa5\xe6\x9c\xac"}};
  EXPECT_EQ(EntriesOk(c, list255), want);
  EXPECT_EQ(EntriesOk(c, list_utf8), (std::vector<WireEntry>{{1, "2026-12-31", "y"}}));
}

TEST_F(NodeOpsTest, RestartKeepsDataAndNextId) {
  Process* node = StartNode();
  ASSERT_NE(node, nullptr);
  {
    Client c(endpoint_);
    for (int i = 1; i <= 5; ++i)
      AddOk(c, "a", "2026-02-0" + std::to_string(i), "a" + std::to_string(i));
    AddOk(c, "b", "2026-02-01", "b1");
    AddOk(c, "b", "2026-02-01", "b2");
    MustCall(c, DeleteReq("a", 5));  // the highest id: must not come back
    MustCall(c, DeleteReq("a", 2));
    ExpectOk(
        MustCall(c, {{"op", "update_entry"}, {"list", "a"}, {"entry_id", 3}, {"title", "A3"}}));
    MustCall(c, DeleteReq("b", 2));
  }
  StopNodeCleanly(node);
  node = StartNode();
  ASSERT_NE(node, nullptr);
  Client c(endpoint_);
  std::vector<WireEntry> a = {
      {1, "2026-02-01", "a1"}, {3, "2026-02-03", "A3"}, {4, "2026-02-04", "a4"}};
  EXPECT_EQ(EntriesOk(c, "a"), a);
  EXPECT_EQ(EntriesOk(c, "b"), (std::vector<WireEntry>{{1, "2026-02-01", "b1"}}));
  EXPECT_EQ(AddOk(c, "a", "2026-02-09", "a6"), 6u);
  EXPECT_EQ(AddOk(c, "b", "2026-02-09", "b3"), 3u);
  // And once more, so the ids handed out after a restart are durable too.
  StopNodeCleanly(node);
  ASSERT_NE(StartNode(), nullptr);
  Client c2(endpoint_);
  EXPECT_EQ(AddOk(c2, "a", "2026-02-10", "a7"), 7u);
  EXPECT_EQ(EntriesOk(c2, "a").size(), 5u);
}

TEST_F(NodeOpsTest, IdsSurviveIdleEviction) {
  // With a 1 s idle timeout the list's actor is evicted between the two
  // phases and reloaded from the store.
  ASSERT_NE(StartNode({"--idle-timeout", "1"}), nullptr);
  Client c(endpoint_);
  AddOk(c, "l", "2026-01-01", "one");
  AddOk(c, "l", "2026-01-01", "two");
  MustCall(c, DeleteReq("l", 2));
  std::this_thread::sleep_for(std::chrono::milliseconds(3000));  // time is the subject here
  EXPECT_EQ(EntriesOk(c, "l"), (std::vector<WireEntry>{{1, "2026-01-01", "one"}}));
  std::this_thread::sleep_for(std::chrono::milliseconds(3000));
  EXPECT_EQ(AddOk(c, "l", "2026-01-01", "three"), 3u);
}

TEST_F(NodeOpsTest, ListNamesWithSlashNulAndEmojiDoNotCollide) {
  using namespace std::string_literals;
  const std::vector<std::string> names = {"a",
                                          "a/b",
                                          "a/",
                                          "/a",
                                          "ab",
                                          "a\0b"s,
                                          "a\0"s,
                                          "\0a"s,
                                          "\0"s,
                                          "a\0\0"s,
                                          "a/b/../c",
                                          "a%2Fb",
                                          "a\\b",
                                          "a b",
                                          "A",
                                          "\xf0\x9f\x99\x82",
                                          "\xf0\x9f\x99\x82/\xf0\x9f\x99\x82",
                                          "a\x01",
                                          "a\x7f",
                                          "b"};
  Process* node = StartNode();
  ASSERT_NE(node, nullptr);
  {
    Client c(endpoint_);
    // A different number of entries per list makes any mix-up visible.
    for (size_t i = 0; i < names.size(); ++i) {
      for (size_t k = 0; k <= i % 3; ++k) {
        EXPECT_EQ(AddOk(c, names[i], "2026-01-01", "list#" + std::to_string(i)), k + 1);
      }
    }
  }
  auto check = [&](Client& c) {
    for (size_t i = 0; i < names.size(); ++i) {
      SCOPED_TRACE("list #" + std::to_string(i));
      std::vector<WireEntry> want;
      for (size_t k = 0; k <= i % 3; ++k) {
        want.push_back({k + 1, "2026-01-01", "list#" + std::to_string(i)});
      }
      EXPECT_EQ(EntriesOk(c, names[i]), want);
    }
  };
  {
    Client c(endpoint_);
    check(c);
  }
  StopNodeCleanly(node);
  ASSERT_NE(StartNode(), nullptr);
  Client c(endpoint_);
  check(c);
}

}  // namespace
}  // namespace todo::testing
