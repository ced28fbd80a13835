// todo-node, black box: a damaged data dir never answers wrong and never
// gives an id out again without a word, and a node never shares or steals
// an address. Each case damages the files of a stopped node as a disk or an
// operator would (a flipped byte, an edited title, a deleted CURRENT or
// shard dir, an edited MANIFEST, a truncated log), then starts it: it
// refuses to start (exit 1, one log line naming the path), or answers
// `internal` for the damaged list and logs it at error level; never a
// wrong `ok`.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/harness.h"
#include "tests/integration/node_fixture.h"

namespace todo::testing {
namespace {

namespace fs = std::filesystem;

using NodeIntegrityTest = NodeTest;

constexpr uint64_t kEntries = 2000;

std::string Title(uint64_t id) { return "entry-" + std::to_string(id) + "-title"; }

std::vector<std::string> Files(const std::string& dir, std::string_view suffix) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().string().ends_with(suffix)) out.push_back(e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), {});
}

void Spit(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

// Lines of `text` that contain `needle`.
std::vector<std::string> LinesWith(const std::string& text, std::string_view needle) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    std::string line = text.substr(pos, nl - pos);
    if (line.find(needle) != std::string::npos) out.push_back(line);
    pos = nl + 1;
  }
  return out;
}

class Integrity : public NodeIntegrityTest {
 protected:
  std::string Shard(int i = 0) const {
    char buf[32];
    snprintf(buf, sizeof buf, "/shard-%03d", i);
    return data_ + buf;
  }

  // A one-shard node with "big" holding entries 1..kEntries and "small" 1..3,
  // stopped; with `into_table`, started and stopped once more, so that the
  // entries sit in a table file (LevelDB writes the log into one on open).
  void Populate(bool into_table) {
    Process* node = StartNode({"--shards", "1"});
    ASSERT_NE(node, nullptr);
    {
      Client c(endpoint_);
      for (uint64_t i = 1; i <= kEntries; ++i) {
        ASSERT_TRUE(c.Send(WithId(AddReq("big", "2026-05-01", Title(i)), i)));
      }
      std::vector<Reply> replies = Collect(c, kEntries, Millis(120000));
      ASSERT_EQ(replies.size(), kEntries);
      for (const Reply& r : replies) ASSERT_TRUE(r.ok()) << r.ToString();
      for (int i = 1; i <= 3; ++i) ASSERT_EQ(AddOk(c, "small", "2026-05-02", "s"), uint64_t(i));
    }
    StopNodeCleanly(node);
    if (into_table) {
      StopNodeCleanly(StartNode());
      ASSERT_EQ(Files(Shard(), ".ldb").size(), 1u);
    }
  }

  // Starts the node on the damaged dir and expects it to refuse: exit 1
  // and one error line naming `path` and `why`.
  void ExpectRefusal(const std::string& path, const std::string& why) {
    Process* p = Launch(NodeArgs("n1", endpoint_, data_));
    ASSERT_NE(p, nullptr);
    auto st = p->WaitExit(Millis(30000));
    ASSERT_TRUE(st.has_value()) << "a node started on a damaged data dir";
    EXPECT_TRUE(st->exited() && st->code() == 1) << st->ToString();
    const std::string err = p->ReadStderr();
    std::vector<std::string> errors = LinesWith(err, " error ");
    ASSERT_EQ(errors.size(), 1u) << err;
    EXPECT_NE(errors[0].find(path), std::string::npos) << errors[0];
    EXPECT_NE(errors[0].find(why), std::string::npos) << errors[0];
  }

  // The damaged list's reads answer internal naming the shard; an add is
  // refused or takes an id never given out; "small" is served as before.
  void ExpectDamagedListRefused(Process* node) {
    Client c(endpoint_);
    for (int i = 0; i < 3; ++i) {
      Reply r = MustCall(c, EntriesReq("big"));
      ASSERT_FALSE(r.ok()) << "a damaged list was served: " << r.ToString().substr(0, 300);
      ExpectError(r, "internal");
      EXPECT_NE(r.error_message().find("shard 0"), std::string::npos) << r.error_message();
      EXPECT_NE(r.error_message().find("checksum mismatch"), std::string::npos)
          << r.error_message();
    }
    Reply add = MustCall(c, AddReq("big", "2026-05-03", "after"));
    if (add.ok()) {
      EXPECT_EQ(AsUint(MapGet(add.result(), "id")), std::optional<uint64_t>(kEntries + 1))
          << add.ToString();
    } else {
      ExpectError(add, "internal");
    }
    EXPECT_EQ(EntriesOk(c, "small").size(), 3u);
    EXPECT_EQ(AddOk(c, "small", "2026-05-03", "more"), 4u);
    // Logged loudly: the read failure, then the damaged file.
    const std::string table = Files(Shard(), ".ldb").at(0);
    EXPECT_TRUE(WaitForFileContent(node->stderr_path(), "DAMAGED table " + table, Millis(20000)))
        << node->ReadStderr();
    EXPECT_FALSE(LinesWith(node->ReadStderr(), "storage corruption in shard 0").empty())
        << node->ReadStderr();
    // From then on the reply names the file too.
    Reply r = MustCall(c, EntriesReq("big"));
    EXPECT_NE(r.error_message().find("damaged table(s): " + table), std::string::npos)
        << r.error_message();
    // And the node counts them (stats, and /metrics).
    Reply stats = MustCall(c, {{"op", "stats"}});
    std::vector<const msgpack::object*> shards = AsArray(MapGet(stats.result(), "shards"));
    ASSERT_EQ(shards.size(), 1u) << stats.ToString();
    EXPECT_GE(AsUint(MapGet(shards[0], "read_failures")).value_or(0), 4u) << stats.ToString();
  }
};

TEST_F(Integrity, FlippedByteInATableAnswersInternalNeverWrongEntries) {
  Populate(true);
  const std::string table = Files(Shard(), ".ldb").at(0);
  std::string bytes = Slurp(table);
  const size_t at = bytes.find(Title(1000));
  ASSERT_NE(at, std::string::npos);
  bytes[at + 2] ^= 0x04;
  Spit(table, bytes);
  Process* node = StartNode();
  ASSERT_NE(node, nullptr);
  ExpectDamagedListRefused(node);
}

TEST_F(Integrity, EditedTitleInATableIsNeverServed) {
  Populate(true);
  const std::string table = Files(Shard(), ".ldb").at(0);
  std::string bytes = Slurp(table);
  const size_t at = bytes.find(Title(1500));
  ASSERT_NE(at, std::string::npos);
  bytes.replace(at, 5, "EDITS");
  Spit(table, bytes);
  Process* node = StartNode();
  ASSERT_NE(node, nullptr);
  ExpectDamagedListRefused(node);
}

TEST_F(Integrity, DeletedCurrentRefusesToStartAndKeepsTheTables) {
  Populate(true);
  const std::string table = Files(Shard(), ".ldb").at(0);
  fs::remove(Shard() + "/CURRENT");
  ExpectRefusal(Shard(), "has no CURRENT file");
  EXPECT_TRUE(fs::exists(table)) << "the shard's tables were deleted";
}

TEST_F(Integrity, DeletedShardDirRefusesToStartInsteadOfReusingIds) {
  Populate(false);
  fs::remove_all(Shard());
  ExpectRefusal(Shard(), "is missing");
  EXPECT_FALSE(fs::exists(Shard())) << "the shard was created again, empty";
}

TEST_F(Integrity, EditedManifestRefusesToStart) {
  Populate(false);
  const std::string manifest = data_ + "/MANIFEST";
  Spit(manifest, "todo-node data directory\nformat 1\nshards 2\n");
  ExpectRefusal(Shard(1), "is missing");
  EXPECT_FALSE(fs::exists(Shard(1)));
  Spit(manifest, "todo-node data directory\nformat 1\nshards 1\nshards 3\n");
  ExpectRefusal(manifest, "'shards' given twice");
  // Put back, the dir is whole.
  Spit(manifest, "todo-node data directory\nformat 1\nshards 1\n");
  ASSERT_NE(StartNode(), nullptr);
  Client c(endpoint_);
  EXPECT_EQ(EntriesOk(c, "big").size(), kEntries);
  EXPECT_EQ(AddOk(c, "big", "2026-05-03", "after"), kEntries + 1);
}

TEST_F(Integrity, TruncatedLogRefusesToStartInsteadOfReusingIds) {
  // Acknowledged adds, a second's pause (the node records its last commit
  // at most once a second), one more add and its recording, then kill -9:
  // everything lives in the log only.
  Process* node = StartNode({"--shards", "1"});
  ASSERT_NE(node, nullptr);
  {
    Client c(endpoint_);
    for (uint64_t i = 1; i <= 100; ++i) ASSERT_EQ(AddOk(c, "l", "2026-05-01", Title(i)), i);
    std::this_thread::sleep_for(std::chrono::milliseconds(1200));
    ASSERT_EQ(AddOk(c, "l", "2026-05-01", Title(101)), 101u);
  }
  // Recorded just after its reply went out.
  ASSERT_TRUE(
      WaitForFileContent(Shard() + "/COMMITTED", "todo-node committed 101\n", Millis(10000)))
      << ReadFile(Shard() + "/COMMITTED");
  node->Kill9();
  auto logs = Files(Shard(), ".log");
  ASSERT_EQ(logs.size(), 1u);
  const std::string bytes = Slurp(logs[0]);
  // Half of what was written: the log is a pre-zeroed file (log_env.h),
  // its records first.
  const size_t written = bytes.find_last_not_of('\0') + 1;
  ASSERT_GT(written, 0u);
  Spit(logs[0], bytes.substr(0, written / 2));
  ExpectRefusal(Shard(), "lost acknowledged writes");
  // And again: the refusal doesn't go away once LevelDB replayed the rest.
  ExpectRefusal(Shard(), "lost acknowledged writes");
}

// --- Addresses ---

TEST_F(Integrity, TcpPortInUseIsRefused) {
  ASSERT_NE(StartNode(), nullptr);
  Process* p = Launch(NodeArgs("n2", endpoint_, tmp_.Sub("data2")));
  ASSERT_NE(p, nullptr);
  auto st = p->WaitExit(Millis(30000));
  ASSERT_TRUE(st.has_value()) << "a second node bound the same port";
  EXPECT_TRUE(st->exited() && st->code() == 1) << st->ToString();
  EXPECT_NE(p->ReadStderr().find("Address already in use"), std::string::npos) << p->ReadStderr();
}

TEST_F(Integrity, IpcPathOfALiveNodeIsRefusedAStaleOneReused) {
  endpoint_ = "ipc://" + tmp_.Sub("node.sock");
  ASSERT_NE(StartNode(), nullptr);
  Process* p = Launch(NodeArgs("n2", endpoint_, tmp_.Sub("data2")));
  ASSERT_NE(p, nullptr);
  auto st = p->WaitExit(Millis(30000));
  ASSERT_TRUE(st.has_value()) << "a second node took over a live ipc:// path";
  EXPECT_TRUE(st->exited() && st->code() == 1) << st->ToString();
  EXPECT_NE(p->ReadStderr().find("another process is listening on " + tmp_.Sub("node.sock")),
            std::string::npos)
      << p->ReadStderr();
  {
    Client c(endpoint_);  // the first node still has its path
    Reply r = MustCall(c, {{"op", "ping"}});
    EXPECT_EQ(AsStr(MapGet(ExpectOk(r), "name")), std::optional<std::string>("n1"));
  }
  // A socket file nobody listens on (a node killed by -9 leaves one) is
  // taken over as before.
  processes_.StopAll(kStopTimeout);
  const std::string stale = tmp_.Sub("stale.sock");
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", stale.c_str());
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  close(fd);  // bound, never listened: the file stays
  ASSERT_TRUE(fs::exists(stale));
  endpoint_ = "ipc://" + stale;
  ASSERT_NE(StartNode({}, "n3"), nullptr);
}

TEST_F(Integrity, MetricsPortInUseIsRefused) {
  const int port = FreeTcpPort();
  const std::string metrics = "127.0.0.1:" + std::to_string(port);
  ASSERT_NE(StartNode({"--metrics", metrics}), nullptr);
  Process* p =
      Launch(NodeArgs("n2", FreeLoopbackEndpoint(), tmp_.Sub("data2"), {"--metrics", metrics}));
  ASSERT_NE(p, nullptr);
  auto st = p->WaitExit(Millis(30000));
  ASSERT_TRUE(st.has_value()) << "a second node shares the --metrics port";
  EXPECT_TRUE(st->exited() && st->code() == 1) << st->ToString();
  EXPECT_NE(p->ReadStderr().find("cannot bind --metrics on " + metrics), std::string::npos)
      << p->ReadStderr();
}

TEST_F(Integrity, OutOfRangePortsAreUsageErrors) {
  for (const std::vector<std::string>& args :
       {NodeArgs("n1", "tcp://127.0.0.1:99999", data_),
        NodeArgs("n1", "tcp://127.0.0.1:65536", data_), NodeArgs("n1", "tcp://127.0.0.1", data_),
        NodeArgs("n1", endpoint_, data_, {"--metrics", "127.0.0.1:70000"})}) {
    Process* p = Launch(args);
    ASSERT_NE(p, nullptr);
    auto st = p->WaitExit(Millis(10000));
    ASSERT_TRUE(st.has_value());
    EXPECT_TRUE(st->exited() && st->code() == 2) << st->ToString() << ": " << p->ReadStderr();
    EXPECT_NE(p->ReadStderr().find("todo-node: error: --"), std::string::npos) << p->ReadStderr();
  }
}

}  // namespace
}  // namespace todo::testing
