// The request target's path and query, read as cpp-httplib 0.11 read them
// (router/http_query.h).
#include "router/http_query.h"

#include <gtest/gtest.h>

namespace todo::router::http {
namespace {

std::string First(const Params& p, const std::string& k) {
  auto it = p.find(k);
  return it == p.end() ? "<none>" : it->second;
}

TEST(DecodeUrl, EscapesPlusAndLeftovers) {
  EXPECT_EQ(DecodeUrl("a%20b%2Fc", false), "a b/c");
  EXPECT_EQ(DecodeUrl("a+b", true), "a b");
  EXPECT_EQ(DecodeUrl("a+b", false), "a+b");
  EXPECT_EQ(DecodeUrl("%u00e9%u65E5", false), "\xc3\xa9\xe6\x97\xa5");
  EXPECT_EQ(DecodeUrl("100%", true), "100%");    // a lone '%' stays
  EXPECT_EQ(DecodeUrl("%zz%4", true), "%zz%4");  // so do bad escapes
  EXPECT_EQ(DecodeUrl("%00x", false), std::string("\0x", 2));
}

TEST(TargetPath, IsDecodedWithoutTheQuery) {
  EXPECT_EQ(TargetPath("/entries?list=a"), "/entries");
  EXPECT_EQ(TargetPath("/%65ntries"), "/entries");
  EXPECT_EQ(TargetPath("/a+b"), "/a+b");
}

TEST(ParseQuery, PairsDecodedFirstValueWins) {
  auto parsed = ParseQuery("/entries?list=bob+x&date=2026-12-19&title=a%26b&list=other");
  ASSERT_TRUE(parsed.ok());
  const Params& p = *parsed;
  EXPECT_EQ(First(p, "list"), "bob x");
  EXPECT_EQ(First(p, "date"), "2026-12-19");
  EXPECT_EQ(First(p, "title"), "a&b");
  EXPECT_EQ(p.count("list"), 2u);
}

TEST(ParseQuery, EmptyValuesMissingValuesAndEmptyNames) {
  auto parsed = ParseQuery("/x?list=&flag&=v&&title=a=b");
  ASSERT_TRUE(parsed.ok());
  const Params& p = *parsed;
  EXPECT_EQ(First(p, "list"), "");
  EXPECT_EQ(First(p, "flag"), "");
  EXPECT_EQ(First(p, "title"), "a=b");
  EXPECT_EQ(p.size(), 3u);
  EXPECT_TRUE(ParseQuery("/x")->empty());
  EXPECT_TRUE(ParseQuery("/x?")->empty());
}

}  // namespace
}  // namespace todo::router::http
