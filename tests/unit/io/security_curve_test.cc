// CurveZMQ flags and sockets (common/io/security/curve.h, zap_handler.h): the
// config loader, the router's flags, and real CURVE sockets on loopback with
// the ZAP handler — allowed key in, unknown key and plaintext out. Every
// wait is a bounded poll.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <string>
#include <thread>
#include <vector>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "common/io/security/curve.h"
#include "router/options.h"

namespace todo::security {
namespace {

using std::chrono::milliseconds;

class CurveTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(HasCurve());
    char tmpl[] = "/tmp/security_curve_test_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    for (const std::string& f : files_) unlink(f.c_str());
    rmdir(dir_.c_str());
  }
  std::string Write(const std::string& name, const std::string& text) {
    std::string path = dir_ + "/" + name;
    std::ofstream(path) << text;
    chmod(path.c_str(), 0600);
    files_.push_back(path);
    return path;
  }
  // A new keypair written as PREFIX.key and PREFIX.pub; returns it.
  KeyPair MakeKeys(const std::string& prefix) {
    auto pair = GenerateKeyPair();
    EXPECT_TRUE(pair.ok());
    Write(prefix + ".key", FormatKeyFile("secret", pair->secret_key));
    Write(prefix + ".pub", FormatKeyFile("public", pair->public_key));
    return *pair;
  }
  std::string Path(const std::string& name) const { return dir_ + "/" + name; }

  std::string dir_;
  std::vector<std::string> files_;
};

TEST_F(CurveTest, LoadNeedsBothFlagsOrNeither) {
  MakeKeys("server");
  MakeKeys("client");
  CurveConfig off;
  EXPECT_TRUE(LoadCurveConfig(&off).ok());
  EXPECT_FALSE(off.enabled());

  CurveConfig secret_only;
  secret_only.secret_file = Path("server.key");
  Status s = LoadCurveConfig(&secret_only);
  EXPECT_EQ(s.code(), ErrorCode::kBadRequest);
  EXPECT_NE(s.message().find("--curve-secret needs --curve-allow"), std::string::npos);

  CurveConfig allow_only;
  allow_only.allow_files = {Path("client.pub")};
  s = LoadCurveConfig(&allow_only);
  EXPECT_NE(s.message().find("--curve-allow needs --curve-secret"), std::string::npos);

  CurveConfig bad_file;
  bad_file.secret_file = Path("server.key");
  bad_file.allow_files = {Path("nope.pub")};
  s = LoadCurveConfig(&bad_file);
  EXPECT_EQ(s.message().rfind("--curve-allow: cannot read " + Path("nope.pub"), 0), 0u)
      << s.message();
}

TEST_F(CurveTest, LoadJoinsAllowListsAndDerivesThePublicKey) {
  KeyPair server = MakeKeys("server");
  MakeKeys("a");
  MakeKeys("b");
  Write("both", "# a and b\n" + EncodeZ85Key(server.public_key) + "\n");
  CurveConfig c;
  c.secret_file = Path("server.key");
  c.allow_files = {Path("a.pub"), Path("b.pub"), Path("a.pub"), Path("both")};
  Status s = LoadCurveConfig(&c);
  ASSERT_TRUE(s.ok()) << s.ToString();
  ASSERT_TRUE(c.enabled());
  EXPECT_EQ(c.keys->public_key, server.public_key);
  EXPECT_EQ(c.allowed.size(), 3u);
  EXPECT_TRUE(c.warnings.empty());
  EXPECT_NE(Describe(c).find(EncodeZ85Key(server.public_key)), std::string::npos);
  EXPECT_NE(Describe(c).find("3 client keys allowed"), std::string::npos);
  EXPECT_NE(Describe(CurveConfig{}).find("plaintext"), std::string::npos);
}

// Runs ParseRouterFlags on `args` (argv[0] added).
std::optional<router::RouterOptions> ParseRouter(std::vector<std::string> args, int* code) {
  args.insert(args.begin(), "todo-router");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  return router::ParseRouterFlags(static_cast<int>(argv.size()), argv.data(), code);
}

TEST_F(CurveTest, RouterFlagsNeedAServerKeyForEveryNode) {
  MakeKeys("r1");
  MakeKeys("c1");
  KeyPair n1 = MakeKeys("n1");
  KeyPair n2 = MakeKeys("n2");
  std::string cluster = Write(
      "cluster.conf", "node n1 tcp://h:1 " + EncodeZ85Key(n1.public_key) + "\nnode n2 tcp://h:2\n");
  std::vector<std::string> base = {"--listen",      "tcp://127.0.0.1:7000", "--cluster",
                                   cluster,         "--curve-secret",       Path("r1.key"),
                                   "--curve-allow", Path("c1.pub")};
  int code = -1;
  EXPECT_FALSE(ParseRouter(base, &code).has_value());  // n2 has no key
  EXPECT_EQ(code, 2);

  std::vector<std::string> args = base;
  args.insert(args.end(), {"--node-key", "n2=" + Path("n2.pub")});
  auto o = ParseRouter(args, &code);
  ASSERT_TRUE(o.has_value()) << code;
  ASSERT_EQ(o->nodes.size(), 2u);
  EXPECT_EQ(o->nodes[0].server_key, n1.public_key);
  EXPECT_EQ(o->nodes[1].server_key, n2.public_key);
  EXPECT_TRUE(o->curve.enabled());

  // Keys without --curve-secret, a key contradicting the file, an unknown node.
  EXPECT_FALSE(
      ParseRouter({"--listen", "tcp://127.0.0.1:7000", "--cluster", cluster}, &code).has_value());
  EXPECT_EQ(code, 2);
  args = base;
  args.insert(args.end(), {"--node-key", "n1=" + EncodeZ85Key(n2.public_key), "--node-key",
                           "n2=" + EncodeZ85Key(n2.public_key)});
  EXPECT_FALSE(ParseRouter(args, &code).has_value());
  args = base;
  args.insert(args.end(), {"--node-key", "n3=" + EncodeZ85Key(n2.public_key)});
  EXPECT_FALSE(ParseRouter(args, &code).has_value());
  EXPECT_EQ(code, 2);
}

// Polls `socket` for input for at most `wait`.
bool Readable(zmq::socket_t& socket, milliseconds wait) {
  zmq::pollitem_t item{socket.handle(), 0, ZMQ_POLLIN, 0};
  return zmq::poll(&item, 1, wait) > 0;
}

// Polls `done` every few ms for at most `wait`.
template <typename F>
bool Eventually(F done, milliseconds wait) {
  auto deadline = std::chrono::steady_clock::now() + wait;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(milliseconds(5));
  }
  return true;
}

TEST_F(CurveTest, ServerLetsInOnlyAllowedCurveClients) {
  KeyPair server_keys = MakeKeys("server");
  KeyPair friend_keys = MakeKeys("friend");
  KeyPair stranger_keys = MakeKeys("stranger");
  CurveConfig config;
  config.secret_file = Path("server.key");
  config.allow_files = {Path("friend.pub")};
  ASSERT_TRUE(LoadCurveConfig(&config).ok());

  zmq::context_t ctx(1);
  auto zap = StartZapHandler(&ctx, config);
  ASSERT_TRUE(zap.ok()) << zap.status().ToString();
  ASSERT_NE(zap->get(), nullptr);
  // One handler per context.
  EXPECT_FALSE(StartZapHandler(&ctx, config).ok());

  zmq::socket_t server(ctx, zmq::socket_type::router);
  server.set(zmq::sockopt::linger, 0);
  ASSERT_TRUE(SecureServerSocket(server, config).ok());
  EXPECT_EQ(server.get(zmq::sockopt::mechanism), ZMQ_CURVE);
  server.bind("tcp://127.0.0.1:*");
  std::string endpoint = server.get(zmq::sockopt::last_endpoint);

  auto client = [&](const KeyPair* keys) {
    auto s = std::make_unique<zmq::socket_t>(ctx, zmq::socket_type::dealer);
    s->set(zmq::sockopt::linger, 0);
    if (keys != nullptr) {
      CurveConfig own;
      own.keys = *keys;
      EXPECT_TRUE(SecureClientSocket(*s, own, server_keys.public_key).ok());
      EXPECT_EQ(s->get(zmq::sockopt::mechanism), ZMQ_CURVE);
    }
    s->connect(endpoint);
    s->send(zmq::str_buffer("hello"), zmq::send_flags::none);
    return s;
  };

  auto stranger = client(&stranger_keys);
  auto plaintext = client(nullptr);
  auto good = client(&friend_keys);
  ASSERT_TRUE(Readable(server, milliseconds(5000)));
  std::vector<zmq::message_t> frames;
  ASSERT_TRUE(zmq::recv_multipart(server, std::back_inserter(frames)));
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_EQ(frames[1].to_string_view(), "hello");
  EXPECT_EQ(std::string(frames[1].gets("User-Id")), EncodeZ85Key(friend_keys.public_key));
  ASSERT_TRUE(Eventually([&] { return (*zap)->refused() >= 1; }, milliseconds(5000)));
  // Nothing from the stranger or the plaintext client.
  EXPECT_FALSE(Readable(server, milliseconds(500)));
  EXPECT_EQ((*zap)->accepted(), 1u);

  // No handler, no entry (ZMQ_ZAP_ENFORCE_DOMAIN): once the handler is
  // gone, even an allowed key is refused.
  zap->reset();
  auto late = client(&friend_keys);
  EXPECT_FALSE(Readable(server, milliseconds(500)));
}

TEST_F(CurveTest, SocketsAreLeftAloneWithoutCurve) {
  zmq::context_t ctx(1);
  CurveConfig off;
  auto zap = StartZapHandler(&ctx, off);
  ASSERT_TRUE(zap.ok());
  EXPECT_EQ(zap->get(), nullptr);
  zmq::socket_t s(ctx, zmq::socket_type::router);
  EXPECT_TRUE(SecureServerSocket(s, off).ok());
  EXPECT_TRUE(SecureClientSocket(s, off, std::nullopt).ok());
  EXPECT_EQ(s.get(zmq::sockopt::mechanism), ZMQ_NULL);
  s.set(zmq::sockopt::linger, 0);
}

}  // namespace
}  // namespace todo::security
