// RidFilter: a fixed-size in-memory Bloom filter of the (list, rid) pairs
// that may have a rid record, in front of Store::ReadRid's point lookup.
//
// Why: almost every write with a rid is a first request, whose lookup finds
// nothing. In LevelDB such a lookup is not cheap even with table bloom
// filters: it searches the memtables and consults every level-0 table and
// one table per deeper level, and each lookup that consults two tables
// charges a "seek" to the first; a table that runs out of seeks is
// compacted. Measured on the default benchmark with a rid on every write
// (tests/bench/compare), the lookups cost ~3.5 us of worker CPU per write
// and tripled the compaction thread's CPU. Answering "no record" from
// memory avoids both; a "maybe" (a record, or a false positive) still
// looks up the disk, so the filter never changes an answer, only its cost.
//
// Design: a split-block Bloom filter with two generations: a pair is
// inserted into the current one and looked for in both. Every `ttl` the
// sweeper rotates them: the previous generation, whose pairs are all older
// than the TTL (past which a retry may be applied anew anyway), is cleared
// and becomes the current one. A pair's bits in both generations share one
// 64-byte block (four words each; one bit set per word), so a lookup costs
// one cache miss. About 2% false positives at 10 bits a pair. Memory is
// fixed (`bytes`) whatever the write rate; past about bytes x 0.4 pairs a
// generation, false positives grow and more writes look up the disk, as
// without a filter.
//
// Completeness: "no" can be trusted only once every record already on disk
// is in the filter. Until MarkComplete() (the sweeper calls it after
// inserting the records it finds on disk when the node starts),
// MayContain answers "maybe" for everything. Records that reach the disk
// any other way are inserted by whoever writes them: in the replicated mode
// a backup's shard writer inserts each rid record it applies, from its
// primary's records and from snapshot chunks (ShardReplication), so that
// the filter is complete there too once the node's own records are in
// (the sweeper scans every partition's) and it can lead a partition with
// the same cheap first writes.
//
// Thread-safety: Insert, MayContain and the counters from any thread (the
// bits are relaxed atomics: a pair is inserted and looked for by its list's
// actor, one thread at a time); Rotate and MarkComplete from one thread
// (the sweeper's).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

namespace todo::store {

class RidFilter {
 public:
  // `bytes` for both generations (rounded down to 64-byte blocks); 0: no
  // filter (MayContain always "maybe").
  explicit RidFilter(size_t bytes);

  // The filter's key for a record: the first half of its key's hash
  // (storage::RidKeyHash of the list and rid; the partition prefix `ns`
  // follows from the list).
  static uint64_t Hash(std::string_view ns, std::string_view list, std::string_view rid);

  void Insert(uint64_t hash);
  // False only if the pair surely has no record (the filter is complete and
  // neither generation has it).
  bool MayContain(uint64_t hash) const;

  // Sweeper thread. Clears the previous generation and makes it current.
  void Rotate();
  void MarkComplete() { complete_.store(enabled(), std::memory_order_release); }
  bool complete() const { return complete_.load(std::memory_order_acquire); }
  bool enabled() const { return blocks_ > 0; }
  size_t bytes() const { return blocks_ * 64; }

  // Lookups answered "no record" without the disk, and inserts, since start.
  uint64_t skipped() const { return skipped_.load(std::memory_order_relaxed); }
  uint64_t inserted() const { return inserted_.load(std::memory_order_relaxed); }

 private:
  // The bits are plain words in an anonymous mapping of their own, read and
  // written through std::atomic_ref: a filter of many MiB takes no memory
  // until rids touch its pages (the kernel's zero pages until then; calloc
  // promises no such thing: an allocator may zero the block by writing it). An array of std::atomic
  // was written word by word when made, and under the thread sanitizer each
  // of those writes was an instrumented access: ~0.2 s per store opened.
  using Word = uint64_t;
  using Ref = std::atomic_ref<Word>;
  static constexpr size_t kWords = 8;  // a block: 64 bytes, 4 words a generation
  struct Unmap {
    size_t bytes;  // (no initializer: one would make it not default-constructible here, CWG 1397)
    void operator()(Word* p) const;
  };

  // The four words of `generation` in the pair's block.
  Word* Half(int generation, uint64_t hash) const;
  static bool Has(Word* half, uint64_t hash);

  const size_t blocks_;
  std::unique_ptr<Word[], Unmap> bits_;
  std::atomic<int> current_{0};
  std::atomic<bool> complete_{false};
  mutable std::atomic<uint64_t> skipped_{0};
  std::atomic<uint64_t> inserted_{0};
};

}  // namespace todo::store
