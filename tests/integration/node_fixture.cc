#include "tests/integration/node_fixture.h"

#include <filesystem>
#include <sstream>

namespace todo::testing {

void PrintTo(const WireEntry& e, std::ostream* os) {
  *os << "{id: " << e.id << ", date: \"" << e.date << "\", title: \"" << e.title << "\"}";
}

Map AddReq(const std::string& list, const std::string& date, const std::string& title) {
  return {{"op", "add_entry"}, {"list", list}, {"date", date}, {"title", title}};
}

Map EntriesReq(const std::string& list) { return {{"op", "entries"}, {"list", list}}; }

Map EntriesOnDateReq(const std::string& list, const std::string& date) {
  return {{"op", "entries"}, {"list", list}, {"date", date}};
}

Map DeleteReq(const std::string& list, uint64_t entry_id) {
  return {{"op", "delete_entry"}, {"list", list}, {"entry_id", entry_id}};
}

Map WithId(Map map, Value id) {
  map.emplace_back("id", std::move(id));
  return map;
}

Reply MustCall(Client& client, const Map& request, Millis timeout) {
  return MustCallBody(client, Pack(request), timeout);
}

Reply MustCallBody(Client& client, std::string_view body, Millis timeout) {
  auto reply = client.CallBody(body, timeout);
  if (!reply) {
    ADD_FAILURE() << "no reply within " << timeout.count() << " ms from " << client.endpoint();
    return Reply();
  }
  return *reply;
}

const msgpack::object* ExpectOk(const Reply& reply) {
  EXPECT_TRUE(reply.is_map()) << reply.ToString();
  EXPECT_EQ(AsBool(reply.Get("ok")), std::optional<bool>(true)) << reply.ToString();
  EXPECT_NE(reply.result(), nullptr) << "no result: " << reply.ToString();
  return reply.ok() ? reply.result() : nullptr;
}

void ExpectError(const Reply& reply, const std::string& code) {
  EXPECT_TRUE(reply.is_map()) << reply.ToString();
  EXPECT_EQ(AsBool(reply.Get("ok")), std::optional<bool>(false)) << reply.ToString();
  EXPECT_EQ(reply.error_code(), code) << reply.ToString();
  auto message = AsStr(MapGet(reply.Get("error"), "message"));
  EXPECT_TRUE(message.has_value()) << "error.message is not a str: " << reply.ToString();
  if (code == "bad_request") {
    EXPECT_FALSE(message.value_or("").empty()) << "empty message: " << reply.ToString();
  }
}

std::optional<WireEntry> ParseEntry(const msgpack::object* o) {
  auto id = AsUint(MapGet(o, "id"));
  auto date = AsStr(MapGet(o, "date"));
  auto title = AsStr(MapGet(o, "title"));
  if (!id || !date || !title) {
    ADD_FAILURE() << "malformed entry: " << ToString(o);
    return std::nullopt;
  }
  return WireEntry{*id, *date, *title};
}

uint64_t AddOk(Client& client, const std::string& list, const std::string& date,
               const std::string& title) {
  Reply reply = MustCall(client, AddReq(list, date, title));
  const msgpack::object* result = ExpectOk(reply);
  auto id = AsUint(MapGet(result, "id"));
  EXPECT_TRUE(id.has_value()) << "add_entry result has no uint id: " << reply.ToString();
  return id.value_or(0);
}

std::vector<WireEntry> EntriesOk(Client& client, const std::string& list,
                                 const std::optional<std::string>& date) {
  Reply reply = MustCall(client, date ? EntriesOnDateReq(list, *date) : EntriesReq(list));
  const msgpack::object* result = ExpectOk(reply);
  if (result == nullptr) return {};
  EXPECT_EQ(result->type, msgpack::type::ARRAY) << reply.ToString();
  std::vector<WireEntry> out;
  for (const msgpack::object* o : AsArray(result)) {
    if (auto e = ParseEntry(o)) out.push_back(*e);
  }
  return out;
}

std::vector<Reply> Collect(Client& client, size_t count, Millis overall) {
  const auto deadline = std::chrono::steady_clock::now() + overall;
  std::vector<Reply> out;
  out.reserve(count);
  while (out.size() < count) {
    auto left = std::chrono::duration_cast<Millis>(deadline - std::chrono::steady_clock::now());
    if (left <= Millis(0)) break;
    auto reply = client.Recv(left);
    if (!reply) break;
    out.push_back(std::move(*reply));
  }
  return out;
}

void NodeTest::SetUp() {
  ASSERT_FALSE(NodeBinary().empty()) << "built without a todo-node target";
  endpoint_ = FreeLoopbackEndpoint();
  data_ = tmp_.Sub("data");
  std::filesystem::create_directories(data_);
}

void NodeTest::TearDown() {
  if (HasFailure()) std::cerr << DumpLogs();
  processes_.StopAll(kStopTimeout);
}

Process* NodeTest::Launch(const std::vector<std::string>& args) {
  const int n = ++launches_;
  Process* p = processes_.Start(NodeBinary(), args, tmp_.Sub("proc-" + std::to_string(n) + ".out"),
                                tmp_.Sub("proc-" + std::to_string(n) + ".err"));
  EXPECT_NE(p, nullptr) << "could not start " << NodeBinary();
  return p;
}

Process* NodeTest::StartNode(const std::vector<std::string>& extra, const std::string& name) {
  Process* p = Launch(NodeArgs(name, endpoint_, data_, extra));
  if (p == nullptr) return nullptr;
  if (!WaitUntilReady(endpoint_, kStartTimeout, p)) {
    ADD_FAILURE() << "node did not answer ping within " << kStartTimeout.count() << " ms"
                  << (p->Running() ? "" : " (exited: " + p->exit_status()->ToString() + ")");
    return nullptr;
  }
  return p;
}

void NodeTest::StopNodeCleanly(Process* node) {
  ASSERT_NE(node, nullptr);
  ExitStatus st = node->Stop(kStopTimeout);
  EXPECT_TRUE(st.exited() && st.code() == 0) << "SIGTERM ended the node with " << st.ToString();
}

std::string NodeTest::DumpLogs() const {
  std::ostringstream ss;
  for (int n = 1; n <= launches_; ++n) {
    for (const char* ext : {".out", ".err"}) {
      std::string path = tmp_.Sub("proc-" + std::to_string(n) + ext);
      std::string text = ReadFile(path);
      if (text.empty()) continue;
      if (text.size() > 6000) text = "...\n" + text.substr(text.size() - 6000);
      ss << "----- " << path << " -----\n" << text << "\n";
    }
  }
  return ss.str();
}

}  // namespace todo::testing
