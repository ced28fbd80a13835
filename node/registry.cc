#include "node/registry.h"

#include <algorithm>

namespace todo::node {

namespace {
// How many of the least recently used actors to try when making room.
constexpr int kEvictProbe = 16;
// ... and per periodic sweep when over the memory budget.
constexpr size_t kSweepProbe = 65536;
// Idle at least this long to be evicted for memory.
constexpr std::chrono::seconds kMinIdleForMemory(1);
// An actor in use is asked to shed its list only if it holds this much:
// below it the list is a few entries and the actor itself dominates.
constexpr size_t kShedAtLeast = 2048;
// About what an actor holds without its list (object, name, spare mailbox).
constexpr size_t kActorShare = 512;
// See Registry::Lru.
constexpr std::chrono::milliseconds kLruGrain(100);
// The index's smallest table, and when it shrinks (entries per bucket).
constexpr size_t kMinBuckets = 64;
}  // namespace

Registry::Registry(Options options, Factory factory)
    : options_(options), factory_(std::move(factory)) {}

uint64_t Registry::HashName(std::string_view name) {
  uint64_t h = std::hash<std::string_view>{}(name);
  return h != 0 ? h : 1;  // 0 marks an empty bucket
}

size_t Registry::Probe(std::string_view name, uint64_t hash) const {
  const size_t mask = table_.size() - 1;
  size_t i = hash & mask;
  while (table_[i].hash != 0) {
    if (table_[i].hash == hash && table_[i].actor->name() == name) return i;
    i = (i + 1) & mask;
  }
  return i;
}

void Registry::Insert(uint64_t hash, Lru::iterator slot) {
  if ((size_ + 1) * 2 > table_.size()) Rehash(std::max(kMinBuckets, table_.size() * 2));
  const size_t mask = table_.size() - 1;
  size_t i = hash & mask;
  while (table_[i].hash != 0) i = (i + 1) & mask;
  table_[i] = Bucket{hash, slot->actor.get(), slot};
  ++size_;
}

void Registry::EraseBucket(size_t i) {
  // Backward-shift deletion: move later members of the probe run into the
  // hole, so lookups never need tombstones.
  const size_t mask = table_.size() - 1;
  size_t hole = i;
  for (size_t j = (i + 1) & mask; table_[j].hash != 0; j = (j + 1) & mask) {
    const size_t home = table_[j].hash & mask;
    // table_[j] may move to the hole if its home is not in (hole, j].
    const bool between = hole <= j ? (hole < home && home <= j) : (hole < home || home <= j);
    if (!between) {
      table_[hole] = table_[j];
      hole = j;
    }
  }
  table_[hole] = Bucket{};
  --size_;
}

void Registry::Rehash(size_t buckets) {
  std::vector<Bucket> old(buckets);
  old.swap(table_);
  const size_t mask = table_.size() - 1;
  for (const Bucket& b : old) {
    if (b.hash == 0) continue;
    size_t i = b.hash & mask;
    while (table_[i].hash != 0) i = (i + 1) & mask;
    table_[i] = b;
  }
}

void Registry::PrefetchActor(uint64_t hash) const {
  if (table_.empty()) return;
  const Bucket& b = table_[hash & (table_.size() - 1)];
  if (b.hash != hash) return;  // elsewhere in the probe run, or absent: Get() finds it
  // What Get() and Post() touch first: the name, the LRU stamps, the
  // mailbox's lock and vector.
  const char* p = reinterpret_cast<const char*>(b.actor);
  for (size_t off = 0; off < sizeof(ListActor); off += 64) __builtin_prefetch(p + off);
}

ListActor* Registry::Get(std::string_view list, uint64_t hash, Clock::time_point now) {
  if (!table_.empty()) {
    const Bucket& b = table_[Probe(list, hash)];
    if (b.hash != 0) {
      ListActor* actor = b.actor;
      actor->last_used = now;
      if (now - actor->lru_placed >= kLruGrain && b.slot != lru_.begin()) {
        lru_.splice(lru_.begin(), lru_, b.slot);
        actor->lru_placed = now;
      }
      if (OverBudget()) EvictForBytes(kEvictProbe, now);
      return actor;
    }
  }
  if (size_ >= options_.max_lists && !EvictOneForRoom()) return nullptr;
  lru_.push_front(Slot{factory_(std::string(list))});
  ListActor* actor = lru_.front().actor.get();
  actor->last_used = now;
  actor->lru_placed = now;
  Insert(hash, lru_.begin());
  ++created_;
  if (OverBudget()) EvictForBytes(kEvictProbe, now);
  return actor;
}

bool Registry::OverBudget() const {
  return options_.max_bytes > 0 && options_.meter != nullptr &&
         options_.meter->bytes.load(std::memory_order_relaxed) >
             static_cast<int64_t>(options_.max_bytes);
}

size_t Registry::EvictForBytes(size_t probe, Clock::time_point now) {
  size_t n = 0;
  // What is still to be given back; actors asked to shed count as done.
  int64_t excess = options_.meter->bytes.load(std::memory_order_relaxed) -
                   static_cast<int64_t>(options_.max_bytes);
  auto it = lru_.end();
  for (size_t probed = 0; probed < probe && excess > 0; ++probed) {
    if (it == lru_.begin()) break;
    --it;
    if (it == lru_.begin()) break;  // the most recently used stays
    const int64_t bytes = static_cast<int64_t>(it->actor->metered_bytes());
    if (now - it->actor->last_used < kMinIdleForMemory) {
      // In use: not evicted (its actor would be recreated at once) but asked
      // to drop its entries, keeping its counter.
      if (bytes >= static_cast<int64_t>(kShedAtLeast)) {
        it->actor->RequestShed();
        ++shed_requests_;
        excess -= bytes - static_cast<int64_t>(kActorShare);  // the actor itself stays
      }
      continue;
    }
    if (it->actor->Evictable()) {
      auto victim = it;
      ++it;
      Erase(victim);
      ++n;
      ++evicted_for_bytes_;
      excess -= bytes;
    }
  }
  return n;
}

void Registry::Erase(Lru::iterator it) {
  const ListActor* actor = it->actor.get();
  const size_t i = Probe(actor->name(), HashName(actor->name()));
  if (table_[i].hash != 0) EraseBucket(i);
  lru_.erase(it);
  ++evicted_;
}

bool Registry::EvictOneForRoom() {
  int probed = 0;
  for (auto it = lru_.end(); it != lru_.begin() && probed < kEvictProbe; ++probed) {
    --it;
    if (it->actor->Evictable()) {
      Erase(it);
      return true;
    }
  }
  return false;
}

size_t Registry::EvictIdle(Clock::time_point now) {
  size_t n = 0;
  auto it = lru_.end();
  while (it != lru_.begin()) {
    --it;
    // The rest were moved to the front later, so used at most kLruGrain
    // before this one: idle ones among them go at the next sweep.
    if (now - it->actor->last_used < options_.idle_timeout) break;
    if (it->actor->Evictable()) {
      auto victim = it;
      ++it;  // stays valid: list iterators survive erasing other nodes
      Erase(victim);
      ++n;
    }
  }
  if (OverBudget()) n += EvictForBytes(kSweepProbe, now);
  // After many evictions, give the index's memory back too.
  if (table_.size() > kMinBuckets && size_ * 8 < table_.size()) {
    size_t buckets = kMinBuckets;
    while (buckets < size_ * 4) buckets *= 2;
    Rehash(buckets);
  }
  return n;
}

void Registry::MailboxDepths(size_t* sum, size_t* max) const {
  *sum = 0;
  *max = 0;
  for (const Slot& slot : lru_) {
    size_t n = slot.actor->queued();
    *sum += n;
    *max = std::max(*max, n);
  }
}

}  // namespace todo::node
