#include "router/http_mapping.h"

#include <msgpack.hpp>

#include "common/msgpack_reader.h"
#include "common/utf8.h"

namespace todo::router::http {
namespace {

// Ordered: objects keep the protocol's key order (id, date, title).
using json = nlohmann::ordered_json;

std::string Quote(std::string_view s) { return protocol::QuoteForMessage(s); }

std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

Status CheckList(std::string_view list) {
  if (list.empty() || list.size() > protocol::kMaxListBytes || !IsValidUtf8(list)) {
    return Status::BadRequest("list name must be 1-255 bytes of UTF-8, not " +
                              std::to_string(list.size()) + " bytes" +
                              (IsValidUtf8(list) ? "" : " of invalid UTF-8"));
  }
  return Status::Ok();
}

Status CheckTitle(std::string_view title) {
  if (title.empty() || title.size() > protocol::kMaxTitleBytes || !IsValidUtf8(title)) {
    return Status::BadRequest("title must be 1-1024 bytes of UTF-8, not " +
                              std::to_string(title.size()) + " bytes" +
                              (IsValidUtf8(title) ? "" : " of invalid UTF-8"));
  }
  return Status::Ok();
}

StatusOr<Date> CheckDate(std::string_view where, std::string_view value) {
  auto d = ParseDate(value);
  if (!d) {
    return Status::BadRequest(std::string(where) +
                              " must be a real calendar date YYYY-MM-DD (0001-9999), not " +
                              Quote(value));
  }
  return *d;
}

// The first value of query parameter `name`, or nullptr.
const std::string* Param(const Params& query, const std::string& name) {
  auto it = query.find(name);
  return it == query.end() ? nullptr : &it->second;
}

StatusOr<const std::string*> RequiredParam(const Params& query, const std::string& name) {
  const std::string* v = Param(query, name);
  if (v == nullptr) return Status::BadRequest("missing query parameter '" + name + "'");
  return v;
}

std::string_view JsonTypeName(const json& j) { return j.type_name(); }

// Parses a JSON object body; bad_request naming the problem.
StatusOr<json> ParseObject(std::string_view body) {
  json j;
  try {
    j = json::parse(body);
  } catch (const json::parse_error& e) {
    return Status::BadRequest(std::string("body is not valid JSON: ") + e.what());
  } catch (const json::exception& e) {
    // out_of_range: a number the parser can't hold (1e999), wherever it is.
    return Status::BadRequest(std::string("body is not usable JSON: ") + e.what());
  }
  if (!j.is_object()) {
    return Status::BadRequest("body must be a JSON object, not " + std::string(JsonTypeName(j)));
  }
  return j;
}

// Reads optional string field `key` of object `j` into *out.
Status StringField(const json& j, const char* key, std::optional<std::string>* out) {
  auto it = j.find(key);
  if (it == j.end()) return Status::Ok();
  if (!it->is_string()) {
    return Status::BadRequest(std::string("field '") + key + "' must be a string, not " +
                              std::string(JsonTypeName(*it)));
  }
  *out = it->get<std::string>();
  return Status::Ok();
}

json ToJson(const msgpack::object& o, int depth = 0) {
  if (depth > 32) return nullptr;
  switch (o.type) {
    case msgpack::type::NIL:
      return nullptr;
    case msgpack::type::BOOLEAN:
      return o.via.boolean;
    case msgpack::type::POSITIVE_INTEGER:
      return o.via.u64;
    case msgpack::type::NEGATIVE_INTEGER:
      return o.via.i64;
    case msgpack::type::FLOAT32:
    case msgpack::type::FLOAT64:
      return o.via.f64;
    case msgpack::type::STR:
    case msgpack::type::BIN:
      return std::string(o.via.str.ptr, o.via.str.size);
    case msgpack::type::ARRAY: {
      json a = json::array();
      for (uint32_t i = 0; i < o.via.array.size; ++i)
        a.push_back(ToJson(o.via.array.ptr[i], depth + 1));
      return a;
    }
    case msgpack::type::MAP: {
      json m = json::object();
      for (uint32_t i = 0; i < o.via.map.size; ++i) {
        const auto& kv = o.via.map.ptr[i];
        if (kv.key.type != msgpack::type::STR) continue;
        m[std::string(kv.key.via.str.ptr, kv.key.via.str.size)] = ToJson(kv.val, depth + 1);
      }
      return m;
    }
    default:
      return nullptr;
  }
}

HttpReply Text(int status, std::string body) {
  return HttpReply{status, std::string(kTextPlain), std::move(body), {}};
}

void AddRetryAfter(HttpReply* r) {
  if (r->status == 429) r->headers.emplace_back("Retry-After", "1");
}

// Sets r->rid from the header's values; bad_request if they are not a key.
Status SetRid(const HeaderValues& idempotency_key, OwnedRequest* r) {
  auto key = IdempotencyKey(idempotency_key);
  if (!key.ok()) return key.status();
  r->rid = std::move(key).value();
  return Status::Ok();
}

// A reply unpacked once into a per-thread zone: valid until the next
// UnpackReply() on the same thread, and only while the body it was unpacked
// from lives (its strings view the body, they are not copied). (A
// msgpack::object_handle would allocate an 8 KiB zone per reply, and the
// HTTP API decodes one per request.)
constexpr size_t kReplyZoneBytes = 64 * 1024;

struct UnpackedReply {
  bool ok = false;
  ErrorCode code = ErrorCode::kOk;          // when !ok
  std::string message;                      // when !ok
  const msgpack::object* result = nullptr;  // when ok and present
};

// The checks and messages of protocol::DecodeReplyHeader, with the result
// kept; internal ("unreadable reply: ...") if the body is not a reply.
StatusOr<UnpackedReply> UnpackReply(std::string_view body) {
  auto unreadable = [](std::string_view why) {
    return Status::Internal("unreadable reply: " + std::string(why));
  };
  try {
    // One chunk large enough for a list's entries: clear() frees every chunk
    // but the first, so a smaller one meant a malloc and a free per reply.
    thread_local msgpack::zone zone(kReplyZoneBytes);
    zone.clear();
    size_t off = 0;
    const msgpack::unpack_limit limit(/*array=*/body.size(), /*map=*/body.size() / 2);
    // Strings (and bins, exts) view the body instead of being copied into the
    // zone: every caller is done with the reply before the body goes.
    auto view_body = [](msgpack::type::object_type, size_t, void*) { return true; };
    msgpack::object o =
        msgpack::unpack(zone, body.data(), body.size(), off, view_body, nullptr, limit);
    if (off != body.size()) return unreadable("trailing bytes after the reply");
    if (o.type != msgpack::type::MAP) return unreadable("reply is not a map");
    UnpackedReply r;
    bool have_ok = false;
    bool have_code = false;
    for (uint32_t i = 0; i < o.via.map.size; ++i) {
      const auto& kv = o.via.map.ptr[i];
      if (kv.key.type != msgpack::type::STR) continue;
      std::string_view k(kv.key.via.str.ptr, kv.key.via.str.size);
      const msgpack::object& v = kv.val;
      if (k == "ok" && v.type == msgpack::type::BOOLEAN) {
        r.ok = v.via.boolean;
        have_ok = true;
      } else if (k == "result") {
        r.result = &v;
      } else if (k == "error" && v.type == msgpack::type::MAP) {
        for (uint32_t j = 0; j < v.via.map.size; ++j) {
          const auto& e = v.via.map.ptr[j];
          if (e.key.type != msgpack::type::STR || e.val.type != msgpack::type::STR) continue;
          std::string_view ek(e.key.via.str.ptr, e.key.via.str.size);
          std::string_view ev(e.val.via.str.ptr, e.val.via.str.size);
          if (ek == "code") {
            r.code = protocol::ParseErrorCode(ev);
            have_code = true;
          }
          if (ek == "message") r.message.assign(ev);
        }
      }
    }
    if (!have_ok) return unreadable("reply has no 'ok'");
    if (!r.ok && !have_code) return unreadable("error reply has no 'error.code'");
    if (!r.ok && r.code == ErrorCode::kOk) r.code = ErrorCode::kInternal;
    return r;
  } catch (const std::exception& e) {
    return unreadable(std::string("reply is not valid msgpack: ") + e.what());
  }
}

bool IsString(const msgpack::object& o) {
  return o.type == msgpack::type::STR || o.type == msgpack::type::BIN;
}

// A successful reply (a map whose last boolean "ok" is true, nothing after
// it) read by a MsgpackReader, with *result positioned at its last "result" (if
// any). False for anything else: an error reply, or one UnpackReply() would
// find wrong, is left to it.
bool FastOkReply(std::string_view body, std::optional<MsgpackReader>* result) {
  MsgpackReader r(body);
  uint64_t n = 0;
  if (!r.Map(&n)) return false;
  bool ok = false;
  bool have_ok = false;
  for (uint64_t i = 0; i < n; ++i) {
    std::string_view k;
    if (!r.PeekStr()) {
      if (!r.SkipValue() || !r.SkipValue()) return false;  // a key that isn't a str
      continue;
    }
    if (!r.Str(&k)) return false;
    if (k == "ok" && r.PeekBool()) {
      r.Bool(&ok);
      have_ok = true;
      continue;
    }
    if (k == "result") *result = r;
    if (!r.SkipValue()) return false;
  }
  return r.done() && have_ok && ok;
}

// BookEntriesReply's answer for a successful reply whose entries all have
// a date and a title; nullopt for anything else (left to the general path).
std::optional<HttpReply> FastBookEntriesReply(std::string_view body) {
  std::optional<MsgpackReader> result;
  if (!FastOkReply(body, &result) || !result) return std::nullopt;
  MsgpackReader& r = *result;
  uint64_t n = 0;
  if (!r.Array(&n)) return std::nullopt;
  std::string text;
  text.reserve(body.size());  // the text is shorter than the msgpack it comes from
  for (uint64_t i = 0; i < n; ++i) {
    uint64_t fields = 0;
    if (!r.Map(&fields)) return std::nullopt;
    // The last "date" and "title" count, as in the general path; each must
    // be a str or a bin.
    std::optional<std::string_view> date;
    std::optional<std::string_view> title;
    for (uint64_t j = 0; j < fields; ++j) {
      std::string_view k;
      if (!r.PeekStr()) {
        if (!r.SkipValue() || !r.SkipValue()) return std::nullopt;
        continue;
      }
      if (!r.Str(&k)) return std::nullopt;
      std::optional<std::string_view>* field =
          k == "date" ? &date : (k == "title" ? &title : nullptr);
      if (field == nullptr) {
        if (!r.SkipValue()) return std::nullopt;
        continue;
      }
      if (!r.PeekStrOrBin()) return std::nullopt;  // the general path says what is wrong
      std::string_view v;
      if (!r.Str(&v, /*bin=*/true)) return std::nullopt;
      *field = v;
    }
    if (!date || !title) return std::nullopt;
    text.append(*date).append(1, ' ').append(*title).append(1, '\n');
  }
  return Text(200, std::move(text));
}

}  // namespace

StatusOr<std::optional<std::string>> IdempotencyKey(const HeaderValues& values) {
  const std::string header = "header '" + std::string(kIdempotencyKeyHeader) + "'";
  if (values.empty()) return std::optional<std::string>();
  if (values.size() > 1) {
    return Status::BadRequest(header + " given " + std::to_string(values.size()) +
                              " times; give it once");
  }
  std::string_view v = values[0];
  std::string key;
  if (v.size() >= 1 && v.front() == '"') {
    // A structured-field string (RFC 8941): "...", printable ASCII inside,
    // where a backslash escapes a quote or a backslash.
    if (v.size() < 2 || v.back() != '"') {
      return Status::BadRequest(header + " starts a quoted string it does not end: " + Quote(v));
    }
    for (size_t i = 1; i + 1 < v.size(); ++i) {
      char c = v[i];
      if (c == '\\') {
        if (i + 2 >= v.size() || (v[i + 1] != '"' && v[i + 1] != '\\')) {
          return Status::BadRequest(header + " has a bad escape in its quoted string: " + Quote(v));
        }
        c = v[++i];
      } else if (c == '"' || c < 0x20 || c > 0x7e) {
        return Status::BadRequest(header +
                                  " has a bad character in its quoted string: " + Quote(v));
      }
      key += c;
    }
  } else {
    key.assign(v);
  }
  if (key.empty() || key.size() > protocol::kMaxRidBytes) {
    return Status::BadRequest(header + " must be 1-64 bytes, not " + std::to_string(key.size()));
  }
  return std::optional<std::string>(std::move(key));
}

protocol::Request OwnedRequest::View(protocol::RequestId id) const {
  protocol::Request r;
  r.op = op;
  r.id = id;
  r.list = list;
  r.date = date;
  if (title) r.title = std::string_view(*title);
  r.entry_id = entry_id;
  if (rid) r.rid = *rid;
  return r;
}

int HttpStatusFor(ErrorCode code) {
  switch (code) {
    case ErrorCode::kOk:
      return 200;
    case ErrorCode::kBadRequest:
    case ErrorCode::kUnknownOp:
      return 400;
    case ErrorCode::kNotFound:
      return 404;
    case ErrorCode::kOverloaded:
      return 429;
    case ErrorCode::kUnavailable:
      return 503;
    case ErrorCode::kTimeout:
      return 504;
    case ErrorCode::kInternal:
      return 500;
  }
  return 500;
}

StatusOr<std::string> PercentDecode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out += s[i];
      continue;
    }
    int hi = i + 2 < s.size() ? HexValue(s[i + 1]) : -1;
    int lo = i + 2 < s.size() ? HexValue(s[i + 2]) : -1;
    if (hi < 0 || lo < 0) {
      return Status::BadRequest("bad percent-escape in path: " + Quote(s.substr(i, 3)));
    }
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return out;
}

namespace {

// Percent-decodes a query component: "+" is a space.
StatusOr<std::string> DecodeQueryPart(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
      continue;
    }
    if (s[i] != '%') {
      out += s[i];
      continue;
    }
    int hi = i + 2 < s.size() ? HexValue(s[i + 1]) : -1;
    int lo = i + 2 < s.size() ? HexValue(s[i + 2]) : -1;
    if (hi < 0 || lo < 0) {
      return Status::BadRequest("bad percent-escape in query: " + Quote(s.substr(i, 3)));
    }
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return out;
}

}  // namespace

StatusOr<Params> ParseQuery(std::string_view target) {
  Params params;
  target = target.substr(0, target.find('#'));
  const size_t q = target.find('?');
  if (q == std::string_view::npos) return params;
  std::string_view rest = target.substr(q + 1);
  while (!rest.empty()) {
    const size_t amp = rest.find('&');
    std::string_view part = rest.substr(0, amp);
    rest = amp == std::string_view::npos ? std::string_view() : rest.substr(amp + 1);
    const size_t eq = part.find('=');
    std::string_view raw_key = part.substr(0, eq);
    std::string_view raw_value = eq == std::string_view::npos ? "" : part.substr(eq + 1);
    auto key = DecodeQueryPart(raw_key);
    if (!key.ok()) return key.status();
    auto value = DecodeQueryPart(raw_value);
    if (!value.ok()) return value.status();
    if (key->empty()) continue;
    params.emplace(std::move(key).value(), std::move(value).value());
  }
  return params;
}

std::string PercentEncodeSegment(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

// --- The book's endpoints ---

StatusOr<OwnedRequest> MapBookEntries(const Params& query) {
  auto list = RequiredParam(query, "list");
  if (!list.ok()) return list.status();
  auto date = RequiredParam(query, "date");
  if (!date.ok()) return date.status();
  if (Status s = CheckList(**list); !s.ok()) return s;
  auto d = CheckDate("query parameter 'date'", **date);
  if (!d.ok()) return d.status();
  OwnedRequest r;
  r.op = protocol::Op::kEntries;
  r.list = **list;
  r.date = *d;
  return r;
}

StatusOr<OwnedRequest> MapBookAddEntry(const Params& query, const HeaderValues& idempotency_key) {
  auto list = RequiredParam(query, "list");
  if (!list.ok()) return list.status();
  auto date = RequiredParam(query, "date");
  if (!date.ok()) return date.status();
  auto title = RequiredParam(query, "title");
  if (!title.ok()) return title.status();
  if (Status s = CheckList(**list); !s.ok()) return s;
  auto d = CheckDate("query parameter 'date'", **date);
  if (!d.ok()) return d.status();
  if (Status s = CheckTitle(**title); !s.ok()) return s;
  OwnedRequest r;
  r.op = protocol::Op::kAddEntry;
  r.list = **list;
  r.date = *d;
  r.title = **title;
  if (Status s = SetRid(idempotency_key, &r); !s.ok()) return s;
  return r;
}

StatusOr<OwnedRequest> MapBookEntriesFromTarget(std::string_view target) {
  auto query = ParseQuery(target);
  if (!query.ok()) return query.status();
  return MapBookEntries(*query);
}

StatusOr<OwnedRequest> MapBookAddEntryFromTarget(std::string_view target,
                                                 const HeaderValues& idempotency_key) {
  auto query = ParseQuery(target);
  if (!query.ok()) return query.status();
  return MapBookAddEntry(*query, idempotency_key);
}

HttpReply BookError(const Status& status) {
  HttpReply r = Text(HttpStatusFor(status.code()), status.message() + "\n");
  AddRetryAfter(&r);
  return r;
}

HttpReply BookEntriesReply(std::string_view reply_body) {
  // The book's hot path: most replies are read without building objects.
  if (auto fast = FastBookEntriesReply(reply_body)) return std::move(*fast);
  auto reply = UnpackReply(reply_body);
  if (!reply.ok()) return BookError(reply.status());
  if (!reply->ok) return BookError(Status(reply->code, reply->message));
  const msgpack::object* result = reply->result;
  if (result == nullptr || result->type != msgpack::type::ARRAY) {
    return BookError(Status::Internal("entries result is not a list"));
  }
  // Straight from msgpack to text: this is the book's hot path.
  std::string text;
  for (uint32_t i = 0; i < result->via.array.size; ++i) {
    const msgpack::object& e = result->via.array.ptr[i];
    const msgpack::object* date = nullptr;
    const msgpack::object* title = nullptr;
    if (e.type == msgpack::type::MAP) {
      for (uint32_t j = 0; j < e.via.map.size; ++j) {
        const auto& kv = e.via.map.ptr[j];
        if (kv.key.type != msgpack::type::STR) continue;
        std::string_view k(kv.key.via.str.ptr, kv.key.via.str.size);
        if (k == "date") date = &kv.val;
        if (k == "title") title = &kv.val;
      }
    }
    if (date == nullptr || title == nullptr || !IsString(*date) || !IsString(*title)) {
      return BookError(Status::Internal("entry without a date or title in the reply"));
    }
    text.append(date->via.str.ptr, date->via.str.size);
    text += ' ';
    text.append(title->via.str.ptr, title->via.str.size);
    text += '\n';
  }
  return Text(200, std::move(text));
}

HttpReply BookAddEntryReply(std::string_view reply_body) {
  std::optional<MsgpackReader> result;
  if (FastOkReply(reply_body, &result)) return Text(200, "OK");
  auto reply = UnpackReply(reply_body);
  if (!reply.ok()) return BookError(reply.status());
  if (!reply->ok) return BookError(Status(reply->code, reply->message));
  return Text(200, "OK");
}

// --- The JSON API ---

StatusOr<ListPath> ParseListPath(std::string_view target) {
  std::string_view path = target.substr(0, target.find_first_of("?#"));
  constexpr std::string_view kPrefix = "/lists/";
  auto not_found = [&] { return Status(ErrorCode::kNotFound, "no such resource: " + Quote(path)); };
  if (!path.starts_with(kPrefix)) return not_found();
  std::vector<std::string_view> segs;
  std::string_view rest = path.substr(kPrefix.size());
  for (;;) {
    size_t slash = rest.find('/');
    segs.push_back(rest.substr(0, slash));
    if (slash == std::string_view::npos) break;
    rest = rest.substr(slash + 1);
  }
  ListPath p;
  if (segs.size() == 2 && segs[1] == "entries") {
    p.kind = ListPath::Kind::kEntries;
  } else if (segs.size() == 2 && segs[1] == "owner") {
    p.kind = ListPath::Kind::kOwner;
  } else if (segs.size() == 3 && segs[1] == "entries") {
    p.kind = ListPath::Kind::kEntry;
    std::string_view id = segs[2];
    uint64_t v = 0;
    bool ok = !id.empty() && id.size() <= 20;
    for (char c : id) {
      if (!ok) break;
      if (c < '0' || c > '9') {
        ok = false;
        break;
      }
      uint64_t digit = static_cast<uint64_t>(c - '0');
      if (v > (UINT64_MAX - digit) / 10) ok = false;
      v = v * 10 + digit;
    }
    if (!ok) {
      return Status::BadRequest(
          "entry id must be an unsigned integer (0-18446744073709551615), not " + Quote(id));
    }
    p.entry_id = v;
  } else {
    return not_found();
  }
  auto list = PercentDecode(segs[0]);
  if (!list.ok()) return list.status();
  p.list = std::move(list).value();
  if (Status s = CheckList(p.list); !s.ok()) return s;
  return p;
}

StatusOr<OwnedRequest> MapListEntries(const ListPath& path, const Params& query) {
  OwnedRequest r;
  r.op = protocol::Op::kEntries;
  r.list = path.list;
  if (const std::string* date = Param(query, "date")) {
    auto d = CheckDate("query parameter 'date'", *date);
    if (!d.ok()) return d.status();
    r.date = *d;
  }
  return r;
}

StatusOr<OwnedRequest> MapListEntriesFromTarget(const ListPath& path, std::string_view target) {
  auto query = ParseQuery(target);
  if (!query.ok()) return query.status();
  return MapListEntries(path, *query);
}

StatusOr<OwnedRequest> MapCreateEntry(const ListPath& path, std::string_view json_body,
                                      const HeaderValues& idempotency_key) {
  auto body = ParseObject(json_body);
  if (!body.ok()) return body.status();
  std::optional<std::string> date, title;
  if (Status s = StringField(*body, "date", &date); !s.ok()) return s;
  if (Status s = StringField(*body, "title", &title); !s.ok()) return s;
  if (!date) return Status::BadRequest("missing field 'date'");
  if (!title) return Status::BadRequest("missing field 'title'");
  auto d = CheckDate("field 'date'", *date);
  if (!d.ok()) return d.status();
  if (Status s = CheckTitle(*title); !s.ok()) return s;
  OwnedRequest r;
  r.op = protocol::Op::kAddEntry;
  r.list = path.list;
  r.date = *d;
  r.title = std::move(title);
  if (Status s = SetRid(idempotency_key, &r); !s.ok()) return s;
  return r;
}

StatusOr<OwnedRequest> MapUpdateEntry(const ListPath& path, std::string_view json_body,
                                      const HeaderValues& idempotency_key) {
  auto body = ParseObject(json_body);
  if (!body.ok()) return body.status();
  std::optional<std::string> date, title;
  if (Status s = StringField(*body, "date", &date); !s.ok()) return s;
  if (Status s = StringField(*body, "title", &title); !s.ok()) return s;
  if (!date && !title) return Status::BadRequest("body needs at least one of 'date', 'title'");
  OwnedRequest r;
  r.op = protocol::Op::kUpdateEntry;
  r.list = path.list;
  r.entry_id = path.entry_id;
  if (date) {
    auto d = CheckDate("field 'date'", *date);
    if (!d.ok()) return d.status();
    r.date = *d;
  }
  if (title) {
    if (Status s = CheckTitle(*title); !s.ok()) return s;
    r.title = std::move(title);
  }
  if (Status s = SetRid(idempotency_key, &r); !s.ok()) return s;
  return r;
}

OwnedRequest MapDeleteEntry(const ListPath& path) {
  OwnedRequest r;
  r.op = protocol::Op::kDeleteEntry;
  r.list = path.list;
  r.entry_id = path.entry_id;
  return r;
}

StatusOr<OwnedRequest> MapDeleteEntry(const ListPath& path, const HeaderValues& idempotency_key) {
  OwnedRequest r = MapDeleteEntry(path);
  if (Status s = SetRid(idempotency_key, &r); !s.ok()) return s;
  return r;
}

OwnedRequest MapOwner(const ListPath& path) {
  OwnedRequest r;
  r.op = protocol::Op::kLocate;
  r.list = path.list;
  return r;
}

HttpReply JsonError(int status, std::string_view code, std::string_view message) {
  json j = {{"error", {{"code", code}, {"message", message}}}};
  HttpReply r{status, std::string(kJson), Dump(j) + "\n", {}};
  AddRetryAfter(&r);
  return r;
}

HttpReply JsonError(const Status& status) {
  return JsonError(HttpStatusFor(status.code()), ErrorCodeName(status.code()), status.message());
}

HttpReply JsonResultReply(std::string_view reply_body, int status) {
  auto reply = DecodeReply(reply_body);
  if (!reply.ok()) return JsonError(reply.status());
  if (!reply->ok) return JsonError(Status(reply->code, reply->message));
  return HttpReply{status, std::string(kJson), Dump(reply->result) + "\n", {}};
}

HttpReply CreatedReply(std::string_view reply_body, const OwnedRequest& request) {
  auto reply = DecodeReply(reply_body);
  if (!reply.ok()) return JsonError(reply.status());
  if (!reply->ok) return JsonError(Status(reply->code, reply->message));
  auto id = reply->result.find("id");
  if (id == reply->result.end() || !id->is_number_unsigned() || !request.date || !request.title) {
    return JsonError(Status::Internal("add_entry reply has no id"));
  }
  uint64_t n = id->get<uint64_t>();
  json entry = {{"id", n}, {"date", FormatDate(*request.date)}, {"title", *request.title}};
  HttpReply r{201, std::string(kJson), Dump(entry) + "\n", {}};
  r.headers.emplace_back(
      "Location", "/lists/" + PercentEncodeSegment(request.list) + "/entries/" + std::to_string(n));
  return r;
}

HttpReply MethodNotAllowed(std::string_view method, std::string_view allow) {
  HttpReply r =
      JsonError(405, "method_not_allowed",
                "method " + Quote(method) + " not allowed here; allowed: " + std::string(allow));
  r.headers.emplace_back("Allow", std::string(allow));
  return r;
}

// --- Protocol replies ---

StatusOr<DecodedReply> DecodeReply(std::string_view reply_body) {
  auto reply = UnpackReply(reply_body);
  if (!reply.ok()) return reply.status();
  DecodedReply d;
  d.ok = reply->ok;
  if (!d.ok) {
    d.code = reply->code;
    d.message = std::move(reply->message);
    return d;
  }
  if (reply->result != nullptr) d.result = ToJson(*reply->result);
  return d;
}

}  // namespace todo::router::http
