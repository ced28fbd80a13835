// Key decoding, the key-file format and reading key files (common/io/security/keys.h).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include "common/io/security/keys.h"

namespace todo::security {
namespace {

// A known keypair (libzmq's tests/testutil_security.cpp).
constexpr char kPublic[] = "Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID";
constexpr char kSecret[] = "D:)Q[IlAW!ahhC2ac:9*A}h:p?([4%wOTJ%JR%cs";
constexpr char kOtherPublic[] = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7";

CurveKey Key(const char* z85) {
  auto k = DecodeZ85Key(z85);
  EXPECT_TRUE(k.ok()) << k.status().ToString();
  return k.ok() ? *k : CurveKey{};
}

// A temporary directory, removed with its files at the end of the test.
class KeyFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/security_keys_test_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    for (const std::string& f : files_) unlink(f.c_str());
    rmdir(dir_.c_str());
  }
  std::string Write(const std::string& name, const std::string& text, mode_t mode = 0600) {
    std::string path = dir_ + "/" + name;
    std::ofstream(path) << text;
    chmod(path.c_str(), mode);
    files_.push_back(path);
    return path;
  }
  std::string dir_;
  std::vector<std::string> files_;
};

TEST(Z85KeyTest, RoundTripAndKnownVector) {
  CurveKey k{};
  for (size_t i = 0; i < k.size(); ++i) k[i] = static_cast<uint8_t>(i);
  EXPECT_EQ(EncodeZ85Key(k), "009c61o!#m2NH?C3>iWS5d]J*6CRx17-skh9337x");
  auto back = DecodeZ85Key(EncodeZ85Key(k));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, k);
}

TEST(Z85KeyTest, ErrorsSayWhatIsWrongWithoutQuotingTheKey) {
  auto short_key = DecodeZ85Key("abc");
  ASSERT_FALSE(short_key.ok());
  EXPECT_NE(short_key.status().message().find("expected 40 Z85 characters, got 3"),
            std::string::npos);
  std::string bad_char = kPublic;
  bad_char[4] = '~';  // not in Z85
  auto r = DecodeZ85Key(bad_char);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("character 5 is not a Z85 character"), std::string::npos)
      << r.status().message();
  EXPECT_EQ(r.status().message().find(bad_char), std::string::npos);
  // "#####" is 85^5 - 1 > 2^32 - 1.
  auto overflow = DecodeZ85Key(std::string(40, '#'));
  ASSERT_FALSE(overflow.ok());
  EXPECT_NE(overflow.status().message().find("out of range"), std::string::npos);
}

TEST(KeyPairTest, DerivesTheKnownPublicKeyAndGeneratesPairs) {
  ASSERT_TRUE(HasCurve());
  auto pub = DerivePublicKey(Key(kSecret));
  ASSERT_TRUE(pub.ok()) << pub.status().ToString();
  EXPECT_EQ(EncodeZ85Key(*pub), kPublic);
  auto a = GenerateKeyPair();
  auto b = GenerateKeyPair();
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(a->secret_key, b->secret_key);
  EXPECT_EQ(*DerivePublicKey(a->secret_key), a->public_key);
}

TEST(ParseKeyTextTest, CommentsBlankLinesAndTrailingComments) {
  std::string text = std::string("# header\n\n   \n") + kPublic + "\n\t" + kOtherPublic +
                     "   # router r2\r\n#" + kPublic + " commented out (41 characters)\n";
  auto keys = ParseKeyText(text, "allow.txt");
  ASSERT_TRUE(keys.ok()) << keys.status().ToString();
  ASSERT_EQ(keys->size(), 2u);
  EXPECT_EQ((*keys)[0], Key(kPublic));
  EXPECT_EQ((*keys)[1], Key(kOtherPublic));
}

TEST(ParseKeyTextTest, NoKeyStartsWithHashSoHashFirstIsAComment) {
  // A Z85 group's first character is at most index 82 ('%'): 84 ('#') would
  // make the group exceed 2^32 - 1.
  CurveKey k{};
  k.fill(0xff);
  EXPECT_EQ(EncodeZ85Key(k)[0], '%');
  EXPECT_FALSE(DecodeZ85Key("#" + EncodeZ85Key(k).substr(1)).ok());
  auto keys = ParseKeyText("#" + EncodeZ85Key(k).substr(1) + "\n", "f");
  ASSERT_TRUE(keys.ok());
  EXPECT_TRUE(keys->empty());
}

TEST(ParseKeyTextTest, ErrorsNameFileAndLine) {
  auto wrong_length = ParseKeyText("# c\nabcdef\n", "k.pub");
  ASSERT_FALSE(wrong_length.ok());
  EXPECT_EQ(wrong_length.status().message().rfind("k.pub:2: not a CURVE key", 0), 0u)
      << wrong_length.status().message();
  auto trailing = ParseKeyText(std::string(kPublic) + " extra\n", "k.pub");
  ASSERT_FALSE(trailing.ok());
  EXPECT_NE(trailing.status().message().find("k.pub:1: unexpected text after the key"),
            std::string::npos);
}

TEST(FormatKeyFileTest, OneCommentLineThenTheKey) {
  std::string text = FormatKeyFile("made by\ntest", Key(kPublic));
  EXPECT_EQ(text, std::string("# made by test\n") + kPublic + "\n");
  auto keys = ParseKeyText(text, "f");
  ASSERT_TRUE(keys.ok());
  ASSERT_EQ(keys->size(), 1u);
}

TEST_F(KeyFileTest, SecretKeyFile) {
  std::string good = Write("a.key", FormatKeyFile("secret", Key(kSecret)));
  KeyFileNotes notes;
  auto pair = LoadSecretKeyFile(good, &notes);
  ASSERT_TRUE(pair.ok()) << pair.status().ToString();
  EXPECT_EQ(EncodeZ85Key(pair->public_key), kPublic);
  EXPECT_TRUE(notes.warnings.empty());

  std::string open = Write("open.key", FormatKeyFile("secret", Key(kSecret)), 0644);
  ASSERT_TRUE(LoadSecretKeyFile(open, &notes).ok());
  ASSERT_EQ(notes.warnings.size(), 1u);
  EXPECT_NE(notes.warnings[0].find("mode 0644"), std::string::npos) << notes.warnings[0];
  EXPECT_NE(notes.warnings[0].find(open), std::string::npos);

  struct Case {
    std::string path;
    std::string what;
  };
  const std::vector<Case> cases = {
      {dir_ + "/missing.key", "No such file or directory"},
      {Write("empty.key", "# nothing\n"), "no key found"},
      {Write("two.key", std::string(kSecret) + "\n" + kPublic + "\n"), "holds 2 keys"},
      {Write("short.key", "abc\n"), "expected 40 Z85 characters, got 3"},
      {Write("b.pub", FormatKeyFile("public", Key(kPublic))), "looks like a public key file"},
      {dir_, "not a regular file"},
  };
  for (const Case& c : cases) {
    auto r = LoadSecretKeyFile(c.path, nullptr);
    ASSERT_FALSE(r.ok()) << c.path;
    EXPECT_EQ(r.status().code(), ErrorCode::kBadRequest);
    EXPECT_NE(r.status().message().find(c.path), std::string::npos) << r.status().message();
    EXPECT_NE(r.status().message().find(c.what), std::string::npos) << r.status().message();
    EXPECT_EQ(r.status().message().find(kSecret), std::string::npos);
  }
}

TEST_F(KeyFileTest, AllowListDropsRepeatsAndRefusesSecretFiles) {
  std::string list = Write(
      "allow", std::string("# routers\n") + kPublic + "\n" + kOtherPublic + "\n" + kPublic + "\n");
  auto keys = LoadAllowList(list);
  ASSERT_TRUE(keys.ok()) << keys.status().ToString();
  EXPECT_EQ(keys->size(), 2u);
  auto empty = LoadAllowList(Write("empty", "# none yet\n"));
  ASSERT_FALSE(empty.ok());
  EXPECT_NE(empty.status().message().find("no key found"), std::string::npos);
  auto secret = LoadAllowList(Write("r1.key", std::string(kSecret) + "\n"));
  ASSERT_FALSE(secret.ok());
  EXPECT_NE(secret.status().message().find("looks like a secret key file"), std::string::npos);
}

TEST_F(KeyFileTest, KeyOrFile) {
  auto inline_key = ParseKeyOrFile(kPublic);
  ASSERT_TRUE(inline_key.ok());
  EXPECT_EQ(*inline_key, Key(kPublic));
  auto from_file = ParseKeyOrFile(Write("n1.pub", FormatKeyFile("n1", Key(kOtherPublic))));
  ASSERT_TRUE(from_file.ok()) << from_file.status().ToString();
  EXPECT_EQ(*from_file, Key(kOtherPublic));
  auto neither = ParseKeyOrFile("nonsense");
  ASSERT_FALSE(neither.ok());
  EXPECT_NE(neither.status().message().find("neither a key"), std::string::npos)
      << neither.status().message();
  EXPECT_FALSE(ParseKeyOrFile("").ok());
}

}  // namespace
}  // namespace todo::security
