// Fuzz target "reply": what clients and the router read from a reply body.
//
//  - DecodeReplyHeader (clients, the bench, the router's HTTP front end)
//    never crashes; what it reads, written back with the reply encoders,
//    reads back the same;
//  - PeekReplyCode (the router, on every reply it forwards) never crashes
//    and never reads past the body; when it names a code, the body starts
//    the way the encoders write that code.
#include <cstddef>
#include <cstdint>
#include <msgpack.hpp>
#include <string>
#include <string_view>

#include "common/protocol.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using todo::ErrorCode;
using namespace todo::protocol;

std::string_view View(const msgpack::sbuffer& b) { return {b.data(), b.size()}; }

RequestId IdOf(const ReplyHeader& h) {
  switch (h.id_kind) {
    case RequestId::Kind::kUint:
      return RequestId::Uint(h.id_uint);
    case RequestId::Kind::kStr:
      return RequestId::Str(h.id_str);
    case RequestId::Kind::kNone:
      break;
  }
  return RequestId::None();
}

void CheckSameHeader(const ReplyHeader& a, const ReplyHeader& b) {
  FUZZ_CHECK(a.id_kind == b.id_kind);
  // Only the field of the id's kind counts: with two "id" keys the other
  // field may hold the earlier one's value.
  if (a.id_kind == RequestId::Kind::kUint) FUZZ_CHECK(a.id_uint == b.id_uint);
  if (a.id_kind == RequestId::Kind::kStr) FUZZ_CHECK(a.id_str == b.id_str);
  FUZZ_CHECK(a.ok == b.ok);
  if (!a.ok) {
    FUZZ_CHECK(a.code == b.code);
    FUZZ_CHECK(a.message == b.message);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view body(reinterpret_cast<const char*>(data), size);

  std::optional<ErrorCode> peeked = PeekReplyCode(body);
  if (peeked) {
    // The encoders write a fixmap of 2 or 3 keys first; a success has
    // "ok": true, an error "ok": false then the error map.
    FUZZ_CHECK(size > 0 && (data[0] == 0x82 || data[0] == 0x83));
  }

  auto header = DecodeReplyHeader(body);
  if (!header.ok()) {
    FUZZ_CHECK(header.status().code() == ErrorCode::kBadRequest);
    FUZZ_CHECK(!header.status().message().empty());
    return 0;
  }
  FUZZ_CHECK(header->ok || header->code != ErrorCode::kOk);

  // Written back by the encoders, the header reads back the same, and the
  // router's peek agrees with it.
  msgpack::sbuffer again;
  if (header->ok) {
    BeginOkReply(again, IdOf(*header));
    msgpack::packer<msgpack::sbuffer>(again).pack_nil();
  } else {
    EncodeError(again, IdOf(*header), header->code, header->message);
  }
  auto reread = DecodeReplyHeader(View(again));
  FUZZ_CHECK(reread.ok());
  CheckSameHeader(*header, *reread);
  auto repeeked = PeekReplyCode(View(again));
  FUZZ_CHECK(repeeked.has_value());
  FUZZ_CHECK(*repeeked == (header->ok ? ErrorCode::kOk : header->code));
  return 0;
}
