// todo-node, black box: per-list order under pipelining and many clients, the
// default in-flight bounds, and `overloaded` meaning "not applied".
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "tests/integration/harness.h"
#include "tests/integration/node_fixture.h"

namespace todo::testing {
namespace {

using NodeConcurrencyTest = NodeTest;

Map UpdateTitleReq(const std::string& list, uint64_t entry_id, const std::string& title) {
  return {{"op", "update_entry"}, {"list", list}, {"entry_id", entry_id}, {"title", title}};
}

// Replies by their (uint) request id; a duplicate or missing id is a failure.
std::map<uint64_t, Reply> ById(const std::vector<Reply>& replies) {
  std::map<uint64_t, Reply> out;
  for (const Reply& r : replies) {
    auto id = AsUint(r.Get("id"));
    EXPECT_TRUE(id.has_value()) << r.ToString();
    if (id) {
      EXPECT_TRUE(out.emplace(*id, r).second) << "duplicate reply " << r.ToString();
    }
  }
  return out;
}

std::vector<WireEntry> EntriesOf(const Reply& r) {
  std::vector<WireEntry> out;
  for (const msgpack::object* o : AsArray(ExpectOk(r))) {
    if (auto e = ParseEntry(o)) out.push_back(*e);
  }
  return out;
}

TEST_F(NodeConcurrencyTest, PipelinedMixedOpsOnOneListSeeSequentialState) {
  ASSERT_NE(StartNode({"--workers", "4"}), nullptr);  // several workers even on 2 cores
  Client c(endpoint_);
  const std::string d = "2026-07-07";
  const std::vector<Map> script = {
      AddReq("m", d, "a"),             // 1: id 1
      EntriesReq("m"),                 // 2: [1 a]
      UpdateTitleReq("m", 1, "A"),     // 3: {1 A}
      AddReq("m", d, "b"),             // 4: id 2
      DeleteReq("m", 1),               // 5: deleted true
      EntriesReq("m"),                 // 6: [2 b]
      DeleteReq("m", 1),               // 7: deleted false
      UpdateTitleReq("m", 1, "gone"),  // 8: not_found
      DeleteReq("m", 2),               // 9: deleted true
      EntriesReq("m"),                 // 10: []
      AddReq("m", d, "c"),             // 11: id 3
      EntriesReq("m"),                 // 12: [3 c]
  };
  for (size_t i = 0; i < script.size(); ++i) ASSERT_TRUE(c.Send(WithId(script[i], i + 1)));
  std::map<uint64_t, Reply> r = ById(Collect(c, script.size(), Millis(30000)));
  ASSERT_EQ(r.size(), script.size());
  EXPECT_EQ(AsUint(MapGet(ExpectOk(r[1]), "id")), std::optional<uint64_t>(1)) << r[1].ToString();
  EXPECT_EQ(EntriesOf(r[2]), (std::vector<WireEntry>{{1, d, "a"}})) << r[2].ToString();
  EXPECT_EQ(ParseEntry(ExpectOk(r[3])), (WireEntry{1, d, "A"})) << r[3].ToString();
  EXPECT_EQ(AsUint(MapGet(ExpectOk(r[4]), "id")), std::optional<uint64_t>(2)) << r[4].ToString();
  EXPECT_EQ(AsBool(MapGet(ExpectOk(r[5]), "deleted")), std::optional<bool>(true));
  EXPECT_EQ(EntriesOf(r[6]), (std::vector<WireEntry>{{2, d, "b"}})) << r[6].ToString();
  EXPECT_EQ(AsBool(MapGet(ExpectOk(r[7]), "deleted")), std::optional<bool>(false));
  ExpectError(r[8], "not_found");
  EXPECT_EQ(AsBool(MapGet(ExpectOk(r[9]), "deleted")), std::optional<bool>(true));
  EXPECT_EQ(EntriesOf(r[10]), std::vector<WireEntry>{}) << r[10].ToString();
  EXPECT_EQ(AsUint(MapGet(ExpectOk(r[11]), "id")), std::optional<uint64_t>(3)) << r[11].ToString();
  EXPECT_EQ(EntriesOf(r[12]), (std::vector<WireEntry>{{3, d, "c"}})) << r[12].ToString();
}

TEST_F(NodeConcurrencyTest, ManyClientsOnOneListGetDistinctIdsInTheirOwnOrder) {
  ASSERT_NE(StartNode({"--workers", "4"}), nullptr);  // several workers even on 2 cores
  constexpr int kClients = 8;
  constexpr uint64_t kPerClient = 100;
  std::vector<std::unique_ptr<Client>> clients;
  for (int k = 0; k < kClients; ++k) clients.push_back(std::make_unique<Client>(endpoint_));
  // Interleave the sends so the node sees the clients' requests mixed.
  for (uint64_t i = 0; i < kPerClient; ++i) {
    for (int k = 0; k < kClients; ++k) {
      std::string title = "c" + std::to_string(k) + "-" + std::to_string(i);
      ASSERT_TRUE(clients[k]->Send(WithId(AddReq("shared", "2026-01-01", title), i)));
    }
  }
  std::map<uint64_t, std::string> title_of;  // entry id -> title
  for (int k = 0; k < kClients; ++k) {
    std::map<uint64_t, Reply> replies = ById(Collect(*clients[k], kPerClient, Millis(60000)));
    ASSERT_EQ(replies.size(), kPerClient) << "client " << k;
    uint64_t last = 0;
    for (auto& [i, r] : replies) {
      auto entry_id = AsUint(MapGet(ExpectOk(r), "id"));
      ASSERT_TRUE(entry_id.has_value()) << r.ToString();
      // One connection's requests are received, so applied, in send order.
      EXPECT_GT(*entry_id, last) << "client " << k << " request " << i;
      last = *entry_id;
      EXPECT_TRUE(
          title_of.emplace(*entry_id, "c" + std::to_string(k) + "-" + std::to_string(i)).second)
          << "entry id " << *entry_id << " handed out twice";
    }
  }
  ASSERT_EQ(title_of.size(), kClients * kPerClient);
  EXPECT_EQ(title_of.begin()->first, 1u);
  EXPECT_EQ(title_of.rbegin()->first, kClients * kPerClient);
  std::vector<WireEntry> entries = EntriesOk(*clients[0], "shared");
  ASSERT_EQ(entries.size(), title_of.size());
  for (const WireEntry& e : entries) EXPECT_EQ(e.title, title_of[e.id]) << e.id;
}

TEST_F(NodeConcurrencyTest, DefaultsAdmitTenThousandInFlightOnOneNode) {
  ASSERT_NE(StartNode(), nullptr);
  Client c(endpoint_);
  constexpr uint64_t kCount = 10000;
  constexpr uint64_t kLists = 100;
  for (uint64_t i = 0; i < kCount; ++i) {
    ASSERT_TRUE(c.Send(WithId(AddReq("wide-" + std::to_string(i % kLists), "2026-01-01", "t"), i)));
  }
  std::map<uint64_t, Reply> replies = ById(Collect(c, kCount, Millis(100000)));
  ASSERT_EQ(replies.size(), kCount);
  size_t not_ok = 0;
  for (auto& [i, r] : replies) {
    if (!r.ok() && ++not_ok <= 5) ADD_FAILURE() << "request " << i << ": " << r.ToString();
    // List l got requests l, l+100, ...: request i is entry i/100 + 1.
    if (r.ok()) {
      EXPECT_EQ(AsUint(MapGet(r.result(), "id")), std::optional<uint64_t>(i / kLists + 1));
    }
  }
  EXPECT_EQ(not_ok, 0u);
}

TEST_F(NodeConcurrencyTest, OverloadedRequestsAreNotApplied) {
  // A tiny mailbox makes a pipelined burst overflow; whatever the node
  // refuses must not be applied, and what it accepts keeps its order.
  ASSERT_NE(StartNode({"--mailbox", "2", "--writer-queue", "4"}), nullptr);
  Client c(endpoint_);
  constexpr uint64_t kCount = 400;
  for (uint64_t i = 1; i <= kCount; ++i) {
    ASSERT_TRUE(c.Send(WithId(AddReq("small", "2026-01-01", "t" + std::to_string(i)), i)));
  }
  std::map<uint64_t, Reply> replies = ById(Collect(c, kCount, Millis(60000)));
  ASSERT_EQ(replies.size(), kCount);
  std::vector<WireEntry> want;
  size_t overloaded = 0;
  for (auto& [i, r] : replies) {
    if (r.ok()) {
      uint64_t entry_id = AsUint(MapGet(r.result(), "id")).value_or(0);
      EXPECT_EQ(entry_id, want.size() + 1)
          << "ids of accepted adds must be consecutive: " << r.ToString();
      want.push_back({entry_id, "2026-01-01", "t" + std::to_string(i)});
    } else {
      ExpectError(r, "overloaded");
      ++overloaded;
    }
  }
  RecordProperty("overloaded", static_cast<int>(overloaded));
  EXPECT_EQ(EntriesOk(c, "small"), want);
}

}  // namespace
}  // namespace todo::testing
