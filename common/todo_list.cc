#include "common/todo_list.h"

#include <algorithm>

namespace todo {

TodoList TodoList::Restore(std::vector<Entry> entries, uint64_t next_id) {
  TodoList list;
  std::sort(entries.begin(), entries.end(),
            [](const Entry& a, const Entry& b) { return a.id < b.id; });
  uint64_t max_id = 0;
  for (auto& e : entries) {
    max_id = std::max(max_id, e.id);
    list.IndexAdd(e.date, e.id);
    uint64_t id = e.id;
    list.entries_.emplace_hint(list.entries_.end(), id, std::move(e));
  }
  list.next_id_ = std::max<uint64_t>({next_id, max_id + 1, 1});
  return list;
}

void TodoList::IndexAdd(Date date, uint64_t id) {
  auto& ids = by_date_[date.packed];
  if (ids.empty() || ids.back() < id) {
    ids.push_back(id);  // the common case: a new id is the largest
  } else {
    ids.insert(std::lower_bound(ids.begin(), ids.end(), id), id);
  }
}

void TodoList::IndexRemove(Date date, uint64_t id) {
  auto it = by_date_.find(date.packed);
  if (it == by_date_.end()) return;
  auto& ids = it->second;
  auto pos = std::lower_bound(ids.begin(), ids.end(), id);
  if (pos != ids.end() && *pos == id) ids.erase(pos);
  if (ids.empty()) by_date_.erase(it);
}

const Entry& TodoList::Add(Date date, std::string_view title) {
  uint64_t id = next_id_++;
  IndexAdd(date, id);
  auto it = entries_.emplace_hint(entries_.end(), id, Entry{id, date, std::string(title)});
  return it->second;
}

std::vector<const Entry*> TodoList::Entries() const {
  std::vector<const Entry*> out;
  out.reserve(entries_.size());
  for (const auto& [id, e] : entries_) out.push_back(&e);
  return out;
}

std::vector<const Entry*> TodoList::EntriesOn(Date date) const {
  std::vector<const Entry*> out;
  auto it = by_date_.find(date.packed);
  if (it == by_date_.end()) return out;
  out.reserve(it->second.size());
  for (uint64_t id : it->second) out.push_back(&entries_.at(id));
  return out;
}

std::optional<Entry> TodoList::Update(uint64_t id, std::optional<Date> date,
                                      std::optional<std::string_view> title) {
  auto it = entries_.find(id);
  if (it == entries_.end()) return std::nullopt;
  Entry& e = it->second;
  if (date && *date != e.date) {
    IndexRemove(e.date, id);
    e.date = *date;
    IndexAdd(e.date, id);
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
