// Election against a real etcd: of two candidates one wins; the other sees
// the holder, observes the key and takes over when the winner resigns or
// its lease ends (revoked, or expired unrenewed); a deposed holder's
// guarded writes fail; campaigning again with the same lease is a win.
#include <gtest/gtest.h>

#include <mutex>

#include "common/io/etcd/election.h"
#include "tests/integration/etcd_test_util.h"

namespace todo::testing {
namespace {

using io::Election;
using io::Leadership;

// What an observer saw: the holder after each change.
class Holders {
 public:
  std::function<void(const std::optional<Leadership>&)> Callback() {
    return [this](const std::optional<Leadership>& h) {
      std::lock_guard<std::mutex> lock(mu_);
      seen_.push_back(h);
    };
  }
  bool SawVacant() {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& h : seen_) {
      if (!h) return true;
    }
    return false;
  }
  std::optional<Leadership> Last() {
    std::lock_guard<std::mutex> lock(mu_);
    return seen_.empty() ? std::nullopt : seen_.back();
  }
  size_t size() {
    std::lock_guard<std::mutex> lock(mu_);
    return seen_.size();
  }

 private:
  std::mutex mu_;
  std::vector<std::optional<Leadership>> seen_;
};

class ElectionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(etcd_.Start(), "");
    a_ = EtcdClientOf(etcd_.endpoints());
    b_ = EtcdClientOf(etcd_.endpoints());
  }
  int64_t Lease(io::EtcdClient* c, int64_t ttl) {
    auto g = c->Grant(ttl);
    EXPECT_TRUE(g.ok()) << g.status().ToString();
    return g.ok() ? g->id : 0;
  }
  // A write only the holder `mine` may make.
  bool GuardedPut(io::EtcdClient* c, const Leadership& mine, const std::string& value) {
    io::TxnRequest t;
    Election::Guard(mine, &t);
    t.success.push_back(io::Op::Put("/todo/t/map", value));
    auto r = c->Txn(t);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() && r->succeeded;
  }

  EtcdCluster etcd_;
  std::unique_ptr<io::EtcdClient> a_, b_;
  const std::string key_ = "/todo/t/controller";
};

TEST_F(ElectionTest, OneOfTwoWinsTheOtherTakesOverAfterResign) {
  Election ea(a_.get(), key_), eb(b_.get(), key_);
  const int64_t la = Lease(a_.get(), 30), lb = Lease(b_.get(), 30);
  auto ra = ea.Campaign("a", la);
  ASSERT_TRUE(ra.ok()) << ra.status().ToString();
  EXPECT_TRUE(ra->won);
  auto rb = eb.Campaign("b", lb);
  ASSERT_TRUE(rb.ok());
  EXPECT_FALSE(rb->won);
  EXPECT_EQ(rb->holder.value, "a");
  EXPECT_EQ(rb->holder.lease, la);
  EXPECT_EQ(rb->holder.create_revision, ra->holder.create_revision);
  auto current = eb.Current();
  ASSERT_TRUE(current.ok() && current->holder.has_value());
  EXPECT_EQ(current->holder->value, "a");

  EXPECT_TRUE(GuardedPut(a_.get(), ra->holder, "by a"));
  Holders seen;
  auto watch = eb.Observe(rb->revision, seen.Callback());
  ASSERT_TRUE(watch.ok()) << watch.status().ToString();
  ASSERT_TRUE(ea.Resign(ra->holder).ok());
  ASSERT_TRUE(Eventually([&] { return seen.SawVacant(); }, Millis(10000)));
  auto rb2 = eb.Campaign("b", lb);
  ASSERT_TRUE(rb2.ok());
  EXPECT_TRUE(rb2->won);
  EXPECT_FALSE(GuardedPut(a_.get(), ra->holder, "stale a"));  // deposed: fenced
  EXPECT_TRUE(GuardedPut(b_.get(), rb2->holder, "by b"));
  EXPECT_EQ(a_->Get("/todo/t/map")->kv->value, "by b");
  ASSERT_TRUE(Eventually([&] { return seen.Last() && seen.Last()->value == "b"; }, Millis(10000)));
  // Resigning what one no longer holds does nothing.
  EXPECT_TRUE(ea.Resign(ra->holder).ok());
  EXPECT_EQ(eb.Current()->holder->value, "b");
}

TEST_F(ElectionTest, TakeOverWhenTheHoldersLeaseIsRevoked) {
  Election ea(a_.get(), key_), eb(b_.get(), key_);
  const int64_t la = Lease(a_.get(), 30), lb = Lease(b_.get(), 30);
  auto ra = ea.Campaign("a", la);
  ASSERT_TRUE(ra.ok() && ra->won);
  auto rb = eb.Campaign("b", lb);
  ASSERT_TRUE(rb.ok() && !rb->won);
  Holders seen;
  auto watch = eb.Observe(rb->revision, seen.Callback());
  ASSERT_TRUE(watch.ok());
  ASSERT_TRUE(a_->Revoke(la).ok());  // a's process died, or its keeper gave up
  ASSERT_TRUE(Eventually([&] { return seen.SawVacant(); }, Millis(10000)));
  auto rb2 = eb.Campaign("b", lb);
  ASSERT_TRUE(rb2.ok() && rb2->won);
  EXPECT_FALSE(GuardedPut(a_.get(), ra->holder, "stale a"));
  auto proclaimed = ea.Proclaim(ra->holder, "a again");
  ASSERT_TRUE(proclaimed.ok());
  EXPECT_FALSE(*proclaimed);
  EXPECT_EQ(eb.Current()->holder->value, "b");
}

TEST_F(ElectionTest, TakeOverWhenTheHoldersLeaseExpires) {
  Election ea(a_.get(), key_), eb(b_.get(), key_);
  const int64_t la = Lease(a_.get(), 2), lb = Lease(b_.get(), 30);  // a never renews
  auto ra = ea.Campaign("a", la);
  ASSERT_TRUE(ra.ok() && ra->won);
  auto rb = eb.Campaign("b", lb);
  ASSERT_TRUE(rb.ok() && !rb->won);
  Holders seen;
  auto watch = eb.Observe(rb->revision, seen.Callback());
  ASSERT_TRUE(watch.ok());
  ASSERT_TRUE(Eventually([&] { return seen.SawVacant(); }, Millis(15000)));
  auto rb2 = eb.Campaign("b", lb);
  ASSERT_TRUE(rb2.ok() && rb2->won);
  EXPECT_NE(rb2->holder.create_revision, ra->holder.create_revision);
  EXPECT_FALSE(GuardedPut(a_.get(), ra->holder, "stale a"));
}

TEST_F(ElectionTest, CampaigningAgainWithTheSameLeaseIsAWin) {
  Election ea(a_.get(), key_);
  const int64_t la = Lease(a_.get(), 30);
  auto first = ea.Campaign("a", la);
  ASSERT_TRUE(first.ok() && first->won);
  auto again = ea.Campaign("a", la);  // e.g. the first answer was lost
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->won);
  EXPECT_EQ(again->holder.create_revision, first->holder.create_revision);
  EXPECT_FALSE(ea.Campaign("a", 0).ok());  // a lease is required
  auto proclaimed = ea.Proclaim(first->holder, "a, now at a new address");
  ASSERT_TRUE(proclaimed.ok() && *proclaimed);
  EXPECT_EQ(ea.Current()->holder->value, "a, now at a new address");
}

}  // namespace
}  // namespace todo::testing
