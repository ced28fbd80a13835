#include "common/hop_batch.h"

#include <msgpack.hpp>

#include "common/msgpack_reader.h"

namespace todo::hop_batch {
namespace {

void PutU32(uint32_t v, std::string* out) {
  const char b[4] = {static_cast<char>(v >> 24), static_cast<char>(v >> 16),
                     static_cast<char>(v >> 8), static_cast<char>(v)};
  out->append(b, 4);
}

uint32_t GetU32(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return (uint32_t{u[0]} << 24) | (uint32_t{u[1]} << 16) | (uint32_t{u[2]} << 8) | uint32_t{u[3]};
}

// Moves `r` to the value of `key` in the msgpack map it stands at (the
// first such key); false if it is not a map, lacks the key, or ends too
// soon. Reads the raw bytes without building objects: a lying count costs
// nothing (each element eats a byte), where msgpack-c's parser would
// allocate for it first.
bool SeekKey(MsgpackReader* r, std::string_view key) {
  uint64_t n = 0;
  if (!r->Map(&n)) return false;
  for (uint64_t i = 0; i < n; ++i) {
    std::string_view k;
    if (r->PeekStr()) {
      if (!r->Str(&k)) return false;
      if (k == key) return true;
    } else if (!r->SkipValue()) {
      return false;
    }
    if (!r->SkipValue()) return false;
  }
  return false;
}

uint64_t PositiveUint(MsgpackReader* r) {
  uint64_t v = 0;
  return r->Uint(&v) ? v : 0;
}

}  // namespace

void BatchWriter::Add(const std::string_view* frames, size_t n) {
  blob_.push_back(static_cast<char>(n));
  for (size_t i = 0; i < n; ++i) {
    PutU32(static_cast<uint32_t>(frames[i].size()), &blob_);
    blob_.append(frames[i]);
  }
  ++count_;
}

Status DecodeBatch(std::string_view blob, std::vector<Record>* records) {
  records->clear();
  auto fail = [&](std::string why) {
    records->clear();
    return Status::BadRequest("batch: " + why);
  };
  if (blob.size() > kMaxBytes) {
    return fail("is " + std::to_string(blob.size()) + " bytes, more than the " +
                std::to_string(kMaxBytes) + " allowed");
  }
  if (blob.empty()) return fail("is empty");
  size_t at = 0;
  while (at < blob.size()) {
    const size_t index = records->size();
    if (index == kMaxRecords) {
      return fail("has more than the " + std::to_string(kMaxRecords) + " records allowed");
    }
    const size_t n = static_cast<unsigned char>(blob[at++]);
    if (n < 2 || n > kMaxRecordFrames) {
      return fail("record " + std::to_string(index) + " has " + std::to_string(n) +
                  " frames, not 2-" + std::to_string(kMaxRecordFrames));
    }
    Record& r = records->emplace_back();
    r.n = n;
    for (size_t i = 0; i < n; ++i) {
      if (blob.size() - at < 4) {
        return fail("record " + std::to_string(index) + " ends inside frame " + std::to_string(i) +
                    "'s length");
      }
      const uint32_t len = GetU32(blob.data() + at);
      at += 4;
      if (blob.size() - at < len) {
        return fail("record " + std::to_string(index) + " frame " + std::to_string(i) + " is " +
                    std::to_string(len) + " bytes, more than the " +
                    std::to_string(blob.size() - at) + " left");
      }
      r.frames[i] = blob.substr(at, len);
      at += len;
    }
    if (r.head().empty()) return fail("record " + std::to_string(index) + " has an empty head");
  }
  return Status::Ok();
}

void EncodeBatchPing(msgpack::sbuffer& out) {
  msgpack::packer<msgpack::sbuffer> pk(out);
  pk.pack_map(2);
  pk.pack("op");
  pk.pack("ping");
  pk.pack(kPingKey);
  pk.pack_uint64(kMaxRecords);
}

bool PingAsksBatch(std::string_view request_body) {
  MsgpackReader r(request_body);
  return SeekKey(&r, kPingKey) && PositiveUint(&r) > 0;
}

uint64_t PongBatchLimit(std::string_view reply_body) {
  MsgpackReader r(reply_body);
  return SeekKey(&r, "result") && SeekKey(&r, kPingKey) ? PositiveUint(&r) : 0;
}

}  // namespace todo::hop_batch
