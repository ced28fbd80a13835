#include "node/list_actor.h"

#include <unordered_map>

#include "common/storage_format.h"
#include "node/store/rid_filter.h"

namespace todo::node {

using protocol::Op;

ListActor::ListActor(std::string name, runtime::Executor* executor, size_t mailbox_capacity,
                     store::Store* store, ReplyQueue* replies, MemoryMeter* meter,
                     FlightMeter* flight, const PartitionTable* table)
    : MailboxActor<Call>(executor, mailbox_capacity),
      name_(std::move(name)),
      ns_(store->KeyNs(name_)),
      store_(store),
      writer_(store->writer(store->ShardFor(name_))),
      replies_(replies),
      meter_(meter),
      flight_(flight),
      table_(table),
      partition_(store->PartitionFor(name_)) {
  Meter();
}

ListActor::~ListActor() {
  if (meter_ != nullptr) meter_->bytes.fetch_sub(static_cast<int64_t>(metered_.load()));
}

void ListActor::Meter() {
  if (meter_ == nullptr) return;
  // The actor itself (with its shared_ptr control block), its name, its
  // mailbox's spare storage, the list, and the writes not yet complete.
  const size_t now = sizeof(*this) + 32 + name_.capacity() + list_.ApproxBytes() +
                     pending_.capacity() * sizeof(PendingWrite) + pending_bytes_ +
                     tracked_.capacity() * sizeof(Tracked) +
                     rid_order_.capacity() * sizeof(RidOrder);
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

namespace {

// Drops the ops of `v` from `*head` on whose ordinal is at most `done`
// (they are in ordinal order), calling `dropped` on each. An emptied vector
// keeps its storage only if `keep` elements fit; a mostly done one moves
// the rest to the front (amortized O(1) an op).
template <class T, class F>
void DropCompleted(std::vector<T>* v, size_t* head, uint64_t done, size_t keep, F&& dropped) {
  while (*head < v->size() && (*v)[*head].seq <= done) dropped((*v)[(*head)++]);
  if (*head == v->size()) {
    *head = 0;
    if (v->capacity() > keep) {
      std::vector<T>().swap(*v);
    } else {
      v->clear();
    }
  } else if (*head >= 64 && *head * 2 >= v->size()) {
    v->erase(v->begin(), v->begin() + static_cast<ptrdiff_t>(*head));
    *head = 0;
  }
}

// A mutation's ordinal and entry id kept while it is in flight: room for a
// slice's worth without reallocating.
constexpr size_t kTrackedKept = 64;

// Room kept for a few writes with a rid in flight (16 bytes each).
constexpr size_t kRidsKept = 16;

}  // namespace

void ListActor::ClearPending() {
  DropCompleted(&pending_, &pending_head_, UINT64_MAX, 0, [](PendingWrite&) {});
  pending_bytes_ = 0;
  DropCompleted(&tracked_, &tracked_head_, UINT64_MAX, kTrackedKept, [](Tracked&) {});
  // Each of them is durable (its record is on disk now) or will be refused.
  DropCompleted(&rid_order_, &rid_order_head_, UINT64_MAX, kRidsKept, [](RidOrder&) {});
}

void ListActor::TrimCompleted() {
  if (pending_.empty() && tracked_.empty() && rid_order_.empty()) return;
  const uint64_t done = completed.load(std::memory_order_acquire);
  DropCompleted(&rid_order_, &rid_order_head_, done, kRidsKept, [](RidOrder&) {});
  DropCompleted(&pending_, &pending_head_, done, 0, [&](PendingWrite& w) {
    if (w.entry.title.size() > 15) pending_bytes_ -= w.entry.title.size() + 1;
    std::string().swap(w.entry.title);
  });
  DropCompleted(&tracked_, &tracked_head_, done, kTrackedKept, [](Tracked&) {});
}

void ListActor::Shed() {
  // The writes in flight, as what each leaves its entry as: a load before
  // they are durable replays them over the disk.
  TrimCompleted();
  for (size_t i = tracked_head_; i < tracked_.size(); ++i) {
    const Tracked& t = tracked_[i];
    const auto e = list_.Find(t.id);
    PendingWrite w{t.seq, e.has_value(), e ? e->ToEntry() : Entry{t.id, Date{}, {}}};
    if (w.entry.title.size() > 15) pending_bytes_ += w.entry.title.size() + 1;
    pending_.push_back(std::move(w));
  }
  DropCompleted(&tracked_, &tracked_head_, UINT64_MAX, 0, [](Tracked&) {});
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
  ClearPending();
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

namespace {

// True if the reply listing `entries` is surely under kLargeReplyBytes (an
// entry's map costs at most its title and ~40 bytes of keys and values).
bool FitsSmallReply(const std::vector<EntryRef>& entries) {
  size_t bytes = 64;
  for (const EntryRef& e : entries) {
    bytes += e.title.size() + 40;
    if (bytes >= kLargeReplyBytes) return false;
  }
  return true;
}

}  // namespace

TodoList ListActor::Replay(TodoList disk) const {
  // Each pending write sets its entry's final state, so replaying one the
  // disk already has changes nothing; the last one of an id wins.
  std::unordered_map<uint64_t, const PendingWrite*> last;
  bool differs = false;
  for (size_t i = pending_head_; i < pending_.size(); ++i) {
    const PendingWrite& w = pending_[i];
    last[w.entry.id] = &w;
  }
  for (const auto& [id, w] : last) {
    const auto on_disk = disk.Find(id);
    if (on_disk.has_value() != w->present || (w->present && on_disk->ToEntry() != w->entry)) {
      differs = true;
      break;
    }
  }
  if (!differs && disk.next_id() >= next_id_) return disk;
  std::vector<Entry> all;
  all.reserve(disk.size() + last.size());
  for (const EntryRef& e : disk.Entries()) {
    if (!last.contains(e.id)) all.push_back(e.ToEntry());
  }
  for (const auto& [id, w] : last) {
    if (w->present) all.push_back(w->entry);
  }
  return TodoList::Restore(std::move(all), std::max(next_id_, disk.next_id()));
}

Status ListActor::EnsureLoaded() {
  uint64_t valid = valid_epoch.load(std::memory_order_acquire);
  // A shard reopened since the load: reload, but only with nothing in flight
  // (the disk then holds every write this actor had acknowledged).
  bool reopened = quiet_ && writer_.generation() != generation_;
  bool current = epoch_ >= valid && !reopened;
  if (state_ == State::kLoaded && current) return Status::Ok();
  // From kCounted with no failure in between, the writes in flight are not
  // all on disk yet: they are replayed over what the disk has.
  const bool merge = state_ == State::kCounted && current;
  if (!merge) {
    ClearPending();
  }
  const uint64_t generation = writer_.generation();  // before the read
  auto loaded = store_->Load(name_);
  if (!loaded.ok()) {
    if (!merge) state_ = State::kEmpty;  // kCounted stays: its pending writes are still in flight
    return loaded.status();
  }
  TodoList list = std::move(loaded).value();
  if (merge) list = Replay(std::move(list));
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
  TrimCompleted();
  for (auto& call : batch) HandleOne(call, &now, &writes);
  EndSlice();
  writer_.Submit(writes);
  replies_->PushAll(now);
}

bool ListActor::CanHandleInline(const Call& call) const {
  const protocol::Request& req = call.request;
  if (!protocol::IsMutating(req.op) || !Idle() || state_ == State::kEmpty) return false;
  if (req.op != Op::kAddEntry && state_ != State::kLoaded) return false;
  if (table_ != nullptr && call.term != term_) return false;
  // As EnsureCounted and EnsureLoaded: current unless a write failed since
  // (a raised epoch) or, with nothing in flight, the shard was reopened.
  if (epoch_ < valid_epoch.load(std::memory_order_acquire)) return false;
  if (inflight.load(std::memory_order_acquire) == 0 && writer_.generation() != generation_) {
    return false;
  }
  return req.rid.empty() || !store_->RidMayExist(storage::RidKeyHash(name_, req.rid).h1);
}

void ListActor::HandleInline(Call& call, std::vector<Reply>* now,
                             std::vector<store::WriteOp>* writes) {
  TrimCompleted();
  HandleOne(call, now, writes);
  EndSlice();
}

void ListActor::EndSlice() {
  // Asked to shed, or far over the cache's budget (the registry's requests
  // reach actors only at their next request, while reloads for reads keep
  // adding): don't keep the list. Adds don't need it; the next other
  // request reloads it. Just over the budget, only the actors the registry
  // asked shed, least recently used first.
  if (meter_ != nullptr && state_ == State::kLoaded &&
      (shed_requested_.load(std::memory_order_relaxed) || meter_->far_over_budget()) &&
      epoch_ >= valid_epoch.load(std::memory_order_acquire)) {
    shed_requested_.store(false, std::memory_order_relaxed);
    Shed();
  }
  Meter();
}

void ListActor::Fail(Call& call, const Status& s, std::vector<Reply>* now) {
  now->push_back(Reply{std::move(call.envelope), EncodeBody([&](msgpack::sbuffer& b) {
                         protocol::EncodeError(b, call.request.id, s);
                       })});
}

void ListActor::Answer(Call& call, zmq::message_t body, std::vector<Reply>* now,
                       std::vector<store::WriteOp>* writes) {
  if (quiet_) {
    if (table_ != nullptr && !table_->Serves(partition_, term_, std::chrono::steady_clock::now())) {
      // Fenced (or deposed) since the request was admitted: a read now
      // could miss writes a new primary has taken.
      Fail(call,
           Status(ErrorCode::kUnavailable,
                  "partition " + std::to_string(partition_) +
                      " is not served by this node any more (fenced or changed hands)"),
           now);
      return;
    }
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
  ++submitted_;
  op.owner = self();
  op.epoch = epoch_;
  op.partition = partition_;
  op.term = term_;
  op.reply = Reply{std::move(call.envelope), std::move(body)};
  op.id = protocol::OwnedRequestId::From(call.request.id);
  writes->push_back(std::move(op));
}

void ListActor::AddCounted(Call& call, uint64_t rid_hash, std::vector<Reply>* now,
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
  storage::EntryKeyTo(&key, ns_, name_, id);
  storage::EntryValueTo(&value, *req.date, *req.title);
  store::WriteOp op;
  op.batch.Put(key, value);
  if (!req.rid.empty()) {
    storage::RidRecord r = storage::RidRecordFor(req, store_->NowMs());
    r.outcome = storage::RidOutcome::kAdded;
    r.new_id = id;
    AddRidRecord(req, rid_hash, r, &op);
  }
  zmq::message_t body =
      EncodeBody([&](msgpack::sbuffer& b) { protocol::EncodeAddResult(b, req.id, id); });
  Submit(call, std::move(op), std::move(body), writes);
  if (!req.rid.empty()) TrackRid(rid_hash);
  pending_.push_back(PendingWrite{submitted_, true, Entry{id, *req.date, std::string(*req.title)}});
  if (req.title->size() > 15) pending_bytes_ += req.title->size() + 1;  // past SSO
}

namespace {

std::string NoSuchEntry(uint64_t entry_id) {
  return "list has no entry " + std::to_string(entry_id);
}

// The reply a write's record says it got, with the retry's own id.
// `entry_id`: the retry's, which is the first request's (same arguments).
void EncodeRecordedReply(msgpack::sbuffer& b, const protocol::RequestId& id, uint64_t entry_id,
                         const storage::RidRecord& r) {
  switch (r.outcome) {
    case storage::RidOutcome::kAdded:
      protocol::EncodeAddResult(b, id, r.new_id);
      return;
    case storage::RidOutcome::kUpdated:
      protocol::EncodeEntry(b, id, EntryRef(entry_id, r.result_date, r.result_title));
      return;
    case storage::RidOutcome::kNotFound:
      protocol::EncodeError(b, id, ErrorCode::kNotFound, NoSuchEntry(entry_id));
      return;
    case storage::RidOutcome::kDeleted:
    case storage::RidOutcome::kNotDeleted:
      protocol::EncodeDeleted(b, id, r.outcome == storage::RidOutcome::kDeleted);
      return;
  }
  protocol::EncodeError(b, id, ErrorCode::kInternal, "rid record has an unknown outcome");
}

// The reply to `req` (a write with a rid) from its rid's stored record
// `value`: the recorded reply, bad_request if the rid was used for another
// request, internal if the record can't be read. Counts hits and conflicts
// on `writer`.
zmq::message_t ReplyFromRecord(std::string_view list, const protocol::Request& req,
                               std::string_view value, store::ShardWriter* writer) {
  auto record = storage::DecodeRidValue(value);
  Status refused;
  if (!record.ok()) {
    refused =
        Status::Internal("list '" + std::string(list) + "': rid " +
                         protocol::QuoteForMessage(req.rid) + ": " + record.status().message());
  } else if (!storage::SameRequest(*record, req)) {
    writer->CountRidConflict();
    refused = Status::BadRequest(
        "rid " + protocol::QuoteForMessage(req.rid) + " was used for a different request (" +
        std::string(protocol::OpName(record->op)) +
        (record->op == req.op ? " with other arguments" : "") + "); nothing was changed");
  }
  if (!refused.ok()) {
    return EncodeBody([&](msgpack::sbuffer& b) { protocol::EncodeError(b, req.id, refused); });
  }
  writer->CountRidHit();
  return EncodeBody(
      [&](msgpack::sbuffer& b) { EncodeRecordedReply(b, req.id, req.entry_id, *record); });
}

// A retry whose original write was still in flight in its actor: answered
// when its barrier completes, after the original (a failed original fails
// the barrier too, with `internal`), from the record the original wrote.
// Owns copies of what it needs: the request's body is gone by then.
class RidRetryReply final : public store::LateReply {
 public:
  // `stored`: the record's value if the caller has already read it (a
  // record never changes), else it is read once the writer gets here.
  RidRetryReply(const store::Store* store, std::string_view ns, std::string_view list,
                const protocol::Request& req, store::ShardWriter* writer,
                std::optional<std::string> stored)
      : store_(store),
        ns_(ns),
        list_(list),
        rid_(req.rid),
        id_(protocol::OwnedRequestId::From(req.id)),
        writer_(writer),
        request_(req),
        stored_(std::move(stored)) {
    if (req.title) title_.emplace(*req.title);
  }

  zmq::message_t Make(leveldb::DB* db) override {
    protocol::Request req = request_;  // its views, onto this object's copies
    req.list = list_;
    req.rid = rid_;
    req.id = id_.view();
    if (title_) req.title = *title_;
    if (stored_) return ReplyFromRecord(list_, req, *stored_, writer_);
    std::string value;
    leveldb::Status s = store_->GetRid(db, ns_, list_, rid_, store_->NowMs(), &value);
    if (s.ok()) return ReplyFromRecord(list_, req, value, writer_);
    // Only if another rid in flight had the same 64-bit hash: this one was
    // never applied.
    return EncodeBody([&](msgpack::sbuffer& b) {
      protocol::EncodeError(b, req.id, ErrorCode::kInternal,
                            "rid " + protocol::QuoteForMessage(rid_) + " of list '" + list_ +
                                "' has no record (" + s.ToString() +
                                "); the request was not applied, retry it");
    });
  }

 private:
  const store::Store* const store_;
  const std::string ns_;
  const std::string list_;
  const std::string rid_;
  const protocol::OwnedRequestId id_;
  store::ShardWriter* const writer_;
  const protocol::Request request_;  // op, entry_id, date (its views are replaced in Make)
  std::optional<std::string> title_;
  const std::optional<std::string> stored_;
};

}  // namespace

bool ListActor::RidInFlight(uint64_t rid_hash) const {
  for (size_t i = rid_order_head_; i < rid_order_.size(); ++i) {
    if (rid_order_[i].hash == rid_hash) return true;
  }
  return false;
}

bool ListActor::AnswerFromRecord(Call& call, uint64_t rid_hash, std::vector<Reply>* now,
                                 std::vector<store::WriteOp>* writes) {
  const protocol::Request& req = call.request;
  // The epoch current first: after a failed write the rids in flight are
  // dropped (their writes will all be refused) and the retry is a first
  // request.
  if (Status s = EnsureCounted(); !s.ok()) {
    Fail(call, s, now);
    return true;
  }
  // Not in the store's filter: no record on disk, none in flight (a first
  // request puts its rid in the filter before its write is submitted).
  if (!store_->RidMayExist(rid_hash)) return false;
  // Waits in the writer, then answers from the record (`stored`, or read
  // there).
  auto behind_writer = [&](std::optional<std::string> stored) {
    if (!writer_.TryReserve()) {
      Fail(call, Status::Overloaded("shard writer queue is full"), now);
      return true;
    }
    store::WriteOp op;
    op.barrier = true;
    op.late_reply =
        std::make_unique<RidRetryReply>(store_, ns_, name_, req, &writer_, std::move(stored));
    Submit(call, std::move(op), zmq::message_t(), writes);
    return true;
  };
  // The original is in flight: wait behind it.
  if (RidInFlight(rid_hash)) return behind_writer(std::nullopt);
  thread_local std::string stored;
  auto found = store_->ReadRid(name_, req.rid, rid_hash, &stored);
  if (!found.ok()) {
    Fail(call, found.status(), now);
    return true;
  }
  if (!*found) return false;
  // Replicated mode: through the writer too, which tells a success only
  // where a write could be acknowledged (--min-insync copies in sync; the
  // original may have been answered `timeout` when they fell short).
  if (table_ != nullptr) return behind_writer(stored);
  Answer(call, ReplyFromRecord(name_, req, stored, &writer_), now, writes);
  return true;
}

void ListActor::AddRidRecord(const protocol::Request& req, uint64_t rid_hash,
                             const storage::RidRecord& record, store::WriteOp* op) {
  thread_local std::string key, value;
  storage::RidValueTo(&value, record);
  (void)req;
  store_->RidRecordKeyTo(&key, ns_, rid_key_hash_, record.created_ms);
  op->batch.Put(key, value);
  op->rid_delta = 1;
  // Before the write can reach the disk: a lookup that trusts the filter
  // must find "maybe" from now on.
  store_->NoteRid(rid_hash);
}

void ListActor::TrackRid(uint64_t rid_hash) {
  rid_order_.push_back(RidOrder{submitted_, rid_hash});
}

void ListActor::HandleOne(Call& call, std::vector<Reply>* now,
                          std::vector<store::WriteOp>* writes) {
  // Order matters: seeing no write in flight (acquire) first makes every
  // effect of the writer's last completion visible, including a raised
  // valid_epoch after a failed write, which EnsureLoaded() then acts on. A
  // reply computed with writes still in flight waits behind them.
  quiet_ = inflight.load(std::memory_order_acquire) == 0;
  if (quiet_) {
    // Every write is durable (or failed, and the epoch says so): the disk
    // has them.
    ClearPending();
  }
  if (table_ != nullptr && call.term != term_) {
    if (!quiet_) {
      // Writes of the previous term are still in flight (they will fail):
      // nothing is applied until they are done and the disk is the truth.
      Fail(call,
           Status(ErrorCode::kUnavailable, "partition " + std::to_string(partition_) +
                                               " changed hands; the request was not applied"),
           now);
      return;
    }
    // A new term: what this actor held is from before it; start from disk.
    ClearPending();
    DropList();
    state_ = State::kEmpty;
    term_ = call.term;
  }
  const protocol::Request& req = call.request;
  const bool with_rid = !req.rid.empty() && protocol::IsMutating(req.op);
  // The record key's hash, computed once: its first half is the filter's
  // and the in-flight key (RidFilter::Hash), the whole is the record's key.
  if (with_rid) rid_key_hash_ = storage::RidKeyHash(name_, req.rid);
  const uint64_t rid_hash = with_rid ? rid_key_hash_.h1 : 0;
  if (with_rid && AnswerFromRecord(call, rid_hash, now, writes)) return;
  if (req.op == Op::kAddEntry && state_ != State::kLoaded) {
    AddCounted(call, rid_hash, now, writes);
    return;
  }
  if (Status s = EnsureLoaded(); !s.ok()) {
    Fail(call, s, now);
    return;
  }
  switch (req.op) {
    case Op::kEntries: {
      const std::vector<EntryRef> entries = req.date ? list_.EntriesOn(*req.date) : list_.Entries();
      // A large reply while large replies its clients have not read yet are
      // over the budget: refused, so a client that doesn't read its replies
      // can't make the node hold more. Small replies always go.
      if (flight_ != nullptr && flight_->replies_over() && !FitsSmallReply(entries)) {
        Fail(call, flight_->RepliesRefusal(), now);
        return;
      }
      Answer(call,
             EncodeBody([&](msgpack::sbuffer& b) { protocol::EncodeEntries(b, req.id, entries); },
                        flight_),
             now, writes);
      return;
    }
    case Op::kAddEntry:
    case Op::kUpdateEntry:
    case Op::kDeleteEntry:
      break;
    case Op::kLocate:
    case Op::kPing:  // answered by the socket loop; never posted here
    case Op::kStats:
    case Op::kMap:
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
  uint64_t touched = req.entry_id;  // the entry the write changes
  // With a rid: its record, the outcome filled in below.
  storage::RidRecord record;
  if (with_rid) record = storage::RidRecordFor(req, store_->NowMs());
  bool changed = true;  // false: the write holds only the rid record
  // An update's result: outlives the branches below, as the record's
  // result_title views it until AddRidRecord encodes it.
  std::optional<Entry> updated;
  if (req.op == Op::kAddEntry) {
    const EntryRef e = list_.Add(*req.date, *req.title);
    touched = e.id;
    storage::EntryKeyTo(&key, ns_, name_, e.id);
    storage::EntryValueTo(&value, e.date, e.title);
    op.batch.Put(key, value);
    record.outcome = storage::RidOutcome::kAdded;
    record.new_id = e.id;
    body = EncodeBody([&](msgpack::sbuffer& b) { protocol::EncodeAddResult(b, req.id, e.id); });
  } else if (req.op == Op::kUpdateEntry) {
    updated = list_.Update(req.entry_id, req.date, req.title);
    const std::optional<Entry>& e = updated;
    if (!e) {
      Status nf(ErrorCode::kNotFound, NoSuchEntry(req.entry_id));
      body = EncodeBody([&](msgpack::sbuffer& b) { protocol::EncodeError(b, req.id, nf); });
      if (!with_rid) {
        writer_.Unreserve();
        Answer(call, std::move(body), now, writes);
        return;
      }
      changed = false;
      record.outcome = storage::RidOutcome::kNotFound;
    } else {
      storage::EntryKeyTo(&key, ns_, name_, e->id);
      storage::EntryValueTo(&value, e->date, e->title);
      op.batch.Put(key, value);
      record.outcome = storage::RidOutcome::kUpdated;
      record.result_date = e->date;
      record.result_title = e->title;
      body = EncodeBody([&](msgpack::sbuffer& b) { protocol::EncodeEntry(b, req.id, *e); });
    }
  } else {
    bool deleted = list_.Delete(req.entry_id);
    if (!deleted) {
      body = EncodeBody([&](msgpack::sbuffer& b) { protocol::EncodeDeleted(b, req.id, false); });
      if (!with_rid) {
        writer_.Unreserve();
        Answer(call, std::move(body), now, writes);
        return;
      }
      changed = false;
      record.outcome = storage::RidOutcome::kNotDeleted;
    } else {
      storage::EntryKeyTo(&key, ns_, name_, req.entry_id);
      op.batch.Delete(key);
      // Deleting the highest id ever given out: record the counter, or a
      // reload would compute it from the surviving entries and reuse the id.
      if (req.entry_id + 1 == list_.next_id()) {
        op.batch.Put(storage::MetaKey(ns_, name_), storage::EncodeMetaValue(list_.next_id()));
      }
      record.outcome = storage::RidOutcome::kDeleted;
      body = EncodeBody([&](msgpack::sbuffer& b) { protocol::EncodeDeleted(b, req.id, true); });
    }
  }
  // The record is encoded now: result_title points into the list.
  if (with_rid) AddRidRecord(req, rid_hash, record, &op);
  Submit(call, std::move(op), std::move(body), writes);
  if (with_rid) TrackRid(rid_hash);
  if (changed) tracked_.push_back(Tracked{submitted_, touched});
}

bool ListActor::TryAnswerRead(const Call& call, std::chrono::steady_clock::time_point now,
                              zmq::message_t* body) const {
  if (call.request.op != Op::kEntries || !Idle() || state_ != State::kLoaded) return false;
  // As HandleOne: no write in flight (acquire) first, then the epoch its
  // completions may have raised, then the shard's generation.
  if (inflight.load(std::memory_order_acquire) != 0) return false;
  if (epoch_ < valid_epoch.load(std::memory_order_acquire)) return false;
  if (writer_.generation() != generation_) return false;
  if (table_ != nullptr && (call.term != term_ || !table_->Serves(partition_, term_, now))) {
    return false;  // a new term, or fenced since admission: the actor decides
  }
  const protocol::Request& req = call.request;
  const std::vector<EntryRef> entries = req.date ? list_.EntriesOn(*req.date) : list_.Entries();
  if (flight_ != nullptr && flight_->replies_over() && !FitsSmallReply(entries)) return false;
  *body = EncodeBody([&](msgpack::sbuffer& b) { protocol::EncodeEntries(b, req.id, entries); },
                     flight_);
  return true;
}

}  // namespace todo::node
