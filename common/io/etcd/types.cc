#include "common/io/etcd/types.h"

#include <utility>

namespace todo::io {

std::string PrefixEnd(std::string_view prefix) {
  std::string end(prefix);
  while (!end.empty()) {
    if (static_cast<uint8_t>(end.back()) < 0xff) {
      end.back() = static_cast<char>(static_cast<uint8_t>(end.back()) + 1);
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');
}

namespace {
Compare MakeCompare(std::string key, CompareTarget target, CompareOp op, int64_t number) {
  Compare c;
  c.key = std::move(key);
  c.target = target;
  c.op = op;
  c.number = number;
  return c;
}
}  // namespace

Compare Compare::Version(std::string key, CompareOp op, int64_t version) {
  return MakeCompare(std::move(key), CompareTarget::kVersion, op, version);
}
Compare Compare::CreateRevision(std::string key, CompareOp op, int64_t revision) {
  return MakeCompare(std::move(key), CompareTarget::kCreate, op, revision);
}
Compare Compare::ModRevision(std::string key, CompareOp op, int64_t revision) {
  return MakeCompare(std::move(key), CompareTarget::kMod, op, revision);
}
Compare Compare::Lease(std::string key, CompareOp op, int64_t lease) {
  return MakeCompare(std::move(key), CompareTarget::kLease, op, lease);
}
Compare Compare::Value(std::string key, CompareOp op, std::string value) {
  Compare c = MakeCompare(std::move(key), CompareTarget::kValue, op, 0);
  c.value = std::move(value);
  return c;
}

Op Op::Get(std::string key) {
  Op op;
  op.type = Type::kRange;
  op.key = std::move(key);
  return op;
}
Op Op::GetPrefix(std::string prefix, int64_t limit) {
  Op op;
  op.type = Type::kRange;
  op.range_end = PrefixEnd(prefix);
  op.key = prefix.empty() ? std::string(1, '\0') : std::move(prefix);
  op.limit = limit;
  return op;
}
Op Op::Put(std::string key, std::string value, int64_t lease) {
  Op op;
  op.type = Type::kPut;
  op.key = std::move(key);
  op.value = std::move(value);
  op.lease = lease;
  return op;
}
Op Op::Delete(std::string key) {
  Op op;
  op.type = Type::kDelete;
  op.key = std::move(key);
  return op;
}
Op Op::DeletePrefix(std::string prefix) {
  Op op;
  op.type = Type::kDelete;
  op.range_end = PrefixEnd(prefix);
  op.key = prefix.empty() ? std::string(1, '\0') : std::move(prefix);
  return op;
}

}  // namespace todo::io
