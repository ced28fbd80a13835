// ListActor driven deterministically: a ManualExecutor runs the actor on the
// test thread; only the shard writer runs on its own thread.
#include "node/list_actor.h"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <sstream>

#include "common/storage_format.h"
#include "node/registry.h"
#include "node/store/rid_filter.h"
#include "test_util.h"

namespace todo::node {
namespace {

using todo::testing::Add;
using todo::testing::Delete;
using todo::testing::Entries;
using todo::testing::MakeCall;
using todo::testing::Unpack;
using todo::testing::Update;
using todo::testing::WithRid;

class ListActorTest : public ::testing::Test {
 protected:
  void Open(store::StoreOptions o) {
    o.dir = dir_.path() + "/store" + std::to_string(++opens_);
    auto s = store::Store::Open(o, &replies_);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(s).value();
  }
  // Reopens the store with one synced shard on fault_env_, for the tests
  // that inject disk faults; returns that env.
  todo::testing::FaultEnv& OpenOnFaultEnv() {
    store_.reset();
    store::StoreOptions o;
    o.sync = true;
    o.shards = 1;
    o.env = &fault_env_;
    Open(o);
    return fault_env_;
  }
  void SetUp() override {
    store::StoreOptions o;
    o.sync = false;
    o.shards = 2;
    Open(o);
  }
  std::shared_ptr<ListActor> NewActor(const std::string& name, size_t mailbox = 100) {
    return std::make_shared<ListActor>(name, &ex_, mailbox, store_.get(), &replies_);
  }
  void Post(ListActor& a, protocol::Request r) {
    Call c = MakeCall(r);
    ASSERT_TRUE(a.Post(c));
  }
  // Adds `n` entries titled `title` to `list` through `a` (request ids 1..n),
  // running it every 100 requests: its mailbox holds 100.
  void AddMany(ListActor& a, const std::string& list, int n, const std::string& title) {
    for (int i = 1; i <= n; ++i) {
      Post(a, Add(list, "2026-01-01", title, static_cast<uint64_t>(i)));
      if (i % 100 == 0 || i == n) Run(i % 100 == 0 ? 100 : static_cast<size_t>(i % 100));
    }
  }
  // Runs the actor, then collects `n` replies, keyed by request id.
  std::map<uint64_t, msgpack::object_handle> Run(size_t n) {
    ex_.RunAll();
    std::map<uint64_t, msgpack::object_handle> out;
    for (auto& r : todo::testing::WaitReplies(replies_, n)) {
      auto oh = Unpack(r);
      auto m = oh.get().as<std::map<std::string, msgpack::object>>();
      out[m["id"].as<uint64_t>()] = std::move(oh);
    }
    return out;
  }
  static std::map<std::string, msgpack::object> Map(const msgpack::object_handle& oh) {
    return oh.get().as<std::map<std::string, msgpack::object>>();
  }
  // The new entry's id in an add_entry reply.
  static uint64_t NewId(const msgpack::object_handle& oh) {
    using M = std::map<std::string, uint64_t>;
    return Map(oh)["result"].as<M>()["id"];
  }
  // Waits (bounded) until shard 0 has been reopened `n` times.
  bool WaitReopens(uint64_t n) {
    return todo::testing::WaitFor([&] { return store_->writer(0).stats().reopens.load() >= n; });
  }
  static std::string Code(const msgpack::object_handle& oh) {
    using M = std::map<std::string, std::string>;
    return Map(oh)["error"].as<M>()["code"];
  }

  todo::testing::TempDir dir_;
  int opens_ = 0;
  ReplyQueue replies_;
  runtime::ManualExecutor ex_;
  // For the tests that inject disk faults. A member declared before store_,
  // so it outlives the store (whose shards use it until they close).
  todo::testing::FaultEnv fault_env_;
  std::unique_ptr<store::Store> store_;
};

TEST_F(ListActorTest, AddsAreNumberedAndReadsSeeThem) {
  auto a = NewActor("bob");
  Post(*a, Add("bob", "2026-12-19", "Dentist", 1));
  Post(*a, Add("bob", "2026-12-20", "Shop", 2));
  Post(*a, Entries("bob", 3));
  auto r = Run(3);
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(NewId(r[1]), 1u);
  EXPECT_EQ(NewId(r[2]), 2u);
  auto entries = Map(r[3])["result"].as<std::vector<msgpack::object>>();
  EXPECT_EQ(entries.size(), 2u);
}

TEST_F(ListActorTest, ReadWaitsForEarlierWritesToBeDurable) {
  auto a = NewActor("bob");
  Post(*a, Add("bob", "2026-12-19", "Dentist", 1));
  Post(*a, Entries("bob", 2));
  ex_.RunAll();
  // The read is queued behind the write as a barrier, so both replies come
  // from the writer; none may arrive before the write is committed.
  auto replies = todo::testing::WaitReplies(replies_, 2);
  ASSERT_EQ(replies.size(), 2u);
  EXPECT_EQ(store_->writer(store_->ShardFor("bob")).stats().ops.load(), 1u);
  // The writer queues the replies before it lowers the count in flight (so
  // an owner never sees zero with a reply unsent): wait, bounded, for that.
  EXPECT_TRUE(todo::testing::WaitFor([&] { return a->inflight.load() == 0; }));
  EXPECT_TRUE(a->Evictable());
}

TEST_F(ListActorTest, IdsAreNotReusedAfterDeleteAndReload) {
  {
    auto a = NewActor("l");
    Post(*a, Add("l", "2026-01-01", "a", 1));
    Post(*a, Add("l", "2026-01-01", "b", 2));
    Post(*a, Delete("l", 2, 3));
    Run(3);
  }
  auto b = NewActor("l");  // a fresh actor loads from the store
  Post(*b, Add("l", "2026-01-01", "c", 4));
  auto r = Run(1);
  EXPECT_EQ(NewId(r[4]), 3u);
}

TEST_F(ListActorTest, FullWriterQueueAnswersOverloadedWithoutApplying) {
  store_.reset();
  store::StoreOptions o;
  o.sync = false;
  o.shards = 1;
  o.writer_queue = 1;
  Open(o);
  auto a = NewActor("l");
  // Hold the only slot so the actor can't reserve one.
  ASSERT_TRUE(store_->writer(0).TryReserve());
  Post(*a, Add("l", "2026-01-01", "a", 1));
  auto r = Run(1);
  EXPECT_EQ(Code(r[1]), "overloaded");
  store_->writer(0).Unreserve();
  Post(*a, Add("l", "2026-01-01", "b", 2));
  r = Run(1);
  // The refused add was not applied: the next add still gets id 1.
  EXPECT_EQ(NewId(r[2]), 1u);
}

TEST_F(ListActorTest, FailedWriteIsNotAcknowledgedAndTheListReloads) {
  todo::testing::FaultEnv& env = OpenOnFaultEnv();
  auto a = NewActor("l");
  Post(*a, Add("l", "2026-01-01", "durable", 1));
  Run(1);
  env.fail = true;
  Post(*a, Add("l", "2026-01-01", "lost", 2));
  Post(*a, Entries("l", 3));
  auto r = Run(2);
  EXPECT_EQ(Code(r[2]), "internal");
  // The read queued behind the failed write must not reveal it.
  EXPECT_EQ(Map(r[3])["ok"].as<bool>(), false);
  env.fail = false;
  // The writer reopens the shard once the disk works again; the next message
  // reloads from disk: "lost" is gone, "durable" is there, and writes are
  // acknowledged again.
  ASSERT_TRUE(WaitReopens(1));
  Post(*a, Entries("l", 4));
  Post(*a, Add("l", "2026-01-01", "again", 5));
  r = Run(2);
  auto entries = Map(r[4])["result"].as<std::vector<msgpack::object>>();
  ASSERT_EQ(entries.size(), 1u);
  auto first = entries[0].as<std::map<std::string, msgpack::object>>();
  EXPECT_EQ(first["title"].as<std::string>(), "durable");
  EXPECT_EQ(NewId(r[5]), 2u);
}

TEST_F(ListActorTest, FailedSyncIsNotAppliedAndTheListRecovers) {
  todo::testing::FaultEnv& env = OpenOnFaultEnv();
  auto a = NewActor("l");
  Post(*a, Add("l", "2026-01-01", "one", 1));
  Post(*a, Add("l", "2026-01-01", "two", 2));
  auto r = Run(2);
  ASSERT_EQ(NewId(r[2]), 2u);
  // The log sync of the next group fails after its record was written: an
  // add, an update, a delete of the highest id (which also writes the meta
  // key) and a read behind them. None is acknowledged.
  env.fail_log_syncs = 1;
  Post(*a, Add("l", "2026-01-01", "lost", 3));
  Post(*a, todo::testing::Update("l", 1, "lost-update", 4));
  Post(*a, Delete("l", 3, 5));
  Post(*a, Entries("l", 6));
  r = Run(4);
  ASSERT_EQ(r.size(), 4u);
  for (uint64_t id = 3; id <= 6; ++id) EXPECT_EQ(Code(r[id]), "internal") << id;
  EXPECT_EQ(env.syncs_failed.load(), 1);
  // Once the shard is back, the list shows exactly the acknowledged state,
  // a new add succeeds, and it takes the first id no acknowledged entry had.
  ASSERT_TRUE(WaitReopens(1));
  Post(*a, Add("l", "2026-01-02", "three", 7));
  Post(*a, Entries("l", 8));
  r = Run(2);
  EXPECT_EQ(NewId(r[7]), 3u);
  auto titles = [&](const msgpack::object_handle& oh) {
    std::vector<std::string> out;
    for (auto& e : Map(oh)["result"].as<std::vector<msgpack::object>>()) {
      auto m = e.as<std::map<std::string, msgpack::object>>();
      out.push_back(std::to_string(m["id"].as<uint64_t>()) + ":" + m["title"].as<std::string>());
    }
    return out;
  };
  const std::vector<std::string> want = {"1:one", "2:two", "3:three"};
  EXPECT_EQ(titles(r[8]), want);
  // A fresh actor reads the same from disk.
  auto b = NewActor("l");
  Post(*b, Entries("l", 9));
  r = Run(1);
  EXPECT_EQ(titles(r[9]), want);
}

TEST_F(ListActorTest, ActorsOfAReopenedShardReloadFromDisk) {
  todo::testing::FaultEnv& env = OpenOnFaultEnv();
  auto bob = NewActor("bob");
  Post(*bob, Entries("bob", 1));
  auto r = Run(1);
  ASSERT_TRUE(Map(r[1])["result"].as<std::vector<msgpack::object>>().empty());
  // An entry written behind bob's back: bob's loaded list doesn't have it.
  {
    auto owner = std::make_shared<store::WriteOwner>();
    owner->inflight = 1;
    ASSERT_TRUE(store_->writer(0).TryReserve());
    std::vector<store::WriteOp> ops(1);
    ops[0].owner = owner;
    ops[0].batch.Put(storage::EntryKey("bob", 1),
                     storage::EncodeEntryValue(*ParseDate("2026-01-01"), "on disk"));
    ops[0].reply.body = zmq::message_t("ok", 2);
    store_->writer(0).Submit(ops);
    ASSERT_EQ(todo::testing::WaitReplies(replies_, 1).size(), 1u);
  }
  Post(*bob, Entries("bob", 2));
  r = Run(1);
  ASSERT_TRUE(Map(r[2])["result"].as<std::vector<msgpack::object>>().empty());
  // Another list of the shard fails a write; the shard is reopened, and bob,
  // with nothing in flight, reloads at its next message.
  auto carol = NewActor("carol");
  env.fail_log_syncs = 1;
  Post(*carol, Add("carol", "2026-01-01", "lost", 3));
  r = Run(1);
  EXPECT_EQ(Code(r[3]), "internal");
  ASSERT_TRUE(WaitReopens(1));
  EXPECT_EQ(store_->writer(0).generation(), 1u);
  Post(*bob, Entries("bob", 4));
  r = Run(1);
  EXPECT_EQ(Map(r[4])["result"].as<std::vector<msgpack::object>>().size(), 1u);
}

TEST_F(ListActorTest, RegistryCreatesLazilyAndEvictsIdleActors) {
  Registry::Options ro;
  ro.max_lists = 2;
  ro.idle_timeout = std::chrono::seconds(60);
  Registry reg(ro, [&](std::string name) { return NewActor(name); });
  auto t0 = Registry::Clock::time_point{} + std::chrono::hours(1);
  ListActor* bob = reg.Get("bob", t0);
  EXPECT_EQ(reg.Get("bob", t0), bob);
  ListActor* alice = reg.Get("alice", t0);
  EXPECT_NE(alice, bob);
  EXPECT_EQ(reg.size(), 2u);
  // Busy actors (a message queued) are never evicted to make room.
  Post(*bob, Entries("bob", 1));
  Post(*alice, Entries("alice", 2));
  EXPECT_EQ(reg.Get("carol", t0), nullptr);
  Run(2);
  // Now idle: the least recently used makes room.
  ListActor* carol = reg.Get("carol", t0);
  ASSERT_NE(carol, nullptr);
  EXPECT_EQ(reg.size(), 2u);
  EXPECT_EQ(reg.evicted(), 1u);
  // Idle past the timeout: evicted.
  EXPECT_EQ(reg.EvictIdle(t0 + std::chrono::seconds(59)), 0u);
  EXPECT_EQ(reg.EvictIdle(t0 + std::chrono::seconds(61)), 2u);
  EXPECT_EQ(reg.size(), 0u);
}

TEST_F(ListActorTest, RegistryIndexFindsEveryLiveListThroughInsertsAndEvictions) {
  Registry::Options ro;
  ro.max_lists = 300;
  ro.idle_timeout = std::chrono::seconds(60);
  Registry reg(ro, [&](std::string name) { return NewActor(name); });
  auto t = Registry::Clock::time_point{} + std::chrono::hours(1);
  std::mt19937 rng(7);
  // Every creation goes through this loop, so a name found without one is
  // the actor created for it last.
  std::map<std::string, ListActor*> live;
  for (int step = 0; step < 20000; ++step) {
    t += std::chrono::milliseconds(1);
    std::string name = "n" + std::to_string(rng() % 1000);
    const uint64_t created = reg.created();
    ListActor* a = reg.Get(name, t);
    ASSERT_NE(a, nullptr);
    ASSERT_EQ(a->name(), name);
    auto known = live.find(name);
    if (reg.created() == created) {
      // Found, not created: it must be the actor returned before.
      ASSERT_NE(known, live.end()) << name;
      ASSERT_EQ(known->second, a) << name;
    } else {
      live[name] = a;
    }
    ASSERT_EQ(reg.Get(name, t), a);
    ASSERT_LE(reg.size(), 300u);
  }
  EXPECT_GT(reg.evicted(), 1000u);
  EXPECT_EQ(reg.size(), 300u);
  // Everything idle: all evicted, and the index shrinks back.
  EXPECT_EQ(reg.EvictIdle(t + std::chrono::hours(2)), 300u);
  EXPECT_EQ(reg.size(), 0u);
  ListActor* back = reg.Get("n1", t + std::chrono::hours(2));
  ASSERT_NE(back, nullptr);
  EXPECT_EQ(back->name(), "n1");
  EXPECT_EQ(reg.size(), 1u);
}

TEST_F(ListActorTest, RegistryKeepsLiveListsWithinTheMemoryBudget) {
  MemoryMeter meter;
  Registry::Options ro;
  ro.max_lists = 1000;
  ro.max_bytes = 64 << 10;  // 64 KiB
  ro.meter = &meter;
  Registry reg(ro, [&](std::string name) {
    return std::make_shared<ListActor>(name, &ex_, 100, store_.get(), &replies_, &meter);
  });
  auto t0 = Registry::Clock::time_point{} + std::chrono::hours(1);
  const std::string title(200, 't');
  // 40 lists of 20 entries with 200-byte titles, each read once so that it
  // is in memory: ~250 KiB if all stayed.
  uint64_t id = 0;
  for (int l = 0; l < 40; ++l) {
    std::string name = "list" + std::to_string(l);
    ListActor* a = reg.Get(name, t0);
    ASSERT_NE(a, nullptr);
    for (int i = 0; i < 20; ++i) Post(*a, Add(name, "2026-01-01", title, ++id));
    Post(*a, Entries(name, ++id));
    Run(21);
    EXPECT_GT(meter.bytes.load(), 0);
  }
  // Lists used within the last second are not evicted for memory...
  EXPECT_EQ(reg.evicted_for_bytes(), 0u);
  EXPECT_GT(meter.bytes.load(), int64_t{64} << 10);
  // ... but a sweep asks them to shed their entries, which they do at their
  // next request.
  reg.EvictIdle(t0 + std::chrono::milliseconds(500));
  EXPECT_GT(reg.shed_requests(), 0u);
  EXPECT_EQ(reg.evicted_for_bytes(), 0u);
  EXPECT_EQ(reg.size(), 40u);
  // (Each sheds at a request that finds no write in flight.)
  for (int l = 0; l < 40; ++l) {
    ListActor* a = reg.Get("list" + std::to_string(l), t0);
    ASSERT_TRUE(todo::testing::WaitFor([&] { return a->inflight.load() == 0; }));
  }
  for (int l = 0; l < 40; ++l) {
    std::string name = "list" + std::to_string(l);
    Post(*reg.Get(name, t0), Add(name, "2026-01-02", "x", ++id));
  }
  auto added = Run(40);
  for (auto& [rid, oh] : added) EXPECT_EQ(NewId(oh), 21u) << rid;
  EXPECT_LE(meter.bytes.load(), int64_t{64} << 10);
  // Under the budget again: nobody needs evicting.
  reg.EvictIdle(t0 + std::chrono::seconds(2));
  EXPECT_EQ(reg.evicted_for_bytes(), 0u);
  EXPECT_EQ(reg.bytes(), meter.bytes.load());
  // Nothing was lost: a shed or evicted list reloads from the store.
  ListActor* first = reg.Get("list0", t0 + std::chrono::seconds(2));
  Post(*first, Entries("list0", ++id));
  auto replies = Run(1);
  EXPECT_EQ(Map(replies.at(id))["result"].via.array.size, 21u);
  // Dropping every actor gives every byte back.
  reg.EvictIdle(t0 + std::chrono::hours(1));
  EXPECT_EQ(reg.size(), 0u);
  EXPECT_EQ(meter.bytes.load(), 0);
}

TEST_F(ListActorTest, AddsNeedOnlyTheCounterNotTheList) {
  {
    auto a = NewActor("big");
    AddMany(*a, "big", 500, std::string(40, 'e'));
  }
  MemoryMeter meter;
  auto b = std::make_shared<ListActor>("big", &ex_, 100, store_.get(), &replies_, &meter);
  Post(*b, Add("big", "2026-01-02", "after", 1));
  auto r = Run(1);
  EXPECT_EQ(NewId(r[1]), 501u);
  // The 500 entries (over 40 KiB in memory) were not read for it.
  EXPECT_LT(meter.bytes.load(), 4096);
  Post(*b, Entries("big", 2));
  r = Run(1);
  EXPECT_EQ(Map(r[2])["result"].via.array.size, 501u);
  EXPECT_GT(meter.bytes.load(), 25000);
}

TEST_F(ListActorTest, AddsInFlightJoinTheListLoadedForALaterRequest) {
  auto a = NewActor("l");
  // One slice: the adds are applied without the list and are still in
  // flight (not even handed to the writer) when the update needs the list.
  Post(*a, Add("l", "2026-01-01", "one", 1));
  Post(*a, Add("l", "2026-01-01", "two", 2));
  Post(*a, Update("l", 1, "ONE", 3));
  Post(*a, Entries("l", 4));
  Post(*a, Add("l", "2026-01-01", "three", 5));
  auto r = Run(5);
  ASSERT_EQ(r.size(), 5u);
  EXPECT_EQ(Map(r[3])["ok"].as<bool>(), true);
  auto entries = Map(r[4])["result"].as<std::vector<std::map<std::string, msgpack::object>>>();
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[0]["title"].as<std::string>(), "ONE");
  EXPECT_EQ(entries[1]["title"].as<std::string>(), "two");
  EXPECT_EQ(NewId(r[5]), 3u);
  // And the disk agrees.
  auto b = NewActor("l");
  Post(*b, Entries("l", 6));
  r = Run(1);
  EXPECT_EQ(Map(r[6])["result"].via.array.size, 3u);
}

TEST_F(ListActorTest, OverTheBudgetAListLoadedForReadsIsNotKept) {
  {
    auto a = NewActor("l");
    AddMany(*a, "l", 100, std::string(40, 'e'));
  }
  MemoryMeter meter;
  meter.budget = 1;  // always over
  auto a = std::make_shared<ListActor>("l", &ex_, 100, store_.get(), &replies_, &meter);
  Post(*a, Entries("l", 1));
  auto r = Run(1);
  EXPECT_EQ(Map(r[1])["result"].via.array.size, 100u);
  EXPECT_LT(meter.bytes.load(), 4096);  // answered, then dropped
  Post(*a, Add("l", "2026-01-02", "after", 2));
  r = Run(1);
  EXPECT_EQ(NewId(r[2]), 101u);
  ASSERT_TRUE(todo::testing::WaitFor([&] { return a->inflight.load() == 0; }));
  Post(*a, Entries("l", 3));
  r = Run(1);
  EXPECT_EQ(Map(r[3])["result"].via.array.size, 101u);
  EXPECT_LT(meter.bytes.load(), 4096);
}

TEST_F(ListActorTest, AShedListKeepsItsCounterAndReloadsForReads) {
  MemoryMeter meter;
  auto a = std::make_shared<ListActor>("l", &ex_, 100, store_.get(), &replies_, &meter);
  AddMany(*a, "l", 200, std::string(40, 'e'));
  Post(*a, Entries("l", 201));
  Run(1);
  const int64_t loaded = meter.bytes.load();
  EXPECT_GT(loaded, 10000);
  // The actor sheds at a request that finds no write in flight.
  ASSERT_TRUE(todo::testing::WaitFor([&] { return a->inflight.load() == 0; }));
  a->RequestShed();
  Post(*a, Delete("l", 200, 202));  // the highest id: its counter must survive the shed
  Run(1);
  ASSERT_TRUE(todo::testing::WaitFor([&] { return a->inflight.load() == 0; }));
  a->RequestShed();
  Post(*a, Add("l", "2026-01-02", "after", 203));
  auto r = Run(1);
  EXPECT_EQ(NewId(r[203]), 201u);
  EXPECT_LT(meter.bytes.load(), 4096);
  Post(*a, Entries("l", 204));
  r = Run(1);
  EXPECT_EQ(Map(r[204])["result"].via.array.size, 200u);  // 1-199 and 201
}

// "id:title" of each entry in an `entries` reply.
std::vector<std::string> Titles(const msgpack::object_handle& oh) {
  std::vector<std::string> out;
  auto m = oh.get().as<std::map<std::string, msgpack::object>>();
  for (auto& e : m["result"].as<std::vector<msgpack::object>>()) {
    auto f = e.as<std::map<std::string, msgpack::object>>();
    out.push_back(std::to_string(f["id"].as<uint64_t>()) + ":" + f["title"].as<std::string>());
  }
  return out;
}

TEST_F(ListActorTest, PendingAddsAreDroppedAsTheirWritesCompleteNotOnlyWhenIdle) {
  // A list that always has a write in flight (a flood) must not keep every
  // add it made without the list: only those not yet durable.
  todo::testing::FaultEnv& env = OpenOnFaultEnv();
  MemoryMeter meter;
  auto a = std::make_shared<ListActor>("l", &ex_, 100, store_.get(), &replies_, &meter);
  const std::string title(1000, 'a');
  env.hold_log_syncs = true;
  for (uint64_t i = 1; i <= 50; ++i) Post(*a, Add("l", "2026-01-01", title, i));
  ex_.RunAll();  // 50 adds in one group, held at its sync
  ASSERT_TRUE(todo::testing::WaitFor([&] { return env.held_syncs.load() == 1; }));
  EXPECT_GT(meter.bytes.load(), 50 * 1000);
  Post(*a, Add("l", "2026-01-01", "b", 51));
  ex_.RunAll();  // queued behind the held group
  env.ReleaseSyncs(1);
  ASSERT_TRUE(todo::testing::WaitFor([&] { return a->completed.load() == 50; }));
  ASSERT_TRUE(todo::testing::WaitFor([&] { return env.held_syncs.load() == 1; }));  // "b"'s
  ASSERT_EQ(a->inflight.load(), 1u);
  Post(*a, Add("l", "2026-01-01", "c", 52));
  ex_.RunAll();  // "b" still in flight: not idle, yet the 50 durable adds go
  EXPECT_LT(meter.bytes.load(), 10 * 1000);
  env.hold_log_syncs = false;
  auto r = todo::testing::WaitReplies(replies_, 52);
  ASSERT_EQ(r.size(), 52u);
  Post(*a, Entries("l", 53));
  auto e = Run(1);
  EXPECT_EQ(Titles(e[53]).size(), 52u);
  EXPECT_EQ(Titles(e[53]).back(), "52:c");
}

TEST_F(ListActorTest, AListShedWithWritesInFlightReloadsWithThem) {
  // A list in constant use always has writes in flight; shedding it then
  // must not lose them: a reload before they are durable replays them over
  // what the disk has.
  todo::testing::FaultEnv& env = OpenOnFaultEnv();
  MemoryMeter meter;
  auto a = std::make_shared<ListActor>("l", &ex_, 100, store_.get(), &replies_, &meter);
  Post(*a, Add("l", "2026-01-01", "one", 1));
  Post(*a, Add("l", "2026-01-01", "two", 2));
  Post(*a, Add("l", "2026-01-01", "three", 3));
  Post(*a, Entries("l", 4));
  Run(4);
  const int64_t before = meter.bytes.load();
  env.hold_log_syncs = true;
  // Applied to the loaded list, then held in flight: an add, an update, a
  // delete, and an update of the new entry.
  Post(*a, Add("l", "2026-01-02", "four", 5));
  Post(*a, Update("l", 1, "ONE", 6));
  Post(*a, Delete("l", 2, 7));
  Post(*a, Update("l", 4, "FOUR", 8));
  a->RequestShed();
  ex_.RunAll();
  ASSERT_TRUE(todo::testing::WaitFor([&] { return env.held_syncs.load() == 1; }));
  ASSERT_EQ(a->inflight.load(), 4u);
  EXPECT_LT(meter.bytes.load(), before);  // the list is gone, the 4 writes kept
  // A read and an add while they are in flight: the list is reloaded (the
  // disk still has one, two, three) and the writes are replayed over it.
  Post(*a, Entries("l", 9));
  Post(*a, Add("l", "2026-01-03", "five", 10));
  ex_.RunAll();
  env.hold_log_syncs = false;
  auto replies = todo::testing::WaitReplies(replies_, 6);
  ASSERT_EQ(replies.size(), 6u);
  std::map<uint64_t, msgpack::object_handle> r;
  for (auto& reply : replies) {
    auto oh = Unpack(reply);
    r[Map(oh)["id"].as<uint64_t>()] = std::move(oh);
  }
  EXPECT_EQ(NewId(r[5]), 4u);
  EXPECT_EQ(Titles(r[9]), (std::vector<std::string>{"1:ONE", "3:three", "4:FOUR"}));
  EXPECT_EQ(NewId(r[10]), 5u);
  // The disk agrees, read by a fresh actor.
  auto b = NewActor("l");
  Post(*b, Entries("l", 11));
  auto e = Run(1);
  EXPECT_EQ(Titles(e[11]), (std::vector<std::string>{"1:ONE", "3:three", "4:FOUR", "5:five"}));
}

TEST_F(ListActorTest, LargeReadsAnswerOverloadedWhileUnreadRepliesAreOverTheBudget) {
  FlightMeter flight;
  flight.budget = 64 << 10;
  auto a = std::make_shared<ListActor>("l", &ex_, 100, store_.get(), &replies_, nullptr, &flight);
  AddMany(*a, "l", 40, std::string(1000, 'x'));  // a 40 KB reply
  auto small = NewActor("s");
  Post(*small, Add("s", "2026-01-01", "small", 1));
  Run(1);
  Post(*a, Entries("l", 41));
  auto r = Run(1);
  ASSERT_EQ(Titles(r[41]).size(), 40u);
  // The reply is counted from its encoding until freed: Run() freed it.
  EXPECT_EQ(flight.replies.load(), 0);
  // Two large replies never read: over the 64 KiB budget.
  Post(*a, Entries("l", 42));
  Post(*a, Entries("l", 43));
  ex_.RunAll();
  auto held = todo::testing::WaitReplies(replies_, 2);
  ASSERT_EQ(held.size(), 2u);
  EXPECT_GT(flight.replies.load(), 64 << 10);
  EXPECT_EQ(flight.requests.load(), 0);  // the socket loop's count, not the actor's
  Post(*a, Entries("l", 44));
  r = Run(1);
  EXPECT_EQ(Code(r[44]), "overloaded");
  // Small replies and writes still go: a client that doesn't read its
  // replies holds up only other large reads.
  Post(*small, Entries("s", 45));
  Post(*a, Add("l", "2026-01-01", "y", 46));
  r = Run(2);
  EXPECT_EQ(Titles(r[45]), (std::vector<std::string>{"1:small"}));
  EXPECT_EQ(NewId(r[46]), 41u);
  held.clear();  // sent (freed): no longer counted
  EXPECT_EQ(flight.replies.load(), 0);
  Post(*a, Entries("l", 47));
  r = Run(1);
  EXPECT_EQ(Titles(r[47]).size(), 41u);
}

// --- request ids (rid): a retried write happens once ---

class RidTest : public ListActorTest {
 protected:
  // The rid counters of `list`'s shard.
  const store::WriterStats& Stats(std::string_view list) {
    return store_->writer(store_->ShardFor(list)).stats();
  }
  // Every entry of `list`, read by a fresh actor from the disk.
  std::vector<std::string> OnDisk(const std::string& list, uint64_t request_id) {
    auto fresh = NewActor(list);
    Post(*fresh, Entries(list, request_id));
    auto r = Run(1);
    return Titles(r[request_id]);
  }
  static std::string Message(const msgpack::object_handle& oh) {
    using M = std::map<std::string, std::string>;
    return Map(oh)["error"].as<M>()["message"];
  }
  static bool Deleted(const msgpack::object_handle& oh) {
    using M = std::map<std::string, bool>;
    return Map(oh)["result"].as<M>()["deleted"];
  }
  // Closes the store and opens it again on the same dir with `o`.
  void Reopen(store::StoreOptions o) {
    store_.reset();
    o.dir = dir_.path() + "/store" + std::to_string(opens_);
    auto s = store::Store::Open(o, &replies_);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(s).value();
  }
  // The reply's map without its "id" (a retry's reply echoes its own id).
  static std::string WithoutId(const msgpack::object_handle& oh) {
    auto m = Map(oh);
    m.erase("id");
    std::stringstream out;
    for (auto& [k, v] : m) out << k << "=" << v << ";";
    return out.str();
  }
};

TEST_F(RidTest, ARetryGetsTheFirstRepliesAndChangesNothing) {
  auto a = NewActor("l");
  Post(*a, WithRid(Add("l", "2026-01-01", "one", 1), "add-1"));
  Post(*a, WithRid(Add("l", "2026-01-01", "two", 2), "add-2"));
  Post(*a, WithRid(Update("l", 1, "ONE", 3), "upd-1"));
  Post(*a, WithRid(Delete("l", 2, 4), "del-2"));
  auto first = Run(4);
  ASSERT_EQ(first.size(), 4u);
  EXPECT_EQ(NewId(first[1]), 1u);
  EXPECT_EQ(NewId(first[2]), 2u);
  EXPECT_EQ(Stats("l").rid_written.load(), 4u);
  // Retries, in another order and with other request ids: the same replies,
  // each echoing its own id, and nothing applied again.
  Post(*a, WithRid(Delete("l", 2, 14), "del-2"));
  Post(*a, WithRid(Update("l", 1, "ONE", 13), "upd-1"));
  Post(*a, WithRid(Add("l", "2026-01-01", "two", 12), "add-2"));
  Post(*a, WithRid(Add("l", "2026-01-01", "one", 11), "add-1"));
  auto again = Run(4);
  ASSERT_EQ(again.size(), 4u);
  for (uint64_t id = 1; id <= 4; ++id) {
    EXPECT_EQ(WithoutId(again[id + 10]), WithoutId(first[id])) << id;
  }
  EXPECT_EQ(Stats("l").rid_hits.load(), 4u);
  EXPECT_EQ(Stats("l").rid_written.load(), 4u);
  EXPECT_EQ(Stats("l").rid_records.load(), 4u);
  Post(*a, Add("l", "2026-01-01", "three", 20));  // the retried add took no id
  auto r = Run(1);
  EXPECT_EQ(NewId(r[20]), 3u);
  EXPECT_EQ(OnDisk("l", 21), (std::vector<std::string>{"1:ONE", "3:three"}));
  // A fresh actor (the node restarted) answers from the records on disk.
  auto b = NewActor("l");
  Post(*b, WithRid(Add("l", "2026-01-01", "one", 31), "add-1"));
  Post(*b, WithRid(Delete("l", 2, 32), "del-2"));
  r = Run(2);
  EXPECT_EQ(WithoutId(r[31]), WithoutId(first[1]));
  EXPECT_EQ(WithoutId(r[32]), WithoutId(first[4]));
  EXPECT_EQ(OnDisk("l", 33), (std::vector<std::string>{"1:ONE", "3:three"}));
}

TEST_F(RidTest, ARetryAnswersFromTheRecordNotFromTheListAsItIsNow) {
  auto a = NewActor("l");
  // An update of a missing entry and a delete of one: each writes its record.
  Post(*a, WithRid(Update("l", 2, "x", 1), "upd"));
  Post(*a, WithRid(Delete("l", 1, 2), "del"));
  auto first = Run(2);
  EXPECT_EQ(Code(first[1]), "not_found");
  EXPECT_FALSE(Deleted(first[2]));
  EXPECT_EQ(Stats("l").rid_records.load(), 2u);
  // Entries 1 and 2 exist now; the retries still answer what happened then,
  // and change nothing.
  Post(*a, Add("l", "2026-01-01", "a", 3));
  Post(*a, Add("l", "2026-01-01", "b", 4));
  Post(*a, WithRid(Update("l", 2, "x", 5), "upd"));
  Post(*a, WithRid(Delete("l", 1, 6), "del"));
  auto r = Run(4);
  EXPECT_EQ(Code(r[5]), "not_found");
  EXPECT_EQ(Message(r[5]), Message(first[1]));
  EXPECT_EQ(WithoutId(r[6]), WithoutId(first[2]));
  EXPECT_EQ(OnDisk("l", 7), (std::vector<std::string>{"1:a", "2:b"}));
}

TEST_F(RidTest, ARidUsedForAnotherRequestIsRefusedAndChangesNothing) {
  auto a = NewActor("l");
  Post(*a, WithRid(Add("l", "2026-01-01", "one", 1), "r"));
  Run(1);
  Post(*a, WithRid(Add("l", "2026-01-01", "other title", 2), "r"));
  Post(*a, WithRid(Add("l", "2026-01-02", "one", 3), "r"));
  Post(*a, WithRid(Delete("l", 1, 4), "r"));
  Post(*a, WithRid(Update("l", 1, "x", 5), "r"));
  auto r = Run(4);
  for (uint64_t id = 2; id <= 5; ++id) {
    EXPECT_EQ(Code(r[id]), "bad_request") << id;
    const std::string message = Message(r[id]);
    EXPECT_NE(message.find("rid 'r' was used for a different request (add_entry"),
              std::string::npos)
        << message;
  }
  EXPECT_EQ(Stats("l").rid_conflicts.load(), 4u);
  EXPECT_EQ(Stats("l").rid_records.load(), 1u);
  EXPECT_EQ(OnDisk("l", 6), (std::vector<std::string>{"1:one"}));
  // Without a rid, or with another, writes behave as before.
  Post(*a, Add("l", "2026-01-01", "one", 7));
  Post(*a, WithRid(Add("l", "2026-01-01", "one", 8), "r2"));
  r = Run(2);
  EXPECT_EQ(NewId(r[7]), 2u);
  EXPECT_EQ(NewId(r[8]), 3u);
}

TEST_F(RidTest, ARetryQueuedBehindItsOriginalInFlightWaitsAndAnswersTheSame) {
  todo::testing::FaultEnv& env = OpenOnFaultEnv();
  auto a = NewActor("l");
  env.hold_log_syncs = true;
  Post(*a, WithRid(Add("l", "2026-01-01", "one", 1), "r"));
  Post(*a, WithRid(Add("l", "2026-01-01", "one", 2), "r"));  // the same slice
  ex_.RunAll();
  ASSERT_TRUE(todo::testing::WaitFor([&] { return env.held_syncs.load() == 1; }));
  // A retry in a later slice, while the original's group commit is held at
  // its sync, and one of another request with the same rid.
  Post(*a, WithRid(Add("l", "2026-01-01", "one", 3), "r"));
  Post(*a, WithRid(Delete("l", 1, 4), "r"));
  ex_.RunAll();
  // Nothing is answered before the original is durable: the retries wait
  // behind it, and learn whether they repeat it from the record it writes.
  EXPECT_EQ(todo::testing::WaitReplies(replies_, 1, 200).size(), 0u);
  EXPECT_EQ(Stats("l").rid_written.load(), 0u);
  env.hold_log_syncs = false;
  auto replies = todo::testing::WaitReplies(replies_, 4);
  ASSERT_EQ(replies.size(), 4u);
  std::map<uint64_t, msgpack::object_handle> by_id;
  for (auto& reply : replies) {
    auto oh = Unpack(reply);
    by_id[Map(oh)["id"].as<uint64_t>()] = std::move(oh);
  }
  for (uint64_t id : {1, 2, 3}) EXPECT_EQ(NewId(by_id[id]), 1u) << id;
  EXPECT_EQ(Code(by_id[4]), "bad_request");
  EXPECT_NE(Message(by_id[4]).find("rid 'r' was used for a different request (add_entry)"),
            std::string::npos)
      << Message(by_id[4]);
  EXPECT_EQ(Stats("l").rid_hits.load(), 2u);
  EXPECT_EQ(Stats("l").rid_conflicts.load(), 1u);
  EXPECT_EQ(Stats("l").rid_written.load(), 1u);
  EXPECT_EQ(OnDisk("l", 5), (std::vector<std::string>{"1:one"}));
}

TEST_F(RidTest, AFailedWriteLeavesNoRecordAndItsRetriesFailWithIt) {
  todo::testing::FaultEnv& env = OpenOnFaultEnv();
  auto a = NewActor("l");
  Post(*a, Add("l", "2026-01-01", "durable", 1));
  Run(1);
  // The original's sync fails; a retry queued behind it must not claim it
  // happened.
  env.hold_log_syncs = true;
  env.fail_log_syncs = 1;
  Post(*a, WithRid(Add("l", "2026-01-01", "lost", 2), "r"));
  ex_.RunAll();
  ASSERT_TRUE(todo::testing::WaitFor([&] { return env.held_syncs.load() == 1; }));
  Post(*a, WithRid(Add("l", "2026-01-01", "lost", 3), "r"));
  ex_.RunAll();
  env.hold_log_syncs = false;
  auto r = Run(2);
  EXPECT_EQ(Code(r[2]), "internal");
  EXPECT_EQ(Code(r[3]), "internal");
  ASSERT_TRUE(WaitReopens(1));
  EXPECT_EQ(Stats("l").rid_records.load(), 0u);
  // No record: the next retry is a first request, applied once.
  Post(*a, WithRid(Add("l", "2026-01-01", "lost", 4), "r"));
  Post(*a, WithRid(Add("l", "2026-01-01", "lost", 5), "r"));
  r = Run(2);
  EXPECT_EQ(NewId(r[4]), 2u);
  EXPECT_EQ(NewId(r[5]), 2u);
  EXPECT_EQ(Stats("l").rid_records.load(), 1u);
  EXPECT_EQ(OnDisk("l", 6), (std::vector<std::string>{"1:durable", "2:lost"}));
}

TEST_F(RidTest, FirstRequestsSkipTheDiskAndARestartedStoreStillFindsEveryRecord) {
  store::StoreOptions o;
  o.sync = false;
  o.shards = 2;
  Reopen(o);  // the sweeper thread fills the filter at start (nothing yet)
  ASSERT_TRUE(todo::testing::WaitFor([&] { return store_->rid_filter().complete(); }));
  auto a = NewActor("l");
  for (uint64_t i = 1; i <= 20; ++i) {
    Post(*a,
         WithRid(Add("l", "2026-01-01", "t" + std::to_string(i), i), "rid-" + std::to_string(i)));
  }
  Run(20);
  // Each first request asked the filter, which knew there was no record.
  EXPECT_EQ(store_->rid_filter().skipped(), 20u);
  EXPECT_EQ(store_->rid_filter().inserted(), 20u);
  // A restarted store has an empty filter until it has read the records
  // on disk: a retry is never taken for a first request meanwhile.
  a.reset();
  Reopen(o);
  ASSERT_TRUE(todo::testing::WaitFor([&] { return store_->rid_filter().complete(); }));
  EXPECT_EQ(store_->rid_filter().inserted(), 20u);  // from the expiry index
  auto b = NewActor("l");
  for (uint64_t i = 1; i <= 20; ++i) {
    Post(*b, WithRid(Add("l", "2026-01-01", "t" + std::to_string(i), 100 + i),
                     "rid-" + std::to_string(i)));
  }
  auto r = Run(20);
  for (uint64_t i = 1; i <= 20; ++i) EXPECT_EQ(NewId(r[100 + i]), i);
  EXPECT_EQ(Stats("l").rid_hits.load(), 20u);
  EXPECT_EQ(OnDisk("l", 200).size(), 20u);
}

TEST_F(RidTest, ARequestRefusedAsOverloadedLeavesNoRecord) {
  store_.reset();
  store::StoreOptions o;
  o.sync = false;
  o.shards = 1;
  o.writer_queue = 1;
  Open(o);
  auto a = NewActor("l");
  ASSERT_TRUE(store_->writer(0).TryReserve());  // the only slot
  Post(*a, WithRid(Add("l", "2026-01-01", "one", 1), "r"));
  Post(*a, WithRid(Delete("l", 1, 2), "d"));
  auto r = Run(2);
  EXPECT_EQ(Code(r[1]), "overloaded");
  EXPECT_EQ(Code(r[2]), "overloaded");
  store_->writer(0).Unreserve();
  Post(*a, WithRid(Add("l", "2026-01-01", "one", 3), "r"));
  r = Run(1);
  EXPECT_EQ(NewId(r[3]), 1u);  // applied now, as a first request
  EXPECT_EQ(Stats("l").rid_hits.load(), 0u);
  EXPECT_EQ(Stats("l").rid_records.load(), 1u);
}

TEST_F(RidTest, AddsWithRidsNeedOnlyTheCounterAndKeepNoRecordInMemory) {
  {
    auto a = NewActor("big");
    AddMany(*a, "big", 300, std::string(40, 'e'));
  }
  MemoryMeter meter;
  auto b = std::make_shared<ListActor>("big", &ex_, 100, store_.get(), &replies_, &meter);
  const int64_t idle = meter.bytes.load();
  std::vector<std::string> rids;
  for (int i = 0; i < 50; ++i) rids.push_back("rid-" + std::to_string(i));
  for (int i = 0; i < 50; ++i) Post(*b, WithRid(Add("big", "2026-01-02", "x", 1 + i), rids[i]));
  auto r = Run(50);
  EXPECT_EQ(NewId(r[50]), 350u);
  // Neither the list (over 12 KB) nor the records are held once durable.
  ASSERT_TRUE(todo::testing::WaitFor([&] { return b->inflight.load() == 0; }));
  Post(*b, WithRid(Add("big", "2026-01-02", "x", 51), rids[0]));  // a retry: from disk
  r = Run(1);
  EXPECT_EQ(NewId(r[51]), 301u);
  EXPECT_LT(meter.bytes.load(), idle + 1024);
}

TEST_F(RidTest, RecordsExpireAfterTheTtlAndTheRetryIsThenAFirstRequest) {
  std::atomic<uint64_t> now{1'000'000};
  store_.reset();
  store::StoreOptions o;
  o.sync = false;
  o.shards = 2;
  o.rid_ttl = std::chrono::milliseconds(1000);
  o.rid_sweep_every = std::chrono::milliseconds(0);  // passes run by hand
  o.rid_sweep_max = 3;
  o.now_ms = [&] { return now.load(); };
  Open(o);
  const uint32_t shard = store_->ShardFor("l");
  auto a = NewActor("l");
  std::vector<std::string> rids;
  for (int i = 0; i < 5; ++i) rids.push_back("r" + std::to_string(i));
  // Written in [1'000'000, 1'001'000): their bucket is due at 1'002'000.
  for (int i = 0; i < 5; ++i) Post(*a, WithRid(Add("l", "2026-01-01", "t", 1 + i), rids[i]));
  Run(5);
  now = 1'000'999;
  Post(*a, WithRid(Add("l", "2026-01-01", "t", 100), rids[0]));  // a retry: from disk
  auto r = Run(1);
  EXPECT_EQ(NewId(r[100]), 1u);
  now = 1'001'000;  // the next bucket, due at 1'003'000
  Post(*a, WithRid(Add("l", "2026-01-01", "later", 6), "late"));
  Run(1);
  EXPECT_EQ(store_->writer(shard).stats().rid_records.load(), 6u);
  // Kept for at least the TTL: nothing is due before 1'002'000.
  now = 1'001'999;
  EXPECT_EQ(store_->SweepRids(now), 0u);
  Post(*a, WithRid(Add("l", "2026-01-01", "t", 101), rids[4]));  // still answered
  r = Run(1);
  EXPECT_EQ(NewId(r[101]), 5u);
  // Then dropped a bucket at a time, at most rid_sweep_max per pass.
  now = 1'002'000;
  EXPECT_EQ(store_->SweepRids(now), 3u);
  ASSERT_TRUE(todo::testing::WaitFor([&] { return !store_->SweepInFlight(); }));
  EXPECT_EQ(store_->SweepRids(now), 2u);
  ASSERT_TRUE(todo::testing::WaitFor([&] { return !store_->SweepInFlight(); }));
  EXPECT_EQ(store_->SweepRids(now), 0u);  // "late" is in a younger bucket
  const store::WriterStats& st = store_->writer(shard).stats();
  EXPECT_EQ(st.rid_expired.load(), 5u);
  EXPECT_EQ(st.rid_records.load(), 1u);
  // No reply went out for the sweeper's writes.
  EXPECT_EQ(todo::testing::WaitReplies(replies_, 1, 50).size(), 0u);
  // The contract after the TTL: a retry is a first request again.
  Post(*a, WithRid(Add("l", "2026-01-01", "t", 7), rids[0]));
  Post(*a, WithRid(Add("l", "2026-01-01", "later", 8), "late"));  // still kept
  r = Run(2);
  EXPECT_EQ(NewId(r[7]), 7u);
  EXPECT_EQ(NewId(r[8]), 6u);
  // The count is on disk: a reopened store reads it.
  a.reset();
  Reopen(o);
  ASSERT_TRUE(todo::testing::WaitFor(
      [&] { return store_->writer(shard).stats().rid_records.load() == 2u; }));
  // A reopened store with another TTL still finds the records of the old
  // one's buckets until they are due.
  o.rid_ttl = std::chrono::milliseconds(700);
  Reopen(o);
  auto b = NewActor("l");
  Post(*b, WithRid(Add("l", "2026-01-01", "later", 9), "late"));
  r = Run(1);
  EXPECT_EQ(NewId(r[9]), 6u);
  EXPECT_EQ(Stats("l").rid_hits.load(), 1u);
}

TEST_F(RidTest, RecordsOfTheVersion1LayoutAreStillReadAndExpire) {
  std::atomic<uint64_t> now{5'000'000};
  store_.reset();
  store::StoreOptions o;
  o.sync = false;
  o.shards = 1;
  o.rid_ttl = std::chrono::milliseconds(1000);
  o.rid_sweep_every = std::chrono::milliseconds(0);
  o.now_ms = [&] { return now.load(); };
  Open(o);
  auto a = NewActor("l");
  Post(*a, Add("l", "2026-01-01", "old", 1));
  Run(1);
  a.reset();
  // What a node of the version 1 layout wrote for an add with rid "old":
  // the record, its expiry index entry and the count.
  {
    protocol::Request req = Add("l", "2026-01-01", "old", 1);
    storage::RidRecord rec = storage::RidRecordFor(req, now.load());
    rec.hashed = false;
    rec.outcome = storage::RidOutcome::kAdded;
    rec.new_id = 1;
    std::string value;
    storage::RidValueTo(&value, rec);
    leveldb::WriteBatch b;
    b.Put(storage::RidKey("l", "old"), value);
    b.Put(storage::RidExpiryKey(now.load(), "l", "old"), "");
    b.Put(storage::RidCountKey(), storage::EncodeRidCount(1));
    ASSERT_TRUE(store_->shard_db(0).db->Write(leveldb::WriteOptions(), &b).ok());
  }
  Reopen(o);
  EXPECT_EQ(Stats("l").rid_records.load(), 1u);
  auto b = NewActor("l");
  Post(*b, WithRid(Add("l", "2026-01-01", "old", 2), "old"));    // a retry: answered
  Post(*b, WithRid(Add("l", "2026-01-01", "other", 3), "old"));  // another request
  auto r = Run(2);
  EXPECT_EQ(NewId(r[2]), 1u);
  EXPECT_EQ(Code(r[3]), "bad_request");
  // Swept with the version 1 index once older than the TTL.
  now += 999;
  EXPECT_EQ(store_->SweepRids(now), 0u);
  now += 1;
  EXPECT_EQ(store_->SweepRids(now), 1u);
  ASSERT_TRUE(todo::testing::WaitFor([&] { return !store_->SweepInFlight(); }));
  EXPECT_EQ(Stats("l").rid_records.load(), 0u);
  EXPECT_EQ(Stats("l").rid_expired.load(), 1u);
  Post(*b, WithRid(Add("l", "2026-01-01", "old", 4), "old"));  // a first request again
  r = Run(1);
  EXPECT_EQ(NewId(r[4]), 2u);
  EXPECT_EQ(OnDisk("l", 5), (std::vector<std::string>{"1:old", "2:old"}));
}

}  // namespace
}  // namespace todo::node
