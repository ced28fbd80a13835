#include "router/inflight.h"

#include <algorithm>
#include <utility>

namespace todo::router {

InflightTable::InflightTable(size_t capacity) : capacity_(std::max<size_t>(capacity, 1)) {}

bool InflightTable::Insert(InflightEntry&& entry) {
  if (full()) return false;
  if (last_deadline_ && entry.deadline < *last_deadline_) return false;
  uint64_t seq = entry.seq;
  TimePoint deadline = entry.deadline;
  const uint32_t bytes = entry.bytes;
  // try_emplace: a refused entry is left as it was (emplace may move it).
  if (!entries_.try_emplace(seq, std::move(entry)).second) return false;
  bytes_ += bytes;
  order_.push_back({seq, deadline});
  last_deadline_ = deadline;
  CompactIfSparse();
  return true;
}

InflightEntry* InflightTable::Find(uint64_t seq) {
  auto it = entries_.find(seq);
  return it == entries_.end() ? nullptr : &it->second;
}

std::optional<InflightEntry> InflightTable::Complete(uint64_t seq) {
  auto it = entries_.find(seq);
  if (it == entries_.end()) return std::nullopt;
  std::optional<InflightEntry> entry(std::move(it->second));  // moved once, returned as is
  entries_.erase(it);
  bytes_ -= entry->bytes;
  PopFinished();
  return entry;
}

size_t InflightTable::Expire(TimePoint now, std::vector<InflightEntry>* expired) {
  size_t n = 0;
  while (!order_.empty() && order_.front().deadline <= now) {
    auto it = entries_.find(order_.front().seq);
    order_.pop_front();
    if (it == entries_.end()) continue;  // completed earlier; its slot was behind a live one
    bytes_ -= it->second.bytes;
    expired->push_back(std::move(it->second));
    entries_.erase(it);
    ++n;
  }
  PopFinished();
  return n;
}

size_t InflightTable::TakeNode(uint32_t node, std::vector<InflightEntry>* taken) {
  size_t n = 0;
  for (auto it = entries_.begin(); it != entries_.end();) {
    if (it->second.node == node) {
      taken->push_back(std::move(it->second));
      it = entries_.erase(it);
      ++n;
    } else {
      ++it;
    }
  }
  PopFinished();
  CompactIfSparse();
  return n;
}

std::optional<TimePoint> InflightTable::NextDeadline() const {
  if (order_.empty()) return std::nullopt;
  return order_.front().deadline;  // the front is live (PopFinished)
}

void InflightTable::PopFinished() {
  while (!order_.empty() && !entries_.contains(order_.front().seq)) order_.pop_front();
}

void InflightTable::CompactIfSparse() {
  // Live slots are at most capacity_, so a compaction here frees more than
  // capacity_ + 64 slots: its O(slots) cost is paid by as many inserts.
  if (order_.size() <= 2 * capacity_ + 64) return;
  std::erase_if(order_, [this](const Slot& s) { return !entries_.contains(s.seq); });
}

}  // namespace todo::router
