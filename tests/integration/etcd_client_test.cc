// EtcdClient against a real one-member etcd (etcd_fixture.h): keys,
// prefixes, transactions (compare-and-swap: of two writers one wins),
// leases (minimum TTL, keepalive, expiry deleting keys), compaction, and a
// member's status and health.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "tests/integration/etcd_test_util.h"

namespace todo::testing {
namespace {

using io::Compare;
using io::CompareOp;
using io::Op;
using io::TxnRequest;

class EtcdClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why = etcd_.Start();
    ASSERT_EQ(why, "");
    client_ = EtcdClientOf(etcd_.endpoints());
    ASSERT_NE(client_, nullptr);
  }
  EtcdCluster etcd_;
  std::unique_ptr<io::EtcdClient> client_;
};

TEST_F(EtcdClientTest, PutGetPrefixDelete) {
  auto r1 = client_->Put("a/1", "one");
  ASSERT_TRUE(r1.ok()) << r1.status().ToString();
  ASSERT_TRUE(client_->Put("a/2", "two").ok());
  ASSERT_TRUE(client_->Put("b/1", "other").ok());
  auto again = client_->Put("a/1", "uno");
  ASSERT_TRUE(again.ok());
  EXPECT_GT(*again, *r1);

  auto g = client_->Get("a/1");
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  ASSERT_TRUE(g->kv.has_value());
  EXPECT_EQ(g->kv->value, "uno");
  EXPECT_EQ(g->kv->create_revision, *r1);
  EXPECT_EQ(g->kv->mod_revision, *again);
  EXPECT_EQ(g->kv->version, 2);
  EXPECT_EQ(g->revision, *again);  // the store's latest revision
  auto missing = client_->Get("a/none");
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(missing->kv.has_value());
  EXPECT_GE(missing->revision, *again);

  auto p = client_->GetPrefix("a/");
  ASSERT_TRUE(p.ok());
  ASSERT_EQ(p->kvs.size(), 2u);
  EXPECT_EQ(p->kvs[0].key, "a/1");
  EXPECT_EQ(p->kvs[1].key, "a/2");
  EXPECT_EQ(p->count, 2);
  EXPECT_FALSE(p->more);
  auto limited = client_->GetPrefix("a/", 1);
  ASSERT_TRUE(limited.ok());
  EXPECT_EQ(limited->kvs.size(), 1u);
  EXPECT_TRUE(limited->more);
  EXPECT_EQ(limited->count, 2);

  auto d = client_->Delete("a/1");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->deleted, 1);
  EXPECT_EQ(client_->Delete("a/1")->deleted, 0);
  auto dp = client_->DeletePrefix("a/");
  ASSERT_TRUE(dp.ok());
  EXPECT_EQ(dp->deleted, 1);
  EXPECT_TRUE(client_->GetPrefix("a/")->kvs.empty());
  EXPECT_EQ(client_->GetPrefix("")->kvs.size(), 1u);  // b/1: every key
}

TEST_F(EtcdClientTest, KeysAndValuesAreBytes) {
  const std::string key("k\0\xff/\n", 5), value("\0\x01\x80\xfe\xff", 5);
  ASSERT_TRUE(client_->Put(key, value).ok());
  auto g = client_->Get(key);
  ASSERT_TRUE(g.ok() && g->kv.has_value());
  EXPECT_EQ(g->kv->key, key);
  EXPECT_EQ(g->kv->value, value);
  const std::string big(512 * 1024, 'x');
  ASSERT_TRUE(client_->Put("big", big).ok());
  EXPECT_EQ(client_->Get("big")->kv->value, big);
}

TEST_F(EtcdClientTest, CompareAndSwapOfTwoWritersOneWins) {
  auto base = client_->Put("map", "v1");
  ASSERT_TRUE(base.ok());
  // Both read mod_revision == base, both try to replace it.
  auto cas = [&](const std::string& value) {
    TxnRequest t;
    t.compares.push_back(Compare::ModRevision("map", CompareOp::kEqual, *base));
    t.success.push_back(Op::Put("map", value));
    t.failure.push_back(Op::Get("map"));
    return client_->Txn(t);
  };
  auto a = cas("from-a");
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_TRUE(a->succeeded);
  auto b = cas("from-b");
  ASSERT_TRUE(b.ok());
  EXPECT_FALSE(b->succeeded);
  ASSERT_EQ(b->responses.size(), 1u);
  ASSERT_EQ(b->responses[0].range.kvs.size(), 1u);
  EXPECT_EQ(b->responses[0].range.kvs[0].value, "from-a");  // what beat it
  EXPECT_EQ(client_->Get("map")->kv->value, "from-a");
}

TEST_F(EtcdClientTest, ConcurrentCompareAndSwapHasExactlyOneWinner) {
  auto base = client_->Put("race", "0");
  ASSERT_TRUE(base.ok());
  constexpr int kWriters = 8;
  std::atomic<int> wins{0}, losses{0}, errors{0};
  std::vector<std::thread> writers;
  for (int i = 0; i < kWriters; ++i) {
    writers.emplace_back([&, i] {
      TxnRequest t;
      t.compares.push_back(Compare::ModRevision("race", CompareOp::kEqual, *base));
      t.success.push_back(Op::Put("race", std::to_string(i)));
      auto r = client_->Txn(t);  // one client, many threads
      if (!r.ok()) {
        errors++;
      } else if (r->succeeded) {
        wins++;
      } else {
        losses++;
      }
    });
  }
  for (auto& t : writers) t.join();
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(wins.load(), 1);
  EXPECT_EQ(losses.load(), kWriters - 1);
}

TEST_F(EtcdClientTest, EveryCompareTarget) {
  auto lease = client_->Grant(30);
  ASSERT_TRUE(lease.ok());
  auto rev = client_->Put("k", "v", lease->id);
  ASSERT_TRUE(rev.ok());
  auto holds = [&](Compare c) {
    TxnRequest t;
    t.compares.push_back(std::move(c));
    auto r = client_->Txn(t);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() && r->succeeded;
  };
  EXPECT_TRUE(holds(Compare::Version("k", CompareOp::kEqual, 1)));
  EXPECT_TRUE(holds(Compare::Version("k", CompareOp::kGreater, 0)));
  EXPECT_TRUE(holds(Compare::CreateRevision("k", CompareOp::kEqual, *rev)));
  EXPECT_TRUE(holds(Compare::CreateRevision("absent", CompareOp::kEqual, 0)));
  EXPECT_TRUE(holds(Compare::ModRevision("k", CompareOp::kLess, *rev + 1)));
  EXPECT_FALSE(holds(Compare::ModRevision("k", CompareOp::kNotEqual, *rev)));
  EXPECT_TRUE(holds(Compare::Value("k", CompareOp::kEqual, "v")));
  EXPECT_FALSE(holds(Compare::Value("k", CompareOp::kEqual, "w")));
  EXPECT_TRUE(holds(Compare::Lease("k", CompareOp::kEqual, lease->id)));
  EXPECT_FALSE(holds(Compare::Lease("k", CompareOp::kEqual, 0)));
}

TEST_F(EtcdClientTest, LeaseGrantKeepAliveRevoke) {
  auto lease = client_->Grant(5);
  ASSERT_TRUE(lease.ok()) << lease.status().ToString();
  EXPECT_NE(lease->id, 0);
  EXPECT_EQ(lease->ttl, 5);
  ASSERT_TRUE(client_->Put("leased", "x", lease->id).ok());
  auto info = client_->TimeToLive(lease->id, /*with_keys=*/true);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->granted_ttl, 5);
  EXPECT_GE(info->ttl, 0);
  EXPECT_LE(info->ttl, 5);
  EXPECT_EQ(info->keys, std::vector<std::string>{"leased"});
  EXPECT_EQ(client_->Get("leased")->kv->lease, lease->id);
  auto renewed = client_->KeepAliveOnce(lease->id);
  ASSERT_TRUE(renewed.ok());
  EXPECT_EQ(*renewed, 5);

  ASSERT_TRUE(client_->Revoke(lease->id).ok());
  EXPECT_FALSE(client_->Get("leased")->kv.has_value());  // revoking deletes its keys
  EXPECT_EQ(*client_->KeepAliveOnce(lease->id), 0);      // gone
  EXPECT_EQ(client_->TimeToLive(lease->id)->ttl, -1);
  EXPECT_EQ(client_->Revoke(lease->id).code(), ErrorCode::kNotFound);
  auto orphan = client_->Put("orphan", "x", lease->id);
  ASSERT_FALSE(orphan.ok());
  EXPECT_EQ(orphan.status().code(), ErrorCode::kNotFound);
}

// etcd 3.4 raises a TTL below ceil(1.5 x election timeout) to it: 2 s with
// the default 1 s election timeout.
TEST_F(EtcdClientTest, MinimumLeaseTtlIsTwoSecondsWithDefaultTimeouts) {
  auto one = client_->Grant(1);
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(one->ttl, 2);
  EXPECT_EQ(client_->Grant(2)->ttl, 2);
  EXPECT_EQ(client_->Grant(3)->ttl, 3);
  EXPECT_EQ(client_->Grant(0).status().code(), ErrorCode::kBadRequest);
}

TEST(EtcdLeaseMinimumTest, OneSecondWithAHalfSecondElectionTimeout) {
  EtcdClusterOptions o;
  o.heartbeat_ms = 50;
  o.election_ms = 500;
  EtcdCluster etcd(o);
  ASSERT_EQ(etcd.Start(), "");
  auto client = EtcdClientOf(etcd.endpoints());
  auto one = client->Grant(1);
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(one->ttl, 1);  // ceil(1.5 x 0.5 s)
}

TEST_F(EtcdClientTest, ExpiryDeletesLeaseBoundKeys) {
  auto lease = client_->Grant(2);
  ASSERT_TRUE(lease.ok());
  ASSERT_TRUE(client_->Put("ephemeral", "x", lease->id).ok());
  ASSERT_TRUE(client_->Get("ephemeral")->kv.has_value());
  // Nobody renews it: etcd deletes the key within the TTL plus its expiry
  // check (every 500 ms); 15 s bounds the wait.
  EXPECT_TRUE(Eventually(
      [&] {
        auto g = client_->Get("ephemeral");
        return g.ok() && !g->kv.has_value();
      },
      Millis(15000)));
  EXPECT_EQ(client_->TimeToLive(lease->id)->ttl, -1);
  EXPECT_EQ(*client_->KeepAliveOnce(lease->id), 0);
}

TEST_F(EtcdClientTest, CompactedRevisionsAreRefused) {
  auto first = client_->Put("c", "1");
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(client_->Put("c", "2").ok());
  auto last = client_->Put("c", "3");
  ASSERT_TRUE(last.ok());
  EXPECT_EQ(client_->Range("c", "", 0, *first)->kvs.at(0).value, "1");  // history
  ASSERT_TRUE(client_->Compact(*last).ok());
  auto old = client_->Range("c", "", 0, *first);
  ASSERT_FALSE(old.ok());
  EXPECT_EQ(old.status().code(), ErrorCode::kBadRequest);
  EXPECT_NE(old.status().message().find("compacted"), std::string::npos) << old.status().message();
}

TEST_F(EtcdClientTest, MemberStatusAndHealth) {
  auto st = client_->EndpointStatus(etcd_.endpoint(0));
  ASSERT_TRUE(st.ok()) << st.status().ToString();
  EXPECT_EQ(st->version.substr(0, 2), "3.");
  EXPECT_NE(st->member_id, 0u);
  EXPECT_TRUE(st->is_leader());  // one member: it leads
  EXPECT_EQ(st->endpoint, etcd_.endpoint(0));
  EXPECT_TRUE(client_->EndpointHealth(etcd_.endpoint(0)).ok());
  const std::string nobody = "http://127.0.0.1:" + std::to_string(FreeTcpPort());
  Status down = client_->EndpointHealth(nobody);
  EXPECT_EQ(down.code(), ErrorCode::kUnavailable);
  EXPECT_NE(down.message().find(nobody), std::string::npos) << down.message();
}

}  // namespace
}  // namespace todo::testing
