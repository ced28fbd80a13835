#include "common/todo_list.h"

#include <algorithm>

namespace todo {
namespace {

constexpr uint32_t kDeleted = 0;  // Rec::date of a tombstone
// Compaction starts only past this much waste, so small lists never pay it.
constexpr size_t kMinWaste = 64;

}  // namespace

TodoList TodoList::Restore(std::vector<Entry> entries, uint64_t next_id) {
  TodoList list;
  std::sort(entries.begin(), entries.end(),
            [](const Entry& a, const Entry& b) { return a.id < b.id; });
  uint64_t max_id = 0;
  size_t title_bytes = 0;
  for (const Entry& e : entries) title_bytes += e.title.size();
  list.recs_.reserve(entries.size());
  list.titles_.reserve(title_bytes);
  for (const Entry& e : entries) {
    max_id = std::max(max_id, e.id);
    uint32_t off = list.AppendTitle(e.title);
    list.recs_.push_back(Rec{e.id, e.date.packed, off, static_cast<uint32_t>(e.title.size())});
  }
  if (list.recs_.size() >= kIndexFrom) list.BuildIndex();
  list.live_ = entries.size();
  list.next_id_ = std::max<uint64_t>({next_id, max_id + 1, 1});
  return list;
}

uint32_t TodoList::AppendTitle(std::string_view title) {
  uint32_t off = static_cast<uint32_t>(titles_.size());
  titles_.append(title);
  return off;
}

int64_t TodoList::FindPos(uint64_t id) const {
  auto it = std::lower_bound(recs_.begin(), recs_.end(), id,
                             [](const Rec& r, uint64_t want) { return r.id < want; });
  if (it == recs_.end() || it->id != id || it->date == kDeleted) return -1;
  return it - recs_.begin();
}

std::vector<TodoList::DateBucket>::iterator TodoList::Bucket(uint32_t date) {
  return std::lower_bound(by_date_.begin(), by_date_.end(), date,
                          [](const DateBucket& b, uint32_t d) { return b.date < d; });
}

void TodoList::BuildIndex() {
  by_date_.clear();
  indexed_ = true;
  for (size_t i = 0; i < recs_.size(); ++i) {
    if (recs_[i].date != kDeleted) IndexAdd(recs_[i].date, static_cast<uint32_t>(i));
  }
}

void TodoList::IndexAdd(uint32_t date, uint32_t pos) {
  auto it = Bucket(date);
  if (it == by_date_.end() || it->date != date) it = by_date_.insert(it, DateBucket{date, {}});
  auto& bucket = it->pos;
  if (bucket.empty() || bucket.back() < pos) {
    bucket.push_back(pos);  // the common case: a new entry is the last
  } else {
    bucket.insert(std::lower_bound(bucket.begin(), bucket.end(), pos), pos);
  }
}

void TodoList::IndexRemove(uint32_t date, uint32_t pos) {
  auto it = Bucket(date);
  if (it == by_date_.end() || it->date != date) return;
  auto& bucket = it->pos;
  auto p = std::lower_bound(bucket.begin(), bucket.end(), pos);
  if (p != bucket.end() && *p == pos) bucket.erase(p);
  if (bucket.empty()) by_date_.erase(it);
}

EntryRef TodoList::Add(Date date, std::string_view title) {
  uint64_t id = next_id_++;
  uint32_t off = AppendTitle(title);
  recs_.push_back(Rec{id, date.packed, off, static_cast<uint32_t>(title.size())});
  ++live_;
  if (indexed_) {
    IndexAdd(date.packed, static_cast<uint32_t>(recs_.size() - 1));
  } else if (recs_.size() >= kIndexFrom) {
    BuildIndex();
  }
  return Ref(recs_.back());
}

std::vector<EntryRef> TodoList::Entries() const {
  std::vector<EntryRef> out;
  out.reserve(live_);
  for (const Rec& r : recs_) {
    if (r.date != kDeleted) out.push_back(Ref(r));
  }
  return out;
}

std::vector<EntryRef> TodoList::EntriesOn(Date date) const {
  std::vector<EntryRef> out;
  if (!indexed_) {
    for (const Rec& r : recs_) {  // a tombstone's date (0) is no valid date
      if (r.date == date.packed) out.push_back(Ref(r));
    }
    return out;
  }
  auto it = std::lower_bound(by_date_.begin(), by_date_.end(), date.packed,
                             [](const DateBucket& b, uint32_t d) { return b.date < d; });
  if (it == by_date_.end() || it->date != date.packed) return out;
  out.reserve(it->pos.size());
  for (uint32_t pos : it->pos) out.push_back(Ref(recs_[pos]));
  return out;
}

std::optional<Entry> TodoList::Update(uint64_t id, std::optional<Date> date,
                                      std::optional<std::string_view> title) {
  int64_t pos = FindPos(id);
  if (pos < 0) return std::nullopt;
  Rec& r = recs_[static_cast<size_t>(pos)];
  if (date && date->packed != r.date) {
    if (indexed_) IndexRemove(r.date, static_cast<uint32_t>(pos));
    r.date = date->packed;
    if (indexed_) IndexAdd(r.date, static_cast<uint32_t>(pos));
  }
  if (title && *title != std::string_view(titles_).substr(r.title_off, r.title_len)) {
    dead_title_bytes_ += r.title_len;
    r.title_off = AppendTitle(*title);  // `title` never points into titles_ (a request's bytes)
    r.title_len = static_cast<uint32_t>(title->size());
  }
  Entry out = Ref(r).ToEntry();
  MaybeCompact();
  return out;
}

bool TodoList::Delete(uint64_t id) {
  int64_t pos = FindPos(id);
  if (pos < 0) return false;
  Rec& r = recs_[static_cast<size_t>(pos)];
  if (indexed_) IndexRemove(r.date, static_cast<uint32_t>(pos));
  r.date = kDeleted;
  dead_title_bytes_ += r.title_len;
  --live_;
  MaybeCompact();
  return true;
}

void TodoList::MaybeCompact() {
  const size_t dead_recs = recs_.size() - live_;
  const size_t live_title_bytes = titles_.size() - dead_title_bytes_;
  if ((dead_recs > kMinWaste && dead_recs > live_) ||
      (dead_title_bytes_ > kMinWaste * 16 && dead_title_bytes_ > live_title_bytes)) {
    Compact();
  }
}

void TodoList::Compact() {
  std::vector<Rec> recs;
  std::string titles;
  recs.reserve(live_);
  titles.reserve(titles_.size() - dead_title_bytes_);
  for (const Rec& r : recs_) {
    if (r.date == kDeleted) continue;
    uint32_t off = static_cast<uint32_t>(titles.size());
    titles.append(titles_, r.title_off, r.title_len);
    recs.push_back(Rec{r.id, r.date, off, r.title_len});
  }
  recs_.swap(recs);
  titles_.swap(titles);  // not a move: a short source would leave our buffer in place
  dead_title_bytes_ = 0;
  // Positions moved: rebuild the index (or drop it, below kIndexFrom).
  by_date_.clear();
  indexed_ = false;
  if (recs_.size() >= kIndexFrom) {
    BuildIndex();
  } else {
    by_date_.shrink_to_fit();
  }
}

size_t TodoList::ApproxBytes() const {
  // The index's positions are counted by the live entries (4 bytes each,
  // plus a third for the vectors' spare room), not bucket by bucket.
  return recs_.capacity() * sizeof(Rec) + titles_.capacity() +
         (indexed_ ? live_ * 6 + by_date_.capacity() * (sizeof(DateBucket) + 16) : 0);
}

std::optional<EntryRef> TodoList::Find(uint64_t id) const {
  int64_t pos = FindPos(id);
  if (pos < 0) return std::nullopt;
  return Ref(recs_[static_cast<size_t>(pos)]);
}

}  // namespace todo
