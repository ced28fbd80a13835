#include "router/options.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace todo::router {
namespace {

// Runs ParseRouterFlags on `args` (argv[0] added).
std::optional<RouterOptions> Parse(std::vector<std::string> args, int* exit_code) {
  args.insert(args.begin(), "todo-router");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  *exit_code = -1;
  return ParseRouterFlags(static_cast<int>(argv.size()), argv.data(), exit_code);
}

RouterOptions Valid() {
  RouterOptions o;
  o.listen = "tcp://127.0.0.1:7000";
  o.nodes = {{"n1", "tcp://127.0.0.1:7001", "--node", std::nullopt}};
  return o;
}

TEST(RouterOptionsTest, Defaults) {
  RouterOptions o = Valid();
  EXPECT_TRUE(o.Validate().ok()) << o.Validate().ToString();
  EXPECT_EQ(o.timeout_ms, 5000);
  EXPECT_EQ(o.heartbeat_ms, 500);
  EXPECT_EQ(o.down_after_ms, 2000);
  EXPECT_EQ(o.max_inflight, 100000u);
  EXPECT_EQ(o.name, "");
}

TEST(RouterOptionsTest, ValidateNamesTheFlag) {
  auto check = [](RouterOptions o, const char* flag) {
    Status s = o.Validate();
    ASSERT_FALSE(s.ok()) << flag;
    EXPECT_NE(s.message().find(flag), std::string::npos) << s.message();
  };
  RouterOptions o = Valid();
  o.listen = "127.0.0.1:7000";
  check(o, "--listen");
  o = Valid();
  o.timeout_ms = 0;
  check(o, "--timeout-ms");
  o = Valid();
  o.heartbeat_ms = 5;
  check(o, "--heartbeat-ms");
  o = Valid();
  o.down_after_ms = 500;  // not more than the heartbeat interval
  check(o, "--down-after-ms");
  o = Valid();
  o.max_inflight = 0;
  check(o, "--max-inflight");
  o = Valid();
  o.log_level = "loud";
  check(o, "--log-level");
  o = Valid();
  o.name = "bad\nname";
  check(o, "--name");
  o = Valid();
  o.nodes.clear();
  check(o, "--node");
}

TEST(ParseRouterFlagsTest, GoodCommandLine) {
  int code;
  auto o = Parse({"--listen", "tcp://127.0.0.1:7000", "--node", "n2=tcp://127.0.0.1:7002", "--node",
                  "n1=tcp://127.0.0.1:7001", "--timeout-ms", "250", "--name", "r1"},
                 &code);
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o->nodes.size(), 2u);
  EXPECT_EQ(o->nodes[0].name, "n2");
  EXPECT_EQ(o->nodes[1].name, "n1");
  EXPECT_EQ(o->timeout_ms, 250);
  EXPECT_EQ(o->name, "r1");
}

TEST(ParseRouterFlagsTest, BadFlagsExit2AndHelpExits0) {
  int code;
  EXPECT_FALSE(Parse({"--listen", "tcp://127.0.0.1:7000"}, &code).has_value());
  EXPECT_EQ(code, 2);  // no nodes
  EXPECT_FALSE(Parse({"--node", "n1=tcp://h:1"}, &code).has_value());
  EXPECT_EQ(code, 2);  // no --listen
  EXPECT_FALSE(
      Parse({"--listen", "tcp://h:1", "--node", "n1=tcp://h:2", "--bogus"}, &code).has_value());
  EXPECT_EQ(code, 2);
  EXPECT_FALSE(
      Parse({"--listen", "tcp://h:1", "--node", "n1=tcp://h:2", "stray"}, &code).has_value());
  EXPECT_EQ(code, 2);
  EXPECT_FALSE(
      Parse({"--listen", "tcp://h:1", "--node", "n1=tcp://h:2", "--timeout-ms", "soon"}, &code)
          .has_value());
  EXPECT_EQ(code, 2);
  EXPECT_FALSE(Parse({"--listen", "tcp://h:1", "--node", "n1"}, &code).has_value());
  EXPECT_EQ(code, 2);
  EXPECT_FALSE(Parse({"--listen", "tcp://h:1", "--cluster", "/nonexistent/cluster.conf"}, &code)
                   .has_value());
  EXPECT_EQ(code, 2);
  EXPECT_FALSE(Parse({"--help"}, &code).has_value());
  EXPECT_EQ(code, 0);
}

}  // namespace
}  // namespace todo::router
