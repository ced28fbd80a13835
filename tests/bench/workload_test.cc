#include "tests/bench/workload.h"

#include <gtest/gtest.h>

#include <set>

namespace todo::bench {
namespace {

WorkloadOptions Options(std::string_view mix, uint32_t preload = 0) {
  WorkloadOptions o;
  o.lists = 100;
  o.dates = 40;
  o.title_bytes = 24;
  o.preload = preload;
  o.mix = *ParseMix(mix);
  return o;
}

bool Same(const BenchRequest& a, const BenchRequest& b) {
  return a.op == b.op && a.list == b.list && a.date == b.date && a.title == b.title &&
         a.entry_id == b.entry_id;
}

TEST(ParseMixTest, AcceptsWeights) {
  auto mix = ParseMix("add=70,entries=30");
  ASSERT_TRUE(mix.ok());
  EXPECT_EQ(mix->total, 100u);
  EXPECT_TRUE(mix->Has(BenchOp::kAdd));
  EXPECT_FALSE(mix->Has(BenchOp::kDelete));
  EXPECT_EQ(mix->ToString(), "add=70,entries=30");
  auto all = ParseMix("delete=1,update=2,entries_all=3,entries=4,add=5");
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->ToString(), "add=5,entries=4,entries_all=3,update=2,delete=1");
  EXPECT_TRUE(ParseMix("add=1,update=0").ok());
}

TEST(ParseMixTest, RefusesMalformedMixes) {
  for (std::string_view bad : {"", "add", "add=", "add=x", "add=-1", "add=1x", "ping=1",
                               "add=1,add=2", "add=0", "add=1,", "add=2000000", "Add=1"}) {
    EXPECT_FALSE(ParseMix(bad).ok()) << bad;
  }
}

TEST(WorkloadTest, NamesDatesAndTitles) {
  Workload w(Options("add=1"));
  EXPECT_EQ(w.ListName(0), "bench-0");
  EXPECT_EQ(w.ListName(99), "bench-99");
  EXPECT_EQ(FormatDate(w.DateAt(0)), "2026-01-01");
  EXPECT_EQ(FormatDate(w.DateAt(30)), "2026-01-31");
  EXPECT_EQ(FormatDate(w.DateAt(31)), "2026-02-01");
  EXPECT_EQ(FormatDate(w.DateAt(39)), "2026-02-09");
  std::set<std::string_view> titles;
  for (uint32_t v = 0; v < Workload::kTitleOffsets; ++v) {
    EXPECT_EQ(w.Title(v).size(), 24u);
    titles.insert(w.Title(v));
  }
  EXPECT_GT(titles.size(), 60u);
}

TEST(WorkloadTest, PreloadRequestsAreAdds) {
  Workload w(Options("add=1", 5));
  BenchRequest r = w.PreloadRequest(7, 3);
  EXPECT_EQ(r.op, BenchOp::kAdd);
  EXPECT_EQ(r.list, "bench-7");
  EXPECT_EQ(r.title.size(), 24u);
}

TEST(RequestStreamTest, SameSeedSameStream) {
  Workload w(Options("add=3,entries=2,entries_all=1,update=2,delete=1", 3));
  RequestStream a(w, 42, 0), b(w, 42, 0), other_conn(w, 42, 1), other_seed(w, 43, 0);
  int differ_conn = 0, differ_seed = 0;
  for (int i = 0; i < 10000; ++i) {
    BenchRequest ra = a.Next();
    ASSERT_TRUE(Same(ra, b.Next())) << i;
    differ_conn += !Same(ra, other_conn.Next());
    differ_seed += !Same(ra, other_seed.Next());
  }
  EXPECT_GT(differ_conn, 9000);
  EXPECT_GT(differ_seed, 9000);
}

TEST(RequestStreamTest, FollowsTheMix) {
  Workload w(Options("add=70,entries=30"));
  RequestStream s(w, 1, 0);
  int adds = 0, entries = 0;
  std::set<std::string_view> lists;
  for (int i = 0; i < 100000; ++i) {
    BenchRequest r = s.Next();
    ASSERT_TRUE(r.op == BenchOp::kAdd || r.op == BenchOp::kEntries);
    adds += r.op == BenchOp::kAdd;
    entries += r.op == BenchOp::kEntries;
    lists.insert(r.list);
  }
  EXPECT_NEAR(adds / 100000.0, 0.7, 0.01);
  EXPECT_NEAR(entries / 100000.0, 0.3, 0.01);
  EXPECT_EQ(lists.size(), 100u);  // uniform over all lists
}

TEST(RequestStreamTest, EntryIdsStayWithinKnownEntries) {
  const uint32_t preload = 4;
  Workload w(Options("add=1,update=1,delete=1", preload));
  RequestStream s(w, 9, 2);
  std::vector<uint64_t> adds(100, 0);
  uint64_t max_seen = 0;
  for (int i = 0; i < 30000; ++i) {
    BenchRequest r = s.Next();
    uint32_t list = static_cast<uint32_t>(std::stoul(std::string(r.list.substr(6))));
    if (r.op == BenchOp::kAdd) {
      ++adds[list];
    } else {
      ASSERT_GE(r.entry_id, 1u);
      ASSERT_LE(r.entry_id, preload + adds[list]) << i;
      max_seen = std::max(max_seen, r.entry_id);
    }
  }
  EXPECT_GT(max_seen, uint64_t{preload});  // ids of this run's adds are used too
}

}  // namespace
}  // namespace todo::bench
