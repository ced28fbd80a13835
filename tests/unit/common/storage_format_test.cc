#include "common/storage_format.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace todo::storage {
namespace {

// LevelDB's default comparator: memcmp, then length.
struct BytewiseLess {
  bool operator()(const std::string& a, const std::string& b) const {
    int c = std::memcmp(a.data(), b.data(), std::min(a.size(), b.size()));
    return c != 0 ? c < 0 : a.size() < b.size();
  }
};
using FakeDb = std::map<std::string, std::string, BytewiseLess>;

// Names chosen to collide under a naive "name/id" or "name\0id" layout.
std::vector<std::string> TrickyNames() {
  std::vector<std::string> names = {"a",
                                    "ab",
                                    "abc",
                                    "a/",
                                    "a/b",
                                    "a/1",
                                    "/",
                                    "//",
                                    std::string("a\0", 2),
                                    std::string("\0", 1),
                                    std::string("\0\0", 2),
                                    std::string("a\0b", 3),
                                    std::string("a\x01", 2),
                                    std::string("a\x02", 2),
                                    "\xff",
                                    "\xff\xff",
                                    "a\xff",
                                    std::string(255, 'z'),
                                    std::string(255, '\xff'),
                                    std::string(254, 'z'),
                                    "b",
                                    std::string(1, '\x01'),
                                    std::string(1, '\x02'),
                                    "\x09",
                                    "\x0a",
                                    std::string("\x01\x00", 2)};
  return names;
}

const uint64_t kIds[] = {1, 2, 255, 256, 65536, uint64_t{1} << 32, UINT64_MAX - 2, UINT64_MAX - 1};

TEST(StorageKeyTest, Layout) {
  EXPECT_EQ(MetaKey("ab"), std::string("\x02"
                                       "ab\x00",
                                       4));
  EXPECT_EQ(EntryKey("ab", 0x0102030405060708ULL),
            std::string("\x02"
                        "ab\x01\x01\x02\x03\x04\x05\x06\x07\x08",
                        12));
  EXPECT_EQ(ListRangeBegin("ab"), std::string("\x02"
                                              "ab\x00",
                                              4));
  EXPECT_EQ(ListRangeEnd("ab"), std::string("\x02"
                                            "ab\x02",
                                            4));
}

TEST(StorageKeyTest, NoTwoKeysCollideAndRangesHoldExactlyOneList) {
  FakeDb db;
  size_t written = 0;
  for (const std::string& name : TrickyNames()) {
    db[MetaKey(name)] = "meta:" + name;
    ++written;
    for (uint64_t id : kIds) {
      db[EntryKey(name, id)] = "entry:" + name;
      ++written;
    }
  }
  ASSERT_EQ(db.size(), written) << "two keys collided";
  for (const std::string& name : TrickyNames()) {
    auto begin = db.lower_bound(ListRangeBegin(name));
    auto end = db.lower_bound(ListRangeEnd(name));
    std::vector<std::string> keys;
    for (auto it = begin; it != end; ++it) {
      auto parsed = ParseKey(it->first);
      ASSERT_TRUE(parsed.has_value());
      ASSERT_EQ(parsed->list, name);
      keys.push_back(it->first);
    }
    // The meta key first, then the entries ascending by id.
    std::vector<std::string> want = {MetaKey(name)};
    for (uint64_t id : kIds) want.push_back(EntryKey(name, id));
    EXPECT_EQ(keys, want);
  }
}

TEST(StorageKeyTest, ParseKeyRoundTrips) {
  for (const std::string& name : TrickyNames()) {
    std::string meta_key = MetaKey(name);  // ParsedKey points into it
    auto meta = ParseKey(meta_key);
    ASSERT_TRUE(meta.has_value());
    EXPECT_EQ(meta->list, name);
    EXPECT_TRUE(meta->is_meta);
    for (uint64_t id : kIds) {
      std::string key = EntryKey(name, id);
      auto e = ParseKey(key);
      ASSERT_TRUE(e.has_value());
      EXPECT_EQ(e->list, name);
      EXPECT_FALSE(e->is_meta);
      EXPECT_EQ(e->id, id);
    }
  }
}

TEST(StorageKeyTest, ParseKeyRejectsGarbage) {
  std::string meta = MetaKey("list");
  std::string entry = EntryKey("list", 7);
  for (const std::string& bad : {
           std::string(), std::string(1, '\0'),  // zero-length name
           std::string("\x00\x00", 2),           // zero-length name with a tag
           std::string("\x04", 1),               // length only
           std::string("\x04lis", 4),            // name cut short
           std::string("\x04list", 5),           // no tag
           std::string("\x04list\x02", 6),       // unknown tag
           std::string("\x04list\xff", 6),       // unknown tag
           meta + '\0',                          // meta with extra bytes
           entry.substr(0, entry.size() - 1),    // id of 7 bytes
           entry + '\0',                         // id of 9 bytes
           std::string("\x04list\x01", 6),       // entry without id
           EntryKey("list", 0),                  // ids start at 1
           std::string("\xff", 1) + "short",     // length beyond the key
       }) {
    EXPECT_FALSE(ParseKey(bad).has_value()) << testing::PrintToString(bad);
  }
}

TEST(StorageValueTest, EntryRoundTrip) {
  std::string euro_title;
  for (int i = 0; i < 341; ++i) euro_title += "\xe2\x82\xac";  // 1023 bytes
  for (const std::string& title :
       {std::string("t"), std::string("milk"), std::string("nul\0inside", 10),
        std::string(1024, 'x'), euro_title}) {
    for (const char* date : {"0001-01-01", "2024-02-29", "9999-12-31"}) {
      Date d = *ParseDate(date);
      std::string value = EncodeEntryValue(d, title);
      EXPECT_EQ(value.size(), 5 + title.size());
      EXPECT_EQ(static_cast<uint8_t>(value[0]), kRecordVersion);
      auto decoded = DecodeEntryValue(value);
      ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
      EXPECT_EQ(decoded->date, d);
      EXPECT_EQ(decoded->title, title);
    }
  }
}

TEST(StorageValueTest, EntryRejectsCorruptValues) {
  Date d = *ParseDate("2026-05-17");
  std::string good = EncodeEntryValue(d, "title");
  auto with_date = [&](uint32_t packed) {
    std::string v = good;
    for (int i = 0; i < 4; ++i) v[1 + i] = static_cast<char>(packed >> (8 * (3 - i)));
    return v;
  };
  std::string wrong_version = good;
  wrong_version[0] = 2;
  std::string zero_version = good;
  zero_version[0] = 0;
  for (const std::string& bad : {
           std::string(),
           good.substr(0, 1),
           good.substr(0, 5),  // no title (titles are 1-1024 bytes)
           wrong_version,
           zero_version,
           with_date(20260229),
           with_date(0),
           with_date(100000101),  // year 10000
           with_date(20261301),
           with_date(0xffffffff),
           EncodeEntryValue(d, "bad \xff utf8"),
           EncodeEntryValue(d, "\xed\xa0\x80"),
           EncodeEntryValue(d, std::string(1025, 'x')),
       }) {
    auto r = DecodeEntryValue(bad);
    EXPECT_FALSE(r.ok()) << testing::PrintToString(bad);
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), ErrorCode::kInternal);
    }
  }
}

TEST(StorageValueTest, MetaRoundTrip) {
  for (uint64_t next : {uint64_t{1}, uint64_t{256}, uint64_t{1} << 40, UINT64_MAX - 1}) {
    std::string value = EncodeMetaValue(next);
    EXPECT_EQ(value.size(), 9u);
    auto decoded = DecodeMetaValue(value);
    ASSERT_TRUE(decoded.ok());
    EXPECT_EQ(*decoded, next);
  }
  // 0 and the largest uint64 are never a real next id (ids run from 1, and
  // max + 1 must not wrap): a counter holding them is corrupt.
  EXPECT_FALSE(DecodeMetaValue(EncodeMetaValue(0)).ok());
  EXPECT_FALSE(DecodeMetaValue(EncodeMetaValue(UINT64_MAX)).ok());
  EXPECT_FALSE(ParseKey(EntryKey("l", UINT64_MAX)).has_value());
  EXPECT_EQ(EncodeMetaValue(0x0102030405060708ULL),
            std::string("\x01\x01\x02\x03\x04\x05\x06\x07\x08", 9));
}

TEST(StorageValueTest, MetaRejectsCorruptValues) {
  std::string good = EncodeMetaValue(5);
  std::string wrong_version = good;
  wrong_version[0] = 2;
  for (const std::string& bad :
       {std::string(), good.substr(0, 8), good + '\0', wrong_version, std::string(9, '\0')}) {
    auto r = DecodeMetaValue(bad);
    EXPECT_FALSE(r.ok()) << testing::PrintToString(bad);
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), ErrorCode::kInternal);
    }
  }
}

// --- rid records ---

TEST(RidKeyTest, Layout) {
  EXPECT_EQ(RidKey("ab", "r1"), std::string("\x02"
                                            "ab\x02r1",
                                            6));
  const std::string expiry = RidExpiryKey(0x0102030405060708ULL, "ab", "r1");
  EXPECT_EQ(expiry, std::string("\x00rid-expiry\x01\x02\x03\x04\x05\x06\x07\x08\x02"
                                "abr1",
                                24));
  EXPECT_EQ(RidExpiryRangeBegin(), std::string("\x00rid-expiry", 11));
  EXPECT_EQ(RidExpiryRangeEnd(), std::string("\x00rid-expirz", 11));
  EXPECT_EQ(RidExpirySeekKey(1), std::string("\x00rid-expiry\0\0\0\0\0\0\0\x01", 19));
  EXPECT_EQ(RidCountKey(), std::string("\x00rid-count", 10));
  auto parsed = ParseRidExpiryKey(expiry);
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(parsed->created_ms, 0x0102030405060708ULL);
  EXPECT_EQ(parsed->list, "ab");
  EXPECT_EQ(parsed->rid, "r1");
}

TEST(RidKeyTest, RecordsAreOutsideEveryListRangeAndCollideWithNothing) {
  FakeDb db;
  size_t written = 0;
  const std::vector<std::string> rids = {"r", std::string("\0", 1), "\xff", std::string(64, 'x'),
                                         std::string(64, '\xff')};
  for (const std::string& name : TrickyNames()) {
    db[MetaKey(name)] = "meta";
    db[EntryKey(name, 1)] = "entry";
    db[EntryKey(name, UINT64_MAX - 1)] = "entry";
    written += 3;
    for (const std::string& rid : rids) {
      db[RidKey(name, rid)] = "rid:" + name;
      db[RidExpiryKey(7, name, rid)] = "expiry";
      written += 2;
    }
  }
  db[RidCountKey()] = "count";
  ++written;
  ASSERT_EQ(db.size(), written) << "two keys collided";
  for (const std::string& name : TrickyNames()) {
    // A list's range holds its meta and entries only, never a rid record:
    // loading a list reads none.
    auto begin = db.lower_bound(ListRangeBegin(name));
    auto end = db.lower_bound(ListRangeEnd(name));
    size_t n = 0;
    for (auto it = begin; it != end; ++it, ++n) {
      ASSERT_TRUE(ParseKey(it->first).has_value()) << testing::PrintToString(it->first);
    }
    EXPECT_EQ(n, 3u);
    // Its rid records follow its range directly, before any other list's.
    auto rid = db.find(RidKey(name, "r"));
    ASSERT_NE(rid, db.end());
    EXPECT_FALSE(ParseKey(rid->first).has_value());
  }
  // The expiry index holds exactly the expiry keys, and no list key starts
  // with 0x00.
  size_t expiry = 0;
  for (auto it = db.lower_bound(RidExpiryRangeBegin()); it != db.lower_bound(RidExpiryRangeEnd());
       ++it, ++expiry) {
    auto p = ParseRidExpiryKey(it->first);
    ASSERT_TRUE(p.has_value());
    EXPECT_EQ(it->second, "expiry");
    EXPECT_EQ(db.count(RidKey(p->list, p->rid)), 1u);
  }
  EXPECT_EQ(expiry, TrickyNames().size() * rids.size());
}

TEST(RidKeyTest, ExpiryKeysSortByCreationTime) {
  std::vector<std::string> keys = {RidExpiryKey(300, "a", "x"), RidExpiryKey(2, "zzz", "y"),
                                   RidExpiryKey(UINT64_MAX, "a", "a"),
                                   RidExpiryKey(256, "\xff", "z")};
  std::sort(keys.begin(), keys.end(), BytewiseLess());
  std::vector<uint64_t> times;
  for (const auto& k : keys) times.push_back(ParseRidExpiryKey(k)->created_ms);
  EXPECT_EQ(times, (std::vector<uint64_t>{2, 256, 300, UINT64_MAX}));
  // Everything created before t sorts before the seek key of t.
  EXPECT_TRUE(BytewiseLess()(RidExpiryKey(299, std::string(255, '\xff'), std::string(64, '\xff')),
                             RidExpirySeekKey(300)));
  EXPECT_FALSE(BytewiseLess()(RidExpiryKey(300, "a", "a"), RidExpirySeekKey(300)));
}

TEST(RidKeyTest, ParseExpiryKeyRejectsGarbage) {
  const std::string good = RidExpiryKey(5, "list", "rid");
  for (const std::string& bad :
       {std::string(), RidExpiryRangeBegin(), good.substr(0, 15),  // time cut short
        RidExpirySeekKey(5),                                       // no list
        RidExpirySeekKey(5) + std::string("\0", 1) + "r",          // empty list name
        RidExpirySeekKey(5) + "\x04list",                          // no rid
        RidExpirySeekKey(5) + "\x09list",                          // name beyond the key
        RidExpiryKey(5, "l", std::string(65, 'r')),                // rid too long
        std::string("\x00rid-count", 10), EntryKey("list", 1)}) {
    EXPECT_FALSE(ParseRidExpiryKey(bad).has_value()) << testing::PrintToString(bad);
  }
}

// Requests as the decoder gives them.
protocol::Request AddRequest(std::string_view title) {
  protocol::Request r;
  r.op = protocol::Op::kAddEntry;
  r.list = "l";
  r.date = ParseDate("2024-02-29");
  r.title = title;
  r.rid = "rid";
  return r;
}

protocol::Request UpdateRequest(uint64_t entry_id, std::optional<std::string_view> date,
                                std::optional<std::string_view> title) {
  protocol::Request r;
  r.op = protocol::Op::kUpdateEntry;
  r.list = "l";
  r.entry_id = entry_id;
  if (date) r.date = ParseDate(*date);
  r.title = title;
  r.rid = "rid";
  return r;
}

protocol::Request DeleteRequest(uint64_t entry_id) {
  protocol::Request r;
  r.op = protocol::Op::kDeleteEntry;
  r.list = "l";
  r.entry_id = entry_id;
  r.rid = "rid";
  return r;
}

// `a` decoded, `b` as encoded.
void ExpectSameRecord(const RidRecord& a, const RidRecord& b) {
  EXPECT_EQ(a.op, b.op);
  EXPECT_EQ(a.hashed, b.hashed);
  if (b.hashed) {
    // Version 2 keeps the arguments' hash only.
    EXPECT_EQ(a.args_hash, b.args_hash);
    EXPECT_EQ(a.created_ms, 0u);
    EXPECT_EQ(a.entry_id, 0u);
    EXPECT_FALSE(a.date.has_value());
    EXPECT_FALSE(a.title.has_value());
  } else {
    EXPECT_EQ(a.created_ms, b.created_ms);
    EXPECT_EQ(a.entry_id, b.entry_id);
    EXPECT_EQ(a.date, b.date);
    EXPECT_EQ(a.title, b.title);
  }
  EXPECT_EQ(a.outcome, b.outcome);
  EXPECT_EQ(a.new_id, b.new_id);
  if (a.outcome == RidOutcome::kUpdated) {
    EXPECT_EQ(a.result_date, b.result_date);
    EXPECT_EQ(a.result_title, b.result_title);
  }
}

// A record as the version 1 layout stored it (arguments as sent).
RidRecord V1(RidRecord r) {
  r.hashed = false;
  r.args_hash = 0;
  return r;
}

std::vector<RidRecord> SampleRecords2(const std::string& long_title) {
  std::vector<RidRecord> out;
  RidRecord add = RidRecordFor(AddRequest(long_title), 1'700'000'000'123);
  add.outcome = RidOutcome::kAdded;
  add.new_id = UINT64_MAX - 1;
  out.push_back(add);
  for (auto [date, title] : {std::pair<const char*, const char*>{"2026-01-01", nullptr},
                             {nullptr, "new title"},
                             {"9999-12-31", "\xe2\x82\xac"}}) {
    RidRecord upd =
        RidRecordFor(UpdateRequest(3, date ? std::optional<std::string_view>(date) : std::nullopt,
                                   title ? std::optional<std::string_view>(title) : std::nullopt),
                     0);
    upd.outcome = RidOutcome::kUpdated;
    upd.result_date = *ParseDate("0001-01-01");
    upd.result_title = long_title;
    out.push_back(upd);
    upd.outcome = RidOutcome::kNotFound;
    out.push_back(upd);
  }
  RidRecord del = RidRecordFor(DeleteRequest(0), UINT64_MAX);
  del.outcome = RidOutcome::kDeleted;
  out.push_back(del);
  del.outcome = RidOutcome::kNotDeleted;
  out.push_back(del);
  return out;
}

// Version 2 records (RidRecordFor's), or their version 1 twins.
std::vector<RidRecord> SampleRecords(const std::string& long_title, bool v1 = false) {
  std::vector<RidRecord> out = SampleRecords2(long_title);
  if (v1) {
    for (RidRecord& r : out) r = V1(r);
  }
  return out;
}

TEST(RidValueTest, RoundTripsEveryOpAndOutcome) {
  const std::string long_title(1024, 't');
  for (bool v1 : {false, true}) {
    for (const RidRecord& want : SampleRecords(long_title, v1)) {
      std::string value;
      RidValueTo(&value, want);
      EXPECT_EQ(static_cast<uint8_t>(value[0]), v1 ? 1 : 2);
      auto got = DecodeRidValue(value);
      ASSERT_TRUE(got.ok()) << got.status().ToString();
      ExpectSameRecord(*got, want);
      // Decoding points into the value; encoding it again gives the same bytes.
      std::string again;
      RidValueTo(&again, *got);
      EXPECT_EQ(again, value);
    }
  }
}

TEST(RidValueTest, Version2StoresTheArgumentsHashAndTheOutcome) {
  RidRecord r = RidRecordFor(AddRequest("milk"), 42);
  r.outcome = RidOutcome::kAdded;
  r.new_id = 7;
  // The hash of what version 1 stored: op, date, title.
  EXPECT_EQ(r.args_hash, Murmur3x64_128(std::string("\x01"
                                                    "\x01\x34\xd7\x65"
                                                    "\x00\x04milk",
                                                    11),
                                        1)
                             .h1);
  std::string v;
  RidValueTo(&v, r);
  std::string want("\x02\x01", 2);  // version, op
  for (int i = 7; i >= 0; --i) want.push_back(static_cast<char>(r.args_hash >> (8 * i)));
  want += std::string("\x01\0\0\0\0\0\0\0\x07", 9);  // added, id 7
  EXPECT_EQ(v, want);
  EXPECT_EQ(v.size(), 19u);
}

TEST(RidValueTest, Murmur3MatchesTheReferenceAndTheKeyHashCoversListAndRid) {
  // MurmurHash3_x64_128 (Appleby's reference), seed 0.
  EXPECT_EQ(Murmur3x64_128("", 0), (RidHash{0, 0}));
  const RidHash fox = Murmur3x64_128("The quick brown fox jumps over the lazy dog", 0);
  EXPECT_EQ(fox.h1, 0xe34bbc7bbc071b6cULL);
  EXPECT_EQ(fox.h2, 0x7a433ca9c49a9347ULL);
  // Every tail length hashes differently.
  std::set<uint64_t> seen;
  for (size_t n = 0; n <= 33; ++n) seen.insert(Murmur3x64_128(std::string(n, 'a'), 0).h1);
  EXPECT_EQ(seen.size(), 34u);
  EXPECT_NE(RidKeyHash("ab", "c"), RidKeyHash("a", "bc"));
  EXPECT_EQ(RidKeyHash("l", "r"), RidKeyHash("l", "r"));
}

TEST(RidKeyTest, Version2KeysSortByDropTimeAndStayInTheirRange) {
  const RidHash h{0x0102030405060708ULL, 0x1112131415161718ULL};
  EXPECT_EQ(RidRecordKey({}, 0x2122232425262728ULL, h),
            std::string("\x00rids"
                        "\x21\x22\x23\x24\x25\x26\x27\x28"
                        "\x01\x02\x03\x04\x05\x06\x07\x08"
                        "\x11\x12\x13\x14\x15\x16\x17\x18",
                        29));
  const std::string ns = PartitionPrefix(3);
  for (std::string_view n : {std::string_view(), std::string_view(ns)}) {
    const std::string k = RidRecordKey(n, 500, h);
    auto p = ParseRidRecordKey(n, k);
    ASSERT_TRUE(p.has_value());
    EXPECT_EQ(p->drop_at, 500u);
    EXPECT_EQ(p->hash, h);
    EXPECT_TRUE(BytewiseLess()(RidRecordRangeBegin(n), k));
    EXPECT_TRUE(BytewiseLess()(k, RidRecordRangeEnd(n)));
    EXPECT_TRUE(BytewiseLess()(RidRecordSeekKey(n, 500), k));
    EXPECT_TRUE(BytewiseLess()(k, RidRecordSeekKey(n, 501)));
    EXPECT_TRUE(BytewiseLess()(RidRecordKey(n, 499, RidHash{~0ULL, ~0ULL}), k));
    // Not a key of another range.
    EXPECT_FALSE(ParseRidExpiryKey(n, k).has_value());
    EXPECT_FALSE(ParseKey(k).has_value());
    EXPECT_FALSE(ParseRidRecordKey(n, k.substr(0, k.size() - 1)).has_value());
    EXPECT_FALSE(ParseRidRecordKey(n, k + "x").has_value());
  }
  EXPECT_FALSE(ParseRidRecordKey(ns, RidRecordKey({}, 500, h)).has_value());
  // Apart from the version 1 index and count, and from the commit counter.
  EXPECT_TRUE(BytewiseLess()(RidExpiryRangeEnd(), RidRecordRangeBegin()));
  EXPECT_TRUE(BytewiseLess()(RidCountKey(), RidRecordRangeBegin()));
  EXPECT_TRUE(BytewiseLess()(CommitKey(), RidRecordRangeBegin()));
}

TEST(RidKeyTest, ARecordsBucketIsDueBetweenOneAndTwoTtlsAfterItWasWritten) {
  const uint64_t ttl = 1000;
  for (uint64_t now :
       {uint64_t{0}, uint64_t{1}, uint64_t{999}, uint64_t{1000}, uint64_t{1'700'000'000'123}}) {
    const uint64_t d = RidDropAtFor(now, ttl);
    EXPECT_EQ(d % ttl, 0u);
    EXPECT_GE(d, now + ttl) << now;
    EXPECT_LE(d, now + 2 * ttl) << now;
  }
  EXPECT_EQ(RidDropAtFor(1'000'000, 1000), 1'002'000u);
  EXPECT_EQ(RidDropAtFor(1'000'999, 1000), 1'002'000u);
  EXPECT_EQ(RidDropAtFor(UINT64_MAX - 5, 1000), UINT64_MAX);
}

TEST(RidValueTest, ArgumentsAreStoredExactly) {
  RidRecord r = V1(RidRecordFor(AddRequest("milk"), 42));
  r.outcome = RidOutcome::kAdded;
  r.new_id = 7;
  std::string v;
  RidValueTo(&v, r);
  EXPECT_EQ(v, std::string("\x01\x01\0\0\0\0\0\0\0\x2a"  // version, op, created
                           "\x01\x34\xd7\x65"            // 20240229
                           "\x00\x04milk"                // the title
                           "\x01\0\0\0\0\0\0\0\x07",     // added, id 7
                           29));
}

TEST(RidValueTest, SameRequestComparesOpAndEveryArgument) {
  for (bool v1 : {false, true}) {
    SCOPED_TRACE(v1 ? "version 1" : "version 2");
    auto RidRecordFor = [&](const protocol::Request& r, uint64_t t) {
      RidRecord rec = storage::RidRecordFor(r, t);
      return v1 ? V1(rec) : rec;
    };
    const RidRecord add = RidRecordFor(AddRequest("milk"), 1);
    EXPECT_TRUE(SameRequest(add, AddRequest("milk")));
    EXPECT_FALSE(SameRequest(add, AddRequest("milk ")));
    protocol::Request other_date = AddRequest("milk");
    other_date.date = ParseDate("2024-03-01");
    EXPECT_FALSE(SameRequest(add, other_date));
    EXPECT_FALSE(SameRequest(add, DeleteRequest(1)));
    // The list and the rid are the key's, not compared here; nor is the id.
    protocol::Request other_id = AddRequest("milk");
    other_id.id = protocol::RequestId::Uint(99);
    EXPECT_TRUE(SameRequest(add, other_id));

    const RidRecord upd = RidRecordFor(UpdateRequest(3, "2026-01-01", std::nullopt), 1);
    EXPECT_TRUE(SameRequest(upd, UpdateRequest(3, "2026-01-01", std::nullopt)));
    EXPECT_FALSE(SameRequest(upd, UpdateRequest(4, "2026-01-01", std::nullopt)));
    EXPECT_FALSE(SameRequest(upd, UpdateRequest(3, "2026-01-02", std::nullopt)));
    // A key given or not is an argument too.
    EXPECT_FALSE(SameRequest(upd, UpdateRequest(3, "2026-01-01", "t")));
    const RidRecord upd_title = RidRecordFor(UpdateRequest(3, std::nullopt, "t"), 1);
    EXPECT_FALSE(SameRequest(upd_title, UpdateRequest(3, "2026-01-01", "t")));
    EXPECT_TRUE(SameRequest(upd_title, UpdateRequest(3, std::nullopt, "t")));

    const RidRecord del = RidRecordFor(DeleteRequest(5), 1);
    EXPECT_TRUE(SameRequest(del, DeleteRequest(5)));
    EXPECT_FALSE(SameRequest(del, DeleteRequest(6)));
    EXPECT_FALSE(SameRequest(del, UpdateRequest(5, std::nullopt, "t")));
  }
}

TEST(RidValueTest, RejectsCorruptValues) {
  const std::string long_title(1024, 't');
  std::vector<std::string> bad = {std::string(), std::string("\x01", 1),
                                  std::string("\x02\x01", 2)};
  for (bool v1 : {false, true}) {
    for (const RidRecord& r : SampleRecords(long_title, v1)) {
      std::string v;
      RidValueTo(&v, r);
      for (size_t cut = 0; cut < v.size(); ++cut) bad.push_back(v.substr(0, cut));  // truncated
      bad.push_back(v + '\0');                                                      // trailing
      std::string wrong_op = v;
      wrong_op[1] = 9;
      bad.push_back(wrong_op);
      wrong_op[1] = 0;
      bad.push_back(wrong_op);
      std::string wrong_version = v;
      wrong_version[0] = 3;
      bad.push_back(wrong_version);
    }
  }
  // An outcome that doesn't belong to the op, and one that doesn't exist.
  RidRecord add = RidRecordFor(AddRequest("milk"), 1);
  for (RidOutcome o :
       {RidOutcome::kUpdated, RidOutcome::kNotFound, RidOutcome::kDeleted, RidOutcome::kNotDeleted,
        static_cast<RidOutcome>(0), static_cast<RidOutcome>(6)}) {
    add.outcome = o;
    std::string v;
    RidValueTo(&v, add);
    bad.push_back(v);
  }
  RidRecord del = RidRecordFor(DeleteRequest(1), 1);
  del.outcome = RidOutcome::kAdded;
  std::string v;
  RidValueTo(&v, del);
  bad.push_back(v);
  // Version 1: a bad date, a bad title, an update with neither, an added id
  // of 0 (and the same id in version 2).
  RidRecord add2 = RidRecordFor(AddRequest("milk"), 1);
  add2.outcome = RidOutcome::kAdded;
  add2.new_id = 0;
  RidValueTo(&v, add2);
  bad.push_back(v);
  add = V1(RidRecordFor(AddRequest("bad \xff"), 1));
  add.outcome = RidOutcome::kAdded;
  add.new_id = 1;
  RidValueTo(&v, add);
  bad.push_back(v);
  add.title = "ok";
  add.date = Date{20260230};
  RidValueTo(&v, add);
  bad.push_back(v);
  add.date = ParseDate("2026-01-01");
  add.new_id = 0;
  RidValueTo(&v, add);
  bad.push_back(v);
  RidRecord upd = V1(RidRecordFor(UpdateRequest(1, std::nullopt, std::nullopt), 1));
  upd.outcome = RidOutcome::kNotFound;
  RidValueTo(&v, upd);
  bad.push_back(v);
  for (const std::string& b : bad) {
    auto r = DecodeRidValue(b);
    EXPECT_FALSE(r.ok()) << testing::PrintToString(b);
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), ErrorCode::kInternal);
    }
  }
}

TEST(RidValueTest, CountRoundTrip) {
  for (uint64_t n : {uint64_t{0}, uint64_t{1}, UINT64_MAX}) {
    auto d = DecodeRidCount(EncodeRidCount(n));
    ASSERT_TRUE(d.ok());
    EXPECT_EQ(*d, n);
  }
  EXPECT_FALSE(DecodeRidCount("").ok());
  EXPECT_FALSE(DecodeRidCount(EncodeRidCount(1) + "x").ok());
  EXPECT_FALSE(DecodeRidCount(std::string(9, '\0')).ok());
}

TEST(ManifestTest, RoundTrip) {
  for (uint32_t shards : {1u, 4u, 1024u}) {
    Manifest m;
    m.shards = shards;
    std::string text = FormatManifest(m);
    auto parsed = ParseManifest(text);
    ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
    EXPECT_EQ(parsed->format, kFormatVersion);
    EXPECT_EQ(parsed->shards, shards);
  }
  Manifest four;
  four.shards = 4;
  EXPECT_EQ(FormatManifest(four), "todo-node data directory\nformat 1\nshards 4\n");
}

TEST(ManifestTest, ReplicatedDirNamesItsClusterNodePartitionsAndDataId) {
  Manifest m;
  m.format = kReplicatedFormatVersion;
  m.shards = 2;
  m.cluster = "todo";
  m.node = "n1";
  m.partitions = 256;
  m.data_id = "0123abcd";
  auto back = ParseManifest(FormatManifest(m));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->format, 2);
  EXPECT_EQ(back->cluster, "todo");
  EXPECT_EQ(back->node, "n1");
  EXPECT_EQ(back->partitions, 256u);
  EXPECT_EQ(back->data_id, "0123abcd");
  // A format 2 manifest without its cluster fields is refused.
  EXPECT_FALSE(ParseManifest("todo-node data directory\nformat 2\nshards 2\n").ok());
}

TEST(PartitionKeysTest, APartitionIsOneRangeWithItsMetaFirst) {
  EXPECT_EQ(PartitionPrefix(0x0102), std::string("\x01\x02"));
  EXPECT_EQ(PartitionRangeEnd(0x0102), std::string("\x01\x03"));
  EXPECT_EQ(PartitionRangeEnd(0xffff), std::string());
  const std::string ns = PartitionPrefix(7);
  for (const std::string& k :
       {MetaKey(ns, "a"), EntryKey("zz", 1), ListRangeBegin(ns, "b"), ListRangeEnd(ns, "b")}) {
    (void)k;
  }
  std::string key;
  EntryKeyTo(&key, ns, "bob", 5);
  EXPECT_EQ(key.substr(0, 2), ns);
  EXPECT_EQ(key.substr(2), EntryKey("bob", 5));
  EXPECT_GT(key, ns);  // the meta key comes first
  EXPECT_LT(key, PartitionRangeEnd(7));
  PartitionMeta m{5, 4, 1000, false};
  auto back = DecodePartitionMeta(EncodePartitionMeta(m));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, m);
  EXPECT_FALSE(DecodePartitionMeta("short").ok());
}

TEST(ManifestTest, ToleratesOrderBlankLinesAndMissingFinalNewline) {
  auto m = ParseManifest("todo-node data directory\n\nshards 8\nformat 1");
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->shards, 8u);
  EXPECT_EQ(m->format, 1);
  // Another format number parses; the node decides whether it can read it.
  auto future = ParseManifest("todo-node data directory\nformat 3\nshards 8\n");
  ASSERT_TRUE(future.ok());
  EXPECT_EQ(future->format, 3);
}

TEST(ManifestTest, RejectsCorruptManifests) {
  for (const char* bad : {
           "",
           "\n",
           "todo-node data directory\n",
           "todo-node data directory\nformat 1\n",
           "todo-node data directory\nshards 4\n",
           "something else\nformat 1\nshards 4\n",
           "format 1\nshards 4\ntodo-node data directory\n",
           " todo-node data directory\nformat 1\nshards 4\n",
           "todo-node data directory\r\nformat 1\r\nshards 4\r\n",
           "todo-node data directory\nformat 1\nshards 0\n",
           "todo-node data directory\nformat 1\nshards 1025\n",
           "todo-node data directory\nformat 1\nshards -4\n",
           "todo-node data directory\nformat 1\nshards +4\n",
           "todo-node data directory\nformat 1\nshards four\n",
           "todo-node data directory\nformat 1\nshards 4 \n",
           "todo-node data directory\nformat 1\nshards  4\n",
           "todo-node data directory\nformat 1\nshards 4x\n",
           "todo-node data directory\nformat 1\nshards 18446744073709551617\n",
           "todo-node data directory\nformat 1\nshards 4294967300\n",
           "todo-node data directory\nformat\nshards 4\n",
           "todo-node data directory\nformat one\nshards 4\n",
           // Regression: a format beyond int used to wrap (4294967297 -> 1).
           "todo-node data directory\nformat 4294967297\nshards 4\n",
           // Strict: each key once, no unknown keys (an edited MANIFEST is
           // refused, never half-read: "shards 1" then "shards 3" used to
           // mean 3).
           "todo-node data directory\nformat 1\nshards 1\nshards 3\n",
           "todo-node data directory\nformat 1\nshards 4\nshards 4\n",
           "todo-node data directory\nformat 1\nformat 1\nshards 4\n",
           "todo-node data directory\nformat 1\nshards 4\nx 1\n",
           "todo-node data directory\nformat 1\nshards 4\nShards 4\n",
           "todo-node data directory\nformat 1\nshards 4\nmode static\n",
           "todo-node data directory\ntodo-node data directory\nformat 1\nshards 4\n",
       }) {
    auto r = ParseManifest(bad);
    EXPECT_FALSE(r.ok()) << testing::PrintToString(std::string(bad));
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), ErrorCode::kInternal);
    }
  }
}

TEST(ManifestTest, ErrorsNameTheLineAndTheRule) {
  auto dup = ParseManifest("todo-node data directory\nformat 1\nshards 1\nshards 3\n");
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.status().message(), "manifest line 4: 'shards' given twice");
  auto unknown = ParseManifest("todo-node data directory\nformat 1\nshards 1\nreplicas 3\n");
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status().message(), "manifest line 4: unknown key 'replicas'");
  auto bad = ParseManifest("todo-node data directory\nformat 1\nshards 0\n");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "manifest line 3: shards must be a number 1-1024");
  auto missing = ParseManifest("todo-node data directory\nformat 1\n");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().message(), "manifest has no 'shards' line");
}

TEST(CommitCounterTest, KeyIsOutsideEveryListRange) {
  const std::string key = CommitKey();
  EXPECT_EQ(key, std::string(1, '\0'));
  EXPECT_FALSE(ParseKey(key).has_value());
  // Below the smallest list's range (a 1-byte name starting with 0x00).
  EXPECT_LT(key, ListRangeBegin(std::string(1, '\0')));
}

TEST(CommitCounterTest, ValueRoundTripsAndRejectsGarbage) {
  for (uint64_t n : {uint64_t{0}, uint64_t{1}, uint64_t{1} << 40, UINT64_MAX}) {
    auto d = DecodeCommitValue(EncodeCommitValue(n));
    ASSERT_TRUE(d.ok()) << n;
    EXPECT_EQ(*d, n);
  }
  for (std::string_view bad : {std::string_view(""), std::string_view("\x01\x00", 2),
                               std::string_view("\x02\0\0\0\0\0\0\0\x01", 9)}) {
    auto d = DecodeCommitValue(bad);
    ASSERT_FALSE(d.ok());
    EXPECT_EQ(d.status().code(), ErrorCode::kInternal);
  }
}

TEST(MetaJournalTest, RoundTripsAfterTheCounter) {
  std::string v = EncodeCommitValue(77);
  auto none = DecodeMetaJournal(v);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
  const std::vector<JournaledMeta> metas = {
      {0, PartitionMeta{1, 1, 1, true}},
      {5, PartitionMeta{3, 2, 1000000, false}},
      {300, PartitionMeta{UINT64_MAX, UINT64_MAX - 1, UINT64_MAX, true}},
      {0xffff, PartitionMeta{0, 0, 0, true}},
  };
  BeginMetaJournal(&v, metas.size());
  for (const auto& e : metas) AppendJournaledMeta(&v, e.partition, e.meta);
  auto back = DecodeMetaJournal(v);
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(*back, metas);
  // The counter reads the same with the journal after it.
  auto commit = DecodeCommitValue(v);
  ASSERT_TRUE(commit.ok());
  EXPECT_EQ(*commit, 77u);
  // A small journal is small: an entry of small numbers takes 5 bytes.
  std::string one = EncodeCommitValue(1);
  BeginMetaJournal(&one, 1);
  AppendJournaledMeta(&one, 7, PartitionMeta{2, 2, 100, true});
  EXPECT_EQ(one.size(), 9u + 2u + 5u);
}

TEST(MetaJournalTest, RejectsEveryMalformedJournal) {
  std::string good = EncodeCommitValue(3);
  BeginMetaJournal(&good, 2);
  AppendJournaledMeta(&good, 1, PartitionMeta{1, 1, 5, true});
  AppendJournaledMeta(&good, 2, PartitionMeta{1, 1, 6, true});
  ASSERT_TRUE(DecodeMetaJournal(good).ok());
  std::vector<std::string> bad;
  bad.push_back(good.substr(0, good.size() - 1));  // cut short
  bad.push_back(good + "x");                       // bytes left over
  std::string tag = good;
  tag[9] = 'K';  // not the journal's tag
  bad.push_back(tag);
  std::string count = good;
  count[10] = 3;  // more entries than there are
  bad.push_back(count);
  std::string order = EncodeCommitValue(3);  // partitions not ascending
  BeginMetaJournal(&order, 2);
  AppendJournaledMeta(&order, 2, PartitionMeta{});
  AppendJournaledMeta(&order, 2, PartitionMeta{});
  bad.push_back(order);
  std::string range = EncodeCommitValue(3);  // past the last partition
  BeginMetaJournal(&range, 1);
  AppendJournaledMeta(&range, 0x10000, PartitionMeta{});
  bad.push_back(range);
  std::string flag = EncodeCommitValue(3);  // complete neither 0 nor 1
  BeginMetaJournal(&flag, 1);
  AppendJournaledMeta(&flag, 1, PartitionMeta{});
  flag.back() = 2;
  bad.push_back(flag);
  std::string empty = EncodeCommitValue(3);  // no journal is written as none
  BeginMetaJournal(&empty, 0);
  bad.push_back(empty);
  std::string overlong = EncodeCommitValue(3);  // 1 as 0x81 0x00
  BeginMetaJournal(&overlong, 1);
  overlong.append("\x81\x00\x01\x01\x01\x01", 6);
  bad.push_back(overlong);
  std::string varint = EncodeCommitValue(3);  // a varint of 11 bytes
  BeginMetaJournal(&varint, 1);
  varint.append(10, '\xff');
  varint.append("\x01\x00\x00\x00\x01", 5);
  bad.push_back(varint);
  for (const std::string& b : bad) {
    auto d = DecodeMetaJournal(b);
    ASSERT_FALSE(d.ok()) << testing::PrintToString(b);
    EXPECT_EQ(d.status().code(), ErrorCode::kInternal);
    EXPECT_NE(d.status().message().find("malformed"), std::string::npos);
    EXPECT_FALSE(DecodeCommitValue(b).ok());
  }
}

TEST(CommitCounterTest, CommittedFileRoundTripsAndIsStrict) {
  EXPECT_EQ(FormatCommitted(42), "todo-node committed 42\n");
  for (uint64_t n : {uint64_t{0}, uint64_t{7}, UINT64_MAX}) {
    auto p = ParseCommitted(FormatCommitted(n));
    ASSERT_TRUE(p.ok()) << n;
    EXPECT_EQ(*p, n);
  }
  for (const char* bad :
       {"", "todo-node committed \n", "todo-node committed 5", "todo-node committed -5\n",
        "todo-node committed 5 \n", "todo-node committed 18446744073709551616\n", "committed 5\n",
        "todo-node committed 06172\n"}) {
    EXPECT_FALSE(ParseCommitted(bad).ok()) << bad;
  }
}

}  // namespace
}  // namespace todo::storage
