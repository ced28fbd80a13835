// todo-node on a disk that fills up: a small tmpfs holds the data dir and a
// filler file. Adds are pipelined until the node answers `internal`; reads
// still answer and the other lists are intact; then the filler file is
// deleted and writes must be acknowledged again, with every acknowledged
// entry (and none of the refused ones) in the list.
//
// Needs root (mount(2) of a tmpfs); skipped with the reason otherwise. The
// node is killed by pid and the tmpfs unmounted on every path.
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/harness.h"
#include "tests/integration/node_fixture.h"

namespace todo::testing {
namespace {

namespace fs = std::filesystem;

constexpr char kTmpfsSize[] = "size=12m";
constexpr size_t kFillerBytes = 6 << 20;  // leaves ~6 MiB: less than a full memtable's log + table
constexpr size_t kWindow = 64;            // adds in flight while filling
constexpr Millis kFillTimeout(60000);     // bounds the whole fill
constexpr Millis kRefusingFor(2500);      // "full": only `internal` for this long
constexpr Millis kRecoverTimeout(30000);

// A tmpfs mounted for one test. The destructor kills `node` (if set) first,
// so the mount is never busy, then unmounts.
class TmpfsMount {
 public:
  explicit TmpfsMount(std::string path) : path_(std::move(path)) {
    fs::create_directories(path_);
    if (geteuid() != 0) {
      error_ = "not running as root";
    } else if (mount("tmpfs", path_.c_str(), "tmpfs", 0, kTmpfsSize) != 0) {
      error_ = std::string("mount -t tmpfs failed: ") + strerror(errno);
    } else {
      mounted_ = true;
    }
  }
  ~TmpfsMount() {
    if (node != nullptr && node->Running()) node->Kill9();
    if (mounted_ && umount2(path_.c_str(), 0) != 0) umount2(path_.c_str(), MNT_DETACH);
  }
  bool mounted() const { return mounted_; }
  const std::string& error() const { return error_; }
  const std::string& path() const { return path_; }
  Process* node = nullptr;

 private:
  std::string path_;
  std::string error_;
  bool mounted_ = false;
};

// A title that snappy can't shrink much, so the data really takes space.
std::string RandomTitle(std::mt19937_64& rng) {
  static constexpr char kChars[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  std::string s(1000, ' ');
  for (char& c : s) c = kChars[rng() % (sizeof kChars - 1)];
  return s;
}

using NodeFullDiskTest = NodeTest;

TEST_F(NodeFullDiskTest, FullDiskAnswersInternalKeepsReadingAndRecoversWhenSpaceIsFreed) {
  TmpfsMount mnt(tmp_.Sub("tmpfs"));
  if (!mnt.mounted()) GTEST_SKIP() << "needs a small tmpfs for the data dir: " << mnt.error();
  const std::string filler = mnt.path() + "/filler";
  {
    std::ofstream f(filler, std::ios::binary);
    std::string chunk(1 << 20, 'f');
    for (size_t n = 0; n < kFillerBytes; n += chunk.size()) f.write(chunk.data(), chunk.size());
    ASSERT_TRUE(f.good()) << "could not write the filler file";
  }
  data_ = mnt.path() + "/data";
  // Four shards, so lists on the other three stay readable while one is full.
  mnt.node = StartNode({"--shards", "4"});
  ASSERT_NE(mnt.node, nullptr);
  Client c(endpoint_);

  // Lists spread over the shards, written while there is room.
  std::map<std::string, std::vector<WireEntry>> kept;
  for (int i = 0; i < 12; ++i) {
    const std::string list = "keep-" + std::to_string(i);
    for (int j = 1; j <= 3; ++j) {
      std::string title = list + " entry " + std::to_string(j);
      ASSERT_EQ(AddOk(c, list, "2026-05-01", title), static_cast<uint64_t>(j));
      kept[list].push_back(WireEntry{static_cast<uint64_t>(j), "2026-05-01", title});
    }
  }

  // Fill the disk through one list until the node has answered nothing but
  // `internal` for a while (after the first failures LevelDB frees its
  // partial files and the shard may come back a few times before the disk
  // is really full).
  std::mt19937_64 rng(42);
  std::set<uint64_t> acked;  // filler entries acknowledged
  std::string first_error;
  uint64_t sent = 0;
  const auto fill_deadline = std::chrono::steady_clock::now() + kFillTimeout;
  // Since when every add was refused (a bool and a time point, not an
  // optional: GCC 12 warns falsely about reading an optional time point).
  bool refusing = false;
  std::chrono::steady_clock::time_point refusing_since{};
  while (std::chrono::steady_clock::now() < fill_deadline) {
    for (size_t i = 0; i < kWindow; ++i) {
      ASSERT_TRUE(c.Send(WithId(AddReq("fill", "2030-01-01", RandomTitle(rng)), ++sent)));
    }
    std::vector<Reply> replies = Collect(c, kWindow, kCallTimeout);
    ASSERT_EQ(replies.size(), kWindow) << "replies missing while filling";
    size_t refused = 0;
    for (const Reply& r : replies) {
      if (r.ok()) {
        auto id = AsUint(MapGet(r.result(), "id"));
        ASSERT_TRUE(id.has_value()) << r.ToString();
        acked.insert(*id);
      } else {
        ASSERT_EQ(r.error_code(), "internal") << r.ToString();
        if (first_error.empty()) first_error = r.error_message();
        ++refused;
      }
    }
    if (refused < kWindow) {
      refusing = false;
      continue;
    }
    auto now = std::chrono::steady_clock::now();
    if (!refusing) {
      refusing = true;
      refusing_since = now;
    }
    if (now - refusing_since >= kRefusingFor) break;
    std::this_thread::sleep_for(Millis(100));  // pacing while refused, not synchronization
  }
  ASSERT_TRUE(refusing) << "the disk never stayed full within " << kFillTimeout.count() << " ms ("
                        << sent << " adds, " << acked.size()
                        << " acknowledged, first error: " << first_error << ")";
  ASSERT_FALSE(first_error.empty()) << "the disk never filled after " << sent << " adds";
  EXPECT_NE(first_error.find("storage failure"), std::string::npos) << first_error;
  EXPECT_NE(first_error.find("not applied"), std::string::npos) << first_error;
  ASSERT_FALSE(acked.empty());

  // Full: every request still gets an answer. Lists on the full shard may
  // read as `internal` while it is being reopened; the others must read
  // exactly what was written.
  size_t read_ok = 0;
  for (const auto& [list, want] : kept) {
    Reply r = MustCall(c, EntriesReq(list));
    if (r.ok()) {
      ++read_ok;
      std::vector<WireEntry> got;
      for (const msgpack::object* o : AsArray(r.result())) {
        if (auto e = ParseEntry(o)) got.push_back(*e);
      }
      EXPECT_EQ(got, want) << list;
    } else {
      EXPECT_EQ(r.error_code(), "internal") << r.ToString();
    }
  }
  EXPECT_GT(read_ok, 0u) << "no list could be read while the disk was full";
  // (An add may be acknowledged if a reopen found just enough room.)
  Reply more = MustCall(c, AddReq("fill", "2030-01-01", "while full"));
  if (more.ok()) {
    acked.insert(AsUint(MapGet(more.result(), "id")).value_or(0));
  } else {
    EXPECT_EQ(more.error_code(), "internal") << more.ToString();
  }
  Reply fill_read = MustCall(c, EntriesOnDateReq("fill", "2031-01-01"));
  EXPECT_TRUE(fill_read.ok() || fill_read.error_code() == "internal") << fill_read.ToString();

  // Space freed: within a bounded wait, adds are acknowledged again.
  ASSERT_TRUE(fs::remove(filler));
  const auto deadline = std::chrono::steady_clock::now() + kRecoverTimeout;
  uint64_t new_id = 0;
  std::string last;
  while (new_id == 0 && std::chrono::steady_clock::now() < deadline) {
    Reply r = MustCall(c, AddReq("fill", "2030-01-02", "after the disk recovered"));
    if (r.ok()) {
      new_id = AsUint(MapGet(r.result(), "id")).value_or(0);
    } else {
      last = r.ToString();
      std::this_thread::sleep_for(Millis(50));  // poll interval, not synchronization
    }
  }
  ASSERT_NE(new_id, 0u) << "writes not acknowledged " << kRecoverTimeout.count()
                        << " ms after space was freed; last reply: " << last;
  EXPECT_GT(new_id, *acked.rbegin()) << "an acknowledged id was reused";

  // Exactly the acknowledged entries, and the kept lists, are there.
  std::vector<WireEntry> fill = EntriesOk(c, "fill");
  std::set<uint64_t> ids;
  for (const WireEntry& e : fill) ids.insert(e.id);
  std::set<uint64_t> want = acked;
  want.insert(new_id);
  EXPECT_EQ(ids.size(), fill.size()) << "duplicate ids";
  EXPECT_TRUE(ids == want) << "stored " << ids.size() << " entries, acknowledged " << want.size();
  for (const auto& [list, entries] : kept) EXPECT_EQ(EntriesOk(c, list), entries) << list;
  for (int i = 0; i < 12; ++i) {
    EXPECT_EQ(AddOk(c, "keep-" + std::to_string(i), "2026-05-02", "after"), 4u);
  }
  StopNodeCleanly(mnt.node);
}

}  // namespace
}  // namespace todo::testing
