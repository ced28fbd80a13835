#include "tests/bench/workload.h"

#include <charconv>

namespace todo::bench {
namespace {

uint64_t SplitMix64(uint64_t* state) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9;
  z = (z ^ (z >> 27)) * 0x94d049bb133111eb;
  return z ^ (z >> 31);
}

__extension__ typedef unsigned __int128 Uint128;  // GCC/Clang; -Wpedantic-clean

uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

Date NextDay(Date d) {
  int y = d.year(), m = d.month(), day = d.day() + 1;
  if (!IsValidDate(y, m, day)) {
    day = 1;
    if (++m > 12) {
      m = 1;
      ++y;
    }
  }
  return *MakeDate(y, m, day);
}

}  // namespace

std::string Mix::ToString() const {
  std::string s;
  for (BenchOp op : kLoadOps) {
    uint32_t w = weights[static_cast<int>(op)];
    if (w == 0) continue;
    if (!s.empty()) s += ',';
    s += BenchOpName(op);
    s += '=';
    s += std::to_string(w);
  }
  return s;
}

StatusOr<Mix> ParseMix(std::string_view text) {
  Mix mix;
  std::array<bool, kNumLoadOps> seen{};
  for (bool more = true; more;) {
    size_t comma = text.find(',');
    std::string_view item = text.substr(0, comma);
    more = comma != std::string_view::npos;
    if (more) text.remove_prefix(comma + 1);
    size_t eq = item.find('=');
    if (eq == std::string_view::npos) {
      return Status::BadRequest("--mix: '" + std::string(item) + "' is not op=weight");
    }
    std::string_view name = item.substr(0, eq), number = item.substr(eq + 1);
    int index = -1;
    for (BenchOp op : kLoadOps) {
      if (BenchOpName(op) == name) index = static_cast<int>(op);
    }
    if (index < 0) {
      return Status::BadRequest("--mix: unknown op '" + std::string(name) +
                                "' (ops: add, entries, entries_all, update, delete)");
    }
    if (seen[index]) return Status::BadRequest("--mix: op '" + std::string(name) + "' twice");
    seen[index] = true;
    uint32_t w = 0;
    auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), w);
    if (ec != std::errc() || end != number.data() + number.size() || number.empty() ||
        w > 1000000) {
      return Status::BadRequest("--mix: weight of '" + std::string(name) +
                                "' must be an integer 0..1000000");
    }
    mix.weights[index] = w;
    mix.total += w;
  }
  if (mix.total == 0) return Status::BadRequest("--mix: at least one op needs a weight > 0");
  return mix;
}

Rng::Rng(uint64_t seed) {
  uint64_t state = seed;
  for (uint64_t& word : s_) word = SplitMix64(&state);
}

uint64_t Rng::Next() {
  uint64_t result = Rotl(s_[1] * 5, 7) * 9;
  uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = Rotl(s_[3], 45);
  return result;
}

uint64_t Rng::Below(uint64_t n) {
  return static_cast<uint64_t>((static_cast<Uint128>(Next()) * n) >> 64);
}

Workload::Workload(WorkloadOptions options) : options_(std::move(options)) {
  name_ends_.reserve(options_.lists);
  for (uint32_t i = 0; i < options_.lists; ++i) {
    names_ += options_.list_prefix;
    names_ += std::to_string(i);
    name_ends_.push_back(static_cast<uint32_t>(names_.size()));
  }
  dates_.reserve(options_.dates);
  Date d = *MakeDate(2026, 1, 1);
  for (uint32_t i = 0; i < options_.dates; ++i, d = NextDay(d)) dates_.push_back(d);
  static constexpr std::string_view kAlphabet = "abcdefghijklmnopqrstuvwxyz0123456789 ";
  Rng rng(0x7469746c65);  // fixed: titles don't depend on --seed
  title_pool_.resize(options_.title_bytes + kTitleOffsets);
  for (char& c : title_pool_) c = kAlphabet[rng.Below(kAlphabet.size())];
}

std::string_view Workload::ListName(uint32_t index) const {
  uint32_t begin = index == 0 ? 0 : name_ends_[index - 1];
  return std::string_view(names_).substr(begin, name_ends_[index] - begin);
}

std::string_view Workload::Title(uint32_t variant) const {
  return std::string_view(title_pool_).substr(variant % kTitleOffsets, options_.title_bytes);
}

BenchRequest Workload::PreloadRequest(uint32_t list, uint32_t k) const {
  BenchRequest r;
  r.op = BenchOp::kAdd;
  r.list = ListName(list);
  r.date = dates_[(list + k) % dates_.size()];
  r.title = Title(k);
  return r;
}

BenchRequest Workload::TouchRequest(uint32_t list) const {
  BenchRequest r;
  r.op = BenchOp::kEntriesAll;
  r.list = ListName(list);
  return r;
}

RequestStream::RequestStream(const Workload& workload, uint64_t seed, uint32_t connection)
    : workload_(workload),
      rng_(seed * 0x9e3779b97f4a7c15 ^ (uint64_t{connection} + 1) * 0xd1b54a32d192ed03),
      track_adds_(workload.options().mix.Has(BenchOp::kUpdate) ||
                  workload.options().mix.Has(BenchOp::kDelete)) {
  if (track_adds_) adds_.assign(workload.options().lists, 0);
}

BenchRequest RequestStream::Next() {
  const WorkloadOptions& o = workload_.options();
  uint64_t pick = rng_.Below(o.mix.total);
  BenchOp op = kLoadOps.back();
  for (BenchOp candidate : kLoadOps) {
    uint32_t w = o.mix.weights[static_cast<int>(candidate)];
    if (pick < w) {
      op = candidate;
      break;
    }
    pick -= w;
  }
  BenchRequest r;
  r.op = op;
  uint32_t list = static_cast<uint32_t>(rng_.Below(o.lists));
  r.list = workload_.ListName(list);
  auto next_date = [&] { return workload_.DateAt(static_cast<uint32_t>(rng_.Below(o.dates))); };
  auto next_title = [&] {
    return workload_.Title(static_cast<uint32_t>(rng_.Below(Workload::kTitleOffsets)));
  };
  auto next_entry_id = [&] {
    uint64_t known = uint64_t{o.preload} + (track_adds_ ? adds_[list] : 0);
    return known == 0 ? 1 : 1 + rng_.Below(known);
  };
  switch (op) {
    case BenchOp::kAdd:
      r.date = next_date();
      r.title = next_title();
      if (track_adds_) ++adds_[list];
      break;
    case BenchOp::kEntries:
      r.date = next_date();
      break;
    case BenchOp::kEntriesAll:
    case BenchOp::kPing:
      break;
    case BenchOp::kUpdate:
      r.entry_id = next_entry_id();
      r.date = next_date();
      r.title = next_title();
      break;
    case BenchOp::kDelete:
      r.entry_id = next_entry_id();
      break;
  }
  return r;
}

}  // namespace todo::bench
