// EtcdClient's calls (client.h): each builds its request body (codec.h),
// makes it through Call() with the retry rule its effect allows, and decodes
// the answer.
#include <cstdio>

#include "common/io/etcd/client.h"
#include "common/io/etcd/codec.h"

namespace todo::io {
namespace {

// Lease ids in hex, as etcdctl and the logs show them.
std::string LeaseName(int64_t id) {
  char buf[32];
  snprintf(buf, sizeof buf, "%llx", static_cast<unsigned long long>(id));
  return buf;
}

}  // namespace

StatusOr<GetResult> EtcdClient::Get(std::string_view key) {
  auto j = Call("/v3/kv/range", codec::RangeBody(key, ""), Retry::kAlways,
                "get " + codec::Printable(key));
  if (!j.ok()) return j.status();
  auto r = codec::DecodeRange(*j);
  if (!r.ok()) return r.status();
  GetResult g;
  g.revision = r->revision;
  if (!r->kvs.empty()) g.kv = std::move(r->kvs.front());
  return g;
}

StatusOr<RangeResult> EtcdClient::GetPrefix(std::string_view prefix, int64_t limit) {
  Op op = Op::GetPrefix(std::string(prefix), limit);
  return Range(op.key, op.range_end, limit);
}

StatusOr<RangeResult> EtcdClient::Range(std::string_view key, std::string_view range_end,
                                        int64_t limit, int64_t revision, bool keys_only) {
  auto j = Call("/v3/kv/range", codec::RangeBody(key, range_end, limit, keys_only, false, revision),
                Retry::kAlways, "range " + codec::Printable(key));
  if (!j.ok()) return j.status();
  return codec::DecodeRange(*j);
}

StatusOr<int64_t> EtcdClient::Put(std::string_view key, std::string_view value, int64_t lease) {
  auto j = Call("/v3/kv/put", codec::PutBody(key, value, lease), Retry::kAlways,
                "put " + codec::Printable(key));
  if (!j.ok()) return j.status();
  return codec::DecodeHeaderRevision(*j);
}

StatusOr<DeleteResult> EtcdClient::Delete(std::string_view key) {
  auto j = Call("/v3/kv/deleterange", codec::DeleteBody(key, ""), Retry::kAlways,
                "delete " + codec::Printable(key));
  if (!j.ok()) return j.status();
  return codec::DecodeDelete(*j);
}

StatusOr<DeleteResult> EtcdClient::DeletePrefix(std::string_view prefix) {
  Op op = Op::DeletePrefix(std::string(prefix));
  auto j = Call("/v3/kv/deleterange", codec::DeleteBody(op.key, op.range_end), Retry::kAlways,
                "delete prefix " + codec::Printable(prefix));
  if (!j.ok()) return j.status();
  return codec::DecodeDelete(*j);
}

StatusOr<TxnResult> EtcdClient::Txn(const TxnRequest& txn) {
  auto j = Call("/v3/kv/txn", codec::TxnBody(txn), Retry::kIfNotApplied, "txn");
  if (!j.ok()) return j.status();
  return codec::DecodeTxn(*j);
}

StatusOr<int64_t> EtcdClient::Compact(int64_t revision) {
  auto j = Call("/v3/kv/compaction", codec::CompactBody(revision), Retry::kAlways,
                "compact to " + std::to_string(revision));
  if (!j.ok()) return j.status();
  return codec::DecodeHeaderRevision(*j);
}

StatusOr<LeaseGrant> EtcdClient::Grant(int64_t ttl_seconds) {
  if (ttl_seconds <= 0) return Status::BadRequest("lease TTL must be positive");
  auto j =
      Call("/v3/lease/grant", codec::LeaseGrantBody(ttl_seconds), Retry::kAlways, "lease grant");
  if (!j.ok()) return j.status();
  return codec::DecodeLeaseGrant(*j);
}

StatusOr<int64_t> EtcdClient::KeepAliveOnce(int64_t lease_id) {
  auto j = Call("/v3/lease/keepalive", codec::LeaseIdBody(lease_id), Retry::kAlways,
                "lease keepalive " + LeaseName(lease_id));
  if (!j.ok()) return j.status();
  return codec::DecodeKeepAlive(*j);
}

Status EtcdClient::Revoke(int64_t lease_id) {
  auto j = Call("/v3/lease/revoke", codec::LeaseIdBody(lease_id), Retry::kAlways,
                "lease revoke " + LeaseName(lease_id));
  if (!j.ok()) return j.status();
  return codec::DecodeHeaderRevision(*j).status();
}

StatusOr<LeaseInfo> EtcdClient::TimeToLive(int64_t lease_id, bool with_keys) {
  auto j = Call("/v3/lease/timetolive", codec::LeaseIdBody(lease_id, with_keys), Retry::kAlways,
                "lease timetolive " + LeaseName(lease_id));
  if (!j.ok()) return j.status();
  return codec::DecodeTimeToLive(*j);
}

StatusOr<MemberStatus> EtcdClient::EndpointStatus(std::string_view endpoint) {
  auto j = CallOne(endpoint, "POST", "/v3/maintenance/status", "{}", "status");
  if (!j.ok()) return j.status();
  auto m = codec::DecodeMemberStatus(*j);
  if (!m.ok()) {
    return Status(m.status().code(),
                  "etcd status at " + std::string(endpoint) + ": " + m.status().message());
  }
  m->endpoint = ParseEtcdEndpoint(endpoint)->url;
  return m;
}

Status EtcdClient::EndpointHealth(std::string_view endpoint) {
  auto j = CallOne(endpoint, "GET", "/health", "", "health");
  if (!j.ok()) return j.status();
  auto health = j->is_object() ? j->find("health") : j->end();
  if (j->is_object() && health != j->end() && health->is_string() && *health == "true") {
    return Status::Ok();
  }
  return Status(ErrorCode::kUnavailable, "etcd health at " + std::string(endpoint) +
                                             ": unhealthy: " + j->dump().substr(0, 200));
}

}  // namespace todo::io
