#include "router/cluster_config.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <string>
#include <vector>

#include "common/rendezvous.h"

namespace todo::router {
namespace {

std::vector<NodeSpec> ParseOk(std::string_view text) {
  auto r = ParseClusterText(text, "c.conf");
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? r.value() : std::vector<NodeSpec>{};
}

// The error message of parsing `text` as c.conf ("" if it parsed).
std::string ParseError(std::string_view text) {
  auto r = ParseClusterText(text, "c.conf");
  if (r.ok()) return "";
  EXPECT_EQ(r.status().code(), ErrorCode::kBadRequest);
  return r.status().message();
}

TEST(NodeNameTest, LengthAndCharacters) {
  EXPECT_TRUE(IsValidNodeName("n1"));
  EXPECT_TRUE(IsValidNodeName("A-z_0.9"));
  EXPECT_TRUE(IsValidNodeName(std::string(64, 'x')));
  EXPECT_FALSE(IsValidNodeName(std::string(65, 'x')));
  EXPECT_FALSE(IsValidNodeName(""));
  EXPECT_FALSE(IsValidNodeName("a b"));
  EXPECT_FALSE(IsValidNodeName("a=b"));
  EXPECT_FALSE(IsValidNodeName("a/b"));
  EXPECT_FALSE(IsValidNodeName("\xc3\xa9"));
}

TEST(EndpointTest, SchemesAndWhitespace) {
  EXPECT_TRUE(IsValidEndpoint("tcp://127.0.0.1:7001"));
  EXPECT_TRUE(IsValidEndpoint("ipc:///tmp/n1.sock"));
  EXPECT_TRUE(IsValidEndpoint("inproc://n1"));
  EXPECT_FALSE(IsValidEndpoint("tcp://"));
  EXPECT_FALSE(IsValidEndpoint("udp://127.0.0.1:1"));
  EXPECT_FALSE(IsValidEndpoint("127.0.0.1:7001"));
  EXPECT_FALSE(IsValidEndpoint("tcp://a b:1"));
  EXPECT_FALSE(IsValidEndpoint(std::string("tcp://a\0b", 9)));
  // A tcp:// endpoint needs a port in range (libzmq would bind 99999 as
  // 34463).
  EXPECT_TRUE(IsValidEndpoint("tcp://127.0.0.1:0"));
  EXPECT_TRUE(IsValidEndpoint("tcp://*:65535"));
  EXPECT_TRUE(IsValidEndpoint("tcp://127.0.0.1:*"));
  // IPv6 literals are refused with a message here: the sockets are IPv4
  // only, and libzmq would fail the bind with "No such device".
  EXPECT_FALSE(IsValidEndpoint("tcp://[::1]:7001"));
  EXPECT_FALSE(IsValidEndpoint("tcp://[::]:*"));
  EXPECT_TRUE(IsValidEndpoint("tcp://db1.example:7001"));
  EXPECT_FALSE(IsValidEndpoint("tcp://127.0.0.1:99999"));
  EXPECT_FALSE(IsValidEndpoint("tcp://127.0.0.1:65536"));
  EXPECT_FALSE(IsValidEndpoint("tcp://127.0.0.1:"));
  EXPECT_FALSE(IsValidEndpoint("tcp://127.0.0.1"));
  EXPECT_FALSE(IsValidEndpoint("tcp://:7001"));
  EXPECT_FALSE(IsValidEndpoint("tcp://127.0.0.1:70x"));
  EXPECT_FALSE(IsValidEndpoint("tcp://127.0.0.1:-1"));
  EXPECT_FALSE(IsValidEndpoint("tcp://[::1]"));
}

TEST(ParseNodeFlagTest, NameEqualsEndpoint) {
  auto r = ParseNodeFlag("n1=tcp://127.0.0.1:7001");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->name, "n1");
  EXPECT_EQ(r->endpoint, "tcp://127.0.0.1:7001");
  EXPECT_NE(r->origin.find("--node"), std::string::npos);
}

TEST(ParseNodeFlagTest, SplitsAtTheFirstEquals) {
  auto r = ParseNodeFlag("n1=ipc:///tmp/a=b");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->name, "n1");
  EXPECT_EQ(r->endpoint, "ipc:///tmp/a=b");
}

TEST(ParseNodeFlagTest, Errors) {
  for (const char* bad : {"n1", "=tcp://a:1", "n1=", "n 1=tcp://a:1", "n1=udp://a:1"}) {
    auto r = ParseNodeFlag(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), ErrorCode::kBadRequest);
    EXPECT_NE(r.status().message().find("--node"), std::string::npos) << r.status().message();
  }
}

TEST(ParseClusterTextTest, GoodFile) {
  auto nodes = ParseOk(
      "# the local cluster\n"
      "\n"
      "node n1 tcp://127.0.0.1:7001\n"
      "   # indented comment\n"
      "\tnode\tn2   tcp://127.0.0.1:7002   # trailing comment\r\n"
      "node n3 ipc:///tmp/n3#not-a-comment\n"
      "   \n"
      "node n4 inproc://n4");  // no final newline
  ASSERT_EQ(nodes.size(), 4u);
  EXPECT_EQ(nodes[0].name, "n1");
  EXPECT_EQ(nodes[0].endpoint, "tcp://127.0.0.1:7001");
  EXPECT_EQ(nodes[0].origin, "c.conf:3");
  EXPECT_EQ(nodes[1].name, "n2");
  EXPECT_EQ(nodes[1].endpoint, "tcp://127.0.0.1:7002");
  EXPECT_EQ(nodes[1].origin, "c.conf:5");
  EXPECT_EQ(nodes[2].endpoint, "ipc:///tmp/n3#not-a-comment");
  EXPECT_EQ(nodes[3].origin, "c.conf:8");
}

TEST(ParseClusterTextTest, EmptyAndCommentOnlyFilesHaveNoNodes) {
  EXPECT_TRUE(ParseOk("").empty());
  EXPECT_TRUE(ParseOk("# nothing\n\n  \n").empty());
}

TEST(ParseClusterTextTest, EveryErrorNamesFileAndLine) {
  struct Case {
    std::string text;
    std::string where;  // "c.conf:LINE:"
    std::string what;   // a fragment of the message
  };
  const std::vector<Case> cases = {
      {"node n1 tcp://a:1\n\nnodes n2 tcp://b:1\n", "c.conf:3:", "unknown directive 'nodes'"},
      {"# c\nnode n1\n", "c.conf:2:", "expected 'node NAME ENDPOINT [SERVER_KEY]', got 2 words"},
      {"node n1 tcp://a:1 extra\n",
       "c.conf:1:", "server key of node 'n1': not a CURVE key: expected 40 Z85 characters, got 5"},
      {"node n1 tcp://a:1 extra words\n", "c.conf:1:", "got 5 words"},
      {"node\n", "c.conf:1:", "got 1 words"},
      {"node n1 tcp://a:1\nnode bad/name tcp://b:1\n", "c.conf:2:", "'bad/name'"},
      {"node " + std::string(65, 'x') + " tcp://a:1\n", "c.conf:1:", "1-64 characters"},
      {"\n\n\n\nnode n5 http://a:1\n", "c.conf:5:", "tcp://, ipc:// or inproc://"},
      {"node n1 tcp://a:1\n#\nnode n1 tcp://b:1\n",
       "c.conf:3:", "duplicate node name 'n1' (first given at c.conf:1)"},
      {"node n1 tcp://a:1\nnode n2 tcp://a:1\n",
       "c.conf:2:", "same endpoint tcp://a:1 as node 'n1' (c.conf:1)"},
  };
  for (const Case& c : cases) {
    std::string message = ParseError(c.text);
    EXPECT_EQ(message.rfind(c.where, 0), 0u) << c.text << " -> " << message;
    EXPECT_NE(message.find(c.what), std::string::npos) << c.text << " -> " << message;
  }
}

constexpr char kKey1[] = "Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID";
constexpr char kKey2[] = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7";

TEST(ParseClusterTextTest, OptionalServerKey) {
  auto nodes = ParseOk(std::string("node n1 tcp://h:1 ") + kKey1 + "  # n1's todo-keygen n1.pub\n" +
                       "node n2 tcp://h:2\n");
  ASSERT_EQ(nodes.size(), 2u);
  ASSERT_TRUE(nodes[0].server_key.has_value());
  EXPECT_EQ(security::EncodeZ85Key(*nodes[0].server_key), kKey1);
  EXPECT_FALSE(nodes[1].server_key.has_value());
  std::string bad_key = kKey1;
  bad_key[0] = '~';
  std::string message = ParseError("node n1 tcp://h:1 " + bad_key + "\n");
  EXPECT_EQ(message.rfind("c.conf:1: server key of node 'n1': not a CURVE key", 0), 0u) << message;
  EXPECT_EQ(message.find(bad_key), std::string::npos) << message;
}

TEST(NodeKeysTest, FlagsSetKeysOfKnownNodesOnce) {
  std::vector<NodeSpec> nodes = ParseOk(std::string("node n1 tcp://h:1 ") + kKey1 +
                                        "\nnode n2 tcp://h:2\nnode n3 tcp://h:3\n");
  // Repeating the file's key is fine; n2 gets one; n3 has none.
  Status s = ApplyNodeKeyFlags({std::string("n1=") + kKey1, std::string("n2=") + kKey2}, &nodes);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(security::EncodeZ85Key(*nodes[1].server_key), kKey2);
  s = CheckNodeKeys(nodes, true);
  EXPECT_NE(s.message().find("no server key for node(s) n3"), std::string::npos) << s.message();
  s = CheckNodeKeys(nodes, false);
  EXPECT_NE(s.message().find("node(s) n1, n2 but no --curve-secret"), std::string::npos)
      << s.message();
  ASSERT_TRUE(ApplyNodeKeyFlags({std::string("n3=") + kKey2}, &nodes).ok());
  EXPECT_TRUE(CheckNodeKeys(nodes, true).ok());
  EXPECT_TRUE(CheckNodeKeys(ParseOk("node n1 tcp://h:1\n"), false).ok());
}

TEST(NodeKeysTest, FlagErrors) {
  struct Case {
    std::vector<std::string> flags;
    std::string what;
  };
  const std::vector<Case> cases = {
      {{"n1"}, "must be NAME=KEY"},
      {{std::string("n9=") + kKey1}, "no node named 'n9'"},
      {{std::string("n2=") + kKey1, std::string("n2=") + kKey2}, "node 'n2' given twice"},
      {{std::string("n1=") + kKey2}, "node 'n1' has another key at c.conf:1"},
      {{"n2=/nonexistent/n2.pub"}, "neither a key"},
  };
  for (const Case& c : cases) {
    std::vector<NodeSpec> nodes =
        ParseOk(std::string("node n1 tcp://h:1 ") + kKey1 + "\nnode n2 tcp://h:2\n");
    Status s = ApplyNodeKeyFlags(c.flags, &nodes);
    EXPECT_EQ(s.code(), ErrorCode::kBadRequest) << c.what;
    EXPECT_EQ(s.message().rfind("--node-key", 0), 0u) << s.message();
    EXPECT_NE(s.message().find(c.what), std::string::npos) << s.message();
  }
}

TEST(ParseClusterTextTest, ControlBytesAreEscapedInMessages) {
  std::string message = ParseError(std::string("\x01node n1 tcp://a:1\n"));
  EXPECT_NE(message.find("\\x01"), std::string::npos) << message;
}

TEST(LoadClusterFileTest, ReadsAFileAndNamesItInErrors) {
  char path[] = "/tmp/router_cluster_test_XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  close(fd);
  {
    std::ofstream out(path);
    out << "node n1 tcp://127.0.0.1:7001\nnode n2 tcp://127.0.0.1:7002\n";
  }
  auto good = LoadClusterFile(path);
  ASSERT_TRUE(good.ok()) << good.status().ToString();
  ASSERT_EQ(good->size(), 2u);
  EXPECT_EQ((*good)[1].origin, std::string(path) + ":2");
  {
    std::ofstream out(path);
    out << "node n1 tcp://127.0.0.1:7001\nbogus\n";
  }
  auto bad = LoadClusterFile(path);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message().rfind(std::string(path) + ":2:", 0), 0u)
      << bad.status().message();
  unlink(path);
  auto missing = LoadClusterFile(path);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find(path), std::string::npos);
}

TEST(BuildClusterTest, NeedsAtLeastOneNode) {
  auto r = BuildCluster({}, {});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("no nodes"), std::string::npos);
}

TEST(BuildClusterTest, FlagsFirstThenFile) {
  auto flag = ParseNodeFlag("a=tcp://h:1");
  ASSERT_TRUE(flag.ok());
  auto r = BuildCluster({flag.value()}, ParseOk("node b tcp://h:2\n"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(NodeNames(r.value()), (std::vector<std::string>{"a", "b"}));
}

TEST(BuildClusterTest, DuplicatesAcrossFlagsAndFileNameBothOrigins) {
  auto flag = ParseNodeFlag("n1=tcp://h:1");
  ASSERT_TRUE(flag.ok());
  auto same_name = BuildCluster({flag.value()}, ParseOk("\nnode n1 tcp://h:9\n"));
  ASSERT_FALSE(same_name.ok());
  EXPECT_NE(same_name.status().message().find("c.conf:2"), std::string::npos)
      << same_name.status().message();
  EXPECT_NE(same_name.status().message().find("--node"), std::string::npos);
  auto same_endpoint = BuildCluster({flag.value()}, ParseOk("node n2 tcp://h:1\n"));
  ASSERT_FALSE(same_endpoint.ok());
  EXPECT_NE(same_endpoint.status().message().find("same endpoint"), std::string::npos);
}

TEST(BuildClusterTest, FlagsAndFileGiveTheSameOwners) {
  std::vector<NodeSpec> from_flags;
  for (const char* f : {"n1=tcp://h:1", "n2=tcp://h:2", "n3=tcp://h:3"}) {
    auto spec = ParseNodeFlag(f);
    ASSERT_TRUE(spec.ok());
    from_flags.push_back(spec.value());
  }
  auto by_flags = BuildCluster(from_flags, {});
  auto by_file =
      BuildCluster({}, ParseOk("node n3 tcp://h:3\nnode n1 tcp://h:1\nnode n2 tcp://h:2\n"));
  ASSERT_TRUE(by_flags.ok() && by_file.ok());
  Rendezvous a(NodeNames(by_flags.value()));
  Rendezvous b(NodeNames(by_file.value()));
  for (int i = 0; i < 1000; ++i) {
    std::string list = "list-" + std::to_string(i);
    EXPECT_EQ(a.nodes()[a.Owner(list)], b.nodes()[b.Owner(list)]) << list;
  }
}

TEST(BuildClusterTest, OwnerDoesNotDependOnNodeOrder) {
  std::vector<std::string> names = {"alpha", "beta", "gamma", "delta", "n5"};
  std::sort(names.begin(), names.end());
  Rendezvous reference(names);
  std::vector<std::string> owners;
  for (int i = 0; i < 500; ++i) {
    std::string list = "l" + std::to_string(i);
    owners.push_back(reference.nodes()[reference.Owner(list)]);
  }
  int permutations = 0;
  do {
    Rendezvous r(names);
    for (int i = 0; i < 500; ++i) {
      std::string list = "l" + std::to_string(i);
      ASSERT_EQ(r.nodes()[r.Owner(list)], owners[i]) << list;
    }
    ++permutations;
  } while (std::next_permutation(names.begin(), names.end()));
  EXPECT_EQ(permutations, 120);
  // Every node owns some lists: the hash spreads them.
  for (const auto& n : names) {
    EXPECT_NE(std::find(owners.begin(), owners.end(), n), owners.end()) << n;
  }
}

}  // namespace
}  // namespace todo::router
