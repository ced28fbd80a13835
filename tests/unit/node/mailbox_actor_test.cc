#include "node/runtime/mailbox_actor.h"

#include <gtest/gtest.h>

#include <thread>

#include "node/runtime/worker_pool.h"

namespace todo::runtime {
namespace {

class Recorder : public MailboxActor<int> {
 public:
  using MailboxActor<int>::MailboxActor;
  std::vector<int> seen;
  std::vector<size_t> batch_sizes;

 protected:
  void Handle(std::vector<int>& batch) override {
    batch_sizes.push_back(batch.size());
    for (int v : batch) seen.push_back(v);
  }
};

TEST(MailboxActorTest, SchedulesOnceAndHandlesInOrder) {
  ManualExecutor ex;
  auto a = std::make_shared<Recorder>(&ex, 100);
  for (int i = 0; i < 10; ++i) {
    int v = i;
    ASSERT_TRUE(a->Post(v));
  }
  EXPECT_EQ(ex.pending(), 1u);  // scheduled once, not per message
  EXPECT_FALSE(a->Idle());
  ex.RunAll();
  EXPECT_TRUE(a->Idle());
  EXPECT_EQ(a->seen, (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
}

TEST(MailboxActorTest, FullMailboxRefusesWithoutTakingTheMessage) {
  ManualExecutor ex;
  auto a = std::make_shared<Recorder>(&ex, 3);
  for (int i = 0; i < 3; ++i) {
    int v = i;
    ASSERT_TRUE(a->Post(v));
  }
  int extra = 99;
  EXPECT_FALSE(a->Post(extra));
  ex.RunAll();
  EXPECT_EQ(a->seen.size(), 3u);
  int again = 4;
  EXPECT_TRUE(a->Post(again));  // room again after the slice
}

TEST(MailboxActorTest, YieldsAfterASliceAndReschedules) {
  ManualExecutor ex;
  const size_t n = Recorder::kSliceSize * 2 + 5;
  auto a = std::make_shared<Recorder>(&ex, 1000);
  for (size_t i = 0; i < n; ++i) {
    int v = static_cast<int>(i);
    ASSERT_TRUE(a->Post(v));
  }
  EXPECT_EQ(ex.RunAll(), 3);
  EXPECT_EQ(a->batch_sizes, (std::vector<size_t>{Recorder::kSliceSize, Recorder::kSliceSize, 5}));
}

TEST(MailboxActorTest, WorkerPoolRunsManyActorsSerially) {
  WorkerPool pool(3);
  std::vector<std::shared_ptr<Recorder>> actors;
  for (int i = 0; i < 20; ++i) actors.push_back(std::make_shared<Recorder>(&pool, 100000));
  for (int v = 0; v < 2000; ++v) {
    for (auto& a : actors) {
      int x = v;
      while (!a->Post(x)) std::this_thread::yield();
    }
  }
  for (int spins = 0; spins < 5000; ++spins) {
    bool idle = true;
    for (auto& a : actors) idle = idle && a->Idle();
    if (idle) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  pool.Stop();
  for (auto& a : actors) {
    ASSERT_EQ(a->seen.size(), 2000u);
    for (int v = 0; v < 2000; ++v) ASSERT_EQ(a->seen[v], v);
  }
}

}  // namespace
}  // namespace todo::runtime
