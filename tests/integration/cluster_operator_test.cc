// The operator's page and its JSON (router/operator_view.h) on a real
// static-mode cluster (3 nodes and a router with --http): the page and its
// files are served from the binary, /api/cluster has its documented keys
// and types, shows a node killed with SIGKILL as down and back up after
// its restart, /api/list answers the owner and the entry count (and, for a
// dead owner, the owner with the entries' error), and bad query parameters
// get 400 with a JSON message. The replicated mode's page is tested in a
// browser by tests/web/. Runs under the sanitizers with the other
// integration tests.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "tests/integration/cluster_fixture.h"

namespace todo::testing {
namespace {

using json = nlohmann::json;
using ClusterOperatorTest = ClusterTest;

struct Answer {
  int status = 0;  // 0: no answer
  std::string headers;
  std::string body;
};

// One request on its own connection (Connection: close), read to EOF;
// every wait bounded by 10 s.
Answer Http(int port, const std::string& method, const std::string& target,
            const std::string& body = "") {
  Answer a;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return a;
  }
  std::string req = method + " " + target + " HTTP/1.1\r\nHost: t\r\nConnection: close\r\n";
  if (!body.empty()) req += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  req += "\r\n" + body;
  (void)!send(fd, req.data(), req.size(), MSG_NOSIGNAL);
  std::string in;
  char buf[16384];
  for (;;) {
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    in.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  size_t end = in.find("\r\n\r\n");
  if (in.rfind("HTTP/1.1 ", 0) != 0 || end == std::string::npos) return a;
  a.status = std::stoi(in.substr(9, 3));
  a.headers = in.substr(0, end);
  a.body = in.substr(end + 4);
  return a;
}

json Json(const Answer& a) { return json::parse(a.body, nullptr, /*allow_exceptions=*/false); }

// The node named `name` in /api/cluster's "nodes" (null if absent).
json NodeIn(const json& cluster, const std::string& name) {
  for (const json& n : cluster["nodes"]) {
    if (n["name"] == name) return n;
  }
  return nullptr;
}

// Polls /api/cluster until node `name` has status `status`, up to `limit`.
bool WaitStatus(int port, const std::string& name, const std::string& status,
                std::chrono::milliseconds limit) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    json j = Json(Http(port, "GET", "/api/cluster"));
    if (j.is_object() && NodeIn(j, name).is_object() && NodeIn(j, name)["status"] == status) {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

void ExpectJsonError(const Answer& a, int status, const std::string& code) {
  EXPECT_EQ(a.status, status) << a.body;
  json j = Json(a);
  ASSERT_TRUE(j.is_object()) << a.body;
  EXPECT_EQ(j["error"]["code"], code) << a.body;
  EXPECT_TRUE(j["error"]["message"].is_string() && !j["error"]["message"].empty()) << a.body;
}

TEST_F(ClusterOperatorTest, PageJsonNodeDownAndUpListLookupAndBadParameters) {
  const int port = FreeTcpPort();
  ASSERT_GE(cluster_->StartRouterToAll({"--http", "127.0.0.1:" + std::to_string(port),
                                        "--heartbeat-ms", "200", "--down-after-ms", "1000"}),
            0);

  // The page and its files, from the binary.
  Answer page = Http(port, "GET", "/");
  ASSERT_EQ(page.status, 200);
  EXPECT_NE(page.headers.find("Content-Type: text/html"), std::string::npos) << page.headers;
  EXPECT_NE(page.headers.find("Content-Security-Policy: default-src 'self'"), std::string::npos);
  EXPECT_NE(page.body.find("/ui/app.js"), std::string::npos);
  for (const char* f : {"/ui/app.js", "/ui/style.css", "/ui/favicon.svg"}) {
    Answer a = Http(port, "GET", f);
    EXPECT_EQ(a.status, 200) << f;
    EXPECT_GT(a.body.size(), 100u) << f;
  }
  EXPECT_EQ(Http(port, "GET", "/ui/nosuch.js").status, 404);
  EXPECT_EQ(Http(port, "POST", "/api/cluster", "x").status, 405);

  // Three entries in a list, through the HTTP API.
  const std::string list = TestListPrefix() + "-bob";
  for (int i = 0; i < 3; ++i) {
    Answer a = Http(port, "POST", "/lists/" + list + "/entries",
                    R"({"date":"2026-12-19","title":"t)" + std::to_string(i) + "\"}");
    ASSERT_EQ(a.status, 201) << a.body;
  }
  const std::string owner = ExpectedOwner(cluster_->node_names(), list);
  Answer lookup = Http(port, "GET", "/api/list?name=" + list);
  ASSERT_EQ(lookup.status, 200) << lookup.body;
  json l = Json(lookup);
  EXPECT_EQ(l["list"], list);
  EXPECT_EQ(l["node"], owner);
  EXPECT_EQ(l["replicas"], json::array({owner}));
  EXPECT_TRUE(l["partition"].is_null());
  EXPECT_EQ(l["entries"], 3);
  EXPECT_TRUE(l["entries_error"].is_null());

  // The document's shape in static mode.
  json c = Json(Http(port, "GET", "/api/cluster"));
  ASSERT_TRUE(c.is_object());
  EXPECT_EQ(c["api"], 1);
  EXPECT_EQ(c["router"]["mode"], "static");
  EXPECT_TRUE(c["router"]["name"].is_string());
  EXPECT_TRUE(c["router"]["time_ms"].is_number_integer());
  EXPECT_TRUE(c["cluster"].is_null());
  ASSERT_EQ(c["nodes"].size(), 3u);
  for (const json& n : c["nodes"]) {
    EXPECT_TRUE(n["name"].is_string());
    EXPECT_TRUE(n["endpoint"].is_string());
    EXPECT_TRUE(n["alive"].is_boolean());
    EXPECT_TRUE(n["lease"].is_null());
    EXPECT_TRUE(n["status"] == "up" || n["status"] == "starting") << n;
    EXPECT_EQ(n["primaries"], 0);
  }
  for (const char* k : {"partitions", "moves", "not_in_sync", "unavailable"}) {
    EXPECT_TRUE(c[k].is_array() && c[k].empty()) << k;
  }
  EXPECT_EQ(c["rates"]["slot_ms"], 1000);
  EXPECT_TRUE(c["rates"]["slots"].is_array());

  // Bad query parameters: 400 with a message.
  ExpectJsonError(Http(port, "GET", "/api/cluster?partitions=some"), 400, "bad_request");
  ExpectJsonError(Http(port, "GET", "/api/cluster?bogus=1"), 400, "bad_request");
  ExpectJsonError(Http(port, "GET", "/api/list"), 400, "bad_request");
  ExpectJsonError(Http(port, "GET", "/api/list?name="), 400, "bad_request");
  ExpectJsonError(Http(port, "GET", "/api/list?name=a&name=b"), 400, "bad_request");
  ExpectJsonError(Http(port, "GET", "/api/list?name=" + std::string(300, 'x')), 400, "bad_request");

  // The owner killed: down within a few seconds; its list's owner still
  // answers, its entries are unavailable; back up after its restart.
  const size_t victim = cluster_->NodeIndex(owner);
  cluster_->node(victim).process->Kill9();
  EXPECT_TRUE(WaitStatus(port, owner, "down", std::chrono::milliseconds(10000)));
  lookup = Http(port, "GET", "/api/list?name=" + list);
  ASSERT_EQ(lookup.status, 200) << lookup.body;
  l = Json(lookup);
  EXPECT_EQ(l["node"], owner);
  EXPECT_TRUE(l["entries"].is_null());
  EXPECT_EQ(l["entries_error"]["code"], "unavailable") << lookup.body;
  ASSERT_TRUE(cluster_->StartNode(victim));
  EXPECT_TRUE(WaitStatus(port, owner, "up", std::chrono::milliseconds(10000)));

  // The last minute counted what the test did.
  c = Json(Http(port, "GET", "/api/cluster"));
  uint64_t requests = 0;
  for (const json& s : c["rates"]["slots"]) requests += s["requests"].get<uint64_t>();
  EXPECT_GE(requests, 3u) << c["rates"].dump();
}

}  // namespace
}  // namespace todo::testing
