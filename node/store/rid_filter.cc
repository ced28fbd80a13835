#include "node/store/rid_filter.h"

#include <sys/mman.h>

#include <functional>
#include <new>

#include "common/storage_format.h"

namespace todo::store {
namespace {

__extension__ typedef unsigned __int128 Uint128;  // GCC/Clang; -Wpedantic-clean

// splitmix64's finalizer: spreads every input bit over the output.
uint64_t Mix(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

// The bit a hash sets in word i of its half block: six bits of a second mix.
uint64_t Bit(uint64_t hash, size_t i) {
  const uint64_t bits = Mix(hash ^ 0x9e3779b97f4a7c15ULL);
  return uint64_t{1} << ((bits >> (6 * i)) & 63);
}

constexpr size_t kHalf = 4;  // words of one generation in a block

}  // namespace

RidFilter::RidFilter(size_t bytes) : blocks_(bytes / (kWords * sizeof(uint64_t))) {
  if (blocks_ == 0) return;
  static_assert(Ref::required_alignment <= 4096);  // a mapping is page-aligned
  const size_t len = blocks_ * kWords * sizeof(Word);
  void* p = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw std::bad_alloc();
  bits_ = std::unique_ptr<Word[], Unmap>(static_cast<Word*>(p), Unmap{len});
}

void RidFilter::Unmap::operator()(Word* p) const { munmap(p, bytes); }

uint64_t RidFilter::Hash(std::string_view /*ns*/, std::string_view list, std::string_view rid) {
  // The record key's hash (its first half), so that the filter can be
  // filled from the keys on disk. `ns` is a function of the list.
  return storage::RidKeyHash(list, rid).h1;
}

RidFilter::Word* RidFilter::Half(int generation, uint64_t hash) const {
  // Lemire's reduction of the high bits to [0, blocks_).
  const auto index =
      static_cast<size_t>((static_cast<Uint128>(hash) * static_cast<Uint128>(blocks_)) >> 64);
  return &bits_[index * kWords + static_cast<size_t>(generation) * kHalf];
}

bool RidFilter::Has(Word* half, uint64_t hash) {
  for (size_t i = 0; i < kHalf; ++i) {
    if ((Ref(half[i]).load(std::memory_order_relaxed) & Bit(hash, i)) == 0) return false;
  }
  return true;
}

void RidFilter::Insert(uint64_t hash) {
  if (blocks_ == 0) return;
  Word* half = Half(current_.load(std::memory_order_acquire), hash);
  for (size_t i = 0; i < kHalf; ++i) {
    const uint64_t bit = Bit(hash, i);
    // Most inserts find their bits unset; skip the locked op when set.
    if ((Ref(half[i]).load(std::memory_order_relaxed) & bit) == 0) {
      Ref(half[i]).fetch_or(bit, std::memory_order_relaxed);
    }
  }
  inserted_.fetch_add(1, std::memory_order_relaxed);
}

bool RidFilter::MayContain(uint64_t hash) const {
  if (!complete()) return true;
  const int current = current_.load(std::memory_order_acquire);
  if (Has(Half(current, hash), hash) || Has(Half(1 - current, hash), hash)) return true;
  skipped_.fetch_add(1, std::memory_order_relaxed);
  return false;
}

void RidFilter::Rotate() {
  if (blocks_ == 0) return;
  const int previous = 1 - current_.load(std::memory_order_relaxed);
  for (size_t b = 0; b < blocks_; ++b) {
    for (size_t i = 0; i < kHalf; ++i) {
      // Only words with a bit set are written: a page no rid has touched
      // stays unallocated (reading it maps the shared zero page).
      Ref word(bits_[b * kWords + static_cast<size_t>(previous) * kHalf + i]);
      if (word.load(std::memory_order_relaxed) != 0) word.store(0, std::memory_order_relaxed);
    }
  }
  current_.store(previous, std::memory_order_release);
}

}  // namespace todo::store
