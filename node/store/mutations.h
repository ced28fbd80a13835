// Mutations: the puts and deletes of one write op, in order, kept in one
// small buffer until the shard writer appends them to its group commit.
//
// Why not a leveldb::WriteBatch per op: a WriteBatch has no move
// constructor, so every hand-off of an op (actor -> its slice's op list ->
// the writer's queue) copied its bytes into a fresh allocation, and the
// group commit copied them once more. A typical op (one entry key and value,
// plus its rid record when it has a rid: ~115 bytes with a 24-byte title
// and a 10-byte list name, so kInline leaves room for longer ones) lives
// inline here and moves as a memcpy of its used bytes: no heap allocation
// between the actor and the group commit. Larger ops (long titles) spill
// to one heap buffer, which moves by pointer.
#pragma once

#include <leveldb/slice.h>
#include <leveldb/write_batch.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string_view>

namespace todo::store {

class Mutations {
 public:
  static constexpr size_t kInline = 176;

  Mutations() = default;
  Mutations(Mutations&& other) noexcept { *this = std::move(other); }
  Mutations& operator=(Mutations&& other) noexcept {
    if (this == &other) return *this;
    if (other.heap_) {
      heap_ = std::move(other.heap_);
    } else {
      heap_.reset();
      std::memcpy(inline_, other.inline_, other.size_);
    }
    size_ = other.size_;
    cap_ = other.cap_;
    other.size_ = 0;
    other.cap_ = kInline;
    return *this;
  }
  Mutations(const Mutations&) = delete;
  Mutations& operator=(const Mutations&) = delete;

  void Put(std::string_view key, std::string_view value) {
    Reserve(1 + 4 + key.size() + 4 + value.size());
    AppendByte(kPut);
    AppendSized(key);
    AppendSized(value);
  }
  void Delete(std::string_view key) {
    Reserve(1 + 4 + key.size());
    AppendByte(kDelete);
    AppendSized(key);
  }
  bool empty() const { return size_ == 0; }
  size_t bytes() const { return size_; }
  // The encoded mutations (what a replication record carries), and the
  // same walk over such bytes received from elsewhere. Walking bytes that
  // are not a well-formed encoding returns false (and may have called f on
  // a prefix of them).
  std::string_view raw() const { return std::string_view(data(), size_); }
  template <typename F>
  static bool ForEachIn(std::string_view raw, F&& f) {
    const char* p = raw.data();
    const char* end = p + raw.size();
    while (p < end) {
      const char kind = *p++;
      if (kind != kPut && kind != kDelete) return false;
      std::string_view key, value;
      if (!ReadChecked(&p, end, &key)) return false;
      if (kind == kPut && !ReadChecked(&p, end, &value)) return false;
      f(kind == kPut, key, value);
    }
    return true;
  }

  // Calls f(is_put, key, value) for every mutation, in order (value empty
  // for a delete).
  template <typename F>
  void ForEach(F&& f) const {
    const char* p = data();
    const char* end = p + size_;
    while (p < end) {
      const char kind = *p++;
      std::string_view key = ReadSized(&p);
      std::string_view value;
      if (kind == kPut) value = ReadSized(&p);
      f(kind == kPut, key, value);
    }
  }

  // Appends every mutation, in order, to `batch`.
  void AppendTo(leveldb::WriteBatch* batch) const {
    const char* p = data();
    const char* end = p + size_;
    while (p < end) {
      const char kind = *p++;
      std::string_view key = ReadSized(&p);
      if (kind == kPut) {
        std::string_view value = ReadSized(&p);
        batch->Put(leveldb::Slice(key.data(), key.size()),
                   leveldb::Slice(value.data(), value.size()));
      } else {
        batch->Delete(leveldb::Slice(key.data(), key.size()));
      }
    }
  }

 private:
  static constexpr char kPut = 1;
  static constexpr char kDelete = 2;

  const char* data() const { return heap_ ? heap_.get() : inline_; }
  char* data() { return heap_ ? heap_.get() : inline_; }

  void Reserve(size_t more) {
    if (size_ + more <= cap_) return;
    size_t cap = std::max<size_t>(size_t{cap_} * 2, size_ + more);
    auto grown = std::make_unique<char[]>(cap);
    std::memcpy(grown.get(), data(), size_);
    heap_ = std::move(grown);
    cap_ = static_cast<uint32_t>(cap);
  }
  void AppendByte(char c) { data()[size_++] = c; }
  void AppendSized(std::string_view s) {
    const uint32_t n = static_cast<uint32_t>(s.size());
    std::memcpy(data() + size_, &n, 4);
    if (n > 0) std::memcpy(data() + size_ + 4, s.data(), n);
    size_ += 4 + n;
  }
  static bool ReadChecked(const char** p, const char* end, std::string_view* out) {
    if (end - *p < 4) return false;
    uint32_t n;
    std::memcpy(&n, *p, 4);
    if (static_cast<size_t>(end - *p - 4) < n) return false;
    *out = std::string_view(*p + 4, n);
    *p += 4 + n;
    return true;
  }
  static std::string_view ReadSized(const char** p) {
    uint32_t n;
    std::memcpy(&n, *p, 4);
    std::string_view s(*p + 4, n);
    *p += 4 + n;
    return s;
  }

  std::unique_ptr<char[]> heap_;  // set once the ops outgrow inline_
  uint32_t size_ = 0;
  uint32_t cap_ = kInline;
  char inline_[kInline];
};

}  // namespace todo::store
