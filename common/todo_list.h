// TodoList: the book's Todo.List as a plain value type. No I/O, no threads,
// no clock. One list's entries, numbered from 1; an id is never reused, not
// even after a delete (next_id only grows).
//
// Costs: Add is amortized O(1) plus a binary search over the list's distinct
// dates; EntriesOn(date) touches only that date's entries (a per-date index),
// never other dates; Find/Update are O(log n); Delete is O(log n) plus moving
// the pointers after it (8 bytes each) and the touched date bucket.
// Layout: flat sorted vectors, not node-based trees, so the hot paths touch
// a few contiguous cache lines instead of chasing tree nodes.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/date.h"

namespace todo {

struct Entry {
  uint64_t id = 0;
  Date date;
  std::string title;

  friend bool operator==(const Entry&, const Entry&) = default;
};

class TodoList {
 public:
  TodoList() = default;
  // A value type: copies are independent (the index is rebuilt, since it
  // points into the copy's own entries); moves keep every pointer valid.
  TodoList(const TodoList& other);
  TodoList& operator=(const TodoList& other);
  TodoList(TodoList&&) = default;
  TodoList& operator=(TodoList&&) = default;

  // Rebuilds a list from stored entries (any order, distinct ids) and the
  // stored next id. next_id is raised above the largest id if it is lower, so
  // a lost counter can never make an id be reused.
  static TodoList Restore(std::vector<Entry> entries, uint64_t next_id);

  // Adds an entry with the next id and returns it.
  const Entry& Add(Date date, std::string_view title);

  // All entries, ascending by id.
  std::vector<const Entry*> Entries() const;
  // The entries of one date, ascending by id, without scanning other dates.
  // Valid until the list is next changed.
  const std::vector<const Entry*>& EntriesOn(Date date) const;

  // Changes the date and/or the title of entry `id`; returns the updated
  // entry, or nullopt (and changes nothing) if the list has no such entry.
  std::optional<Entry> Update(uint64_t id, std::optional<Date> date,
                              std::optional<std::string_view> title);

  // Removes entry `id`; false if there was none.
  bool Delete(uint64_t id);

  const Entry* Find(uint64_t id) const;
  // The id the next Add will use (1 for a new list).
  uint64_t next_id() const { return next_id_; }
  size_t size() const { return entries_.size(); }
  // About how many heap bytes the list holds (entries, titles, index), for
  // the cache's memory budget. O(1); an estimate of glibc's chunk sizes, not
  // an exact count.
  size_t ApproxBytes() const;
  bool empty() const { return entries_.empty(); }

 private:
  // One entry; the Entry lives on the heap so pointers to it stay valid
  // while entries_ grows or shifts.
  struct Slot {
    uint64_t id;
    std::unique_ptr<Entry> entry;
  };
  // One date's entries, ascending by id (pointers into entries_).
  struct DateBucket {
    uint32_t date;
    std::vector<const Entry*> entries;
  };

  void IndexAdd(const Entry* e);
  void IndexRemove(Date date, uint64_t id);
  std::vector<Slot>::const_iterator FindSlot(uint64_t id) const;

  uint64_t next_id_ = 1;
  size_t title_heap_bytes_ = 0;      // heap held by titles too long for SSO
  std::vector<Slot> entries_;        // ascending by id
  std::vector<DateBucket> by_date_;  // ascending by date; no empty bucket
};

}  // namespace todo
