#include "common/io/etcd/election.h"

namespace todo::io {
namespace {

Leadership FromKv(const KeyValue& kv) {
  Leadership l;
  l.key = kv.key;
  l.value = kv.value;
  l.lease = kv.lease;
  l.create_revision = kv.create_revision;
  l.mod_revision = kv.mod_revision;
  return l;
}

}  // namespace

StatusOr<Election::CampaignResult> Election::Campaign(std::string_view value, int64_t lease) {
  if (lease == 0) return Status::BadRequest("campaign for '" + key_ + "' needs a lease");
  TxnRequest txn;
  txn.compares.push_back(Compare::CreateRevision(key_, CompareOp::kEqual, 0));
  txn.success.push_back(Op::Put(key_, std::string(value), lease));
  txn.failure.push_back(Op::Get(key_));
  auto r = client_->Txn(txn);
  if (!r.ok()) return r.status();
  CampaignResult result;
  result.revision = r->revision;
  if (r->succeeded) {
    // The put created the key: its create and mod revisions are the txn's.
    result.won = true;
    result.holder.key = key_;
    result.holder.value = std::string(value);
    result.holder.lease = lease;
    result.holder.create_revision = r->revision;
    result.holder.mod_revision = r->revision;
    return result;
  }
  if (r->responses.size() != 1 || r->responses[0].type != Op::Type::kRange) {
    return Status::Internal("campaign for '" + key_ + "': etcd answered the wrong operations");
  }
  const RangeResult& range = r->responses[0].range;
  if (range.kvs.empty()) {
    // Deleted between the compare and the read: impossible in one txn, but
    // never claim a holder that is not there.
    return Status(ErrorCode::kUnavailable, "campaign for '" + key_ + "': no holder read");
  }
  result.holder = FromKv(range.kvs.front());
  result.won = result.holder.lease == lease;
  return result;
}

StatusOr<Election::Holder> Election::Current() {
  auto g = client_->Get(key_);
  if (!g.ok()) return g.status();
  Holder h;
  h.revision = g->revision;
  if (g->kv) h.holder = FromKv(*g->kv);
  return h;
}

void Election::Guard(const Leadership& mine, TxnRequest* txn) {
  txn->compares.push_back(
      Compare::CreateRevision(mine.key, CompareOp::kEqual, mine.create_revision));
}

StatusOr<bool> Election::Proclaim(const Leadership& mine, std::string_view value) {
  TxnRequest txn;
  Guard(mine, &txn);
  txn.success.push_back(Op::Put(mine.key, std::string(value), mine.lease));
  auto r = client_->Txn(txn);
  if (!r.ok()) return r.status();
  return r->succeeded;
}

Status Election::Resign(const Leadership& mine) {
  TxnRequest txn;
  Guard(mine, &txn);
  txn.success.push_back(Op::Delete(mine.key));
  auto r = client_->Txn(txn);
  return r.ok() ? Status::Ok() : r.status();
}

StatusOr<std::unique_ptr<EtcdWatch>> Election::Observe(
    int64_t after_revision, std::function<void(const std::optional<Leadership>&)> on_change,
    std::function<void(const WatchUpdate&)> on_status) {
  EtcdWatch::Options o;
  o.key = key_;
  o.start_revision = after_revision + 1;
  auto watch = std::make_unique<EtcdWatch>(
      client_, o,
      [on_change = std::move(on_change), on_status = std::move(on_status)](const WatchUpdate& u) {
        if (u.kind != WatchUpdate::Kind::kEvents) {
          if (on_status) on_status(u);
          return;
        }
        // Only the last event of a batch matters: it is the holder now.
        const Event& e = u.events.back();
        if (e.type == EventType::kDelete) {
          on_change(std::nullopt);
        } else {
          on_change(FromKv(e.kv));
        }
      });
  if (Status s = watch->Start(); !s.ok()) return s;
  return watch;
}

}  // namespace todo::io
