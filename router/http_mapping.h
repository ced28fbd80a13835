// How the router's HTTP front end maps HTTP to protocol v1 and back. Pure:
// no sockets, threads or HTTP library here, only values (query parameters,
// percent-encoded paths, JSON bodies, protocol reply bodies) in and out, so
// every rule is unit-tested (tests/unit/router/http_mapping_test.cc).
//
// Two APIs share the rules:
//  - the book's: GET /entries?list=L&date=D answers text/plain lines
//    "YYYY-MM-DD title\n"; POST /add_entry?list=L&date=D&title=T answers
//    "OK". Errors are text/plain messages.
//  - a JSON API under /lists/{list}/..., where {list} is one
//    percent-encoded path segment (so "a%2Fb" is the list "a/b"). Errors are
//    {"error": {"code": CODE, "message": MESSAGE}}.
// Protocol error codes become HTTP statuses by HttpStatusFor().
//
// Idempotency-Key (shared/spec/retries.md): the writes (the book's POST
// /add_entry; POST, PATCH and DELETE of the JSON API) take the header's
// values and make the key the protocol request's `rid`, so a retried HTTP
// write happens once. The server passes every value of the header (one per
// header line; none when absent) to the Map function of the write. A key is
// either the bare value (Stripe's form) or, when it is in double quotes, a
// structured-field string (the IETF draft's form, RFC 8941, with its two
// escapes, backslash-quote and backslash-backslash); either way 1-64 bytes. A second header, an
// empty or longer key, or a malformed quoted string is a 400 naming the header.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/date.h"
#include "common/protocol.h"
#include "common/status.h"

namespace todo::router::http {

// Decoded query parameters, name -> value (httplib::Params is this type).
using Params = std::multimap<std::string, std::string>;

// The request header whose value becomes a write's rid.
inline constexpr std::string_view kIdempotencyKeyHeader = "Idempotency-Key";
// The values of a header, one per header line in the request.
using HeaderValues = std::vector<std::string_view>;

inline constexpr std::string_view kTextPlain = "text/plain; charset=utf-8";
inline constexpr std::string_view kJson = "application/json";

// An HTTP answer: status, Content-Type, body and extra headers.
struct HttpReply {
  int status = 200;
  std::string content_type;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // e.g. Location, Retry-After
};

// A protocol request that owns its strings (protocol::Request only views).
struct OwnedRequest {
  protocol::Op op = protocol::Op::kPing;
  std::string list;
  std::optional<Date> date;
  std::optional<std::string> title;
  uint64_t entry_id = 0;
  std::optional<std::string> rid;  // writes: from the Idempotency-Key header

  // A protocol::Request viewing this object's strings, with id `id`.
  protocol::Request View(protocol::RequestId id) const;
};

// bad_request, unknown_op 400; not_found 404; overloaded 429; unavailable
// 503; timeout 504; internal (and anything else) 500.
int HttpStatusFor(ErrorCode code);

// Percent-decodes a path segment ("%2F" -> "/"; "+" stays "+"). bad_request
// on a '%' not followed by two hex digits.
StatusOr<std::string> PercentDecode(std::string_view s);
// Percent-encodes every byte but A-Z a-z 0-9 - . _ ~ (a path segment).
std::string PercentEncodeSegment(std::string_view s);
// The query parameters of a raw request target ("/entries?list=a%2Fb&x"),
// decoded: "+" is a space, "%XX" a byte; a parameter without "=" has an
// empty value, one with an empty name is skipped (as httplib does).
// bad_request on a '%' not followed by two hex digits, which a server's own
// decoder would take literally (list=%zz would name the list "%zz").
StatusOr<Params> ParseQuery(std::string_view target);

// The rid of an Idempotency-Key header given as `values` (see above):
// nullopt if there is none; bad_request naming the header if it is given
// twice or is not 1-64 bytes (after unquoting).
StatusOr<std::optional<std::string>> IdempotencyKey(const HeaderValues& values);

// --- The book's endpoints ---

// GET /entries: list and date required.
StatusOr<OwnedRequest> MapBookEntries(const Params& query);
// The same from the raw request target (ParseQuery's errors first).
StatusOr<OwnedRequest> MapBookEntriesFromTarget(std::string_view target);
// POST /add_entry: list, date and title required; the Idempotency-Key
// header's values, if any, give the rid.
StatusOr<OwnedRequest> MapBookAddEntry(const Params& query,
                                       const HeaderValues& idempotency_key = {});
StatusOr<OwnedRequest> MapBookAddEntryFromTarget(std::string_view target,
                                                 const HeaderValues& idempotency_key = {});
// A text/plain error: the message and "\n", status HttpStatusFor(code).
HttpReply BookError(const Status& status);
// The reply to `entries` as the book prints it: "YYYY-MM-DD title\n" per
// entry, in id order.
HttpReply BookEntriesReply(std::string_view reply_body);
// The reply to `add_entry`: exactly "OK".
HttpReply BookAddEntryReply(std::string_view reply_body);

// --- The JSON API ---

// A path under /lists/: the decoded list name, what it names, and the entry
// id for kEntry.
struct ListPath {
  enum class Kind : uint8_t { kEntries, kEntry, kOwner };
  std::string list;
  Kind kind = Kind::kEntries;
  uint64_t entry_id = 0;
};
// Parses the raw request target (still percent-encoded; a query is
// ignored): /lists/{list}/entries, /lists/{list}/entries/{id} or
// /lists/{list}/owner. not_found for any other shape; bad_request for a bad
// percent-escape or an id that is not an unsigned 64-bit decimal.
StatusOr<ListPath> ParseListPath(std::string_view target);

// GET /lists/{list}/entries[?date=D].
StatusOr<OwnedRequest> MapListEntries(const ListPath& path, const Params& query);
StatusOr<OwnedRequest> MapListEntriesFromTarget(const ListPath& path, std::string_view target);
// A JSON body that is not an object, not valid JSON, or that holds what
// the parser refuses (a number out of range such as 1e999, even in an
// unknown key) is bad_request; nothing here throws.
// POST /lists/{list}/entries with {"date": D, "title": T}. The writes take
// the Idempotency-Key header's values (the rid; checked after the body).
StatusOr<OwnedRequest> MapCreateEntry(const ListPath& path, std::string_view json_body,
                                      const HeaderValues& idempotency_key = {});
// PATCH /lists/{list}/entries/{id} with {"date": D} and/or {"title": T}.
StatusOr<OwnedRequest> MapUpdateEntry(const ListPath& path, std::string_view json_body,
                                      const HeaderValues& idempotency_key = {});
// DELETE /lists/{list}/entries/{id}: without, and with the header's values.
OwnedRequest MapDeleteEntry(const ListPath& path);
StatusOr<OwnedRequest> MapDeleteEntry(const ListPath& path, const HeaderValues& idempotency_key);
// GET /lists/{list}/owner.
OwnedRequest MapOwner(const ListPath& path);

// {"error": {"code": code, "message": message}} with `status`.
HttpReply JsonError(int status, std::string_view code, std::string_view message);
// The same for a Status: its code's name and HttpStatusFor(code).
HttpReply JsonError(const Status& status);
// A success reply's result as JSON with `status` (200); an error reply as
// JsonError.
HttpReply JsonResultReply(std::string_view reply_body, int status = 200);
// The reply to add_entry for POST /lists/{list}/entries: 201, the new entry
// {"id", "date", "title"} and Location: /lists/{list}/entries/{id}.
HttpReply CreatedReply(std::string_view reply_body, const OwnedRequest& request);
// 405 with an Allow header.
HttpReply MethodNotAllowed(std::string_view method, std::string_view allow);

// --- Protocol replies ---

// A whole protocol reply: ok and the result as JSON, or the error.
struct DecodedReply {
  bool ok = false;
  nlohmann::ordered_json result;    // when ok (objects keep their key order)
  ErrorCode code = ErrorCode::kOk;  // when !ok
  std::string message;              // when !ok
};
// Decodes a reply body; internal if it is not a well-formed reply.
StatusOr<DecodedReply> DecodeReply(std::string_view reply_body);

}  // namespace todo::router::http
