#include "common/rendezvous.h"

namespace todo {

uint64_t Fnv1a64(std::string_view bytes) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

uint64_t Mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

uint64_t RendezvousScore(std::string_view node, std::string_view list) {
  return Mix64(Fnv1a64(node) ^ Mix64(Fnv1a64(list)));
}

uint32_t ShardOf(std::string_view list, uint32_t shards) {
  return static_cast<uint32_t>(Mix64(Fnv1a64(list) ^ 0x5bd1e9955bd1e995ULL) % shards);
}

Rendezvous::Rendezvous(std::vector<std::string> nodes) : nodes_(std::move(nodes)) {
  node_hashes_.reserve(nodes_.size());
  for (const auto& n : nodes_) node_hashes_.push_back(Fnv1a64(n));
}

size_t Rendezvous::Owner(std::string_view list) const {
  uint64_t lh = Mix64(Fnv1a64(list));
  size_t best = 0;
  uint64_t best_score = 0;
  for (size_t i = 0; i < nodes_.size(); ++i) {
    uint64_t s = Mix64(node_hashes_[i] ^ lh);
    if (i == 0 || s > best_score || (s == best_score && nodes_[i] < nodes_[best])) {
      best = i;
      best_score = s;
    }
  }
  return best;
}

}  // namespace todo
