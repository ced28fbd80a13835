// The answer half of codec.h: our types from the gateway's JSON, every
// field checked (type, base64, range) without exceptions.
#include "common/io/etcd/codec.h"

#include <charconv>
#include <limits>

namespace todo::io::codec {
namespace {

using nlohmann::json;

Status Malformed(const std::string& where, const std::string& problem) {
  return Status::Internal("malformed answer: " + where + ": " + problem);
}

// Readers of one field of an object: an absent field is its proto3 default;
// a field of the wrong type is an error naming `where`.field. `obj` must be
// an object (callers check with Object()).
Status Int(const json& obj, const char* field, const std::string& where, int64_t* out) {
  *out = 0;
  auto it = obj.find(field);
  if (it == obj.end() || it->is_null()) return Status::Ok();
  const std::string name = where + "." + field;
  if (it->is_number_integer()) {
    if (it->is_number_unsigned() && it->get<uint64_t>() > uint64_t(INT64_MAX)) {
      return Malformed(name, "out of range");
    }
    *out = it->get<int64_t>();
    return Status::Ok();
  }
  if (!it->is_string()) return Malformed(name, "not an integer");
  const std::string& s = it->get_ref<const std::string&>();
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  if (ec != std::errc() || end != s.data() + s.size() || s.empty()) {
    return Malformed(name, "not an integer");
  }
  return Status::Ok();
}

Status Uint(const json& obj, const char* field, const std::string& where, uint64_t* out) {
  *out = 0;
  auto it = obj.find(field);
  if (it == obj.end() || it->is_null()) return Status::Ok();
  const std::string name = where + "." + field;
  if (it->is_number_unsigned()) {
    *out = it->get<uint64_t>();
    return Status::Ok();
  }
  if (!it->is_string()) return Malformed(name, "not an unsigned integer");
  const std::string& s = it->get_ref<const std::string&>();
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  if (ec != std::errc() || end != s.data() + s.size() || s.empty()) {
    return Malformed(name, "not an unsigned integer");
  }
  return Status::Ok();
}

Status Bool(const json& obj, const char* field, const std::string& where, bool* out) {
  *out = false;
  auto it = obj.find(field);
  if (it == obj.end() || it->is_null()) return Status::Ok();
  if (!it->is_boolean()) return Malformed(where + "." + field, "not a boolean");
  *out = it->get<bool>();
  return Status::Ok();
}

Status Text(const json& obj, const char* field, const std::string& where, std::string* out) {
  out->clear();
  auto it = obj.find(field);
  if (it == obj.end() || it->is_null()) return Status::Ok();
  if (!it->is_string()) return Malformed(where + "." + field, "not a string");
  *out = it->get<std::string>();
  return Status::Ok();
}

Status Bytes(const json& obj, const char* field, const std::string& where, std::string* out) {
  std::string text;
  if (Status s = Text(obj, field, where, &text); !s.ok()) return s;
  auto bytes = Base64Decode(text);
  if (!bytes) return Malformed(where + "." + field, "not base64");
  *out = std::move(*bytes);
  return Status::Ok();
}

// The member `field` of `obj` if it is an object (or absent: nullptr).
StatusOr<const json*> Object(const json& obj, const char* field, const std::string& where) {
  auto it = obj.find(field);
  if (it == obj.end() || it->is_null()) return static_cast<const json*>(nullptr);
  if (!it->is_object()) return Malformed(where + "." + field, "not an object");
  return &*it;
}

StatusOr<const json*> Array(const json& obj, const char* field, const std::string& where) {
  auto it = obj.find(field);
  if (it == obj.end() || it->is_null()) return static_cast<const json*>(nullptr);
  if (!it->is_array()) return Malformed(where + "." + field, "not an array");
  return &*it;
}

#define TODO_RETURN_IF_ERROR(expr)               \
  do {                                           \
    if (Status s_ = (expr); !s_.ok()) return s_; \
  } while (0)

Status TopObject(const json& body) {
  return body.is_object() ? Status::Ok() : Malformed("body", "not a JSON object");
}

// header.revision of `obj` (absent = 0).
Status HeaderRevision(const json& obj, const std::string& where, int64_t* out) {
  *out = 0;
  auto header = Object(obj, "header", where);
  if (!header.ok()) return header.status();
  if (*header == nullptr) return Status::Ok();
  return Int(**header, "revision", where + ".header", out);
}

Status DecodeKv(const json& kv, const std::string& where, KeyValue* out) {
  if (!kv.is_object()) return Malformed(where, "not an object");
  TODO_RETURN_IF_ERROR(Bytes(kv, "key", where, &out->key));
  TODO_RETURN_IF_ERROR(Bytes(kv, "value", where, &out->value));
  TODO_RETURN_IF_ERROR(Int(kv, "create_revision", where, &out->create_revision));
  TODO_RETURN_IF_ERROR(Int(kv, "mod_revision", where, &out->mod_revision));
  TODO_RETURN_IF_ERROR(Int(kv, "version", where, &out->version));
  TODO_RETURN_IF_ERROR(Int(kv, "lease", where, &out->lease));
  return Status::Ok();
}

Status DecodeRangeAt(const json& obj, const std::string& where, RangeResult* out) {
  if (!obj.is_object()) return Malformed(where, "not an object");
  TODO_RETURN_IF_ERROR(HeaderRevision(obj, where, &out->revision));
  TODO_RETURN_IF_ERROR(Int(obj, "count", where, &out->count));
  TODO_RETURN_IF_ERROR(Bool(obj, "more", where, &out->more));
  auto kvs = Array(obj, "kvs", where);
  if (!kvs.ok()) return kvs.status();
  if (*kvs != nullptr) {
    out->kvs.reserve((*kvs)->size());
    for (size_t i = 0; i < (*kvs)->size(); ++i) {
      KeyValue kv;
      TODO_RETURN_IF_ERROR(DecodeKv((**kvs)[i], where + ".kvs[" + std::to_string(i) + "]", &kv));
      out->kvs.push_back(std::move(kv));
    }
  }
  return Status::Ok();
}

// The {"result": {...}} of a streamed line, or the error it carries.
StatusOr<const json*> StreamResult(const json& line) {
  if (!line.is_object()) return Malformed("line", "not a JSON object");
  auto error = Object(line, "error", "line");
  if (!error.ok()) return error.status();
  if (*error != nullptr) {
    std::string message;
    (void)Text(**error, "message", "error", &message);
    return Status(ErrorCode::kUnavailable, "etcd: " + (message.empty() ? "error" : message));
  }
  auto result = Object(line, "result", "line");
  if (!result.ok()) return result.status();
  if (*result == nullptr) return Malformed("line", "no 'result'");
  return *result;
}

}  // namespace

StatusOr<RangeResult> DecodeRange(const json& body) {
  TODO_RETURN_IF_ERROR(TopObject(body));
  RangeResult r;
  TODO_RETURN_IF_ERROR(DecodeRangeAt(body, "range", &r));
  return r;
}

StatusOr<int64_t> DecodeHeaderRevision(const json& body) {
  TODO_RETURN_IF_ERROR(TopObject(body));
  int64_t revision = 0;
  TODO_RETURN_IF_ERROR(HeaderRevision(body, "answer", &revision));
  if (revision <= 0) return Malformed("answer.header.revision", "missing");
  return revision;
}

StatusOr<DeleteResult> DecodeDelete(const json& body) {
  TODO_RETURN_IF_ERROR(TopObject(body));
  DeleteResult r;
  TODO_RETURN_IF_ERROR(HeaderRevision(body, "delete", &r.revision));
  TODO_RETURN_IF_ERROR(Int(body, "deleted", "delete", &r.deleted));
  return r;
}

StatusOr<TxnResult> DecodeTxn(const json& body) {
  TODO_RETURN_IF_ERROR(TopObject(body));
  TxnResult r;
  TODO_RETURN_IF_ERROR(HeaderRevision(body, "txn", &r.revision));
  TODO_RETURN_IF_ERROR(Bool(body, "succeeded", "txn", &r.succeeded));
  auto responses = Array(body, "responses", "txn");
  if (!responses.ok()) return responses.status();
  if (*responses == nullptr) return r;
  for (size_t i = 0; i < (*responses)->size(); ++i) {
    const json& one = (**responses)[i];
    const std::string where = "txn.responses[" + std::to_string(i) + "]";
    if (!one.is_object()) return Malformed(where, "not an object");
    OpResult op;
    if (auto it = one.find("response_range"); it != one.end()) {
      op.type = Op::Type::kRange;
      TODO_RETURN_IF_ERROR(DecodeRangeAt(*it, where + ".response_range", &op.range));
    } else if (auto put = one.find("response_put"); put != one.end()) {
      op.type = Op::Type::kPut;
    } else if (auto del = one.find("response_delete_range"); del != one.end()) {
      op.type = Op::Type::kDelete;
      if (!del->is_object()) return Malformed(where + ".response_delete_range", "not an object");
      TODO_RETURN_IF_ERROR(Int(*del, "deleted", where + ".response_delete_range", &op.deleted));
    } else {
      return Malformed(where, "no response_range, response_put or response_delete_range");
    }
    r.responses.push_back(std::move(op));
  }
  return r;
}

StatusOr<LeaseGrant> DecodeLeaseGrant(const json& body) {
  TODO_RETURN_IF_ERROR(TopObject(body));
  LeaseGrant g;
  TODO_RETURN_IF_ERROR(Int(body, "ID", "grant", &g.id));
  TODO_RETURN_IF_ERROR(Int(body, "TTL", "grant", &g.ttl));
  std::string error;
  TODO_RETURN_IF_ERROR(Text(body, "error", "grant", &error));
  if (!error.empty()) return Status(ErrorCode::kUnavailable, "etcd: " + error);
  if (g.id == 0 || g.ttl <= 0) return Malformed("grant", "no ID or TTL");
  return g;
}

StatusOr<int64_t> DecodeKeepAlive(const json& line) {
  auto result = StreamResult(line);
  if (!result.ok()) return result.status();
  int64_t ttl = 0;
  TODO_RETURN_IF_ERROR(Int(**result, "TTL", "keepalive", &ttl));
  if (ttl < 0) return Malformed("keepalive.TTL", "negative");
  return ttl;
}

StatusOr<LeaseInfo> DecodeTimeToLive(const json& body) {
  TODO_RETURN_IF_ERROR(TopObject(body));
  LeaseInfo info;
  TODO_RETURN_IF_ERROR(Int(body, "ID", "timetolive", &info.id));
  TODO_RETURN_IF_ERROR(Int(body, "TTL", "timetolive", &info.ttl));
  TODO_RETURN_IF_ERROR(Int(body, "grantedTTL", "timetolive", &info.granted_ttl));
  auto keys = Array(body, "keys", "timetolive");
  if (!keys.ok()) return keys.status();
  if (*keys != nullptr) {
    for (size_t i = 0; i < (*keys)->size(); ++i) {
      const json& k = (**keys)[i];
      auto bytes = k.is_string() ? Base64Decode(k.get_ref<const std::string&>()) : std::nullopt;
      if (!bytes) return Malformed("timetolive.keys[" + std::to_string(i) + "]", "not base64");
      info.keys.push_back(std::move(*bytes));
    }
  }
  return info;
}

StatusOr<MemberStatus> DecodeMemberStatus(const json& body) {
  TODO_RETURN_IF_ERROR(TopObject(body));
  MemberStatus m;
  TODO_RETURN_IF_ERROR(Text(body, "version", "status", &m.version));
  TODO_RETURN_IF_ERROR(Uint(body, "leader", "status", &m.leader));
  TODO_RETURN_IF_ERROR(Int(body, "raftTerm", "status", &m.raft_term));
  TODO_RETURN_IF_ERROR(Int(body, "raftIndex", "status", &m.raft_index));
  TODO_RETURN_IF_ERROR(Int(body, "dbSize", "status", &m.db_size));
  auto header = Object(body, "header", "status");
  if (!header.ok()) return header.status();
  if (*header != nullptr) {
    TODO_RETURN_IF_ERROR(Uint(**header, "member_id", "status.header", &m.member_id));
  }
  if (m.version.empty() || m.member_id == 0) return Malformed("status", "no version or member id");
  return m;
}

StatusOr<WatchMessage> DecodeWatchMessage(const json& line) {
  auto result = StreamResult(line);
  if (!result.ok()) return result.status();
  const json& r = **result;
  WatchMessage m;
  TODO_RETURN_IF_ERROR(HeaderRevision(r, "watch", &m.revision));
  TODO_RETURN_IF_ERROR(Bool(r, "created", "watch", &m.created));
  TODO_RETURN_IF_ERROR(Bool(r, "canceled", "watch", &m.canceled));
  TODO_RETURN_IF_ERROR(Int(r, "compact_revision", "watch", &m.compact_revision));
  TODO_RETURN_IF_ERROR(Text(r, "cancel_reason", "watch", &m.cancel_reason));
  auto events = Array(r, "events", "watch");
  if (!events.ok()) return events.status();
  if (*events != nullptr) {
    m.events.reserve((*events)->size());
    for (size_t i = 0; i < (*events)->size(); ++i) {
      const json& e = (**events)[i];
      const std::string where = "watch.events[" + std::to_string(i) + "]";
      if (!e.is_object()) return Malformed(where, "not an object");
      Event ev;
      std::string type;
      TODO_RETURN_IF_ERROR(Text(e, "type", where, &type));
      if (type.empty() || type == "PUT") {
        ev.type = EventType::kPut;
      } else if (type == "DELETE") {
        ev.type = EventType::kDelete;
      } else {
        return Malformed(where + ".type", "unknown event type");
      }
      auto kv = Object(e, "kv", where);
      if (!kv.ok()) return kv.status();
      if (*kv == nullptr) return Malformed(where, "no kv");
      TODO_RETURN_IF_ERROR(DecodeKv(**kv, where + ".kv", &ev.kv));
      m.events.push_back(std::move(ev));
    }
  }
  return m;
}

std::optional<GatewayError> DecodeGatewayError(const json& body) {
  if (!body.is_object()) return std::nullopt;
  auto code = body.find("code");
  if (code == body.end() || !code->is_number_integer()) return std::nullopt;
  GatewayError e;
  e.code = static_cast<int>(code->get<int64_t>());
  std::string message;
  if (!Text(body, "message", "error", &message).ok() || message.empty()) {
    (void)Text(body, "error", "error", &message);
  }
  e.message = message.empty() ? "gRPC code " + std::to_string(e.code) : message;
  return e;
}

}  // namespace todo::io::codec

#undef TODO_RETURN_IF_ERROR
