// DecodeRequest's fast path (a flat map of str keys to scalars, read without
// msgpack-c's parser) against its general parser: every body decodes the
// same either way. A body with one more unknown key holding a float takes
// the general path (the fast path refuses floats) and must decode exactly
// as the same body without it, which takes the fast path when it can.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <msgpack.hpp>
#include <random>
#include <string>
#include <vector>

#include "common/protocol.h"

namespace todo::protocol {
namespace {

using Packer = msgpack::packer<msgpack::sbuffer>;

struct Pair {
  std::string key;  // packed as a str, unless key_is_uint
  bool key_is_uint = false;
  int kind = 0;  // value kind, see PackValue
  std::string str;
  int64_t num = 0;
};

void PackStrAs(Packer& pk, msgpack::sbuffer& buf, const std::string& s, int width) {
  // width 0: the shortest encoding; 1, 2, 4: str 8, 16, 32 even if shorter.
  const auto n = static_cast<uint32_t>(s.size());
  if (width == 1 && n > 0xff) width = 2;
  if (width == 0) {
    pk.pack_str(n);
  } else {
    const char tag = static_cast<char>(width == 1 ? 0xd9 : width == 2 ? 0xda : 0xdb);
    buf.write(&tag, 1);
    for (int i = width - 1; i >= 0; --i) {
      const char b = static_cast<char>((n >> (8 * i)) & 0xff);
      buf.write(&b, 1);
    }
  }
  pk.pack_str_body(s.data(), n);
}

void PackValue(Packer& pk, msgpack::sbuffer& buf, const Pair& p) {
  switch (p.kind) {
    case 0:
      PackStrAs(pk, buf, p.str, 0);
      return;
    case 1:
      PackStrAs(pk, buf, p.str, 1);
      return;
    case 2:
      PackStrAs(pk, buf, p.str, 2);
      return;
    case 3:
      pk.pack_uint64(static_cast<uint64_t>(p.num));
      return;
    case 4:
      pk.pack_int64(p.num);  // int 64 even for a non-negative value
      return;
    case 5:
      pk.pack_fix_int8(static_cast<int8_t>(p.num));
      return;
    case 6:
      pk.pack_int16(static_cast<int16_t>(p.num));
      return;
    case 7:
      pk.pack_nil();
      return;
    case 8:
      pk.pack_true();
      return;
    case 9:
      pk.pack_bin(static_cast<uint32_t>(p.str.size()));
      pk.pack_bin_body(p.str.data(), static_cast<uint32_t>(p.str.size()));
      return;
    case 10:
      pk.pack_array(1);
      pk.pack_uint64(1);
      return;
    default:
      pk.pack_uint32(static_cast<uint32_t>(p.num));
      return;
  }
}

std::string Body(const std::vector<Pair>& pairs, bool with_float, bool map16) {
  msgpack::sbuffer buf;
  Packer pk(buf);
  const auto n = static_cast<uint32_t>(pairs.size() + (with_float ? 1 : 0));
  if (map16) {
    const char m[3] = {static_cast<char>(0xde), static_cast<char>(n >> 8),
                       static_cast<char>(n & 0xff)};
    buf.write(m, 3);
  } else {
    pk.pack_map(n);
  }
  for (const Pair& p : pairs) {
    if (p.key_is_uint) {
      pk.pack_uint64(7);
    } else {
      PackStrAs(pk, buf, p.key, 0);
    }
    PackValue(pk, buf, p);
  }
  if (with_float) {
    PackStrAs(pk, buf, "zz-float", 0);
    pk.pack_double(0.5);
  }
  return std::string(buf.data(), buf.size());
}

std::string Describe(const DecodeResult& r) {
  std::string s = r.status.ToString();
  s += " id=" + std::to_string(static_cast<int>(r.id.kind)) + ":" +
       std::to_string(r.id.uint_value) + ":" + std::string(r.id.str_value);
  if (r.status.ok()) {
    const Request& q = r.request;
    s += " op=" + std::string(OpName(q.op)) + " list=" + std::string(q.list);
    s += " date=" + (q.date ? std::to_string(q.date->packed) : std::string("-"));
    s += " title=" + (q.title ? std::string(*q.title) : std::string("-"));
    s += " entry_id=" + std::to_string(q.entry_id) + " rid=" + std::string(q.rid);
    s += " reqid=" + std::to_string(static_cast<int>(q.id.kind)) + ":" +
         std::to_string(q.id.uint_value) + ":" + std::string(q.id.str_value);
  }
  return s;
}

TEST(FastDecode, SameResultAsTheGeneralParser) {
  std::mt19937_64 rng(18);
  const std::vector<std::string> keys = {"op",       "id",  "list", "date", "title",
                                         "entry_id", "rid", "x",    "opx",  "lis"};
  const std::vector<std::string> ops = {"add_entry", "entries", "update_entry", "delete_entry",
                                        "ping",      "locate",  "stats",        "bogus"};
  const std::vector<std::string> strs = {"",        "l1",       "2026-01-05",          "2026-02-30",
                                         "a title", "\xff\xfe", std::string(300, 'x'), "r-1"};
  int fast_ok = 0;
  for (int iter = 0; iter < 20000; ++iter) {
    std::vector<Pair> pairs;
    // Mostly well-formed requests, with some noise.
    const std::string& op = ops[rng() % ops.size()];
    if (rng() % 10 != 0) pairs.push_back({"op", false, 0, op, 0});
    if (rng() % 4 != 0) {
      Pair id{"id", false, static_cast<int>(rng() % 12), "abc",
              static_cast<int64_t>(rng() % 300) - 40};
      pairs.push_back(id);
    }
    if (rng() % 8 != 0) pairs.push_back({"list", false, 0, "list-" + std::to_string(rng() % 9), 0});
    if (rng() % 3 != 0)
      pairs.push_back({"date", false, 0, rng() % 6 ? "2026-03-04" : "2026-13-01", 0});
    if (rng() % 3 != 0) pairs.push_back({"title", false, 0, "t" + std::to_string(rng()), 0});
    if (rng() % 3 != 0)
      pairs.push_back({"entry_id", false, 3, "", static_cast<int64_t>(rng() % 50)});
    const int noise = static_cast<int>(rng() % 4);
    for (int i = 0; i < noise; ++i) {
      Pair p;
      p.key = keys[rng() % keys.size()];
      p.key_is_uint = rng() % 30 == 0;
      p.kind = static_cast<int>(rng() % 12);
      p.str = strs[rng() % strs.size()];
      p.num = static_cast<int64_t>(rng() % 200000) - 100000;
      pairs.push_back(p);
    }
    std::shuffle(pairs.begin(), pairs.end(), rng);
    const bool map16 = rng() % 5 == 0;
    const std::string plain = Body(pairs, false, map16);
    const std::string general = Body(pairs, true, map16);
    const std::string a = Describe(DecodeRequest(plain));
    const std::string b = Describe(DecodeRequest(general));
    ASSERT_EQ(a, b) << "iteration " << iter;
    if (DecodeRequest(plain).status.ok()) ++fast_ok;
    // Cut short, or with a trailing byte: the same answer as the general parser's.
    if (plain.size() > 1) {
      const std::string cut = plain.substr(0, plain.size() - 1 - rng() % (plain.size() - 1));
      ASSERT_FALSE(DecodeRequest(cut).status.ok()) << "iteration " << iter;
      ASSERT_FALSE(DecodeRequest(plain + "\x01").status.ok()) << "iteration " << iter;
    }
  }
  EXPECT_GT(fast_ok, 1000);  // the generator does make valid requests
}

TEST(FastDecode, ViewsPointIntoTheBody) {
  msgpack::sbuffer buf;
  Packer pk(buf);
  pk.pack_map(5);
  for (const char* kv : {"op", "add_entry", "id", "x-1", "list", "groceries", "date", "2026-01-02",
                         "title", "milk"}) {
    pk.pack_str(static_cast<uint32_t>(strlen(kv)));
    pk.pack_str_body(kv, static_cast<uint32_t>(strlen(kv)));
  }
  const std::string body(buf.data(), buf.size());
  const DecodeResult r = DecodeRequest(body);
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_EQ(r.request.op, Op::kAddEntry);
  EXPECT_EQ(r.request.list, "groceries");
  EXPECT_EQ(r.request.id.str_value, "x-1");
  EXPECT_EQ(*r.request.title, "milk");
  EXPECT_GE(r.request.list.data(), body.data());
  EXPECT_LT(r.request.list.data(), body.data() + body.size());
}

}  // namespace
}  // namespace todo::protocol
