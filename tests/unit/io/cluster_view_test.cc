// ClusterView (common/io/cluster_view.h): GetVersioned pairs a snapshot with
// the version that published it, also while another thread publishes. The
// cluster agent decides on a snapshot and remembers its version; a pair
// with a newer version than its snapshot made it skip the newer snapshot
// for good (a controller that sat on a "caught up" report for 60 s).
#include "common/io/cluster_view.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <thread>

namespace todo::io {
namespace {

// The k-th Set publishes a snapshot whose `revision` is k: its version.
std::shared_ptr<const ClusterSnapshot> Numbered(int64_t k) {
  auto s = std::make_shared<ClusterSnapshot>();
  s->revision = k;
  return s;
}

TEST(ClusterViewTest, GetVersionedStartsAtZeroWithAnEmptySnapshot) {
  ClusterView view;
  auto [snap, version] = view.GetVersioned();
  ASSERT_NE(snap, nullptr);
  EXPECT_EQ(version, 0u);
  EXPECT_EQ(snap->map, nullptr);
}

TEST(ClusterViewTest, EverySetRaisesTheVersionOnce) {
  ClusterView view;
  for (int64_t k = 1; k <= 3; ++k) {
    view.Set(Numbered(k));
    auto [snap, version] = view.GetVersioned();
    EXPECT_EQ(version, static_cast<uint64_t>(k));
    EXPECT_EQ(snap->revision, k);
    EXPECT_EQ(view.version(), static_cast<uint64_t>(k));
  }
}

// Publishes kSets numbered snapshots from another thread while `read` runs
// over and over on this one (at most 30 s); returns how many reads it made.
constexpr int64_t kSets = 20000;
template <typename Read>
uint64_t ReadWhilePublishing(ClusterView& view, Read read) {
  std::atomic<bool> done{false};
  std::thread writer([&] {
    for (int64_t k = 1; k <= kSets; ++k) view.Set(Numbered(k));
    done.store(true);
  });
  uint64_t reads = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!done.load() && std::chrono::steady_clock::now() < deadline) {
    read();
    ++reads;
  }
  writer.join();
  return reads;
}

TEST(ClusterViewTest, GetVersionedNeverPairsASnapshotWithAnotherVersion) {
  ClusterView view;
  uint64_t mismatches = 0;
  uint64_t last = 0;
  const uint64_t reads = ReadWhilePublishing(view, [&] {
    auto [snap, version] = view.GetVersioned();
    if (static_cast<uint64_t>(snap->revision) != version) ++mismatches;
    EXPECT_GE(version, last);  // versions never go back
    last = version;
  });
  EXPECT_EQ(mismatches, 0u) << "of " << reads << " reads";
  auto [snap, version] = view.GetVersioned();
  EXPECT_EQ(version, static_cast<uint64_t>(kSets));
  EXPECT_EQ(snap->revision, kSets);
}

// What the router does (version first, then Get): the snapshot it gets is
// never older than the version it read, so a change is seen, maybe twice,
// never missed.
TEST(ClusterViewTest, VersionReadBeforeGetIsNeverNewerThanTheSnapshot) {
  ClusterView view;
  uint64_t newer = 0;
  const uint64_t reads = ReadWhilePublishing(view, [&] {
    const uint64_t version = view.version();
    auto snap = view.Get();
    if (version > static_cast<uint64_t>(snap->revision)) ++newer;
  });
  EXPECT_EQ(newer, 0u) << "of " << reads << " reads";
}

}  // namespace
}  // namespace todo::io
