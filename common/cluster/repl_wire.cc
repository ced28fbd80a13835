#include "common/cluster/repl_wire.h"

#include <msgpack.hpp>

namespace todo::cluster {
namespace {

using Packer = msgpack::packer<msgpack::sbuffer>;

void Head(Packer& pk, ReplType t, uint32_t fields, uint32_t p, uint64_t le, uint64_t session) {
  pk.pack_array(fields);
  pk.pack_uint8(static_cast<uint8_t>(t));
  pk.pack_uint32(p);
  pk.pack_uint64(le);
  pk.pack_uint64(session);
}

void PackBin(Packer& pk, std::string_view b) {
  pk.pack_bin(static_cast<uint32_t>(b.size()));
  pk.pack_bin_body(b.data(), static_cast<uint32_t>(b.size()));
}

bool Uint(const msgpack::object& o, uint64_t* v) {
  if (o.type != msgpack::type::POSITIVE_INTEGER) return false;
  *v = o.via.u64;
  return true;
}

bool Bool(const msgpack::object& o, bool* v) {
  if (o.type != msgpack::type::BOOLEAN) return false;
  *v = o.via.boolean;
  return true;
}

bool Bin(const msgpack::object& o, std::string_view* v) {
  if (o.type != msgpack::type::BIN) return false;
  *v = std::string_view(o.via.bin.ptr, o.via.bin.size);
  return true;
}

// Fields per type (including the four of the head).
size_t FieldsOf(ReplType t) {
  switch (t) {
    case ReplType::kProbe:
      return 4;
    case ReplType::kState:
      return 8;
    case ReplType::kAppend:
      return 6;
    case ReplType::kAck:
      return 6;
    case ReplType::kChunk:
      return 8;
    case ReplType::kEnd:
      return 6;
  }
  return 0;
}

Status Bad(const std::string& what) { return Status::BadRequest("replication message: " + what); }

Status Convert(const msgpack::object& o, ReplMessage* m) {
  if (o.type != msgpack::type::ARRAY || o.via.array.size < 4) return Bad("not an array of 4+");
  const msgpack::object* f = o.via.array.ptr;
  uint64_t type = 0, p = 0;
  if (!Uint(f[0], &type) || type < 1 || type > 6) return Bad("unknown type");
  m->type = static_cast<ReplType>(type);
  if (o.via.array.size != FieldsOf(m->type)) return Bad("wrong field count");
  if (!Uint(f[1], &p) || p >= 65536 || !Uint(f[2], &m->leader_epoch) || !Uint(f[3], &m->session)) {
    return Bad("bad head");
  }
  m->partition = static_cast<uint32_t>(p);
  m->items.clear();
  switch (m->type) {
    case ReplType::kProbe:
      return Status::Ok();
    case ReplType::kState:
      if (!Uint(f[4], &m->a) || !Uint(f[5], &m->b) || !Bool(f[6], &m->flag1) ||
          !Bool(f[7], &m->flag2)) {
        return Bad("bad state");
      }
      return Status::Ok();
    case ReplType::kAck:
      if (!Uint(f[4], &m->b) || !Bool(f[5], &m->flag1)) return Bad("bad ack");
      return Status::Ok();
    case ReplType::kEnd:
      if (!Uint(f[4], &m->a) || !Uint(f[5], &m->b)) return Bad("bad end");
      return Status::Ok();
    case ReplType::kAppend: {
      if (!Uint(f[4], &m->b) || f[5].type != msgpack::type::ARRAY) return Bad("bad append");
      const auto& arr = f[5].via.array;
      m->items.reserve(arr.size);
      for (uint32_t i = 0; i < arr.size; ++i) {
        std::string_view r;
        if (!Bin(arr.ptr[i], &r)) return Bad("a record is not bin");
        m->items.push_back(r);
      }
      return Status::Ok();
    }
    case ReplType::kChunk: {
      if (!Bool(f[4], &m->flag1) || !Bin(f[5], &m->from) || !Bin(f[6], &m->to) ||
          f[7].type != msgpack::type::ARRAY || f[7].via.array.size % 2 != 0) {
        return Bad("bad chunk");
      }
      const auto& arr = f[7].via.array;
      m->items.reserve(arr.size);
      for (uint32_t i = 0; i < arr.size; ++i) {
        std::string_view r;
        if (!Bin(arr.ptr[i], &r)) return Bad("a key or value is not bin");
        m->items.push_back(r);
      }
      return Status::Ok();
    }
  }
  return Bad("unknown type");
}

}  // namespace

void EncodeProbe(msgpack::sbuffer& out, uint32_t p, uint64_t le, uint64_t session) {
  Packer pk(out);
  Head(pk, ReplType::kProbe, 4, p, le, session);
}

void EncodeState(msgpack::sbuffer& out, uint32_t p, uint64_t le, uint64_t session,
                 uint64_t applied_epoch, uint64_t applied_seq, bool complete, bool refused) {
  Packer pk(out);
  Head(pk, ReplType::kState, 8, p, le, session);
  pk.pack_uint64(applied_epoch);
  pk.pack_uint64(applied_seq);
  pk.pack(complete);
  pk.pack(refused);
}

void BeginAppend(msgpack::sbuffer& out, uint32_t p, uint64_t le, uint64_t session,
                 uint64_t first_seq, uint32_t n) {
  Packer pk(out);
  Head(pk, ReplType::kAppend, 6, p, le, session);
  pk.pack_uint64(first_seq);
  pk.pack_array(n);
}

void AppendRecord(msgpack::sbuffer& out, std::string_view record) {
  Packer pk(out);
  PackBin(pk, record);
}

void EncodeAck(msgpack::sbuffer& out, uint32_t p, uint64_t le, uint64_t session, uint64_t seq,
               bool complete) {
  Packer pk(out);
  Head(pk, ReplType::kAck, 6, p, le, session);
  pk.pack_uint64(seq);
  pk.pack(complete);
}

void BeginChunk(msgpack::sbuffer& out, uint32_t p, uint64_t le, uint64_t session, bool first,
                std::string_view from, std::string_view to, uint32_t n) {
  Packer pk(out);
  Head(pk, ReplType::kChunk, 8, p, le, session);
  pk.pack(first);
  PackBin(pk, from);
  PackBin(pk, to);
  pk.pack_array(2 * n);
}

void EncodeEnd(msgpack::sbuffer& out, uint32_t p, uint64_t le, uint64_t session, uint64_t at_epoch,
               uint64_t at_seq) {
  Packer pk(out);
  Head(pk, ReplType::kEnd, 6, p, le, session);
  pk.pack_uint64(at_epoch);
  pk.pack_uint64(at_seq);
}

Status DecodeReplFrame(std::string_view frame, std::vector<ReplMessage>* out) {
  out->clear();
  size_t off = 0;
  // Bins are referenced in place, never copied; sizes are bounded by the
  // frame (ZMQ_MAXMSGSIZE on the socket) and these limits.
  const msgpack::unpack_limit limits(/*array=*/1 << 20, /*map=*/0, /*str=*/0,
                                     /*bin=*/64 << 20, /*ext=*/0, /*depth=*/4);
  while (off < frame.size()) {
    msgpack::object_handle oh;
    try {
      oh = msgpack::unpack(
          frame.data(), frame.size(), off,
          [](msgpack::type::object_type, std::size_t, void*) { return true; }, nullptr, limits);
    } catch (const std::exception& e) {
      return Bad(std::string("not msgpack: ") + e.what());
    }
    ReplMessage m;
    if (Status s = Convert(oh.get(), &m); !s.ok()) return s;
    out->push_back(std::move(m));
  }
  return Status::Ok();
}

}  // namespace todo::cluster
