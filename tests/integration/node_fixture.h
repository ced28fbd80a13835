// Shared fixture and helpers for the todo-node integration tests: one node per
// test on a free loopback port with its own temp data dir, started and
// stopped by pid, its logs printed when the test fails.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "tests/integration/harness.h"

namespace todo::testing {

// Bounds used by the node tests. Generous: the machine is shared with builds.
constexpr Millis kStartTimeout(30000);
constexpr Millis kCallTimeout(10000);
constexpr Millis kStopTimeout(30000);

// An entry as the protocol returns it (extra keys ignored).
struct WireEntry {
  uint64_t id = 0;
  std::string date;
  std::string title;
  bool operator==(const WireEntry&) const = default;
};
void PrintTo(const WireEntry& e, std::ostream* os);

// Request builders.
Map AddReq(const std::string& list, const std::string& date, const std::string& title);
Map EntriesReq(const std::string& list);
Map EntriesOnDateReq(const std::string& list, const std::string& date);
Map DeleteReq(const std::string& list, uint64_t entry_id);
// `map` with {"id": id} appended.
Map WithId(Map map, Value id);

// Send + receive; a missing reply is a test failure and yields an empty Reply.
Reply MustCall(Client& client, const Map& request, Millis timeout = kCallTimeout);
Reply MustCallBody(Client& client, std::string_view body, Millis timeout = kCallTimeout);

// Expects {"ok": true, "result": ...}; returns the result (nullptr on failure).
const msgpack::object* ExpectOk(const Reply& reply);
// Expects {"ok": false, "error": {"code": code, "message": str}}, with a
// non-empty message for bad_request.
void ExpectError(const Reply& reply, const std::string& code);

// A whole entry map -> WireEntry; a malformed entry is a failure.
std::optional<WireEntry> ParseEntry(const msgpack::object* o);
// add_entry; returns the new id (0 on failure).
uint64_t AddOk(Client& client, const std::string& list, const std::string& date,
               const std::string& title);
// entries (optionally on one date); a failure yields {}.
std::vector<WireEntry> EntriesOk(Client& client, const std::string& list,
                                 const std::optional<std::string>& date = std::nullopt);

// Receives up to `count` messages, giving up after `overall`.
std::vector<Reply> Collect(Client& client, size_t count, Millis overall);

// One node per test; the data dir exists, the node is not started.
class NodeTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;

  // Starts todo-node --name name --listen endpoint_ --data data_ + extra and
  // waits until it answers ping. nullptr (and a failure) if it doesn't.
  Process* StartNode(const std::vector<std::string>& extra = {}, const std::string& name = "n1");
  // Starts a process without waiting for readiness; stderr to its own file.
  Process* Launch(const std::vector<std::string>& args);
  // SIGTERM and expect a clean exit 0.
  void StopNodeCleanly(Process* node);
  // Log files of every process this test started, for failure output.
  std::string DumpLogs() const;

  TempDir tmp_;
  std::string endpoint_;
  std::string data_;
  ProcessGroup processes_;
  int launches_ = 0;
};

}  // namespace todo::testing
