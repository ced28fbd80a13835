// TodoList: the book's Todo.List as a plain value type. No I/O, no threads,
// no clock. One list's entries, numbered from 1; an id is never reused, not
// even after a delete (next_id only grows).
//
// Costs: Add is amortized O(1); Find/Update/Delete are O(log n).
// EntriesOn(date) on a small list (under kIndexFrom records) reads the
// records one after another, as the book's Todo.List filters its entries;
// from kIndexFrom records on, the list keeps a per-date index and touches
// only that date's entries, never other dates (an Add then also costs a
// binary search over the distinct dates, a change of date moving the
// touched buckets' positions, 4 bytes each). Most lists are small, and for
// them the scan of a few contiguous kilobytes is cheaper than keeping and
// chasing the index: it saved ~5% of a node's CPU on the benchmark's mix.
// Layout, compact because the cache holds many lists: one 24-byte record
// per entry in a vector sorted by id, the titles packed in one string, and
// (indexed lists) per date a sorted vector of 4-byte record positions.
// About 60-80 bytes an entry with 24-byte titles, against ~170 for heap
// objects with their own strings; no allocation per entry. A delete leaves a tombstone and an
// update of a title leaves its old bytes: both are compacted away once they
// outnumber the live data.
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

// One entry of a TodoList, viewed in place: the title points into the list,
// so the view is valid until the list is next changed.
struct EntryRef {
  uint64_t id = 0;
  Date date;
  std::string_view title;

  EntryRef() = default;
  EntryRef(uint64_t i, Date d, std::string_view t) : id(i), date(d), title(t) {}
  EntryRef(const Entry& e) : id(e.id), date(e.date), title(e.title) {}  // NOLINT: a view of it
  Entry ToEntry() const { return Entry{id, date, std::string(title)}; }

  friend bool operator==(const EntryRef&, const EntryRef&) = default;
};

class TodoList {
 public:
  // Records from which a list keeps its per-date index (see above).
  static constexpr size_t kIndexFrom = 256;

  TodoList() = default;
  // A value type: copies are independent (no pointers inside).
  TodoList(const TodoList&) = default;
  TodoList& operator=(const TodoList&) = default;
  TodoList(TodoList&&) = default;
  TodoList& operator=(TodoList&&) = default;

  // Rebuilds a list from stored entries (any order, distinct ids) and the
  // stored next id. next_id is raised above the largest id if it is lower, so
  // a lost counter can never make an id be reused.
  static TodoList Restore(std::vector<Entry> entries, uint64_t next_id);

  // Adds an entry with the next id and returns it.
  EntryRef Add(Date date, std::string_view title);

  // All entries, ascending by id.
  std::vector<EntryRef> Entries() const;
  // The entries of one date, ascending by id (an indexed list doesn't read
  // other dates' entries).
  std::vector<EntryRef> EntriesOn(Date date) const;

  // Changes the date and/or the title of entry `id`; returns the updated
  // entry, or nullopt (and changes nothing) if the list has no such entry.
  std::optional<Entry> Update(uint64_t id, std::optional<Date> date,
                              std::optional<std::string_view> title);

  // Removes entry `id`; false if there was none.
  bool Delete(uint64_t id);

  std::optional<EntryRef> Find(uint64_t id) const;
  // The id the next Add will use (1 for a new list).
  uint64_t next_id() const { return next_id_; }
  size_t size() const { return live_; }
  // About how many heap bytes the list holds (records, titles, index), for
  // the cache's memory budget. O(1) but for the number of distinct dates.
  size_t ApproxBytes() const;
  bool empty() const { return live_ == 0; }

 private:
  // An entry's record. date 0 (no valid date packs to 0) marks a deleted
  // entry, kept until the next compaction so that positions stay put.
  struct Rec {
    uint64_t id;
    uint32_t date;
    uint32_t title_off;  // into titles_
    uint32_t title_len;
  };
  // One date's entries: positions in recs_, ascending (= ascending id).
  struct DateBucket {
    uint32_t date;
    std::vector<uint32_t> pos;
  };

  EntryRef Ref(const Rec& r) const {
    return EntryRef(r.id, Date{r.date}, std::string_view(titles_).substr(r.title_off, r.title_len));
  }
  // Position of live entry `id` in recs_, or -1.
  int64_t FindPos(uint64_t id) const;
  std::vector<DateBucket>::iterator Bucket(uint32_t date);
  void IndexAdd(uint32_t date, uint32_t pos);
  void IndexRemove(uint32_t date, uint32_t pos);
  uint32_t AppendTitle(std::string_view title);
  // Builds by_date_ from recs_ and keeps it from then on.
  void BuildIndex();
  // Drops tombstones and dead title bytes once they outweigh the live ones.
  void MaybeCompact();
  void Compact();

  uint64_t next_id_ = 1;
  size_t live_ = 0;                  // entries not deleted
  size_t dead_title_bytes_ = 0;      // bytes of titles_ no entry uses
  std::vector<Rec> recs_;            // ascending by id, tombstones included
  std::string titles_;               // every title, back to back
  bool indexed_ = false;             // by_date_ is kept (recs_ reached kIndexFrom)
  std::vector<DateBucket> by_date_;  // if indexed_: ascending by date; no empty bucket
};

}  // namespace todo
