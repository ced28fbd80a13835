#include "common/todo_list.h"

#include <algorithm>

namespace todo {

TodoList::TodoList(const TodoList& other) : next_id_(other.next_id_), entries_(other.entries_) {
  for (const auto& [id, e] : entries_) IndexAdd(&e);
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
  for (auto& e : entries) {
    max_id = std::max(max_id, e.id);
    uint64_t id = e.id;
    auto it = list.entries_.emplace_hint(list.entries_.end(), id, std::move(e));
    list.IndexAdd(&it->second);
  }
  list.next_id_ = std::max<uint64_t>({next_id, max_id + 1, 1});
  return list;
}

namespace {
bool IdLess(const Entry* e, uint64_t id) { return e->id < id; }
}  // namespace

void TodoList::IndexAdd(const Entry* e) {
  auto& bucket = by_date_[e->date.packed];
  if (bucket.empty() || bucket.back()->id < e->id) {
    bucket.push_back(e);  // the common case: a new id is the largest
  } else {
    bucket.insert(std::lower_bound(bucket.begin(), bucket.end(), e->id, IdLess), e);
  }
}

void TodoList::IndexRemove(Date date, uint64_t id) {
  auto it = by_date_.find(date.packed);
  if (it == by_date_.end()) return;
  auto& bucket = it->second;
  auto pos = std::lower_bound(bucket.begin(), bucket.end(), id, IdLess);
  if (pos != bucket.end() && (*pos)->id == id) bucket.erase(pos);
  if (bucket.empty()) by_date_.erase(it);
}

const Entry& TodoList::Add(Date date, std::string_view title) {
  uint64_t id = next_id_++;
  auto it = entries_.emplace_hint(entries_.end(), id, Entry{id, date, std::string(title)});
  IndexAdd(&it->second);
  return it->second;
}

std::vector<const Entry*> TodoList::Entries() const {
  std::vector<const Entry*> out;
  out.reserve(entries_.size());
  for (const auto& [id, e] : entries_) out.push_back(&e);
  return out;
}

const std::vector<const Entry*>& TodoList::EntriesOn(Date date) const {
  static const std::vector<const Entry*> kNone;
  auto it = by_date_.find(date.packed);
  return it == by_date_.end() ? kNone : it->second;
}

std::optional<Entry> TodoList::Update(uint64_t id, std::optional<Date> date,
                                      std::optional<std::string_view> title) {
  auto it = entries_.find(id);
  if (it == entries_.end()) return std::nullopt;
  Entry& e = it->second;
  if (date && *date != e.date) {
    IndexRemove(e.date, id);
    e.date = *date;
    IndexAdd(&e);
  }
  if (title) e.title.assign(title->data(), title->size());
  return e;
}

bool TodoList::Delete(uint64_t id) {
  auto it = entries_.find(id);
  if (it == entries_.end()) return false;
  IndexRemove(it->second.date, id);
  entries_.erase(it);
  return true;
}

const Entry* TodoList::Find(uint64_t id) const {
  auto it = entries_.find(id);
  return it == entries_.end() ? nullptr : &it->second;
}

}  // namespace todo
