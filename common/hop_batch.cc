#include "common/hop_batch.h"

#include <msgpack.hpp>

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

// The value of `key` in a msgpack map, if it is one and has the key.
const msgpack::object* Find(const msgpack::object& map, std::string_view key) {
  if (map.type != msgpack::type::MAP) return nullptr;
  for (uint32_t i = 0; i < map.via.map.size; ++i) {
    const msgpack::object_kv& kv = map.via.map.ptr[i];
    if (kv.key.type == msgpack::type::STR &&
        std::string_view(kv.key.via.str.ptr, kv.key.via.str.size) == key) {
      return &kv.val;
    }
  }
  return nullptr;
}

uint64_t PositiveUint(const msgpack::object* o) {
  return o != nullptr && o->type == msgpack::type::POSITIVE_INTEGER ? o->via.u64 : 0;
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
  try {
    msgpack::object_handle h = msgpack::unpack(request_body.data(), request_body.size());
    return PositiveUint(Find(h.get(), kPingKey)) > 0;
  } catch (const std::exception&) {
    return false;
  }
}

uint64_t PongBatchLimit(std::string_view reply_body) {
  try {
    msgpack::object_handle h = msgpack::unpack(reply_body.data(), reply_body.size());
    const msgpack::object* result = Find(h.get(), "result");
    return result != nullptr ? PositiveUint(Find(*result, kPingKey)) : 0;
  } catch (const std::exception&) {
    return 0;
  }
}

}  // namespace todo::hop_batch
