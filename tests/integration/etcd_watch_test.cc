// EtcdWatch against a real etcd: events in revision order, history from a
// start revision, compaction reported, a prompt Stop(), and, in a cluster
// of three, resuming on another member after the one it streams from is
// killed (kill -9) or frozen (SIGSTOP), with no event lost or repeated.
#include <gtest/gtest.h>

#include "common/io/etcd/watch.h"
#include "tests/integration/etcd_test_util.h"

namespace todo::testing {
namespace {

using io::EtcdWatch;
using io::EventType;
using Kind = io::WatchUpdate::Kind;

TEST(EtcdWatchTest, EventsInRevisionOrder) {
  EtcdCluster etcd;
  ASSERT_EQ(etcd.Start(), "");
  auto client = EtcdClientOf(etcd.endpoints());
  WatchRecorder rec;
  EtcdWatch w(client.get(), EtcdWatch::Options::Prefix("w/"), rec.Callback());
  ASSERT_TRUE(w.Start().ok());
  size_t at = 0;
  ASSERT_TRUE(rec.WaitFor(Kind::kConnected, &at).has_value());
  auto r1 = client->Put("w/a", "1");
  ASSERT_TRUE(client->Put("other", "x").ok());  // outside the prefix
  auto r2 = client->Put("w/b", "2");
  ASSERT_TRUE(client->Delete("w/a").ok());
  io::TxnRequest t;  // two keys at one revision
  t.success = {io::Op::Put("w/c", "3"), io::Op::Put("w/d", "4")};
  auto tx = client->Txn(t);
  ASSERT_TRUE(r1.ok() && r2.ok() && tx.ok());
  ASSERT_TRUE(rec.WaitEvents(5));
  auto events = rec.Events();
  ASSERT_EQ(events.size(), 5u);
  EXPECT_EQ(events[0].kv.key, "w/a");
  EXPECT_EQ(events[0].kv.mod_revision, *r1);
  EXPECT_EQ(events[1].kv.key, "w/b");
  EXPECT_EQ(events[1].kv.value, "2");
  EXPECT_EQ(events[2].type, EventType::kDelete);
  EXPECT_EQ(events[2].kv.key, "w/a");
  EXPECT_EQ(events[3].kv.mod_revision, tx->revision);
  EXPECT_EQ(events[4].kv.mod_revision, tx->revision);
  for (size_t i = 1; i < events.size(); ++i) {
    EXPECT_GE(events[i].kv.mod_revision, events[i - 1].kv.mod_revision);
  }
  EXPECT_EQ(w.next_revision(), tx->revision + 1);
}

TEST(EtcdWatchTest, StartRevisionReplaysHistory) {
  EtcdCluster etcd;
  ASSERT_EQ(etcd.Start(), "");
  auto client = EtcdClientOf(etcd.endpoints());
  auto first = client->Put("h/1", "a");
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(client->Put("h/2", "b").ok());
  ASSERT_TRUE(client->Put("h/1", "c").ok());
  WatchRecorder rec;
  EtcdWatch w(client.get(), EtcdWatch::Options::Prefix("h/", *first + 1), rec.Callback());
  ASSERT_TRUE(w.Start().ok());
  ASSERT_TRUE(rec.WaitEvents(2));
  auto events = rec.Events();
  ASSERT_EQ(events.size(), 2u);  // the two after `first`, not `first`
  EXPECT_EQ(events[0].kv.key, "h/2");
  EXPECT_EQ(events[1].kv.value, "c");
}

TEST(EtcdWatchTest, CompactionIsReported) {
  EtcdCluster etcd;
  ASSERT_EQ(etcd.Start(), "");
  auto client = EtcdClientOf(etcd.endpoints());
  auto first = client->Put("c/1", "a");
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(client->Put("c/1", "b").ok());
  auto last = client->Put("c/1", "c");
  ASSERT_TRUE(last.ok());
  ASSERT_TRUE(client->Compact(*last).ok());
  WatchRecorder rec;
  EtcdWatch w(client.get(), EtcdWatch::Options::Prefix("c/", *first), rec.Callback());
  ASSERT_TRUE(w.Start().ok());
  size_t at = 0;
  auto compacted = rec.WaitFor(Kind::kCompacted, &at);
  ASSERT_TRUE(compacted.has_value());
  EXPECT_EQ(compacted->revision, *last);
  EXPECT_TRUE(Eventually([&] { return w.ended(); }, Millis(5000)));
  // The owner re-reads and watches again from the read's revision.
  auto read = client->GetPrefix("c/");
  ASSERT_TRUE(read.ok());
  WatchRecorder again;
  EtcdWatch w2(client.get(), EtcdWatch::Options::Prefix("c/", read->revision + 1),
               again.Callback());
  ASSERT_TRUE(w2.Start().ok());
  size_t at2 = 0;
  ASSERT_TRUE(again.WaitFor(Kind::kConnected, &at2).has_value());
  ASSERT_TRUE(client->Put("c/2", "d").ok());
  ASSERT_TRUE(again.WaitEvents(1));
  EXPECT_EQ(again.Events()[0].kv.key, "c/2");
}

TEST(EtcdWatchTest, StopIsPromptOnAnIdleStream) {
  EtcdCluster etcd;
  ASSERT_EQ(etcd.Start(), "");
  auto client = EtcdClientOf(etcd.endpoints());
  WatchRecorder rec;
  EtcdWatch::Options o = EtcdWatch::Options::Prefix("idle/");
  o.probe_interval = Millis(60000);  // Stop must not wait for a probe or read timeout
  EtcdWatch w(client.get(), o, rec.Callback());
  ASSERT_TRUE(w.Start().ok());
  size_t at = 0;
  ASSERT_TRUE(rec.WaitFor(Kind::kConnected, &at).has_value());
  auto start = std::chrono::steady_clock::now();
  w.Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  EXPECT_TRUE(w.ended());
}

// Puts keys 0..n-1 under `prefix` through `client`, each retried until it
// succeeds (bounded), returning their revisions.
std::vector<int64_t> PutMany(io::EtcdClient* client, const std::string& prefix, int from, int n) {
  std::vector<int64_t> revisions;
  for (int i = from; i < from + n; ++i) {
    StatusOr<int64_t> r = Status::Internal("not tried");
    for (int attempt = 0; attempt < 20 && !r.ok(); ++attempt) {
      r = client->Put(prefix + std::to_string(i), "v");
    }
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (r.ok()) revisions.push_back(*r);
  }
  return revisions;
}

// A watch streaming from member `victim` of three; `disrupt` kills or
// freezes it while keys are written through the others: every event
// arrives once, in order, from another member.
void ResumesElsewhere(const std::function<void(EtcdCluster&, size_t)>& disrupt) {
  EtcdCluster etcd(EtcdClusterOptions::Members(3));
  ASSERT_EQ(etcd.Start(), "");
  const size_t victim = 0;
  auto watch_client = EtcdClientOf(etcd.endpoints(), Millis(500), Millis(3000));
  auto writer = EtcdClientOf({etcd.endpoint(1), etcd.endpoint(2)});
  WatchRecorder rec;
  EtcdWatch::Options o = EtcdWatch::Options::Prefix("r/");
  o.probe_interval = Millis(500);
  EtcdWatch w(watch_client.get(), o, rec.Callback());
  ASSERT_TRUE(w.Start().ok());
  size_t at = 0;
  auto connected = rec.WaitFor(Kind::kConnected, &at);
  ASSERT_TRUE(connected.has_value());
  ASSERT_EQ(connected->endpoint, etcd.endpoint(victim));  // preferred: the first
  auto before = PutMany(writer.get(), "r/", 0, 20);
  ASSERT_TRUE(rec.WaitEvents(20));
  disrupt(etcd, victim);
  auto after = PutMany(writer.get(), "r/", 20, 20);
  auto lost = rec.WaitFor(Kind::kConnectionLost, &at);
  ASSERT_TRUE(lost.has_value());
  EXPECT_EQ(lost->endpoint, etcd.endpoint(victim));
  auto reconnected = rec.WaitFor(Kind::kConnected, &at);
  ASSERT_TRUE(reconnected.has_value());
  EXPECT_NE(reconnected->endpoint, etcd.endpoint(victim));
  ASSERT_TRUE(rec.WaitEvents(40)) << "events: " << rec.Events().size();
  auto events = rec.Events();
  ASSERT_EQ(events.size(), 40u);
  std::vector<int64_t> want = before;
  want.insert(want.end(), after.begin(), after.end());
  for (size_t i = 0; i < events.size(); ++i) {
    EXPECT_EQ(events[i].kv.key, "r/" + std::to_string(i));
    EXPECT_EQ(events[i].kv.mod_revision, want[i]);
  }
  etcd.Resume(victim);
}

TEST(EtcdWatchTest, ResumesOnAnotherMemberAfterKill9) {
  ResumesElsewhere([](EtcdCluster& etcd, size_t i) { etcd.Kill(i); });
}

TEST(EtcdWatchTest, ResumesOnAnotherMemberWhenItsMemberFreezes) {
  ResumesElsewhere([](EtcdCluster& etcd, size_t i) { ASSERT_TRUE(etcd.Pause(i)); });
}

}  // namespace
}  // namespace todo::testing
