// The HTTP <-> protocol mapping of the router's HTTP front end
// (router/http_mapping.h): query parameters, paths, JSON bodies and
// protocol replies in, protocol requests and HTTP answers out. No sockets.
#include "router/http_mapping.h"

#include <gtest/gtest.h>

#include <functional>
#include <msgpack.hpp>
#include <random>

namespace todo::router::http {
namespace {

using protocol::Op;

Params Query(std::initializer_list<std::pair<const std::string, std::string>> kv) {
  return Params(kv);
}

Entry MakeEntry(uint64_t id, std::string_view date, std::string title) {
  return Entry{id, *ParseDate(date), std::move(title)};
}

std::string Body(const msgpack::sbuffer& b) { return std::string(b.data(), b.size()); }

std::string EntriesReply(const std::vector<Entry>& entries) {
  std::vector<EntryRef> ptrs(entries.begin(), entries.end());
  msgpack::sbuffer b;
  protocol::EncodeEntries(b, protocol::RequestId::Uint(7), ptrs);
  return Body(b);
}

std::string ErrorReply(ErrorCode code, std::string_view message) {
  msgpack::sbuffer b;
  protocol::EncodeError(b, protocol::RequestId::Uint(7), code, message);
  return Body(b);
}

std::string HeaderValue(const HttpReply& r, std::string_view name) {
  for (const auto& [k, v] : r.headers) {
    if (k == name) return v;
  }
  return "";
}

nlohmann::json Json(const HttpReply& r) { return nlohmann::json::parse(r.body); }

// --- statuses and percent-encoding ---

TEST(HttpStatusFor, EveryCode) {
  EXPECT_EQ(HttpStatusFor(ErrorCode::kOk), 200);
  EXPECT_EQ(HttpStatusFor(ErrorCode::kBadRequest), 400);
  EXPECT_EQ(HttpStatusFor(ErrorCode::kUnknownOp), 400);
  EXPECT_EQ(HttpStatusFor(ErrorCode::kNotFound), 404);
  EXPECT_EQ(HttpStatusFor(ErrorCode::kOverloaded), 429);
  EXPECT_EQ(HttpStatusFor(ErrorCode::kUnavailable), 503);
  EXPECT_EQ(HttpStatusFor(ErrorCode::kTimeout), 504);
  EXPECT_EQ(HttpStatusFor(ErrorCode::kInternal), 500);
}

TEST(PercentDecode, DecodesEscapesAndKeepsTheRest) {
  EXPECT_EQ(*PercentDecode("a%2Fb"), "a/b");
  EXPECT_EQ(*PercentDecode("a%2fb%20c"), "a/b c");
  EXPECT_EQ(*PercentDecode("a+b"), "a+b");  // '+' is not a space in a path
  EXPECT_EQ(*PercentDecode("%C3%A9t%C3%A9"), "\xc3\xa9t\xc3\xa9");
  EXPECT_EQ(*PercentDecode("%25"), "%");
  EXPECT_EQ(*PercentDecode("%00"), std::string(1, '\0'));
  EXPECT_EQ(*PercentDecode(""), "");
  for (const char* bad : {"%", "%2", "a%zz", "%g0", "x%"}) {
    auto r = PercentDecode(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), ErrorCode::kBadRequest);
    EXPECT_NE(r.status().message().find("percent-escape"), std::string::npos);
  }
}

TEST(PercentEncodeSegment, RoundTripsEveryByte) {
  EXPECT_EQ(PercentEncodeSegment("a/b c"), "a%2Fb%20c");
  EXPECT_EQ(PercentEncodeSegment("AZaz09-._~"), "AZaz09-._~");
  EXPECT_EQ(PercentEncodeSegment("%+?#&="), "%25%2B%3F%23%26%3D");
  std::string all;
  for (int c = 0; c < 256; ++c) all += static_cast<char>(c);
  EXPECT_EQ(*PercentDecode(PercentEncodeSegment(all)), all);
}

// --- the book's endpoints ---

TEST(MapBookEntries, NeedsListAndDate) {
  auto r = MapBookEntries(Query({{"list", "bob"}, {"date", "2026-12-19"}}));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->op, Op::kEntries);
  EXPECT_EQ(r->list, "bob");
  EXPECT_EQ(FormatDate(*r->date), "2026-12-19");

  auto missing_list = MapBookEntries(Query({{"date", "2026-12-19"}}));
  EXPECT_EQ(missing_list.status().message(), "missing query parameter 'list'");
  auto missing_date = MapBookEntries(Query({{"list", "bob"}}));
  EXPECT_EQ(missing_date.status().message(), "missing query parameter 'date'");
  auto bad_date = MapBookEntries(Query({{"list", "bob"}, {"date", "2026-02-29"}}));
  EXPECT_EQ(bad_date.status().code(), ErrorCode::kBadRequest);
  EXPECT_EQ(bad_date.status().message(),
            "query parameter 'date' must be a real calendar date YYYY-MM-DD (0001-9999), not "
            "'2026-02-29'");
  auto empty_list = MapBookEntries(Query({{"list", ""}, {"date", "2026-12-19"}}));
  EXPECT_EQ(empty_list.status().code(), ErrorCode::kBadRequest);
  auto long_list = MapBookEntries(Query({{"list", std::string(256, 'x')}, {"date", "2026-12-19"}}));
  EXPECT_EQ(long_list.status().code(), ErrorCode::kBadRequest);
  auto bad_utf8 = MapBookEntries(Query({{"list", "\xff"}, {"date", "2026-12-19"}}));
  EXPECT_NE(bad_utf8.status().message().find("UTF-8"), std::string::npos);
}

TEST(ParseQuery, DecodesLikeAFormAndRefusesBadEscapes) {
  auto q = ParseQuery("/entries?list=a%2Fb+c&date=2026-12-19&flag&=skipped&x=1=2#frag");
  ASSERT_TRUE(q.ok()) << q.status().ToString();
  EXPECT_EQ(*q, Query({{"list", "a/b c"}, {"date", "2026-12-19"}, {"flag", ""}, {"x", "1=2"}}));
  EXPECT_TRUE(ParseQuery("/entries")->empty());
  EXPECT_TRUE(ParseQuery("/entries?")->empty());
  for (const char* bad : {"/e?list=%zz", "/e?list=%", "/e?list=a%2", "/e?%zz=1", "/e?a=1&b=%g0"}) {
    auto r = ParseQuery(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), ErrorCode::kBadRequest) << bad;
    EXPECT_NE(r.status().message().find("bad percent-escape in query: '%"), std::string::npos)
        << r.status().message();
  }
}

TEST(MapBookFromTarget, BadEscapeIsABadRequestNotALiteralName) {
  // httplib's own decoder keeps "%zz" as it stands, so list=%zz named the
  // list "%zz"; the JSON API answers 400 for the same escape in its path.
  auto r = MapBookEntriesFromTarget("/entries?list=%zz&date=2026-12-19");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kBadRequest);
  EXPECT_EQ(BookError(r.status()).status, 400);
  EXPECT_FALSE(MapBookAddEntryFromTarget("/add_entry?list=b&date=2026-12-19&title=%zz").ok());
  auto ok = MapBookAddEntryFromTarget("/add_entry?list=b%2F1&date=2026-12-19&title=Den+tist");
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->list, "b/1");
  EXPECT_EQ(*ok->title, "Den tist");
  EXPECT_EQ(MapBookEntriesFromTarget("/entries?list=b").status().message(),
            "missing query parameter 'date'");
  ListPath p{"bob", ListPath::Kind::kEntries, 0};
  EXPECT_EQ(MapListEntriesFromTarget(p, "/lists/bob/entries?date=%zz").status().code(),
            ErrorCode::kBadRequest);
  EXPECT_EQ(FormatDate(*MapListEntriesFromTarget(p, "/lists/bob/entries?date=2026-12-19")->date),
            "2026-12-19");
}

TEST(MapBookAddEntry, NeedsListDateAndTitle) {
  auto r = MapBookAddEntry(Query({{"list", "bob"}, {"date", "2026-12-19"}, {"title", "Dentist"}}));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->op, Op::kAddEntry);
  EXPECT_EQ(*r->title, "Dentist");
  EXPECT_EQ(MapBookAddEntry(Query({{"list", "bob"}, {"date", "2026-12-19"}})).status().message(),
            "missing query parameter 'title'");
  EXPECT_EQ(MapBookAddEntry(Query({{"list", "bob"}, {"title", "x"}})).status().message(),
            "missing query parameter 'date'");
  auto empty_title = MapBookAddEntry(Query({{"list", "b"}, {"date", "2026-12-19"}, {"title", ""}}));
  EXPECT_EQ(empty_title.status().code(), ErrorCode::kBadRequest);
  auto long_title = MapBookAddEntry(
      Query({{"list", "b"}, {"date", "2026-12-19"}, {"title", std::string(1025, 't')}}));
  EXPECT_EQ(long_title.status().code(), ErrorCode::kBadRequest);
  auto max_title = MapBookAddEntry(
      Query({{"list", "b"}, {"date", "2026-12-19"}, {"title", std::string(1024, 't')}}));
  EXPECT_TRUE(max_title.ok());
}

TEST(OwnedRequest, ViewEncodesTheRequest) {
  auto r = MapBookAddEntry(Query({{"list", "a/b"}, {"date", "2026-12-19"}, {"title", "T"}}));
  msgpack::sbuffer b;
  protocol::EncodeRequest(b, r->View(protocol::RequestId::Uint(42)));
  // The decoded request's views point into the bytes: keep them alive.
  const std::string bytes = Body(b);
  auto decoded = protocol::DecodeRequest(bytes);
  ASSERT_TRUE(decoded.status.ok()) << decoded.status.ToString();
  EXPECT_EQ(decoded.request.op, Op::kAddEntry);
  EXPECT_EQ(decoded.request.list, "a/b");
  EXPECT_EQ(*decoded.request.title, "T");
  EXPECT_EQ(decoded.id.uint_value, 42u);
}

TEST(BookEntriesReply, OneLinePerEntryEachEndingInNewline) {
  HttpReply r = BookEntriesReply(EntriesReply(
      {MakeEntry(1, "2026-12-19", "Dentist"), MakeEntry(3, "2026-12-19", "Movies and popcorn")}));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "text/plain; charset=utf-8");
  EXPECT_EQ(r.body, "2026-12-19 Dentist\n2026-12-19 Movies and popcorn\n");
  EXPECT_EQ(BookEntriesReply(EntriesReply({})).body, "");
}

// Replies packed by hand, in shapes the node does not send today (extra and
// repeated fields, bins, long strings, 16-bit counts, keys that are not
// strings): the hot path's own reader must answer as the general decoder.
using Packer = msgpack::packer<msgpack::sbuffer>;

std::string Packed(const std::function<void(Packer&)>& pack) {
  msgpack::sbuffer b;
  Packer p(b);
  pack(p);
  return Body(b);
}

TEST(BookEntriesReply, ReadsEveryShapeTheGeneralDecoderReads) {
  const std::string long_title(300, 't');  // str16
  std::string body = Packed([&](Packer& p) {
    p.pack_map(5);
    p.pack(7);  // a key that is not a string: skipped
    p.pack(std::vector<int>{1, 2, 3});
    p.pack("ok").pack(false);
    p.pack("result");
    p.pack_array(20);  // array16
    for (int i = 0; i < 20; ++i) {
      p.pack_map(i == 0 ? 17 : 4);  // map16 for the first
      p.pack("id").pack(uint64_t{1} << 40);
      p.pack("date").pack("2026-12-18");  // replaced by the one below
      p.pack("date");
      if (i == 1) {
        p.pack_bin(10).pack_bin_body("2026-12-19", 10);
      } else {
        p.pack("2026-12-19");
      }
      p.pack("title").pack(i == 2 ? long_title : "Dentist " + std::to_string(i));
      for (int j = 0; i == 0 && j < 13; ++j) p.pack("x" + std::to_string(j)).pack(-1.5);
    }
    p.pack("ok").pack(true);  // the last "ok" counts
    p.pack("id").pack(7);
  });
  std::string want;
  for (int i = 0; i < 20; ++i) {
    want += "2026-12-19 " + (i == 2 ? long_title : "Dentist " + std::to_string(i)) + "\n";
  }
  HttpReply r = BookEntriesReply(body);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, want);
  EXPECT_EQ(r.content_type, "text/plain; charset=utf-8");
}

TEST(BookEntriesReply, WhatTheHotPathDoesNotTakeGetsTheGeneralAnswer) {
  const std::string good = EntriesReply({MakeEntry(1, "2026-12-19", "Dentist")});
  // Cut anywhere, or with a byte after it: unreadable, 500.
  for (size_t n = 0; n < good.size(); ++n) {
    EXPECT_EQ(BookEntriesReply(good.substr(0, n)).status, 500) << n;
    EXPECT_EQ(BookAddEntryReply(good.substr(0, n)).status, 500) << n;
  }
  EXPECT_EQ(BookEntriesReply(good + '\x01').status, 500);
  // An entry whose title is a number; a result that is not a list.
  auto entry_title_number = Packed([](Packer& p) {
    p.pack_map(2);
    p.pack("ok").pack(true);
    p.pack("result").pack_array(1);
    p.pack_map(2).pack("date").pack("2026-12-19").pack("title").pack(5);
  });
  HttpReply bad = BookEntriesReply(entry_title_number);
  EXPECT_EQ(bad.status, 500);
  EXPECT_EQ(bad.body, "entry without a date or title in the reply\n");
  // The last "title" counts, even when an earlier one was a string.
  auto last_title_number = Packed([](Packer& p) {
    p.pack_map(2);
    p.pack("ok").pack(true);
    p.pack("result").pack_array(1);
    p.pack_map(3).pack("date").pack("2026-12-19").pack("title").pack("Dentist");
    p.pack("title").pack(5);
  });
  EXPECT_EQ(BookEntriesReply(last_title_number).body,
            "entry without a date or title in the reply\n");
  auto not_a_list =
      Packed([](Packer& p) { p.pack_map(2).pack("ok").pack(true).pack("result").pack_map(0); });
  EXPECT_EQ(BookEntriesReply(not_a_list).body, "entries result is not a list\n");
  // "ok" false, or no "ok": the general path's answers.
  EXPECT_EQ(BookEntriesReply(ErrorReply(ErrorCode::kNotFound, "no")).status, 404);
  auto no_ok = Packed([](Packer& p) { p.pack_map(1).pack("result").pack_array(0); });
  EXPECT_EQ(BookEntriesReply(no_ok).status, 500);
  EXPECT_EQ(BookAddEntryReply(no_ok).status, 500);
}

// What BookEntriesReply answered before it had a reader of its own (msgpack
// objects): {200, text}, {500, message} for a bad result or entry, {0, ""}
// for an error reply or unreadable bytes (the message is the decoder's).
std::pair<int, std::string> EntriesByObjects(std::string_view body) {
  try {
    msgpack::zone zone;
    size_t off = 0;
    const msgpack::unpack_limit limit(body.size(), body.size() / 2);
    msgpack::object o =
        msgpack::unpack(zone, body.data(), body.size(), off, nullptr, nullptr, limit);
    if (off != body.size() || o.type != msgpack::type::MAP) return {0, ""};
    bool ok = false;
    bool have_ok = false;
    const msgpack::object* result = nullptr;
    for (uint32_t i = 0; i < o.via.map.size; ++i) {
      const auto& kv = o.via.map.ptr[i];
      if (kv.key.type != msgpack::type::STR) continue;
      std::string_view k(kv.key.via.str.ptr, kv.key.via.str.size);
      if (k == "ok" && kv.val.type == msgpack::type::BOOLEAN) {
        ok = kv.val.via.boolean;
        have_ok = true;
      } else if (k == "result") {
        result = &kv.val;
      }
    }
    if (!have_ok || !ok) return {0, ""};
    if (result == nullptr || result->type != msgpack::type::ARRAY) {
      return {500, "entries result is not a list\n"};
    }
    auto is_string = [](const msgpack::object* v) {
      return v != nullptr && (v->type == msgpack::type::STR || v->type == msgpack::type::BIN);
    };
    std::string text;
    for (uint32_t i = 0; i < result->via.array.size; ++i) {
      const auto& e = result->via.array.ptr[i];
      const msgpack::object* date = nullptr;
      const msgpack::object* title = nullptr;
      for (uint32_t j = 0; e.type == msgpack::type::MAP && j < e.via.map.size; ++j) {
        const auto& kv = e.via.map.ptr[j];
        if (kv.key.type != msgpack::type::STR) continue;
        std::string_view k(kv.key.via.str.ptr, kv.key.via.str.size);
        if (k == "date") date = &kv.val;
        if (k == "title") title = &kv.val;
      }
      if (!is_string(date) || !is_string(title)) {
        return {500, "entry without a date or title in the reply\n"};
      }
      text.append(date->via.str.ptr, date->via.str.size).append(" ");
      text.append(title->via.str.ptr, title->via.str.size).append("\n");
    }
    return {200, text};
  } catch (const std::exception&) {
    return {0, ""};
  }
}

TEST(BookEntriesReply, AnswersAsTheObjectDecoderOnMutatedReplies) {
  std::mt19937_64 rng(20261206);  // fixed: the same inputs every run
  std::vector<std::string> seeds;
  for (int n : {0, 1, 3, 17}) {
    std::vector<Entry> entries;
    for (int i = 0; i < n; ++i) {
      entries.push_back(MakeEntry(uint64_t(i) * 977, "2026-12-19", std::string(i * 7 % 40, 'a')));
    }
    seeds.push_back(EntriesReply(entries));
  }
  seeds.push_back(ErrorReply(ErrorCode::kNotFound, "no such list"));
  int answered = 0;
  for (const std::string& seed : seeds) {
    for (int round = 0; round < 3000; ++round) {
      std::string m = seed;
      for (int edits = 1 + int(rng() % 4); edits > 0 && !m.empty(); --edits) {
        const size_t pos = rng() % m.size();
        switch (rng() % 4) {
          case 0:
            m[pos] = static_cast<char>(rng());
            break;
          case 1:
            m[pos] = static_cast<char>(m[pos] ^ (1 << (rng() % 8)));
            break;
          case 2:
            m.erase(pos, 1 + rng() % 3);
            break;
          default:
            m.insert(pos, 1, static_cast<char>(rng()));
            break;
        }
      }
      const auto [status, text] = EntriesByObjects(m);
      const HttpReply r = BookEntriesReply(m);
      if (status == 0) {
        EXPECT_NE(r.status, 200) << testing::PrintToString(m);
        continue;
      }
      ++answered;
      EXPECT_EQ(r.status, status) << testing::PrintToString(m);
      EXPECT_EQ(r.body, text) << testing::PrintToString(m);
      if (status == 200) {
        EXPECT_EQ(BookAddEntryReply(m).body, "OK");
      }
    }
  }
  EXPECT_GT(answered, 1000);  // the mutations left many replies readable
}

TEST(BookAddEntryReply, IsExactlyOK) {
  msgpack::sbuffer b;
  protocol::EncodeAddResult(b, protocol::RequestId::Uint(1), 5);
  HttpReply r = BookAddEntryReply(Body(b));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "OK");
  EXPECT_EQ(r.content_type, "text/plain; charset=utf-8");
}

TEST(BookReplies, ErrorsAreTextWithTheMappedStatus) {
  HttpReply r = BookEntriesReply(ErrorReply(ErrorCode::kUnavailable, "node 'n2' is down"));
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.body, "node 'n2' is down\n");
  EXPECT_EQ(r.content_type, "text/plain; charset=utf-8");
  HttpReply busy = BookAddEntryReply(ErrorReply(ErrorCode::kOverloaded, "full"));
  EXPECT_EQ(busy.status, 429);
  EXPECT_EQ(HeaderValue(busy, "Retry-After"), "1");
  EXPECT_EQ(BookEntriesReply("garbage").status, 500);
}

// --- paths ---

TEST(ParseListPath, TheThreeShapes) {
  auto entries = ParseListPath("/lists/bob/entries?date=2026-12-19");
  ASSERT_TRUE(entries.ok());
  EXPECT_EQ(entries->list, "bob");
  EXPECT_EQ(entries->kind, ListPath::Kind::kEntries);
  auto entry = ParseListPath("/lists/bob/entries/18446744073709551615");
  ASSERT_TRUE(entry.ok());
  EXPECT_EQ(entry->kind, ListPath::Kind::kEntry);
  EXPECT_EQ(entry->entry_id, UINT64_MAX);
  auto owner = ParseListPath("/lists/bob/owner");
  ASSERT_TRUE(owner.ok());
  EXPECT_EQ(owner->kind, ListPath::Kind::kOwner);
}

TEST(ParseListPath, NamesArePercentDecodedSegments) {
  EXPECT_EQ(ParseListPath("/lists/a%2Fb/entries")->list, "a/b");
  EXPECT_EQ(ParseListPath("/lists/with%20space/owner")->list, "with space");
  EXPECT_EQ(ParseListPath("/lists/%C3%A9t%C3%A9%20%E2%9C%93/entries/3")->list,
            "\xc3\xa9t\xc3\xa9 \xe2\x9c\x93");
  EXPECT_EQ(ParseListPath("/lists/100%25/entries")->list, "100%");
  EXPECT_EQ(ParseListPath("/lists/a+b/entries")->list, "a+b");
  EXPECT_EQ(ParseListPath("/lists/q%3Fx/entries?date=1")->list, "q?x");
}

TEST(ParseListPath, OtherShapesAreNotFound) {
  for (const char* p : {"/lists", "/lists/", "/lists/bob", "/lists/bob/", "/lists/bob/entriesx",
                        "/lists/bob/entries/1/x", "/list/bob/entries", "/lists/a/b/entries",
                        "/lists/bob/owner/1", "/"}) {
    auto r = ParseListPath(p);
    ASSERT_FALSE(r.ok()) << p;
    EXPECT_EQ(r.status().code(), ErrorCode::kNotFound) << p;
  }
}

TEST(ParseListPath, BadIdsEscapesAndNamesAreBadRequests) {
  for (const char* p :
       {"/lists/bob/entries/abc", "/lists/bob/entries/-1", "/lists/bob/entries/+1",
        "/lists/bob/entries/1.0", "/lists/bob/entries/", "/lists/bob/entries/18446744073709551616",
        "/lists/bob/entries/99999999999999999999", "/lists/%zz/entries", "/lists//entries",
        "/lists/%FF/entries"}) {
    auto r = ParseListPath(p);
    ASSERT_FALSE(r.ok()) << p;
    EXPECT_EQ(r.status().code(), ErrorCode::kBadRequest) << p;
  }
  EXPECT_NE(ParseListPath("/lists/bob/entries/abc").status().message().find("'abc'"),
            std::string::npos);
}

// --- JSON bodies ---

TEST(MapListEntries, DateIsOptional) {
  ListPath p{"bob", ListPath::Kind::kEntries, 0};
  auto all = MapListEntries(p, {});
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->op, Op::kEntries);
  EXPECT_FALSE(all->date.has_value());
  auto on = MapListEntries(p, Query({{"date", "2026-12-19"}}));
  EXPECT_EQ(FormatDate(*on->date), "2026-12-19");
  EXPECT_EQ(MapListEntries(p, Query({{"date", "12/19/2026"}})).status().code(),
            ErrorCode::kBadRequest);
}

TEST(MapCreateEntry, ReadsDateAndTitle) {
  ListPath p{"bob", ListPath::Kind::kEntries, 0};
  auto r = MapCreateEntry(p, R"({"date": "2026-12-19", "title": "Dentist", "other": [1]})");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->op, Op::kAddEntry);
  EXPECT_EQ(r->list, "bob");
  EXPECT_EQ(*r->title, "Dentist");
  EXPECT_EQ(FormatDate(*r->date), "2026-12-19");
}

TEST(MapCreateEntry, BadBodiesNameTheProblem) {
  ListPath p{"bob", ListPath::Kind::kEntries, 0};
  auto message = [&](std::string_view body) {
    auto r = MapCreateEntry(p, body);
    EXPECT_FALSE(r.ok()) << body;
    EXPECT_EQ(r.status().code(), ErrorCode::kBadRequest) << body;
    return r.status().message();
  };
  EXPECT_NE(message("{").find("body is not valid JSON: "), std::string::npos);
  EXPECT_NE(message("").find("body is not valid JSON"), std::string::npos);
  EXPECT_NE(message(R"({"date": "2026-12-19", "title": "x"} trailing)").find("not valid JSON"),
            std::string::npos);
  EXPECT_NE(message("{\"date\": \"2026-12-19\", \"title\": \"\xff\"}").find("not valid JSON"),
            std::string::npos);
  EXPECT_EQ(message("[1]"), "body must be a JSON object, not array");
  EXPECT_EQ(message("\"s\""), "body must be a JSON object, not string");
  EXPECT_EQ(message(R"({"title": "x"})"), "missing field 'date'");
  EXPECT_EQ(message(R"({"date": "2026-12-19"})"), "missing field 'title'");
  EXPECT_EQ(message(R"({"date": 1, "title": "x"})"), "field 'date' must be a string, not number");
  EXPECT_EQ(message(R"({"date": "2026-12-19", "title": null})"),
            "field 'title' must be a string, not null");
  EXPECT_NE(message(R"({"date": "2026-02-29", "title": "x"})").find("'2026-02-29'"),
            std::string::npos);
  EXPECT_NE(message(R"({"date": "2026-12-19", "title": ""})").find("title must be"),
            std::string::npos);
  // A number the parser can't hold, even in a key nobody reads: 400, not
  // an exception (which became a 500).
  EXPECT_NE(message(R"({"date": "2026-12-19", "title": "x", "other": 1e999})")
                .find("body is not usable JSON"),
            std::string::npos);
  EXPECT_NE(message(R"({"x": -1e400})").find("body is not usable JSON"), std::string::npos);
  auto update =
      MapUpdateEntry(ListPath{"bob", ListPath::Kind::kEntry, 1}, R"({"title": "x", "n": [1e999]})");
  EXPECT_EQ(update.status().code(), ErrorCode::kBadRequest);
}

TEST(MapUpdateEntry, DateAndOrTitle) {
  ListPath p{"bob", ListPath::Kind::kEntry, 3};
  auto title = MapUpdateEntry(p, R"({"title": "New"})");
  ASSERT_TRUE(title.ok());
  EXPECT_EQ(title->op, Op::kUpdateEntry);
  EXPECT_EQ(title->entry_id, 3u);
  EXPECT_EQ(*title->title, "New");
  EXPECT_FALSE(title->date.has_value());
  auto both = MapUpdateEntry(p, R"({"date": "2027-01-01", "title": "New"})");
  EXPECT_EQ(FormatDate(*both->date), "2027-01-01");
  EXPECT_EQ(MapUpdateEntry(p, "{}").status().message(),
            "body needs at least one of 'date', 'title'");
  EXPECT_EQ(MapUpdateEntry(p, R"({"date": "x"})").status().code(), ErrorCode::kBadRequest);
}

TEST(MapDeleteAndOwner, CarryTheListAndId) {
  ListPath p{"a/b", ListPath::Kind::kEntry, 9};
  OwnedRequest d = MapDeleteEntry(p);
  EXPECT_EQ(d.op, Op::kDeleteEntry);
  EXPECT_EQ(d.entry_id, 9u);
  EXPECT_EQ(d.list, "a/b");
  OwnedRequest o = MapOwner(p);
  EXPECT_EQ(o.op, Op::kLocate);
  EXPECT_EQ(o.list, "a/b");
}

// --- Idempotency-Key: the rid of an HTTP write ---

TEST(IdempotencyKey, BareOrQuotedOneToSixtyFourBytes) {
  EXPECT_EQ(*IdempotencyKey({}), std::nullopt);  // no header: no rid
  EXPECT_EQ(*IdempotencyKey({"8e03978e-40d5-43e8-bc93-6894a57f9324"}),
            "8e03978e-40d5-43e8-bc93-6894a57f9324");  // Stripe's bare form
  // The IETF draft's form: a structured-field string, unquoted.
  EXPECT_EQ(*IdempotencyKey({"\"8e03978e-40d5\""}), "8e03978e-40d5");
  EXPECT_EQ(*IdempotencyKey({R"("a \"quoted\" \\ key")"}), R"(a "quoted" \ key)");
  EXPECT_EQ(*IdempotencyKey({std::string(64, 'k')}), std::string(64, 'k'));
  EXPECT_EQ(*IdempotencyKey({"\"" + std::string(64, 'k') + "\""}), std::string(64, 'k'));
  EXPECT_EQ(*IdempotencyKey({"x"}), "x");
}

TEST(IdempotencyKey, AnythingElseIsA400NamingTheHeader) {
  const std::string long_key(65, 'k');
  // The values own their bytes here: a HeaderValues only views them.
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{""}, "must be 1-64 bytes, not 0"},
      {{long_key}, "must be 1-64 bytes, not 65"},
      {{"\"\""}, "must be 1-64 bytes, not 0"},
      {{"\"" + long_key + "\""}, "must be 1-64 bytes, not 65"},
      {{"a", "b"}, "given 2 times; give it once"},
      {{"\"open"}, "starts a quoted string it does not end"},
      {{"\""}, "starts a quoted string it does not end"},
      {{R"("bad \n escape")"}, "bad escape"},
      {{R"("ends in \")"}, "bad escape"},
      {{R"("inner " quote")"}, "bad character"},
      {{"\"tab\tinside\""}, "bad character"},
      {{"\"caf\xc3\xa9\""}, "bad character"},
  };
  for (const auto& [owned, why] : cases) {
    const HeaderValues values(owned.begin(), owned.end());
    auto k = IdempotencyKey(values);
    ASSERT_FALSE(k.ok()) << why;
    EXPECT_EQ(k.status().code(), ErrorCode::kBadRequest);
    EXPECT_EQ(HttpStatusFor(k.status().code()), 400);
    EXPECT_NE(k.status().message().find("header 'Idempotency-Key'"), std::string::npos)
        << k.status().message();
    EXPECT_NE(k.status().message().find(why), std::string::npos) << k.status().message();
  }
}

TEST(IdempotencyKey, EveryWriteTakesItAsItsRid) {
  const HeaderValues key = {"key-1"};
  auto book = MapBookAddEntry(Query({{"list", "b"}, {"date", "2026-12-19"}, {"title", "T"}}), key);
  ASSERT_TRUE(book.ok()) << book.status().ToString();
  EXPECT_EQ(book->rid, "key-1");
  ListPath entries{"l", ListPath::Kind::kEntries, 0};
  auto create = MapCreateEntry(entries, R"({"date": "2026-12-19", "title": "T"})", key);
  ASSERT_TRUE(create.ok()) << create.status().ToString();
  EXPECT_EQ(create->rid, "key-1");
  ListPath entry{"l", ListPath::Kind::kEntry, 4};
  auto update = MapUpdateEntry(entry, R"({"title": "U"})", key);
  ASSERT_TRUE(update.ok()) << update.status().ToString();
  EXPECT_EQ(update->rid, "key-1");
  auto del = MapDeleteEntry(entry, key);
  ASSERT_TRUE(del.ok()) << del.status().ToString();
  EXPECT_EQ(del->rid, "key-1");
  EXPECT_EQ(del->entry_id, 4u);
  // Without the header (or through the old signatures): no rid, as before.
  EXPECT_EQ(MapDeleteEntry(entry, {})->rid, std::nullopt);
  EXPECT_EQ(MapDeleteEntry(entry).rid, std::nullopt);
  EXPECT_EQ(MapCreateEntry(entries, R"({"date": "2026-12-19", "title": "T"})")->rid, std::nullopt);
  // A bad key refuses the request; a bad body is reported first.
  EXPECT_FALSE(MapDeleteEntry(entry, {"a", "b"}).ok());
  EXPECT_FALSE(MapUpdateEntry(entry, R"({"title": "U"})", {""}).ok());
  EXPECT_FALSE(MapBookAddEntry(Query({{"list", "b"}, {"date", "2026-12-19"}, {"title", "T"}}),
                               {std::string(65, 'k')})
                   .ok());
  auto both_bad = MapCreateEntry(entries, "not json", {""});
  EXPECT_NE(both_bad.status().message().find("JSON"), std::string::npos);
}

TEST(IdempotencyKey, TheRidTravelsInTheProtocolRequest) {
  ListPath entries{"l", ListPath::Kind::kEntries, 0};
  auto create = MapCreateEntry(entries, R"({"date": "2026-12-19", "title": "T"})", {"\"k\\\"ey\""});
  ASSERT_TRUE(create.ok()) << create.status().ToString();
  msgpack::sbuffer b;
  protocol::EncodeRequest(b, create->View(protocol::RequestId::Uint(1)));
  const std::string bytes = Body(b);
  auto decoded = protocol::DecodeRequest(bytes);
  ASSERT_TRUE(decoded.status.ok()) << decoded.status.ToString();
  EXPECT_EQ(decoded.request.rid, "k\"ey");
  // No header: no rid key on the wire.
  auto plain = MapCreateEntry(entries, R"({"date": "2026-12-19", "title": "T"})");
  msgpack::sbuffer b2;
  protocol::EncodeRequest(b2, plain->View(protocol::RequestId::Uint(1)));
  const std::string bytes2 = Body(b2);
  EXPECT_TRUE(protocol::DecodeRequest(bytes2).request.rid.empty());
}

// --- JSON replies ---

TEST(JsonResultReply, ResultAsJsonKeepingKeyOrder) {
  HttpReply r = JsonResultReply(EntriesReply({MakeEntry(1, "2026-12-19", "Dentist \"9\" été")}));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "application/json");
  EXPECT_EQ(
      r.body,
      "[{\"id\":1,\"date\":\"2026-12-19\",\"title\":\"Dentist \\\"9\\\" \xc3\xa9t\xc3\xa9\"}]\n");
  msgpack::sbuffer b;
  protocol::EncodeDeleted(b, protocol::RequestId::Uint(1), false);
  EXPECT_EQ(JsonResultReply(Body(b)).body, "{\"deleted\":false}\n");
  msgpack::sbuffer l;
  protocol::EncodeLocate(l, protocol::RequestId::Uint(1), "n2");
  EXPECT_EQ(JsonResultReply(Body(l)).body, "{\"node\":\"n2\"}\n");
}

TEST(JsonErrors, EveryCodeMapsToItsStatusWithAJsonBody) {
  struct Case {
    ErrorCode code;
    int status;
  };
  for (Case c : {Case{ErrorCode::kBadRequest, 400}, Case{ErrorCode::kUnknownOp, 400},
                 Case{ErrorCode::kNotFound, 404}, Case{ErrorCode::kOverloaded, 429},
                 Case{ErrorCode::kUnavailable, 503}, Case{ErrorCode::kTimeout, 504},
                 Case{ErrorCode::kInternal, 500}}) {
    HttpReply r = JsonResultReply(ErrorReply(c.code, "why"));
    EXPECT_EQ(r.status, c.status);
    EXPECT_EQ(r.content_type, "application/json");
    nlohmann::json j = Json(r);
    EXPECT_EQ(j["error"]["code"], std::string(ErrorCodeName(c.code)));
    EXPECT_EQ(j["error"]["message"], "why");
    EXPECT_EQ(j.size(), 1u);
    EXPECT_EQ(HeaderValue(r, "Retry-After"), c.status == 429 ? "1" : "");
  }
  HttpReply garbage = JsonResultReply("\xc1");
  EXPECT_EQ(garbage.status, 500);
  EXPECT_EQ(Json(garbage)["error"]["code"], "internal");
}

TEST(CreatedReply, IsTheNewEntryWithALocation) {
  auto req = MapCreateEntry(ListPath{"a/b c", ListPath::Kind::kEntries, 0},
                            R"({"date": "2026-12-19", "title": "Dentist"})");
  msgpack::sbuffer b;
  protocol::EncodeAddResult(b, protocol::RequestId::Uint(1), 12);
  HttpReply r = CreatedReply(Body(b), *req);
  EXPECT_EQ(r.status, 201);
  EXPECT_EQ(r.body, "{\"id\":12,\"date\":\"2026-12-19\",\"title\":\"Dentist\"}\n");
  EXPECT_EQ(HeaderValue(r, "Location"), "/lists/a%2Fb%20c/entries/12");
  HttpReply err = CreatedReply(ErrorReply(ErrorCode::kOverloaded, "busy"), *req);
  EXPECT_EQ(err.status, 429);
}

TEST(MethodNotAllowed, Is405WithAllow) {
  HttpReply r = MethodNotAllowed("PUT", "GET, POST");
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(HeaderValue(r, "Allow"), "GET, POST");
  EXPECT_EQ(Json(r)["error"]["code"], "method_not_allowed");
}

TEST(DecodeReply, OkAndErrorReplies) {
  auto ok = DecodeReply(EntriesReply({MakeEntry(2, "0001-01-01", "t")}));
  ASSERT_TRUE(ok.ok());
  EXPECT_TRUE(ok->ok);
  EXPECT_EQ(ok->result[0]["id"], 2);
  auto err = DecodeReply(ErrorReply(ErrorCode::kTimeout, "late"));
  ASSERT_TRUE(err.ok());
  EXPECT_FALSE(err->ok);
  EXPECT_EQ(err->code, ErrorCode::kTimeout);
  EXPECT_EQ(err->message, "late");
  EXPECT_FALSE(DecodeReply("").ok());
  EXPECT_FALSE(DecodeReply("\x91\x01").ok());  // an array, not a reply map
}

}  // namespace
}  // namespace todo::router::http
