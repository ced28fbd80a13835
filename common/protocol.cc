#include "common/protocol.h"

#include <cstring>
#include <msgpack.hpp>

#include "common/msgpack_reader.h"
#include "common/utf8.h"

namespace todo::protocol {
namespace {

constexpr std::string_view kOpNames[] = {"add_entry", "entries", "update_entry", "delete_entry",
                                         "locate",    "ping",    "stats",        "map"};
static_assert(std::size(kOpNames) == kNumOps);

// The msgpack type of a value, as decoding saw it.
enum class Type : uint8_t {
  kAbsent,
  kNil,
  kBool,
  kUint,
  kNegInt,
  kFloat,
  kStr,
  kBin,
  kExt,
  kArray,
  kMap
};

std::string_view TypeName(Type t) {
  switch (t) {
    case Type::kAbsent:
      return "nothing";
    case Type::kNil:
      return "nil";
    case Type::kBool:
      return "bool";
    case Type::kUint:
      return "uint";
    case Type::kNegInt:
      return "negative int";
    case Type::kFloat:
      return "float";
    case Type::kStr:
      return "str";
    case Type::kBin:
      return "bin";
    case Type::kExt:
      return "ext";
    case Type::kArray:
      return "array";
    case Type::kMap:
      return "map";
  }
  return "?";
}

// The keys decoding looks at; every other key is skipped.
enum Key : int {
  kKeyOp,
  kKeyId,
  kKeyList,
  kKeyDate,
  kKeyTitle,
  kKeyEntryId,
  kKeyRid,
  kNumKeys,
  kKeyOther
};
constexpr std::string_view kKeyNames[kNumKeys] = {"op",    "id",       "list", "date",
                                                  "title", "entry_id", "rid"};

Key LookupKey(std::string_view k) {
  // By length first: one comparison, not up to seven (a request has ~5 keys).
  auto is = [k](Key key) { return k == kKeyNames[key] ? key : kKeyOther; };
  switch (k.size()) {
    case 2:
      return k[0] == 'o' ? is(kKeyOp) : is(kKeyId);
    case 3:
      return is(kKeyRid);
    case 4:
      return k[0] == 'l' ? is(kKeyList) : is(kKeyDate);
    case 5:
      return is(kKeyTitle);
    case 8:
      return is(kKeyEntryId);
    default:
      return kKeyOther;
  }
}

struct Field {
  Type type = Type::kAbsent;
  std::string_view str;  // kStr or kBin bytes
  uint64_t uint_value = 0;
};

// A msgpack visitor that accepts exactly one top-level map with str keys and
// records the raw values of the keys above. Returning false stops parsing.
class RequestVisitor : public msgpack::null_visitor {
 public:
  Field fields[kNumKeys];
  std::string error;  // set when the visitor stopped the parse

  bool visit_nil() { return Scalar(Type::kNil); }
  bool visit_boolean(bool) { return Scalar(Type::kBool); }
  bool visit_positive_integer(uint64_t v) { return Scalar(Type::kUint, {}, v); }
  // msgpack-c reports every signed encoding (int8..int64) here, even a
  // non-negative value; msgpack defines that value as the same integer as
  // its uint encoding, so it counts as a uint.
  bool visit_negative_integer(int64_t v) {
    if (v >= 0) return visit_positive_integer(static_cast<uint64_t>(v));
    return Scalar(Type::kNegInt);
  }
  bool visit_float32(float) { return Scalar(Type::kFloat); }
  bool visit_float64(double) { return Scalar(Type::kFloat); }
  bool visit_str(const char* v, uint32_t size) { return Scalar(Type::kStr, {v, size}); }
  bool visit_bin(const char* v, uint32_t size) { return Scalar(Type::kBin, {v, size}); }
  bool visit_ext(const char*, uint32_t) { return Scalar(Type::kExt); }

  bool start_array(uint32_t) { return Open(Type::kArray); }
  bool end_array() { return Close(); }
  bool start_map(uint32_t) { return Open(Type::kMap); }
  bool end_map() { return Close(); }
  bool start_map_key() {
    if (depth_ == 1) in_key_ = true;
    return true;
  }
  bool end_map_key() {
    if (depth_ == 1) in_key_ = false;
    return true;
  }
  bool end_map_value() {
    if (depth_ == 1) current_ = kKeyOther;
    return true;
  }
  void init() {}  // called by the parser's init(); a visitor is used once
  void parse_error(size_t, size_t) { parse_failed_ = true; }
  void insufficient_bytes(size_t, size_t) { truncated_ = true; }

  bool saw_map() const { return saw_map_; }
  bool parse_failed() const { return parse_failed_; }
  bool truncated() const { return truncated_; }

 private:
  // A fatal error: stops the parse.
  bool Fail(std::string message) {
    if (error.empty()) error = std::move(message);
    return false;
  }
  // An error in one key: remembered, and the parse goes on (its value is
  // skipped) so that a valid "id" later in the map is still echoed.
  bool Note(std::string message) {
    if (error.empty()) error = std::move(message);
    current_ = kKeyOther;
    return true;
  }

  bool Scalar(Type type, std::string_view str = {}, uint64_t u = 0) {
    if (depth_ == 0) return Fail("body must be a msgpack map, not " + std::string(TypeName(type)));
    if (depth_ > 1) return true;  // inside a value we skip
    if (in_key_) return Key(type, str);
    if (current_ != kKeyOther) fields_set(type, str, u);
    return true;
  }

  void fields_set(Type type, std::string_view str, uint64_t u) {
    Field& f = fields[current_];
    f.type = type;
    f.str = str;
    f.uint_value = u;
  }

  bool Key(Type type, std::string_view k) {
    if (type != Type::kStr) return Note("map keys must be str, not " + std::string(TypeName(type)));
    current_ = LookupKey(k);
    if (current_ != kKeyOther) {
      if (fields[current_].type != Type::kAbsent) {
        return Note("duplicate key '" + std::string(kKeyNames[current_]) + "'");
      }
      // Mark present now, so a container value still counts as present.
      fields[current_].type = Type::kNil;
    }
    return true;
  }

  bool Open(Type type) {
    if (depth_ == 0) {
      if (type != Type::kMap) return Fail("body must be a msgpack map, not array");
      saw_map_ = true;
    } else if (depth_ == 1) {
      if (in_key_) {
        Note("map keys must be str, not " + std::string(TypeName(type)));
      } else if (current_ != kKeyOther) {
        fields_set(type, {}, 0);
      }
    }
    if (++depth_ > kMaxNesting) {
      return Fail("msgpack nesting deeper than " + std::to_string(kMaxNesting));
    }
    return true;
  }

  bool Close() {
    --depth_;
    return true;
  }

  int depth_ = 0;
  bool in_key_ = false;
  bool saw_map_ = false;
  bool parse_failed_ = false;
  bool truncated_ = false;
  ::todo::protocol::Key current_ = kKeyOther;
};

// msgpack::parse() with the parser kept per thread. parse() builds a parser
// context for every call, and the context's stack reserves heap room when
// built: a malloc and a free per request on the socket loop otherwise. Same
// semantics as msgpack::parse(data, len, off, visitor) (v3's parse_imp).
class RequestParser : public msgpack::detail::context<RequestParser> {
 public:
  RequestVisitor& visitor() const { return *visitor_; }

  bool Parse(const char* data, size_t len, size_t& off, RequestVisitor& v) {
    visitor_ = &v;
    if (len <= off) {
      v.insufficient_bytes(off, off);
      return false;
    }
    init();
    size_t noff = off;
    const msgpack::parse_return ret = execute(data, len, noff);
    off = noff;
    if (ret == msgpack::PARSE_CONTINUE) {
      v.insufficient_bytes(noff - 1, noff);
      return false;
    }
    // Trailing bytes parse too (parse() reports PARSE_EXTRA_BYTES as true);
    // the caller compares `off` with the size.
    return ret == msgpack::PARSE_SUCCESS;
  }

 private:
  RequestVisitor* visitor_ = nullptr;
};

std::string TypeError(std::string_view key, std::string_view want, Type got) {
  std::string m = "key '";
  m += key;
  m += "' must be ";
  m += want;
  m += ", not ";
  m += TypeName(got);
  return m;
}

// The fast path of DecodeRequest: a body that is one map (fixmap, map 16
// or map 32) whose keys are all str and whose values are all nil, bool,
// int, str or bin — every well-formed request — read straight into
// `fields`, as RequestVisitor would record them, without msgpack-c's
// parser and visitor calls (a third of the router's instructions per
// request went there). Returns false on anything else (a nested or float or
// ext value, a key that is not a str, a known key twice, a truncated body,
// trailing bytes): the general parser then decides, with its error message.
class FlatMapScanner {
 public:
  explicit FlatMapScanner(std::string_view body) : r_(body) {}

  bool Scan(Field* fields) {
    uint64_t n;
    if (!r_.Map(&n)) return false;
    for (uint64_t i = 0; i < n; ++i) {
      std::string_view key;
      if (!r_.Str(&key)) return false;  // a key that is not a str
      const Key k = LookupKey(key);
      Field f;
      if (!Value(&f)) return false;
      if (k == kKeyOther) continue;
      if (fields[k].type != Type::kAbsent) return false;  // duplicate: the visitor's error
      fields[k] = f;
    }
    return r_.done();
  }

 private:
  bool Value(Field* f) {
    uint8_t tag;
    if (!r_.Peek(&tag)) return false;
    uint64_t v;
    if (tag <= 0x7f) {  // positive fixint
      r_.Skip(1);
      *f = Field{Type::kUint, {}, tag};
    } else if (tag >= 0xe0) {  // negative fixint
      r_.Skip(1);
      *f = Field{Type::kNegInt, {}, 0};
    } else if (r_.PeekStr()) {
      f->type = Type::kStr;
      return r_.Str(&f->str);
    } else if (tag >= 0xc4 && tag <= 0xc6) {  // bin 8, 16, 32
      f->type = Type::kBin;
      return r_.Str(&f->str, /*bin=*/true);
    } else if (tag == 0xc0) {
      r_.Skip(1);
      *f = Field{Type::kNil, {}, 0};
    } else if (tag == 0xc2 || tag == 0xc3) {
      r_.Skip(1);
      *f = Field{Type::kBool, {}, 0};
    } else if (tag >= 0xcc && tag <= 0xcf) {  // uint 8, 16, 32, 64
      r_.Skip(1);
      if (!r_.Number(size_t{1} << (tag - 0xcc), &v)) return false;
      *f = Field{Type::kUint, {}, v};
    } else if (tag >= 0xd0 && tag <= 0xd3) {  // int 8, 16, 32, 64
      r_.Skip(1);
      const int bytes = 1 << (tag - 0xd0);
      if (!r_.Number(static_cast<size_t>(bytes), &v)) return false;
      // Sign-extended; a non-negative value is the same integer as a uint.
      const int64_t sv = bytes == 8
                             ? static_cast<int64_t>(v)
                             : static_cast<int64_t>(v << (64 - 8 * bytes)) >> (64 - 8 * bytes);
      *f =
          sv >= 0 ? Field{Type::kUint, {}, static_cast<uint64_t>(sv)} : Field{Type::kNegInt, {}, 0};
    } else {
      return false;  // float, ext, array, map, or the unused 0xc1
    }
    return true;
  }

  MsgpackReader r_;
};

}  // namespace

std::string QuoteForMessage(std::string_view s) {
  std::string out = "'";
  size_t n = 0;
  for (unsigned char c : s) {
    if (n++ == 64) {
      out += "...";
      break;
    }
    if (c >= 0x20 && c < 0x7f && c != '\'' && c != '\\') {
      out += static_cast<char>(c);
    } else {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  out += "'";
  return out;
}

namespace {

std::string Quote(std::string_view s) { return QuoteForMessage(s); }

Status NeedStr(const Field& f, std::string_view key) {
  if (f.type == Type::kAbsent) return Status::BadRequest("missing key '" + std::string(key) + "'");
  if (f.type != Type::kStr) return Status::BadRequest(TypeError(key, "a str", f.type));
  return Status::Ok();
}

Status CheckList(const Field& f, std::string_view* out) {
  if (Status s = NeedStr(f, "list"); !s.ok()) return s;
  if (f.str.empty() || f.str.size() > kMaxListBytes) {
    return Status::BadRequest("key 'list' must be 1-255 bytes, not " +
                              std::to_string(f.str.size()));
  }
  if (!IsValidUtf8(f.str)) return Status::BadRequest("key 'list' is not valid UTF-8");
  *out = f.str;
  return Status::Ok();
}

Status CheckDate(const Field& f, std::optional<Date>* out) {
  if (Status s = NeedStr(f, "date"); !s.ok()) return s;
  auto d = ParseDate(f.str);
  if (!d) {
    return Status::BadRequest(
        "key 'date' must be a real calendar date YYYY-MM-DD (0001-9999), not " + Quote(f.str));
  }
  *out = d;
  return Status::Ok();
}

Status CheckTitle(const Field& f, std::optional<std::string_view>* out) {
  if (Status s = NeedStr(f, "title"); !s.ok()) return s;
  if (f.str.empty() || f.str.size() > kMaxTitleBytes) {
    return Status::BadRequest("key 'title' must be 1-1024 bytes, not " +
                              std::to_string(f.str.size()));
  }
  if (!IsValidUtf8(f.str)) return Status::BadRequest("key 'title' is not valid UTF-8");
  *out = f.str;
  return Status::Ok();
}

Status CheckEntryId(const Field& f, uint64_t* out) {
  if (f.type == Type::kAbsent) return Status::BadRequest("missing key 'entry_id'");
  if (f.type != Type::kUint) return Status::BadRequest(TypeError("entry_id", "a uint", f.type));
  *out = f.uint_value;
  return Status::Ok();
}

// The optional request id of a write: a str of 1-64 bytes, any bytes.
Status CheckRid(const Field& f, std::string_view* out) {
  if (f.type == Type::kAbsent) return Status::Ok();
  if (f.type != Type::kStr) return Status::BadRequest(TypeError("rid", "a str", f.type));
  if (f.str.empty() || f.str.size() > kMaxRidBytes) {
    return Status::BadRequest("key 'rid' must be 1-64 bytes, not " + std::to_string(f.str.size()));
  }
  *out = f.str;
  return Status::Ok();
}

// The op's own keys (step 7 of the validation order).
Status ValidateOpKeys(const Field* fields, Request* req) {
  const Field& date = fields[kKeyDate];
  const Field& title = fields[kKeyTitle];
  switch (req->op) {
    case Op::kAddEntry:
      if (Status s = CheckDate(date, &req->date); !s.ok()) return s;
      return CheckTitle(title, &req->title);
    case Op::kEntries:
      if (date.type != Type::kAbsent) return CheckDate(date, &req->date);
      return Status::Ok();
    case Op::kUpdateEntry: {
      if (Status s = CheckEntryId(fields[kKeyEntryId], &req->entry_id); !s.ok()) return s;
      if (date.type == Type::kAbsent && title.type == Type::kAbsent) {
        return Status::BadRequest("update_entry needs at least one of 'date', 'title'");
      }
      if (date.type != Type::kAbsent) {
        if (Status s = CheckDate(date, &req->date); !s.ok()) return s;
      }
      if (title.type != Type::kAbsent) return CheckTitle(title, &req->title);
      return Status::Ok();
    }
    case Op::kDeleteEntry:
      return CheckEntryId(fields[kKeyEntryId], &req->entry_id);
    case Op::kLocate:
    case Op::kPing:
    case Op::kStats:
    case Op::kMap:
      return Status::Ok();
  }
  return Status::Ok();
}

Status Validate(const Field* fields, Request* req) {
  const Field& op = fields[kKeyOp];
  if (op.type == Type::kAbsent) return Status::BadRequest("missing key 'op'");
  if (op.type != Type::kStr) return Status::BadRequest(TypeError("op", "a str", op.type));
  auto parsed = ParseOp(op.str);
  if (!parsed) return {ErrorCode::kUnknownOp, "unknown op " + Quote(op.str)};
  req->op = *parsed;
  if (NeedsList(req->op)) {
    if (Status s = CheckList(fields[kKeyList], &req->list); !s.ok()) return s;
  }
  if (Status s = ValidateOpKeys(fields, req); !s.ok()) return s;
  if (IsMutating(req->op)) return CheckRid(fields[kKeyRid], &req->rid);
  return Status::Ok();
}

// --- encoding helpers ---

using Packer = msgpack::packer<msgpack::sbuffer>;

void PackStr(Packer& pk, std::string_view s) {
  pk.pack_str(static_cast<uint32_t>(s.size()));
  pk.pack_str_body(s.data(), static_cast<uint32_t>(s.size()));
}

void PackId(Packer& pk, const RequestId& id) {
  if (id.kind == RequestId::Kind::kNone) return;
  PackStr(pk, "id");
  if (id.kind == RequestId::Kind::kUint) {
    pk.pack_uint64(id.uint_value);
  } else {
    PackStr(pk, id.str_value);
  }
}

// {"id": .., "ok": true, "result": <caller packs>}
void BeginOk(Packer& pk, const RequestId& id) {
  pk.pack_map(id.kind == RequestId::Kind::kNone ? 2 : 3);
  PackId(pk, id);
  PackStr(pk, "ok");
  pk.pack_true();
  PackStr(pk, "result");
}

void PackEntry(Packer& pk, const EntryRef& e) {
  pk.pack_map(3);
  PackStr(pk, "id");
  pk.pack_uint64(e.id);
  PackStr(pk, "date");
  char date[10];
  FormatDateTo(e.date, date);
  PackStr(pk, std::string_view(date, 10));
  PackStr(pk, "title");
  PackStr(pk, e.title);
}

}  // namespace

OwnedRequestId OwnedRequestId::From(const RequestId& id) {
  OwnedRequestId owned;
  owned.kind = id.kind;
  owned.uint_value = id.uint_value;
  if (id.kind == RequestId::Kind::kStr) owned.str_value.assign(id.str_value);
  return owned;
}

RequestId OwnedRequestId::view() const {
  switch (kind) {
    case RequestId::Kind::kUint:
      return RequestId::Uint(uint_value);
    case RequestId::Kind::kStr:
      return RequestId::Str(str_value);
    case RequestId::Kind::kNone:
      break;
  }
  return RequestId::None();
}

std::string_view OpName(Op op) { return kOpNames[static_cast<int>(op)]; }

std::optional<Op> ParseOp(std::string_view name) {
  for (size_t i = 0; i < std::size(kOpNames); ++i) {
    if (name == kOpNames[i]) return static_cast<Op>(i);
  }
  return std::nullopt;
}

bool IsMutating(Op op) {
  return op == Op::kAddEntry || op == Op::kUpdateEntry || op == Op::kDeleteEntry;
}

bool NeedsList(Op op) { return op != Op::kPing && op != Op::kStats && op != Op::kMap; }

DecodeResult DecodeRequest(std::string_view body) {
  DecodeResult r;
  if (body.size() > kMaxBodyBytes) {
    r.status = Status::BadRequest("body is " + std::to_string(body.size()) +
                                  " bytes, more than the 65536 allowed");
    return r;
  }
  // The id is echoed whenever it was read, whatever else is wrong.
  auto read_id = [&r](const Field& id, Status* id_status) {
    if (id.type == Type::kUint) {
      r.id = RequestId::Uint(id.uint_value);
    } else if (id.type == Type::kStr) {
      r.id = RequestId::Str(id.str);
    } else if (id.type != Type::kAbsent) {
      *id_status = Status::BadRequest(TypeError("id", "a uint or str", id.type));
    }
  };
  {
    Field fields[kNumKeys];
    if (FlatMapScanner(body).Scan(fields)) {
      Status id_status;
      read_id(fields[kKeyId], &id_status);
      r.status = id_status.ok() ? Validate(fields, &r.request) : id_status;
      r.request.id = r.id;
      return r;
    }
  }
  RequestVisitor v;
  size_t off = 0;
  bool parsed = false;
  thread_local RequestParser parser;
  try {
    parsed = parser.Parse(body.data(), body.size(), off, v);
  } catch (const std::exception& e) {  // msgpack-c may throw on size limits
    r.status = Status::BadRequest(std::string("body is not valid msgpack: ") + e.what());
    return r;
  }
  Status id_status;
  read_id(v.fields[kKeyId], &id_status);
  if (!v.error.empty()) {
    r.status = Status::BadRequest(v.error);
  } else if (!parsed) {
    r.status =
        Status::BadRequest(v.truncated() || body.empty() ? "body is not valid msgpack: truncated"
                                                         : "body is not valid msgpack");
  } else if (!v.saw_map()) {
    r.status = Status::BadRequest("body must be a msgpack map");
  } else if (off != body.size()) {
    r.status = Status::BadRequest(std::to_string(body.size() - off) +
                                  " trailing bytes after the request map");
  } else if (!id_status.ok()) {
    r.status = id_status;
  } else {
    r.status = Validate(v.fields, &r.request);
  }
  r.request.id = r.id;
  return r;
}

void EncodeError(msgpack::sbuffer& out, const RequestId& id, ErrorCode code,
                 std::string_view message) {
  Packer pk(out);
  pk.pack_map(id.kind == RequestId::Kind::kNone ? 2 : 3);
  PackId(pk, id);
  PackStr(pk, "ok");
  pk.pack_false();
  PackStr(pk, "error");
  pk.pack_map(2);
  PackStr(pk, "code");
  PackStr(pk, ErrorCodeName(code));
  PackStr(pk, "message");
  PackStr(pk, message);
}

void EncodeError(msgpack::sbuffer& out, const RequestId& id, const Status& status) {
  EncodeError(out, id, status.code(), status.message());
}

void EncodeAddResult(msgpack::sbuffer& out, const RequestId& id, uint64_t entry_id) {
  Packer pk(out);
  BeginOk(pk, id);
  pk.pack_map(1);
  PackStr(pk, "id");
  pk.pack_uint64(entry_id);
}

void EncodeEntries(msgpack::sbuffer& out, const RequestId& id,
                   const std::vector<EntryRef>& entries) {
  Packer pk(out);
  BeginOk(pk, id);
  pk.pack_array(static_cast<uint32_t>(entries.size()));
  for (const EntryRef& e : entries) PackEntry(pk, e);
}

void EncodeEntry(msgpack::sbuffer& out, const RequestId& id, const EntryRef& entry) {
  Packer pk(out);
  BeginOk(pk, id);
  PackEntry(pk, entry);
}

void EncodeDeleted(msgpack::sbuffer& out, const RequestId& id, bool deleted) {
  Packer pk(out);
  BeginOk(pk, id);
  pk.pack_map(1);
  PackStr(pk, "deleted");
  if (deleted) {
    pk.pack_true();
  } else {
    pk.pack_false();
  }
}

void EncodeLocate(msgpack::sbuffer& out, const RequestId& id, std::string_view node) {
  Packer pk(out);
  BeginOk(pk, id);
  pk.pack_map(1);
  PackStr(pk, "node");
  PackStr(pk, node);
}

void EncodeLocateReplicated(msgpack::sbuffer& out, const RequestId& id, std::string_view node,
                            const std::vector<std::string>& replicas, uint32_t partition,
                            uint64_t epoch) {
  Packer pk(out);
  BeginOk(pk, id);
  pk.pack_map(4);
  PackStr(pk, "node");
  PackStr(pk, node);
  PackStr(pk, "replicas");
  pk.pack_array(static_cast<uint32_t>(replicas.size()));
  for (const std::string& r : replicas) PackStr(pk, r);
  PackStr(pk, "partition");
  pk.pack_uint32(partition);
  PackStr(pk, "epoch");
  pk.pack_uint64(epoch);
}

void EncodeMap(msgpack::sbuffer& out, const RequestId& id, uint32_t partitions,
               std::string_view hash, uint64_t version,
               const std::vector<std::pair<std::string_view, std::string_view>>& nodes,
               const std::vector<MapPart>& parts) {
  Packer pk(out);
  BeginOk(pk, id);
  pk.pack_map(5);
  PackStr(pk, "partitions");
  pk.pack_uint32(partitions);
  PackStr(pk, "hash");
  PackStr(pk, hash);
  PackStr(pk, "version");
  pk.pack_uint64(version);
  PackStr(pk, "nodes");
  pk.pack_map(static_cast<uint32_t>(nodes.size()));
  for (const auto& [name, endpoint] : nodes) {
    PackStr(pk, name);
    PackStr(pk, endpoint);
  }
  PackStr(pk, "parts");
  pk.pack_array(static_cast<uint32_t>(parts.size()));
  for (const MapPart& p : parts) {
    pk.pack_array(2);
    PackStr(pk, p.primary);
    pk.pack_uint64(p.epoch);
  }
}

void EncodePing(msgpack::sbuffer& out, const RequestId& id, std::string_view role,
                std::string_view name, uint64_t batch) {
  Packer pk(out);
  BeginOk(pk, id);
  pk.pack_map(batch > 0 ? 4 : 3);
  PackStr(pk, "pong");
  pk.pack_true();
  PackStr(pk, "role");
  PackStr(pk, role);
  PackStr(pk, "name");
  PackStr(pk, name);
  if (batch > 0) {
    PackStr(pk, "batch");
    pk.pack_uint64(batch);
  }
}

void BeginOkReply(msgpack::sbuffer& out, const RequestId& id) {
  Packer pk(out);
  BeginOk(pk, id);
}

void AppendStr(msgpack::sbuffer& out, std::string_view s) {
  Packer pk(out);
  PackStr(pk, s);
}

void AppendUintField(msgpack::sbuffer& out, std::string_view key, uint64_t v) {
  Packer pk(out);
  PackStr(pk, key);
  pk.pack_uint64(v);
}

std::optional<ErrorCode> PeekReplyCode(std::string_view body) {
  const auto* p = reinterpret_cast<const unsigned char*>(body.data());
  const unsigned char* end = p + body.size();
  auto take = [&](std::string_view bytes) {
    if (static_cast<size_t>(end - p) < bytes.size() ||
        std::memcmp(p, bytes.data(), bytes.size()) != 0) {
      return false;
    }
    p += bytes.size();
    return true;
  };
  // Skips a uint or str value (the id); false if it is neither.
  auto skip_id = [&]() {
    if (p == end) return false;
    unsigned char t = *p++;
    size_t n = 0;
    if (t <= 0x7f) return true;                              // positive fixint
    if (t == 0xcc || t == 0xcd || t == 0xce || t == 0xcf) {  // uint 8..64
      n = size_t{1} << (t - 0xcc);
    } else if (t >= 0xa0 && t <= 0xbf) {  // fixstr
      n = t & 0x1f;
    } else if (t == 0xd9 || t == 0xda || t == 0xdb) {  // str 8/16/32
      size_t len_bytes = size_t{1} << (t - 0xd9);
      if (static_cast<size_t>(end - p) < len_bytes) return false;
      for (size_t i = 0; i < len_bytes; ++i) n = (n << 8) | *p++;
    } else {
      return false;
    }
    if (static_cast<size_t>(end - p) < n) return false;
    p += n;
    return true;
  };
  if (p == end) return std::nullopt;
  unsigned char map = *p++;
  if (map == 0x83) {
    if (!take("\xa2id") || !skip_id()) return std::nullopt;
  } else if (map != 0x82) {
    return std::nullopt;
  }
  if (!take("\xa2ok")) return std::nullopt;
  if (take("\xc3")) return ErrorCode::kOk;
  if (!take("\xc2\xa5"
            "error"
            "\x82\xa4"
            "code"))
    return std::nullopt;
  if (p == end || *p < 0xa0 || *p > 0xbf) return std::nullopt;  // every code is a fixstr
  size_t n = *p++ & 0x1f;
  if (static_cast<size_t>(end - p) < n) return std::nullopt;
  std::string_view code(reinterpret_cast<const char*>(p), n);
  ErrorCode c = ParseErrorCode(code);
  if (c == ErrorCode::kInternal && code != "internal") return std::nullopt;
  return c;
}

void EncodeRequest(msgpack::sbuffer& out, const Request& request) {
  Packer pk(out);
  uint32_t n = 1;
  if (request.id.kind != RequestId::Kind::kNone) ++n;
  bool list = NeedsList(request.op);
  bool entry_id = request.op == Op::kUpdateEntry || request.op == Op::kDeleteEntry;
  const bool rid = IsMutating(request.op) && !request.rid.empty();
  n += list + entry_id + request.date.has_value() + request.title.has_value() + rid;
  pk.pack_map(n);
  PackStr(pk, "op");
  PackStr(pk, OpName(request.op));
  PackId(pk, request.id);
  if (list) {
    PackStr(pk, "list");
    PackStr(pk, request.list);
  }
  if (entry_id) {
    PackStr(pk, "entry_id");
    pk.pack_uint64(request.entry_id);
  }
  if (request.date) {
    PackStr(pk, "date");
    char date[10];
    FormatDateTo(*request.date, date);
    PackStr(pk, std::string_view(date, 10));
  }
  if (request.title) {
    PackStr(pk, "title");
    PackStr(pk, *request.title);
  }
  if (rid) {
    PackStr(pk, "rid");
    PackStr(pk, request.rid);
  }
}

ErrorCode ParseErrorCode(std::string_view name) {
  for (ErrorCode c :
       {ErrorCode::kBadRequest, ErrorCode::kUnknownOp, ErrorCode::kNotFound, ErrorCode::kOverloaded,
        ErrorCode::kUnavailable, ErrorCode::kTimeout, ErrorCode::kInternal}) {
    if (ErrorCodeName(c) == name) return c;
  }
  return ErrorCode::kInternal;
}

StatusOr<ReplyHeader> DecodeReplyHeader(std::string_view body) {
  try {
    size_t off = 0;
    // One zone per thread, cleared per reply: msgpack's default allocates
    // 8 KiB for every unpack, which dominated a client's cost per reply.
    thread_local msgpack::zone zone(1024);
    zone.clear();
    // An array or map can't have more elements than the body has bytes:
    // without this limit msgpack allocates for the count a header claims
    // before reading any element (5 bytes claiming 2^32 - 1 elements asked
    // for 128 GiB; found by tests/fuzz, corpus/reply/regress-huge-array).
    const msgpack::unpack_limit limit(/*array=*/body.size(), /*map=*/body.size() / 2);
    msgpack::object o =
        msgpack::unpack(zone, body.data(), body.size(), off, nullptr, nullptr, limit);
    if (off != body.size()) return Status::BadRequest("trailing bytes after the reply");
    if (o.type != msgpack::type::MAP) return Status::BadRequest("reply is not a map");
    ReplyHeader h;
    bool have_ok = false;
    bool have_code = false;
    for (uint32_t i = 0; i < o.via.map.size; ++i) {
      const auto& kv = o.via.map.ptr[i];
      if (kv.key.type != msgpack::type::STR) continue;
      std::string_view k(kv.key.via.str.ptr, kv.key.via.str.size);
      const msgpack::object& v = kv.val;
      if (k == "id") {
        if (v.type == msgpack::type::POSITIVE_INTEGER) {
          h.id_kind = RequestId::Kind::kUint;
          h.id_uint = v.via.u64;
        } else if (v.type == msgpack::type::STR) {
          h.id_kind = RequestId::Kind::kStr;
          h.id_str.assign(v.via.str.ptr, v.via.str.size);
        }
      } else if (k == "ok" && v.type == msgpack::type::BOOLEAN) {
        h.ok = v.via.boolean;
        have_ok = true;
      } else if (k == "error" && v.type == msgpack::type::MAP) {
        for (uint32_t j = 0; j < v.via.map.size; ++j) {
          const auto& e = v.via.map.ptr[j];
          if (e.key.type != msgpack::type::STR || e.val.type != msgpack::type::STR) continue;
          std::string_view ek(e.key.via.str.ptr, e.key.via.str.size);
          std::string_view ev(e.val.via.str.ptr, e.val.via.str.size);
          if (ek == "code") {
            h.code = ParseErrorCode(ev);
            have_code = true;
          }
          if (ek == "message") h.message.assign(ev);
        }
      }
    }
    if (!have_ok) return Status::BadRequest("reply has no 'ok'");
    // An error reply must say which error: without a str "error.code" the
    // header would read as a failure with code kOk (found by tests/fuzz,
    // corpus/reply/regress-error-without-code).
    if (!h.ok && !have_code) return Status::BadRequest("error reply has no 'error.code'");
    return h;
  } catch (const std::exception& e) {
    return Status::BadRequest(std::string("reply is not valid msgpack: ") + e.what());
  }
}

}  // namespace todo::protocol
