#include "node/list_actor.h"

#include "common/storage_format.h"

namespace todo::node {

using protocol::Op;

ListActor::ListActor(std::string name, runtime::Executor* executor, size_t mailbox_capacity,
                     store::Store* store, ReplyQueue* replies, MemoryMeter* meter)
    : MailboxActor<Call>(executor, mailbox_capacity),
      name_(std::move(name)),
      store_(store),
      writer_(store->writer(store->ShardFor(name_))),
      replies_(replies),
      meter_(meter) {
  Meter();
}

ListActor::~ListActor() {
  if (meter_ != nullptr) meter_->bytes.fetch_sub(static_cast<int64_t>(metered_.load()));
}

void ListActor::Meter() {
  if (meter_ == nullptr) return;
  // The actor itself (with its shared_ptr control block), its name, its
  // mailbox's spare storage, the list, and the adds not yet durable.
  const size_t now = sizeof(*this) + 32 + name_.capacity() + list_.ApproxBytes() +
                     pending_adds_.capacity() * sizeof(Entry) + pending_bytes_;
  const size_t before = metered_.load(std::memory_order_relaxed);
  if (now != before) {
    meter_->bytes.fetch_add(static_cast<int64_t>(now) - static_cast<int64_t>(before),
                            std::memory_order_relaxed);
    metered_.store(now, std::memory_order_relaxed);
  }
}

std::shared_ptr<store::WriteOwner> ListActor::self() {
  return std::static_pointer_cast<ListActor>(shared_from_this());
}

void ListActor::ClearPendingAdds() {
  if (pending_adds_.empty()) return;
  pending_adds_.clear();
  pending_adds_.shrink_to_fit();  // counted by the meter
  pending_bytes_ = 0;
}

void ListActor::Shed() {
  next_id_ = list_.next_id();
  DropList();
  state_ = State::kCounted;
}

void ListActor::DropList() {
  // Swapped out, not assigned: a std::string moved onto keeps its own heap
  // buffer when the source is short, and the titles' buffer must go.
  TodoList empty;
  std::swap(list_, empty);
}

Status ListActor::EnsureCounted() {
  uint64_t valid = valid_epoch.load(std::memory_order_acquire);
  bool reopened = quiet_ && writer_.generation() != generation_;
  if (state_ != State::kEmpty && epoch_ >= valid && !reopened) return Status::Ok();
  // First use, or the disk is the truth again (a failed write, a reopened
  // shard): whatever was applied in memory is dropped.
  ClearPendingAdds();
  DropList();
  const uint64_t generation = writer_.generation();  // before the read
  auto next = store_->LoadNextId(name_);
  if (!next.ok()) {
    state_ = State::kEmpty;
    return next.status();
  }
  next_id_ = *next;
  epoch_ = valid;
  generation_ = generation;
  state_ = State::kCounted;
  return Status::Ok();
}

Status ListActor::EnsureLoaded() {
  uint64_t valid = valid_epoch.load(std::memory_order_acquire);
  // A shard reopened since the load: reload, but only with nothing in flight
  // (the disk then holds every write this actor had acknowledged).
  bool reopened = quiet_ && writer_.generation() != generation_;
  bool current = epoch_ >= valid && !reopened;
  if (state_ == State::kLoaded && current) return Status::Ok();
  // From kCounted with no failure in between, the adds in flight are not all
  // on disk yet: they join what the disk has.
  const bool merge = state_ == State::kCounted && current;
  if (!merge) {
    ClearPendingAdds();
  }
  const uint64_t generation = writer_.generation();  // before the read
  auto loaded = store_->Load(name_);
  if (!loaded.ok()) {
    if (!merge) state_ = State::kEmpty;  // kCounted stays: its pending adds are still in flight
    return loaded.status();
  }
  TodoList list = std::move(loaded).value();
  if (merge) {
    std::vector<Entry> missing;
    for (const Entry& e : pending_adds_) {
      if (!list.Find(e.id)) missing.push_back(e);
    }
    if (!missing.empty() || list.next_id() < next_id_) {
      std::vector<Entry> all;
      all.reserve(list.size() + missing.size());
      for (const EntryRef& e : list.Entries()) all.push_back(e.ToEntry());
      for (Entry& e : missing) all.push_back(std::move(e));
      list = TodoList::Restore(std::move(all), std::max(next_id_, list.next_id()));
    }
  }
  list_ = std::move(list);
  epoch_ = valid;
  generation_ = generation;
  state_ = State::kLoaded;
  return Status::Ok();
}

void ListActor::Handle(std::vector<Call>& batch) {
  // Per worker thread, reused slice after slice; both are emptied below.
  thread_local std::vector<Reply> now;
  thread_local std::vector<store::WriteOp> writes;
  for (auto& call : batch) HandleOne(call, &now, &writes);
  // Asked to shed, or far over the cache's budget (the registry's requests
  // reach actors only at their next request, while reloads for reads keep
  // adding), with nothing in flight: don't keep the list. Adds don't need
  // it; the next read reloads it. Just over the budget, only the actors the
  // registry asked shed, least recently used first.
  if (meter_ != nullptr && state_ == State::kLoaded && writes.empty() &&
      inflight.load(std::memory_order_acquire) == 0 &&
      (shed_requested_.load(std::memory_order_relaxed) || meter_->far_over_budget()) &&
      epoch_ >= valid_epoch.load(std::memory_order_acquire)) {
    shed_requested_.store(false, std::memory_order_relaxed);
    ClearPendingAdds();  // nothing in flight: all durable
    Shed();
  }
  Meter();
  writer_.Submit(writes);
  replies_->PushAll(now);
}

void ListActor::Fail(Call& call, const Status& s, std::vector<Reply>* now) {
  now->push_back(Reply{std::move(call.envelope), EncodeBody([&](msgpack::sbuffer& b) {
                         protocol::EncodeError(b, call.request.id, s);
                       })});
}

void ListActor::Answer(Call& call, zmq::message_t body, std::vector<Reply>* now,
                       std::vector<store::WriteOp>* writes) {
  if (quiet_) {
    now->push_back(Reply{std::move(call.envelope), std::move(body)});
    return;
  }
  if (!writer_.TryReserve()) {
    Fail(call, Status::Overloaded("shard writer queue is full"), now);
    return;
  }
  store::WriteOp op;
  op.barrier = true;
  Submit(call, std::move(op), std::move(body), writes);
}

void ListActor::Submit(Call& call, store::WriteOp op, zmq::message_t body,
                       std::vector<store::WriteOp>* writes) {
  inflight.fetch_add(1, std::memory_order_relaxed);
  op.owner = self();
  op.epoch = epoch_;
  op.reply = Reply{std::move(call.envelope), std::move(body)};
  op.id = protocol::OwnedRequestId::From(call.request.id);
  writes->push_back(std::move(op));
}

void ListActor::AddCounted(Call& call, std::vector<Reply>* now,
                           std::vector<store::WriteOp>* writes) {
  if (Status s = EnsureCounted(); !s.ok()) {
    Fail(call, s, now);
    return;
  }
  if (!writer_.TryReserve()) {
    Fail(call, Status::Overloaded("shard writer queue is full"), now);
    return;
  }
  const protocol::Request& req = call.request;
  const uint64_t id = next_id_++;
  thread_local std::string key, value;
  storage::EntryKeyTo(&key, name_, id);
  storage::EntryValueTo(&value, *req.date, *req.title);
  store::WriteOp op;
  op.batch.Put(key, value);
  pending_adds_.push_back(Entry{id, *req.date, std::string(*req.title)});
  if (req.title->size() > 15) pending_bytes_ += req.title->size() + 1;  // past SSO
  zmq::message_t body =
      EncodeBody([&](msgpack::sbuffer& b) { protocol::EncodeAddResult(b, req.id, id); });
  Submit(call, std::move(op), std::move(body), writes);
}

void ListActor::HandleOne(Call& call, std::vector<Reply>* now,
                          std::vector<store::WriteOp>* writes) {
  // Order matters: seeing no write in flight (acquire) first makes every
  // effect of the writer's last completion visible, including a raised
  // valid_epoch after a failed write, which EnsureLoaded() then acts on. A
  // reply computed with writes still in flight waits behind them.
  quiet_ = inflight.load(std::memory_order_acquire) == 0;
  if (quiet_) {
    // Every add made without the list is durable (or failed, and the epoch
    // says so): the disk has them.
    ClearPendingAdds();
    // Asked to leave memory: keep the counter, drop the list. Only now,
    // with nothing in flight, is the disk exactly the list.
    if (shed_requested_.exchange(false, std::memory_order_relaxed) && state_ == State::kLoaded &&
        epoch_ >= valid_epoch.load(std::memory_order_acquire)) {
      Shed();
    }
  }
  const protocol::Request& req = call.request;
  if (req.op == Op::kAddEntry && state_ != State::kLoaded) {
    AddCounted(call, now, writes);
    return;
  }
  if (Status s = EnsureLoaded(); !s.ok()) {
    Fail(call, s, now);
    return;
  }
  switch (req.op) {
    case Op::kEntries:
      Answer(call, EncodeBody([&](msgpack::sbuffer& b) {
               protocol::EncodeEntries(b, req.id,
                                       req.date ? list_.EntriesOn(*req.date) : list_.Entries());
             }),
             now, writes);
      return;
    case Op::kAddEntry:
    case Op::kUpdateEntry:
    case Op::kDeleteEntry:
      break;
    case Op::kLocate:
    case Op::kPing:  // answered by the socket loop; never posted here
    case Op::kStats:
      Fail(call, Status::Internal("op reached a list actor"), now);
      return;
  }

  // A mutation: take a writer slot before touching the list.
  if (!writer_.TryReserve()) {
    Fail(call, Status::Overloaded("shard writer queue is full"), now);
    return;
  }
  // Per-thread scratch for the key and value: Put() copies them into the
  // op's batch, so they need no allocation of their own.
  thread_local std::string key, value;
  store::WriteOp op;
  zmq::message_t body;
  if (req.op == Op::kAddEntry) {
    const EntryRef e = list_.Add(*req.date, *req.title);
    storage::EntryKeyTo(&key, name_, e.id);
    storage::EntryValueTo(&value, e.date, e.title);
    op.batch.Put(key, value);
    body = EncodeBody([&](msgpack::sbuffer& b) { protocol::EncodeAddResult(b, req.id, e.id); });
  } else if (req.op == Op::kUpdateEntry) {
    auto e = list_.Update(req.entry_id, req.date, req.title);
    if (!e) {
      writer_.Unreserve();
      Status nf(ErrorCode::kNotFound, "list has no entry " + std::to_string(req.entry_id));
      Answer(call, EncodeBody([&](msgpack::sbuffer& b) { protocol::EncodeError(b, req.id, nf); }),
             now, writes);
      return;
    }
    storage::EntryKeyTo(&key, name_, e->id);
    storage::EntryValueTo(&value, e->date, e->title);
    op.batch.Put(key, value);
    body = EncodeBody([&](msgpack::sbuffer& b) { protocol::EncodeEntry(b, req.id, *e); });
  } else {
    bool deleted = list_.Delete(req.entry_id);
    if (!deleted) {
      writer_.Unreserve();
      Answer(call,
             EncodeBody([&](msgpack::sbuffer& b) { protocol::EncodeDeleted(b, req.id, false); }),
             now, writes);
      return;
    }
    storage::EntryKeyTo(&key, name_, req.entry_id);
    op.batch.Delete(key);
    // Deleting the highest id ever given out: record the counter, or a
    // reload would compute it from the surviving entries and reuse the id.
    if (req.entry_id + 1 == list_.next_id()) {
      op.batch.Put(storage::MetaKey(name_), storage::EncodeMetaValue(list_.next_id()));
    }
    body = EncodeBody([&](msgpack::sbuffer& b) { protocol::EncodeDeleted(b, req.id, true); });
  }
  Submit(call, std::move(op), std::move(body), writes);
}

}  // namespace todo::node
