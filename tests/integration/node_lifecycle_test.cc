// todo-node, black box: pipelining, durability across kill -9, draining on
// SIGTERM/SIGINT, the data-dir lock, shard-count checks and flag errors.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "tests/integration/harness.h"
#include "tests/integration/node_fixture.h"

namespace todo::testing {
namespace {

using NodeLifecycleTest = NodeTest;

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char ch) { return std::tolower(ch); });
  return s;
}

// What the client was told, per list: entry id -> entry.
using Acked = std::map<std::string, std::map<uint64_t, WireEntry>>;

std::vector<WireEntry> Values(const std::map<uint64_t, WireEntry>& m) {
  std::vector<WireEntry> out;
  for (const auto& [id, e] : m) out.push_back(e);
  return out;
}

struct Pending {
  std::string list;
  WireEntry entry;  // id filled from the reply
};

TEST_F(NodeLifecycleTest, ThousandPipelinedAddsOnOneListAreAllAppliedInOrder) {
  ASSERT_NE(StartNode(), nullptr);
  Client c(endpoint_);
  constexpr uint64_t kCount = 1000;
  for (uint64_t i = 1; i <= kCount; ++i) {
    ASSERT_TRUE(c.Send(WithId(AddReq("pipe", "2026-01-01", "t" + std::to_string(i)), i)));
  }
  std::vector<Reply> replies = Collect(c, kCount, Millis(90000));
  ASSERT_EQ(replies.size(), kCount) << "replies missing";
  std::set<uint64_t> seen;
  for (const Reply& r : replies) {
    auto req = AsUint(r.Get("id"));
    ASSERT_TRUE(req.has_value()) << r.ToString();
    EXPECT_TRUE(seen.insert(*req).second) << "duplicate reply " << r.ToString();
    // Applied in the order received: request i created entry i.
    EXPECT_EQ(AsUint(MapGet(ExpectOk(r), "id")), req) << r.ToString();
  }
  std::vector<WireEntry> entries = EntriesOk(c, "pipe");
  ASSERT_EQ(entries.size(), kCount);
  for (uint64_t i = 1; i <= kCount; ++i) {
    EXPECT_EQ(entries[i - 1], (WireEntry{i, "2026-01-01", "t" + std::to_string(i)}));
  }
}

TEST_F(NodeLifecycleTest, KillNineLosesNoAcknowledgedWrite) {
  Process* node = StartNode();
  ASSERT_NE(node, nullptr);
  constexpr int kLists = 50;
  constexpr int kAdds = 2000;
  Acked acked;
  {
    Client c(endpoint_);
    std::map<uint64_t, Pending> pending;
    for (int i = 0; i < kAdds; ++i) {
      std::string list = "list-" + std::to_string(i % kLists);
      std::string title = list + "/add-" + std::to_string(i);
      std::string date =
          "2026-03-" + std::string(i % 28 < 9 ? "0" : "") + std::to_string(i % 28 + 1);
      pending[i] = {list, {0, date, title}};
      ASSERT_TRUE(c.Send(WithId(AddReq(list, date, title), i)));
    }
    std::vector<Reply> replies = Collect(c, kAdds, Millis(90000));
    ASSERT_EQ(replies.size(), size_t{kAdds});
    for (const Reply& r : replies) {
      auto req = AsUint(r.Get("id"));
      auto entry_id = AsUint(MapGet(ExpectOk(r), "id"));
      ASSERT_TRUE(req && entry_id && pending.count(*req)) << r.ToString();
      Pending& p = pending[*req];
      p.entry.id = *entry_id;
      acked[p.list][*entry_id] = p.entry;
    }
    // Then an update and a delete per list, pipelined too.
    for (int l = 0; l < kLists; ++l) {
      std::string list = "list-" + std::to_string(l);
      ASSERT_EQ(acked[list].size(), size_t{kAdds / kLists});
      ASSERT_TRUE(c.Send(WithId(
          {{"op", "update_entry"}, {"list", list}, {"entry_id", 1}, {"title", "upd-" + list}},
          "u" + list)));
      ASSERT_TRUE(c.Send(WithId(DeleteReq(list, acked[list].rbegin()->first), "d" + list)));
    }
    replies = Collect(c, 2 * kLists, Millis(60000));
    ASSERT_EQ(replies.size(), size_t{2 * kLists});
    for (const Reply& r : replies) {
      std::string tag = AsStr(r.Get("id")).value_or("?");
      const msgpack::object* result = ExpectOk(r);
      ASSERT_NE(result, nullptr) << r.ToString();
      std::string list = tag.substr(1);
      if (tag[0] == 'u') {
        acked[list][1].title = "upd-" + list;
        EXPECT_EQ(ParseEntry(result), acked[list][1]) << r.ToString();
      } else {
        EXPECT_EQ(AsBool(MapGet(result, "deleted")), std::optional<bool>(true)) << r.ToString();
        acked[list].erase(std::prev(acked[list].end()));
      }
    }
  }
  ExitStatus st = node->Kill9();
  EXPECT_TRUE(st.signaled() && st.signal() == SIGKILL) << st.ToString();

  ASSERT_NE(StartNode(), nullptr);
  Client c(endpoint_);
  for (const auto& [list, entries] : acked) {
    SCOPED_TRACE(list);
    EXPECT_EQ(EntriesOk(c, list), Values(entries));
    EXPECT_EQ(AddOk(c, list, "2026-04-01", "after"), uint64_t{kAdds / kLists + 1});
  }
}

TEST_F(NodeLifecycleTest, NoReplyRevealsAWriteLostByKillNine) {
  // Adds and reads interleaved on one list; kill -9 mid-stream. Whatever any
  // received reply showed (an add's id or an entry in a listing) was durable.
  Process* node = StartNode();
  ASSERT_NE(node, nullptr);
  constexpr uint64_t kRounds = 400;
  Client c(endpoint_);
  for (uint64_t i = 0; i < kRounds; ++i) {
    ASSERT_TRUE(c.Send(WithId(AddReq("dirty", "2026-01-01", "t" + std::to_string(i)), 2 * i)));
    ASSERT_TRUE(c.Send(WithId(EntriesReq("dirty"), 2 * i + 1)));
  }
  std::vector<Reply> replies = Collect(c, kRounds / 2, Millis(30000));
  node->Kill9();
  for (size_t n = 0; n < 2 * kRounds; ++n) {
    auto r = c.Recv(Millis(500));
    if (!r) break;
    replies.push_back(std::move(*r));
  }
  std::map<uint64_t, WireEntry> revealed;
  for (const Reply& r : replies) {
    auto req = AsUint(r.Get("id"));
    ASSERT_TRUE(req.has_value()) << r.ToString();
    const msgpack::object* result = ExpectOk(r);
    if (*req % 2 == 0) {
      auto entry_id = AsUint(MapGet(result, "id"));
      ASSERT_TRUE(entry_id.has_value()) << r.ToString();
      revealed[*entry_id] = {*entry_id, "2026-01-01", "t" + std::to_string(*req / 2)};
    } else {
      for (const msgpack::object* o : AsArray(result)) {
        if (auto e = ParseEntry(o)) revealed[e->id] = *e;
      }
    }
  }
  RecordProperty("revealed", static_cast<int>(revealed.size()));
  ASSERT_NE(StartNode(), nullptr);
  Client after(endpoint_);
  std::map<uint64_t, WireEntry> stored;
  for (const WireEntry& e : EntriesOk(after, "dirty")) stored[e.id] = e;
  for (const auto& [id, e] : revealed) {
    auto it = stored.find(id);
    ASSERT_NE(it, stored.end()) << "entry " << id << " was shown to a client but is lost";
    EXPECT_EQ(it->second, e);
  }
}

TEST_F(NodeLifecycleTest, SigtermAnswersInFlightWritesAndExitsZero) {
  Process* node = StartNode();
  ASSERT_NE(node, nullptr);
  constexpr int kLists = 10;
  constexpr size_t kAdds = 500;
  Client c(endpoint_);
  std::map<uint64_t, Pending> pending;
  for (uint64_t i = 0; i < kAdds; ++i) {
    std::string list = "drain-" + std::to_string(i % kLists);
    pending[i] = {list, {0, "2026-05-05", "drain-title-" + std::to_string(i)}};
    ASSERT_TRUE(c.Send(WithId(AddReq(list, "2026-05-05", pending[i].entry.title), i)));
  }
  // SIGTERM once the node is visibly working through them, so writes are in
  // flight when it arrives.
  std::vector<Reply> replies;
  auto first = c.Recv(kCallTimeout);
  ASSERT_TRUE(first.has_value()) << "no reply to any of the adds";
  replies.push_back(std::move(*first));
  ASSERT_TRUE(node->Signal(SIGTERM));

  // Take replies until all came or the node is gone and nothing more arrives.
  const auto deadline = std::chrono::steady_clock::now() + Millis(60000);
  while (replies.size() < kAdds && std::chrono::steady_clock::now() < deadline) {
    if (auto r = c.Recv(Millis(500))) {
      replies.push_back(std::move(*r));
    } else if (!node->Running()) {
      if (auto last = c.Recv(Millis(1000))) {
        replies.push_back(std::move(*last));
      } else {
        break;
      }
    }
  }
  auto st = node->WaitExit(kStopTimeout);
  ASSERT_TRUE(st.has_value()) << "node still running " << kStopTimeout.count()
                              << " ms after SIGTERM";
  EXPECT_TRUE(st->exited() && st->code() == 0) << st->ToString();
  RecordProperty("replies_before_exit", static_cast<int>(replies.size()));

  Acked acked;
  for (const Reply& r : replies) {
    auto req = AsUint(r.Get("id"));
    auto entry_id = AsUint(MapGet(ExpectOk(r), "id"));
    ASSERT_TRUE(req && entry_id && pending.count(*req)) << r.ToString();
    Pending& p = pending[*req];
    p.entry.id = *entry_id;
    acked[p.list][*entry_id] = p.entry;
  }

  ASSERT_NE(StartNode(), nullptr);
  Client after(endpoint_);
  for (int l = 0; l < kLists; ++l) {
    std::string list = "drain-" + std::to_string(l);
    SCOPED_TRACE(list);
    // Every acked add is there; and nothing was applied without an answer.
    EXPECT_EQ(EntriesOk(after, list), Values(acked[list]));
  }
}

TEST_F(NodeLifecycleTest, SigintExitsZeroAndKeepsData) {
  Process* node = StartNode();
  ASSERT_NE(node, nullptr);
  {
    Client c(endpoint_);
    AddOk(c, "l", "2026-01-01", "x");
  }
  ASSERT_TRUE(node->Signal(SIGINT));
  auto st = node->WaitExit(kStopTimeout);
  ASSERT_TRUE(st.has_value()) << "node ignored SIGINT";
  EXPECT_TRUE(st->exited() && st->code() == 0) << st->ToString();
  ASSERT_NE(StartNode(), nullptr);
  Client c(endpoint_);
  EXPECT_EQ(EntriesOk(c, "l"), (std::vector<WireEntry>{{1, "2026-01-01", "x"}}));
}

TEST_F(NodeLifecycleTest, SecondNodeOnSameDataDirRefusesToStart) {
  Process* first = StartNode();
  ASSERT_NE(first, nullptr);
  Client c(endpoint_);
  AddOk(c, "l", "2026-01-01", "before");

  Process* second = Launch(NodeArgs("n2", FreeLoopbackEndpoint(), data_));
  ASSERT_NE(second, nullptr);
  auto st = second->WaitExit(Millis(20000));
  ASSERT_TRUE(st.has_value()) << "second node on the same --data is still running";
  EXPECT_FALSE(st->exited() && st->code() == 0) << st->ToString();
  std::string err = second->ReadStderr();
  EXPECT_TRUE(Lower(err).find("lock") != std::string::npos || err.find(data_) != std::string::npos)
      << "message names neither the lock nor the data dir: " << err;

  // The first keeps serving, with its data.
  EXPECT_TRUE(first->Running());
  EXPECT_EQ(AddOk(c, "l", "2026-01-02", "after"), 2u);
  EXPECT_EQ(EntriesOk(c, "l").size(), 2u);
  StopNodeCleanly(first);
}

TEST_F(NodeLifecycleTest, ShardCountMismatchRefusesToStart) {
  Process* node = StartNode({"--shards", "4"});
  ASSERT_NE(node, nullptr);
  {
    Client c(endpoint_);
    AddOk(c, "l", "2026-01-01", "x");
  }
  StopNodeCleanly(node);
  Process* wrong = Launch(NodeArgs("n1", endpoint_, data_, {"--shards", "2"}));
  ASSERT_NE(wrong, nullptr);
  auto st = wrong->WaitExit(Millis(20000));
  ASSERT_TRUE(st.has_value()) << "node started on a data dir with another shard count";
  EXPECT_FALSE(st->exited() && st->code() == 0) << st->ToString();
  EXPECT_NE(Lower(wrong->ReadStderr()).find("shard"), std::string::npos) << wrong->ReadStderr();
  // The data is untouched for the right shard count.
  ASSERT_NE(StartNode({"--shards", "4"}), nullptr);
  Client c(endpoint_);
  EXPECT_EQ(EntriesOk(c, "l"), (std::vector<WireEntry>{{1, "2026-01-01", "x"}}));
}

TEST_F(NodeLifecycleTest, WithoutShardsFlagAnExistingDirKeepsItsShardCount) {
  // Created with 3 shards (not the default on any machine this runs on: the
  // default is half the cores), then started without --shards.
  Process* node = StartNode({"--shards", "3"});
  ASSERT_NE(node, nullptr);
  {
    Client c(endpoint_);
    for (int i = 0; i < 20; ++i) AddOk(c, "l" + std::to_string(i), "2026-01-01", "x");
  }
  StopNodeCleanly(node);
  ASSERT_NE(StartNode(), nullptr);
  Client c(endpoint_);
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(EntriesOk(c, "l" + std::to_string(i)),
              (std::vector<WireEntry>{{1, "2026-01-01", "x"}}));
  }
  std::ifstream manifest(data_ + "/MANIFEST");
  std::string text((std::istreambuf_iterator<char>(manifest)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("shards 3\n"), std::string::npos) << text;
}

TEST_F(NodeLifecycleTest, ShardsZeroIsRefused) {
  Process* p = Launch(NodeArgs("n1", endpoint_, data_, {"--shards", "0"}));
  ASSERT_NE(p, nullptr);
  auto st = p->WaitExit(Millis(20000));
  ASSERT_TRUE(st.has_value());
  EXPECT_TRUE(st->exited() && st->code() == 2) << st->ToString();
  EXPECT_NE(p->ReadStderr().find("--shards must be 1-256"), std::string::npos) << p->ReadStderr();
}

TEST_F(NodeLifecycleTest, MissingDataDirIsCreated) {
  data_ = tmp_.Sub("not/yet/there");
  Process* node = StartNode();
  ASSERT_NE(node, nullptr);
  {
    Client c(endpoint_);
    AddOk(c, "l", "2026-01-01", "x");
  }
  StopNodeCleanly(node);
  EXPECT_TRUE(std::filesystem::is_directory(data_));
  ASSERT_NE(StartNode(), nullptr);
  Client c(endpoint_);
  EXPECT_EQ(EntriesOk(c, "l").size(), 1u);
}

TEST_F(NodeLifecycleTest, BadFlagsExitTwoWithOneLine) {
  const std::vector<std::string> good = NodeArgs("n1", endpoint_, data_);
  auto with = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = good;
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  };
  const std::vector<std::vector<std::string>> cases = {
      {},
      with({"--bogus"}),
      with({"--bogus", "1"}),
      with({"stray-positional"}),
      {"--listen", endpoint_, "--data", data_},
      {"--name", "n1", "--data", data_},
      {"--name", "n1", "--listen", endpoint_},
      with({"--shards", "abc"}),
      with({"--shards"}),
      with({"--workers", "two"}),
      with({"--idle-timeout", "soon"}),
      with({"--max-lists", "x"}),
      with({"--mailbox", "1.5e"}),
      with({"--rid-ttl", "soon"}),
      with({"--rid-ttl", "0"}),
      with({"--rid-ttl", "500ms"}),
      with({"--rid-ttl", "366d"}),
      with({"--rid-ttl", "-5s"}),
      with({"--rid-ttl", "3 weeks"}),
  };
  for (const auto& args : cases) {
    std::string joined;
    for (const auto& a : args) joined += " " + a;
    SCOPED_TRACE("todo-node" + joined);
    Process* p = Launch(args);
    ASSERT_NE(p, nullptr);
    auto st = p->WaitExit(Millis(5000));
    if (!st) {
      ADD_FAILURE() << "still running 5 s after bad flags";
      p->Kill9();
      continue;
    }
    EXPECT_TRUE(st->exited() && st->code() == 2) << st->ToString();
    std::string err = p->ReadStderr();
    while (!err.empty() && (err.back() == '\n' || err.back() == '\r')) err.pop_back();
    EXPECT_FALSE(err.empty()) << "no error on stderr";
    EXPECT_EQ(err.find('\n'), std::string::npos) << "stderr is not one line:\n" << err;
  }
}

}  // namespace
}  // namespace todo::testing
