// The request half of codec.h: base64 and the bodies of requests.
#include <nlohmann/json.hpp>

#include "common/io/etcd/codec.h"

namespace todo::io::codec {
namespace {

using nlohmann::json;

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

const char* TargetName(CompareTarget t) {
  switch (t) {
    case CompareTarget::kVersion:
      return "VERSION";
    case CompareTarget::kCreate:
      return "CREATE";
    case CompareTarget::kMod:
      return "MOD";
    case CompareTarget::kValue:
      return "VALUE";
    case CompareTarget::kLease:
      return "LEASE";
  }
  return "VERSION";
}

const char* OpName(CompareOp op) {
  switch (op) {
    case CompareOp::kEqual:
      return "EQUAL";
    case CompareOp::kNotEqual:
      return "NOT_EQUAL";
    case CompareOp::kGreater:
      return "GREATER";
    case CompareOp::kLess:
      return "LESS";
  }
  return "EQUAL";
}

json RangeJson(std::string_view key, std::string_view range_end, int64_t limit, bool keys_only,
               bool count_only, int64_t revision) {
  json j = {{"key", Base64Encode(key)}};
  if (!range_end.empty()) j["range_end"] = Base64Encode(range_end);
  if (limit > 0) j["limit"] = std::to_string(limit);
  if (revision > 0) j["revision"] = std::to_string(revision);
  if (keys_only) j["keys_only"] = true;
  if (count_only) j["count_only"] = true;
  return j;
}

json PutJson(std::string_view key, std::string_view value, int64_t lease) {
  json j = {{"key", Base64Encode(key)}, {"value", Base64Encode(value)}};
  if (lease != 0) j["lease"] = std::to_string(lease);
  return j;
}

json DeleteJson(std::string_view key, std::string_view range_end) {
  json j = {{"key", Base64Encode(key)}};
  if (!range_end.empty()) j["range_end"] = Base64Encode(range_end);
  return j;
}

json OpJson(const Op& op) {
  switch (op.type) {
    case Op::Type::kPut:
      return {{"request_put", PutJson(op.key, op.value, op.lease)}};
    case Op::Type::kDelete:
      return {{"request_delete_range", DeleteJson(op.key, op.range_end)}};
    case Op::Type::kRange:
      break;
  }
  return {{"request_range", RangeJson(op.key, op.range_end, op.limit, false, false, 0)}};
}

}  // namespace

std::string Base64Encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    uint32_t v = uint32_t(uint8_t(bytes[i])) << 16 | uint32_t(uint8_t(bytes[i + 1])) << 8 |
                 uint8_t(bytes[i + 2]);
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  size_t rest = bytes.size() - i;
  if (rest > 0) {
    uint32_t v = uint32_t(uint8_t(bytes[i])) << 16;
    if (rest == 2) v |= uint32_t(uint8_t(bytes[i + 1])) << 8;
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += rest == 2 ? kAlphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::optional<std::string> Base64Decode(std::string_view text) {
  size_t pad = 0;
  while (pad < 2 && !text.empty() && text.back() == '=') {
    text.remove_suffix(1);
    ++pad;
  }
  if (pad > 0 && (text.size() + pad) % 4 != 0) return std::nullopt;
  if (text.size() % 4 == 1) return std::nullopt;
  std::string out;
  out.reserve(text.size() / 4 * 3 + 2);
  uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    int v;
    if (c >= 'A' && c <= 'Z') {
      v = c - 'A';
    } else if (c >= 'a' && c <= 'z') {
      v = c - 'a' + 26;
    } else if (c >= '0' && c <= '9') {
      v = c - '0' + 52;
    } else if (c == '+') {
      v = 62;
    } else if (c == '/') {
      v = 63;
    } else {
      return std::nullopt;
    }
    acc = (acc << 6) | uint32_t(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  if (bits > 0 && (acc & ((1u << bits) - 1)) != 0) return std::nullopt;  // stray bits
  return out;
}

std::string RangeBody(std::string_view key, std::string_view range_end, int64_t limit,
                      bool keys_only, bool count_only, int64_t revision) {
  return RangeJson(key, range_end, limit, keys_only, count_only, revision).dump();
}

std::string NewestKeyBody(std::string_view key, std::string_view range_end) {
  json j = RangeJson(key, range_end, 1, /*keys_only=*/true, /*count_only=*/false, 0);
  j["sort_order"] = "DESCEND";
  j["sort_target"] = "MOD";
  return j.dump();
}

std::string PutBody(std::string_view key, std::string_view value, int64_t lease) {
  return PutJson(key, value, lease).dump();
}

std::string DeleteBody(std::string_view key, std::string_view range_end) {
  return DeleteJson(key, range_end).dump();
}

std::string TxnBody(const TxnRequest& txn) {
  json compares = json::array();
  for (const Compare& c : txn.compares) {
    json j = {
        {"key", Base64Encode(c.key)}, {"target", TargetName(c.target)}, {"result", OpName(c.op)}};
    switch (c.target) {
      case CompareTarget::kVersion:
        j["version"] = std::to_string(c.number);
        break;
      case CompareTarget::kCreate:
        j["create_revision"] = std::to_string(c.number);
        break;
      case CompareTarget::kMod:
        j["mod_revision"] = std::to_string(c.number);
        break;
      case CompareTarget::kLease:
        j["lease"] = std::to_string(c.number);
        break;
      case CompareTarget::kValue:
        j["value"] = Base64Encode(c.value);
        break;
    }
    compares.push_back(std::move(j));
  }
  json success = json::array(), failure = json::array();
  for (const Op& op : txn.success) success.push_back(OpJson(op));
  for (const Op& op : txn.failure) failure.push_back(OpJson(op));
  return json{{"compare", compares}, {"success", success}, {"failure", failure}}.dump();
}

std::string CompactBody(int64_t revision) {
  return json{{"revision", std::to_string(revision)}}.dump();
}

std::string LeaseGrantBody(int64_t ttl_seconds) {
  return json{{"TTL", std::to_string(ttl_seconds)}}.dump();
}

std::string LeaseIdBody(int64_t id, bool keys) {
  json j = {{"ID", std::to_string(id)}};
  if (keys) j["keys"] = true;
  return j.dump();
}

std::string WatchCreateBody(std::string_view key, std::string_view range_end,
                            int64_t start_revision, bool prev_kv) {
  json req = {{"key", Base64Encode(key)}};
  if (!range_end.empty()) req["range_end"] = Base64Encode(range_end);
  if (start_revision > 0) req["start_revision"] = std::to_string(start_revision);
  if (prev_kv) req["prev_kv"] = true;
  return json{{"create_request", req}}.dump();
}
std::string Printable(std::string_view s) {
  std::string out = "'";
  for (char c : s.substr(0, 64)) {
    out += (c >= 0x20 && c < 0x7f) ? c : '?';
  }
  if (s.size() > 64) out += "...";
  return out + "'";
}

}  // namespace todo::io::codec
