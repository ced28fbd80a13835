// Rendezvous (highest random weight) hashing: which node owns a list, and
// which local shard holds it. Pure; shared by routers, nodes and tools.
//
// The hash, so other tools can compute owners (see PROTOCOL.md):
//   fnv1a64(bytes)  = FNV-1a 64-bit (offset 0xcbf29ce484222325, prime 0x100000001b3)
//   mix64(x)        = the splitmix64 finalizer:
//                       x ^= x >> 30; x *= 0xbf58476d1ce4e5b9;
//                       x ^= x >> 27; x *= 0x94d049bb133111eb; x ^= x >> 31
//   score(node, list) = mix64(fnv1a64(node) ^ mix64(fnv1a64(list)))
//   owner(list)     = the node with the highest score; on a tie, the
//                     smallest name (bytewise).
//   shard(list, n)  = mix64(fnv1a64(list) ^ 0x5bd1e9955bd1e995) % n
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace todo {

uint64_t Fnv1a64(std::string_view bytes);
uint64_t Mix64(uint64_t x);
uint64_t RendezvousScore(std::string_view node, std::string_view list);

// The shard (0..shards-1) of a list inside one node's store.
uint32_t ShardOf(std::string_view list, uint32_t shards);

// A fixed set of node names, with their hashes precomputed. Immutable and so
// safe to share between threads.
class Rendezvous {
 public:
  explicit Rendezvous(std::vector<std::string> nodes);

  // Index into nodes() of the owner of `list`; requires !nodes().empty().
  size_t Owner(std::string_view list) const;
  const std::vector<std::string>& nodes() const { return nodes_; }

 private:
  std::vector<std::string> nodes_;
  std::vector<uint64_t> node_hashes_;
};

}  // namespace todo
