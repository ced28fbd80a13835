// Losing one etcd member of three is invisible to the client: after a
// kill -9 of the member it talks to (or of the leader), every call still
// succeeds, moving to another endpoint; with a member frozen (SIGSTOP)
// reads and writes still succeed.
#include <gtest/gtest.h>

#include "tests/integration/etcd_test_util.h"

namespace todo::testing {
namespace {

// Every kind of call once; each must succeed.
void EveryCallSucceeds(io::EtcdClient* c, const std::string& tag) {
  SCOPED_TRACE(tag);
  auto put = c->Put("f/" + tag, "v");
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  auto get = c->Get("f/" + tag);
  ASSERT_TRUE(get.ok()) << get.status().ToString();
  EXPECT_TRUE(get->kv.has_value());
  auto prefix = c->GetPrefix("f/");
  ASSERT_TRUE(prefix.ok()) << prefix.status().ToString();
  io::TxnRequest t;
  t.compares.push_back(io::Compare::ModRevision("f/" + tag, io::CompareOp::kEqual, *put));
  t.success.push_back(io::Op::Put("f/" + tag, "w"));
  auto txn = c->Txn(t);
  ASSERT_TRUE(txn.ok()) << txn.status().ToString();
  EXPECT_TRUE(txn->succeeded);
  auto lease = c->Grant(10);
  ASSERT_TRUE(lease.ok()) << lease.status().ToString();
  auto ka = c->KeepAliveOnce(lease->id);
  ASSERT_TRUE(ka.ok()) << ka.status().ToString();
  EXPECT_GT(*ka, 0);
  auto ttl = c->TimeToLive(lease->id);
  ASSERT_TRUE(ttl.ok()) << ttl.status().ToString();
  Status revoked = c->Revoke(lease->id);
  ASSERT_TRUE(revoked.ok()) << revoked.ToString();
  auto del = c->Delete("f/" + tag);
  ASSERT_TRUE(del.ok()) << del.status().ToString();
}

TEST(EtcdFailoverTest, KillingTheMemberInUseIsInvisible) {
  EtcdCluster etcd(EtcdClusterOptions::Members(3));
  ASSERT_EQ(etcd.Start(), "");
  auto c = EtcdClientOf(etcd.endpoints());
  EveryCallSucceeds(c.get(), "before");
  ASSERT_EQ(c->preferred_endpoint(), 0u);
  etcd.Kill(0);
  EveryCallSucceeds(c.get(), "after");
  EXPECT_NE(c->preferred_endpoint(), 0u);
  // It comes back and rejoins; the client goes on.
  ASSERT_EQ(etcd.Restart(0), "");
  EveryCallSucceeds(c.get(), "rejoined");
}

TEST(EtcdFailoverTest, KillingTheLeaderIsInvisible) {
  EtcdCluster etcd(EtcdClusterOptions::Members(3));
  ASSERT_EQ(etcd.Start(), "");
  auto c = EtcdClientOf(etcd.endpoints());
  size_t leader = etcd.size();
  for (size_t i = 0; i < etcd.size(); ++i) {
    auto st = c->EndpointStatus(etcd.endpoint(i));
    ASSERT_TRUE(st.ok()) << st.status().ToString();
    if (st->is_leader()) leader = i;
  }
  ASSERT_LT(leader, etcd.size());
  EveryCallSucceeds(c.get(), "before");
  etcd.Kill(leader);
  // The survivors elect a new leader (about an election timeout); calls in
  // between wait for it within their deadline.
  EveryCallSucceeds(c.get(), "after");
}

TEST(EtcdFailoverTest, AFrozenMemberCostsOneAttemptTimeout) {
  EtcdCluster etcd(EtcdClusterOptions::Members(3));
  ASSERT_EQ(etcd.Start(), "");
  auto c = EtcdClientOf(etcd.endpoints(), Millis(500), Millis(5000));
  ASSERT_TRUE(c->Put("z", "1").ok());
  ASSERT_TRUE(etcd.Pause(0));
  // A read or a put sent to the frozen member times out, then goes on.
  auto get = c->Get("z");
  ASSERT_TRUE(get.ok()) << get.status().ToString();
  EXPECT_NE(c->preferred_endpoint(), 0u);
  EveryCallSucceeds(c.get(), "frozen");
  ASSERT_TRUE(etcd.Resume(0));
}

}  // namespace
}  // namespace todo::testing
