// Fuzz target "request": the request decoder and what a node and a router do
// with its result.
//
// For every input:
//  - DecodeRequest never crashes, and its verdict is one of bad_request and
//    unknown_op with a message, or a request that satisfies every rule of
//    PROTOCOL.md (list 1-255 bytes of UTF-8, a real date, title 1-1024 bytes
//    of UTF-8, the keys each op needs, a rid of 1-64 bytes only on writes);
//  - a valid request re-encoded with EncodeRequest decodes to an equal
//    request, and re-encoding that gives the same bytes (a fixed point);
//  - the router's routing of a valid request (rendezvous owner, node shard)
//    is in range and matches the highest score;
//  - the reply a node would send (an error echoing the id, or a success for
//    the op) reads back with DecodeReplyHeader and PeekReplyCode as written.
#include <cstddef>
#include <cstdint>
#include <msgpack.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "common/date.h"
#include "common/protocol.h"
#include "common/rendezvous.h"
#include "common/utf8.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using todo::ErrorCode;
using todo::Status;
using namespace todo::protocol;

bool SameId(const RequestId& a, const RequestId& b) {
  if (a.kind != b.kind) return false;
  if (a.kind == RequestId::Kind::kUint) return a.uint_value == b.uint_value;
  if (a.kind == RequestId::Kind::kStr) return a.str_value == b.str_value;
  return true;
}

bool SameRequest(const Request& a, const Request& b) {
  return a.op == b.op && SameId(a.id, b.id) && a.list == b.list && a.date == b.date &&
         a.title == b.title && a.entry_id == b.entry_id && a.rid == b.rid;
}

bool ValidDate(todo::Date d) { return todo::IsValidDate(d.year(), d.month(), d.day()); }

// Every rule a request that decoded OK must satisfy.
void CheckValidRequest(const Request& r) {
  if (NeedsList(r.op)) {
    FUZZ_CHECK(!r.list.empty() && r.list.size() <= kMaxListBytes);
    FUZZ_CHECK(todo::IsValidUtf8(r.list));
  } else {
    FUZZ_CHECK(r.list.empty());
  }
  if (r.date) FUZZ_CHECK(ValidDate(*r.date));
  if (r.title) {
    FUZZ_CHECK(!r.title->empty() && r.title->size() <= kMaxTitleBytes);
    FUZZ_CHECK(todo::IsValidUtf8(*r.title));
  }
  switch (r.op) {
    case Op::kAddEntry:
      FUZZ_CHECK(r.date.has_value() && r.title.has_value());
      break;
    case Op::kUpdateEntry:
      FUZZ_CHECK(r.date.has_value() || r.title.has_value());
      break;
    case Op::kEntries:
      FUZZ_CHECK(!r.title.has_value());
      break;
    default:
      FUZZ_CHECK(!r.date.has_value() && !r.title.has_value());
  }
  if (r.op != Op::kUpdateEntry && r.op != Op::kDeleteEntry) FUZZ_CHECK(r.entry_id == 0);
  // A rid only on the three writes, 1-64 bytes.
  if (IsMutating(r.op)) {
    FUZZ_CHECK(r.rid.size() <= kMaxRidBytes);
  } else {
    FUZZ_CHECK(r.rid.empty());
  }
}

std::string_view View(const msgpack::sbuffer& b) { return {b.data(), b.size()}; }

// The reply in `reply` reads back as success/`code`, echoing `id`.
void CheckReply(const msgpack::sbuffer& reply, const RequestId& id, ErrorCode code,
                std::string_view message) {
  auto header = DecodeReplyHeader(View(reply));
  FUZZ_CHECK(header.ok());
  FUZZ_CHECK(header->ok == (code == ErrorCode::kOk));
  FUZZ_CHECK(header->id_kind == id.kind);
  if (id.kind == RequestId::Kind::kUint) FUZZ_CHECK(header->id_uint == id.uint_value);
  if (id.kind == RequestId::Kind::kStr) FUZZ_CHECK(header->id_str == id.str_value);
  if (code != ErrorCode::kOk) {
    FUZZ_CHECK(header->code == code);
    FUZZ_CHECK(header->message == message);
  }
  auto peeked = PeekReplyCode(View(reply));
  FUZZ_CHECK(peeked.has_value() && *peeked == code);
}

// What the router does with a valid request: the owner among three nodes
// (the highest rendezvous score) and the shard inside the node.
void CheckRouting(const Request& r) {
  if (!NeedsList(r.op)) return;
  static const todo::Rendezvous kNodes({"n1", "n2", "n3"});
  size_t owner = kNodes.Owner(r.list);
  FUZZ_CHECK(owner < kNodes.nodes().size());
  for (const std::string& n : kNodes.nodes()) {
    FUZZ_CHECK(todo::RendezvousScore(n, r.list) <=
               todo::RendezvousScore(kNodes.nodes()[owner], r.list));
  }
  FUZZ_CHECK(todo::ShardOf(r.list, 4) < 4);
}

// Encodes the success reply a node would give to `r`.
void EncodeSuccess(msgpack::sbuffer& out, const Request& r) {
  todo::Entry e{r.entry_id + 1, r.date.value_or(todo::Date{20260101}),
                std::string(r.title.value_or("t"))};
  switch (r.op) {
    case Op::kAddEntry:
      EncodeAddResult(out, r.id, e.id);
      return;
    case Op::kEntries:
      EncodeEntries(out, r.id, {&e, &e});
      return;
    case Op::kUpdateEntry:
      EncodeEntry(out, r.id, e);
      return;
    case Op::kDeleteEntry:
      EncodeDeleted(out, r.id, (r.entry_id & 1) != 0);
      return;
    case Op::kLocate:
      EncodeLocate(out, r.id, "n1");
      return;
    case Op::kMap:
      EncodeMap(out, r.id, 2, "mix64-fnv1a64", 1, {{"n1", "tcp://h:1"}}, {{"n1", 1}, {"n1", 2}});
      return;
    case Op::kPing:
    case Op::kStats:
      EncodePing(out, r.id, "node", "n1");
      return;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view body(reinterpret_cast<const char*>(data), size);
  DecodeResult r = DecodeRequest(body);
  msgpack::sbuffer reply;
  if (!r.status.ok()) {
    FUZZ_CHECK(r.status.code() == ErrorCode::kBadRequest ||
               r.status.code() == ErrorCode::kUnknownOp);
    FUZZ_CHECK(!r.status.message().empty());
    if (size > kMaxBodyBytes) FUZZ_CHECK(r.id.kind == RequestId::Kind::kNone);
    EncodeError(reply, r.id, r.status);
    CheckReply(reply, r.id, r.status.code(), r.status.message());
    return 0;
  }
  FUZZ_CHECK(size <= kMaxBodyBytes);
  FUZZ_CHECK(SameId(r.request.id, r.id));
  CheckValidRequest(r.request);
  CheckRouting(r.request);

  msgpack::sbuffer encoded;
  EncodeRequest(encoded, r.request);
  DecodeResult again = DecodeRequest(View(encoded));
  FUZZ_CHECK(again.status.ok());
  FUZZ_CHECK(SameRequest(r.request, again.request));
  msgpack::sbuffer encoded_again;
  EncodeRequest(encoded_again, again.request);
  FUZZ_CHECK(View(encoded) == View(encoded_again));

  EncodeSuccess(reply, r.request);
  CheckReply(reply, r.id, ErrorCode::kOk, "");
  return 0;
}
