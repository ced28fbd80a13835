#include "common/todo_list.h"

#include <algorithm>

namespace todo {
namespace {

bool IdLess(const Entry* e, uint64_t id) { return e->id < id; }

// Heap bytes of a std::string of `n` chars: none within the small-string
// buffer, else the chars + NUL in a malloc chunk (8-byte header, 16-aligned).
size_t TitleHeap(size_t n) { return n < 16 ? 0 : (n + 1 + 8 + 15) / 16 * 16; }
// A heap Entry (a 48-byte object in a 64-byte chunk) and its index pointer.
constexpr size_t kPerEntry = 64 + sizeof(const Entry*);

}  // namespace

TodoList::TodoList(const TodoList& other)
    : next_id_(other.next_id_), title_heap_bytes_(other.title_heap_bytes_) {
  entries_.reserve(other.entries_.size());
  for (const auto& slot : other.entries_) {
    entries_.push_back(Slot{slot.id, std::make_unique<Entry>(*slot.entry)});
    IndexAdd(entries_.back().entry.get());
  }
}

TodoList& TodoList::operator=(const TodoList& other) {
  if (this != &other) *this = TodoList(other);
  return *this;
}

TodoList TodoList::Restore(std::vector<Entry> entries, uint64_t next_id) {
  TodoList list;
  std::sort(entries.begin(), entries.end(),
            [](const Entry& a, const Entry& b) { return a.id < b.id; });
  uint64_t max_id = 0;
  list.entries_.reserve(entries.size());
  for (auto& e : entries) {
    max_id = std::max(max_id, e.id);
    uint64_t id = e.id;
    list.title_heap_bytes_ += TitleHeap(e.title.size());
    list.entries_.push_back(Slot{id, std::make_unique<Entry>(std::move(e))});
    list.IndexAdd(list.entries_.back().entry.get());
  }
  list.next_id_ = std::max<uint64_t>({next_id, max_id + 1, 1});
  return list;
}

std::vector<TodoList::Slot>::const_iterator TodoList::FindSlot(uint64_t id) const {
  auto it = std::lower_bound(entries_.begin(), entries_.end(), id,
                             [](const Slot& s, uint64_t want) { return s.id < want; });
  return it != entries_.end() && it->id == id ? it : entries_.end();
}

void TodoList::IndexAdd(const Entry* e) {
  const uint32_t date = e->date.packed;
  auto it = std::lower_bound(by_date_.begin(), by_date_.end(), date,
                             [](const DateBucket& b, uint32_t d) { return b.date < d; });
  if (it == by_date_.end() || it->date != date) it = by_date_.insert(it, DateBucket{date, {}});
  auto& bucket = it->entries;
  if (bucket.empty() || bucket.back()->id < e->id) {
    bucket.push_back(e);  // the common case: a new id is the largest
  } else {
    bucket.insert(std::lower_bound(bucket.begin(), bucket.end(), e->id, IdLess), e);
  }
}

void TodoList::IndexRemove(Date date, uint64_t id) {
  auto it = std::lower_bound(by_date_.begin(), by_date_.end(), date.packed,
                             [](const DateBucket& b, uint32_t d) { return b.date < d; });
  if (it == by_date_.end() || it->date != date.packed) return;
  auto& bucket = it->entries;
  auto pos = std::lower_bound(bucket.begin(), bucket.end(), id, IdLess);
  if (pos != bucket.end() && (*pos)->id == id) bucket.erase(pos);
  if (bucket.empty()) by_date_.erase(it);
}

const Entry& TodoList::Add(Date date, std::string_view title) {
  uint64_t id = next_id_++;
  title_heap_bytes_ += TitleHeap(title.size());
  entries_.push_back(Slot{id, std::make_unique<Entry>(Entry{id, date, std::string(title)})});
  const Entry* e = entries_.back().entry.get();
  IndexAdd(e);
  return *e;
}

std::vector<const Entry*> TodoList::Entries() const {
  std::vector<const Entry*> out;
  out.reserve(entries_.size());
  for (const auto& slot : entries_) out.push_back(slot.entry.get());
  return out;
}

const std::vector<const Entry*>& TodoList::EntriesOn(Date date) const {
  static const std::vector<const Entry*> kNone;
  auto it = std::lower_bound(by_date_.begin(), by_date_.end(), date.packed,
                             [](const DateBucket& b, uint32_t d) { return b.date < d; });
  return it == by_date_.end() || it->date != date.packed ? kNone : it->entries;
}

std::optional<Entry> TodoList::Update(uint64_t id, std::optional<Date> date,
                                      std::optional<std::string_view> title) {
  auto it = FindSlot(id);
  if (it == entries_.end()) return std::nullopt;
  Entry& e = *it->entry;
  if (date && *date != e.date) {
    IndexRemove(e.date, id);
    e.date = *date;
    IndexAdd(&e);
  }
  if (title) {
    title_heap_bytes_ -= TitleHeap(e.title.size());
    e.title.assign(title->data(), title->size());
    title_heap_bytes_ += TitleHeap(e.title.size());
  }
  return e;
}

bool TodoList::Delete(uint64_t id) {
  auto it = FindSlot(id);
  if (it == entries_.end()) return false;
  IndexRemove(it->entry->date, id);
  title_heap_bytes_ -= TitleHeap(it->entry->title.size());
  entries_.erase(it);
  return true;
}

size_t TodoList::ApproxBytes() const {
  // Index pointers are in kPerEntry; the buckets' spare capacity is not.
  return entries_.capacity() * sizeof(Slot) + entries_.size() * kPerEntry + title_heap_bytes_ +
         by_date_.capacity() * sizeof(DateBucket);
}

const Entry* TodoList::Find(uint64_t id) const {
  auto it = FindSlot(id);
  return it == entries_.end() ? nullptr : it->entry.get();
}

}  // namespace todo
