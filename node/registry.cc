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
}  // namespace

Registry::Registry(Options options, Factory factory)
    : options_(options), factory_(std::move(factory)) {}

ListActor* Registry::Get(std::string_view list, Clock::time_point now) {
  auto it = map_.find(list);
  if (it != map_.end()) {
    Lru::iterator slot = it->second;
    slot->last_used = now;
    if (slot != lru_.begin()) lru_.splice(lru_.begin(), lru_, slot);
    if (OverBudget()) EvictForBytes(kEvictProbe, now);
    return slot->actor.get();
  }
  if (map_.size() >= options_.max_lists && !EvictOneForRoom()) return nullptr;
  lru_.push_front(Slot{factory_(std::string(list)), now});
  map_.emplace(std::string_view(lru_.front().actor->name()), lru_.begin());
  ++created_;
  if (OverBudget()) EvictForBytes(kEvictProbe, now);
  return lru_.front().actor.get();
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
    if (now - it->last_used < kMinIdleForMemory) {
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
  map_.erase(std::string_view(it->actor->name()));
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
    if (now - it->last_used < options_.idle_timeout) break;  // the rest are newer
    if (it->actor->Evictable()) {
      auto victim = it;
      ++it;  // stays valid: list iterators survive erasing other nodes
      Erase(victim);
      ++n;
    }
  }
  if (OverBudget()) n += EvictForBytes(kSweepProbe, now);
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
