// Registry: the book's Todo.Cache — list name -> list actor.
//
// Design: owned and used by the socket loop thread alone, so lookups take no
// lock and creating an actor never blocks other lists (the actor loads its
// list later, on a worker). Actors are kept in least-recently-used order:
//  - an actor with no message for `idle_timeout` is evicted by EvictIdle()
//    (it is reloaded from the store on its next use), so idle lists leave
//    memory;
//  - at most `max_lists` actors live; creating one more first evicts the
//    least recently used actor that is idle, and fails (the caller answers
//    `overloaded`) if none of the oldest few is;
//  - the live actors hold about `max_bytes` (their MemoryMeter): past it,
//    each Get() and each EvictIdle() walk from the least recently used end
//    (a few actors per Get, never the one it returns) until the excess is
//    covered: an actor idle for a second or more is evicted (its list is on
//    disk and reloads on its next use); one used within the last second is
//    not (it would be recreated at once) but asked to shed its entries
//    (ListActor::RequestShed), keeping only its counter: adds need nothing
//    more, other requests reload the list. So the budget holds under floods
//    over many lists and over a hot set alike; a hot set larger than the
//    budget costs reloads, not memory.
// An actor is evicted only when it is Evictable(): nothing queued, running,
// or waiting for the disk, so no request or write is ever dropped, and a new
// actor for the same list never loads while an old one still has writes
// pending.
#pragma once

#include <chrono>
#include <functional>
#include <list>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "node/list_actor.h"

namespace todo::node {

class Registry {
 public:
  using Clock = std::chrono::steady_clock;
  using Factory = std::function<std::shared_ptr<ListActor>(std::string name)>;

  struct Options {
    size_t max_lists = 100000;
    Clock::duration idle_timeout = std::chrono::seconds(60);
    size_t max_bytes = 0;                // 0: no memory budget
    const MemoryMeter* meter = nullptr;  // what the actors hold (needed for max_bytes)
  };

  Registry(Options options, Factory factory);

  // The list's actor, created if needed; nullptr if `max_lists` actors are
  // live and none could be evicted. Marks the actor used at `now`.
  ListActor* Get(std::string_view list, Clock::time_point now) {
    return Get(list, HashName(list), now);
  }
  // The same, with `hash` = HashName(list) computed by the caller.
  ListActor* Get(std::string_view list, uint64_t hash, Clock::time_point now);

  // The hash Get() files `name` under (never 0).
  static uint64_t HashName(std::string_view name);
  // Hints for a caller about to Get() many lists: fetch the bucket where
  // `hash` starts its probe; then (once that is in cache) the actor it
  // holds, if its hash matches. No effect on the result of Get().
  void Prefetch(uint64_t hash) const {
    if (!table_.empty()) __builtin_prefetch(&table_[hash & (table_.size() - 1)]);
  }
  void PrefetchActor(uint64_t hash) const;

  // Evicts actors unused since now - idle_timeout that are Evictable().
  // Returns how many were evicted.
  size_t EvictIdle(Clock::time_point now);

  size_t size() const { return size_; }
  uint64_t created() const { return created_; }
  uint64_t evicted() const { return evicted_; }
  // About how many bytes the live actors hold (0 without a meter).
  int64_t bytes() const {
    return options_.meter != nullptr ? options_.meter->bytes.load(std::memory_order_relaxed) : 0;
  }
  // Of those, evicted because the memory budget was exceeded.
  uint64_t evicted_for_bytes() const { return evicted_for_bytes_; }
  // Times an actor in use was asked to drop its list for memory.
  uint64_t shed_requests() const { return shed_requests_; }
  // Messages queued in the live actors' mailboxes: the sum and the largest.
  // Walks every live actor (for metrics, not per request).
  void MailboxDepths(size_t* sum, size_t* max) const;

 private:
  struct Slot {
    std::shared_ptr<ListActor> actor;
  };
  // Most recently used first, to kLruGrain (100 ms): a use within that long
  // of the actor's last move to the front doesn't move it again (a move
  // touches three list nodes, most of a lookup's cache misses). So the order
  // is by that move, and an actor's last use is less than kLruGrain after
  // it: eviction takes the least recently used to within 100 ms.
  using Lru = std::list<Slot>;

  // The name -> actor index: open addressing with linear probing over a
  // power-of-two table, at most half full. A bucket keeps the name's hash
  // and the actor, so a lookup touches the bucket and the actor (which the
  // request needs next anyway), not a chain of nodes.
  struct Bucket {
    uint64_t hash = 0;  // 0: empty (hashes are forced nonzero)
    ListActor* actor = nullptr;
    Lru::iterator slot;
  };
  // The bucket holding `name`, or the empty one where it would go.
  size_t Probe(std::string_view name, uint64_t hash) const;
  void Insert(uint64_t hash, Lru::iterator slot);
  void EraseBucket(size_t i);
  void Rehash(size_t buckets);

  bool EvictOneForRoom();
  bool OverBudget() const;  // the meter reads more than max_bytes
  // Walks from the LRU end, probing at most `probe` actors, until the excess
  // over the budget is covered: evicts idle actors, asks those used in the
  // last second to shed their list; never touches the most recently used.
  // Returns how many were evicted.
  size_t EvictForBytes(size_t probe, Clock::time_point now);
  void Erase(Lru::iterator it);

  const Options options_;
  const Factory factory_;
  Lru lru_;
  std::vector<Bucket> table_;
  size_t size_ = 0;
  uint64_t created_ = 0;
  uint64_t evicted_ = 0;
  uint64_t evicted_for_bytes_ = 0;
  uint64_t shed_requests_ = 0;
};

}  // namespace todo::node
