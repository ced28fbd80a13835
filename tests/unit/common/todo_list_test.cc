#include "common/todo_list.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <string>
#include <vector>

namespace todo {
namespace {

Date D(const char* s) { return *ParseDate(s); }

std::vector<uint64_t> Ids(const std::vector<EntryRef>& entries) {
  std::vector<uint64_t> ids;
  for (const EntryRef& e : entries) ids.push_back(e.id);
  return ids;
}

TEST(TodoListTest, NewListIsEmpty) {
  TodoList list;
  EXPECT_TRUE(list.empty());
  EXPECT_EQ(list.size(), 0u);
  EXPECT_EQ(list.next_id(), 1u);
  EXPECT_TRUE(list.Entries().empty());
  EXPECT_TRUE(list.EntriesOn(D("2026-01-01")).empty());
  EXPECT_FALSE(list.Find(1));
}

TEST(TodoListTest, IdsStartAtOneAndCount) {
  TodoList list;
  for (uint64_t i = 1; i <= 5; ++i) {
    const EntryRef e = list.Add(D("2026-01-01"), "t" + std::to_string(i));
    EXPECT_EQ(e.id, i);
    EXPECT_EQ(e.title, "t" + std::to_string(i));
    EXPECT_EQ(e.date, D("2026-01-01"));
    EXPECT_EQ(list.next_id(), i + 1);
  }
  EXPECT_EQ(list.size(), 5u);
  EXPECT_EQ(Ids(list.Entries()), (std::vector<uint64_t>{1, 2, 3, 4, 5}));
}

TEST(TodoListTest, IdsAreNeverReusedAfterDelete) {
  TodoList list;
  list.Add(D("2026-01-01"), "a");
  list.Add(D("2026-01-01"), "b");
  EXPECT_TRUE(list.Delete(2));  // the highest id
  EXPECT_EQ(list.next_id(), 3u);
  EXPECT_EQ(list.Add(D("2026-01-01"), "c").id, 3u);
  EXPECT_TRUE(list.Delete(1));
  EXPECT_TRUE(list.Delete(3));
  EXPECT_TRUE(list.empty());
  EXPECT_EQ(list.Add(D("2026-01-01"), "d").id, 4u);
}

TEST(TodoListTest, EntriesOnReturnsOnlyThatDateAscendingById) {
  TodoList list;
  list.Add(D("2026-01-02"), "a");  // 1
  list.Add(D("2026-01-01"), "b");  // 2
  list.Add(D("2026-01-02"), "c");  // 3
  list.Add(D("2025-01-02"), "d");  // 4
  list.Add(D("2026-01-02"), "e");  // 5
  EXPECT_EQ(Ids(list.EntriesOn(D("2026-01-02"))), (std::vector<uint64_t>{1, 3, 5}));
  EXPECT_EQ(Ids(list.EntriesOn(D("2026-01-01"))), (std::vector<uint64_t>{2}));
  EXPECT_EQ(Ids(list.EntriesOn(D("2025-01-02"))), (std::vector<uint64_t>{4}));
  EXPECT_TRUE(list.EntriesOn(D("2026-01-03")).empty());
  for (const EntryRef& e : list.EntriesOn(D("2026-01-02"))) EXPECT_EQ(e.date, D("2026-01-02"));
  EXPECT_EQ(Ids(list.Entries()), (std::vector<uint64_t>{1, 2, 3, 4, 5}));
}

TEST(TodoListTest, UpdateDateMovesEntryBetweenBuckets) {
  TodoList list;
  list.Add(D("2026-01-01"), "a");  // 1
  list.Add(D("2026-01-02"), "b");  // 2
  list.Add(D("2026-01-01"), "c");  // 3
  auto e = list.Update(1, D("2026-01-02"), std::nullopt);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(*e, (Entry{1, D("2026-01-02"), "a"}));
  EXPECT_EQ(Ids(list.EntriesOn(D("2026-01-01"))), (std::vector<uint64_t>{3}));
  // Moved into an existing bucket, it takes its place by id, not at the end.
  EXPECT_EQ(Ids(list.EntriesOn(D("2026-01-02"))), (std::vector<uint64_t>{1, 2}));
  // Moving the last entry out of a bucket empties it.
  list.Update(3, D("2026-01-05"), std::nullopt);
  EXPECT_TRUE(list.EntriesOn(D("2026-01-01")).empty());
  EXPECT_EQ(Ids(list.EntriesOn(D("2026-01-05"))), (std::vector<uint64_t>{3}));
  EXPECT_EQ(list.Find(3)->date, D("2026-01-05"));
}

TEST(TodoListTest, UpdateToSameDateKeepsOneIndexEntry) {
  TodoList list;
  list.Add(D("2026-01-01"), "a");
  list.Add(D("2026-01-01"), "b");
  list.Update(1, D("2026-01-01"), std::string_view("a2"));
  EXPECT_EQ(Ids(list.EntriesOn(D("2026-01-01"))), (std::vector<uint64_t>{1, 2}));
  EXPECT_EQ(list.Find(1)->title, "a2");
}

TEST(TodoListTest, UpdateTitleOnly) {
  TodoList list;
  list.Add(D("2026-01-01"), "old");
  auto e = list.Update(1, std::nullopt, std::string_view("new title"));
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(*e, (Entry{1, D("2026-01-01"), "new title"}));
  EXPECT_EQ(list.Find(1)->ToEntry(), *e);
  EXPECT_EQ(Ids(list.EntriesOn(D("2026-01-01"))), (std::vector<uint64_t>{1}));
}

TEST(TodoListTest, UpdateBoth) {
  TodoList list;
  list.Add(D("2026-01-01"), "old");
  auto e = list.Update(1, D("2027-07-07"), std::string_view("new"));
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(*e, (Entry{1, D("2027-07-07"), "new"}));
  EXPECT_TRUE(list.EntriesOn(D("2026-01-01")).empty());
}

TEST(TodoListTest, UpdateMissingIdChangesNothing) {
  TodoList list;
  list.Add(D("2026-01-01"), "a");
  list.Add(D("2026-01-02"), "b");
  list.Delete(2);
  auto before = list.Entries();
  std::vector<Entry> copy;
  for (const EntryRef& e : before) copy.push_back(e.ToEntry());
  for (uint64_t id : {uint64_t{0}, uint64_t{2}, uint64_t{3}, UINT64_MAX}) {
    EXPECT_FALSE(list.Update(id, D("2030-01-01"), std::string_view("x")).has_value()) << id;
  }
  std::vector<Entry> after;
  for (const EntryRef& e : list.Entries()) after.push_back(e.ToEntry());
  EXPECT_EQ(after, copy);
  EXPECT_EQ(list.next_id(), 3u);
  EXPECT_TRUE(list.EntriesOn(D("2030-01-01")).empty());
}

TEST(TodoListTest, DeleteReturnsWhetherThereWasOne) {
  TodoList list;
  list.Add(D("2026-01-01"), "a");
  list.Add(D("2026-01-01"), "b");
  EXPECT_FALSE(list.Delete(0));
  EXPECT_FALSE(list.Delete(3));
  EXPECT_TRUE(list.Delete(1));
  EXPECT_FALSE(list.Delete(1));
  EXPECT_FALSE(list.Find(1));
  EXPECT_EQ(Ids(list.EntriesOn(D("2026-01-01"))), (std::vector<uint64_t>{2}));
  EXPECT_TRUE(list.Delete(2));
  EXPECT_TRUE(list.EntriesOn(D("2026-01-01")).empty());
  EXPECT_TRUE(list.empty());
}

TEST(TodoListTest, TitlesAreCopied) {
  TodoList list;
  std::string title = "mutable";
  list.Add(D("2026-01-01"), title);
  title[0] = 'X';
  EXPECT_EQ(list.Find(1)->title, "mutable");
  std::string t2(std::string_view("with\0nul", 8));
  list.Update(1, std::nullopt, std::string_view(t2));
  EXPECT_EQ(list.Find(1)->title, t2);
}

TEST(TodoListTest, RestoreSortsAndIndexes) {
  std::vector<Entry> stored = {{7, D("2026-01-02"), "g"},
                               {2, D("2026-01-01"), "b"},
                               {5, D("2026-01-02"), "e"},
                               {3, D("2026-01-02"), "c"}};
  TodoList list = TodoList::Restore(stored, 8);
  EXPECT_EQ(list.size(), 4u);
  EXPECT_EQ(Ids(list.Entries()), (std::vector<uint64_t>{2, 3, 5, 7}));
  EXPECT_EQ(Ids(list.EntriesOn(D("2026-01-02"))), (std::vector<uint64_t>{3, 5, 7}));
  EXPECT_EQ(Ids(list.EntriesOn(D("2026-01-01"))), (std::vector<uint64_t>{2}));
  EXPECT_EQ(list.next_id(), 8u);
  EXPECT_EQ(*list.Find(5), (Entry{5, D("2026-01-02"), "e"}));
  EXPECT_EQ(list.Add(D("2026-01-02"), "h").id, 8u);
}

TEST(TodoListTest, RestoreKeepsHigherNextId) {
  // The highest entries were deleted before the restart: their ids stay used.
  TodoList list = TodoList::Restore({{1, D("2026-01-01"), "a"}}, 10);
  EXPECT_EQ(list.next_id(), 10u);
}

TEST(TodoListTest, RestoreRaisesNextIdAboveMaxId) {
  TodoList list = TodoList::Restore({{4, D("2026-01-01"), "a"}, {9, D("2026-01-01"), "b"}}, 3);
  EXPECT_EQ(list.next_id(), 10u);
  EXPECT_EQ(list.Add(D("2026-01-01"), "c").id, 10u);
  TodoList lost = TodoList::Restore({{9, D("2026-01-01"), "b"}}, 0);
  EXPECT_EQ(lost.next_id(), 10u);
  TodoList equal = TodoList::Restore({{9, D("2026-01-01"), "b"}}, 9);
  EXPECT_EQ(equal.next_id(), 10u);
}

TEST(TodoListTest, RestoreEmpty) {
  EXPECT_EQ(TodoList::Restore({}, 0).next_id(), 1u);
  EXPECT_EQ(TodoList::Restore({}, 1).next_id(), 1u);
  TodoList list = TodoList::Restore({}, 42);
  EXPECT_TRUE(list.empty());
  EXPECT_EQ(list.next_id(), 42u);
  EXPECT_EQ(list.Add(D("2026-01-01"), "a").id, 42u);
}

// A deliberately simple model: a map of entries and a counter; queries scan.
class ReferenceList {
 public:
  uint64_t Add(Date date, const std::string& title) {
    uint64_t id = next_id_++;
    entries_[id] = Entry{id, date, title};
    return id;
  }
  std::optional<Entry> Update(uint64_t id, std::optional<Date> date,
                              std::optional<std::string> title) {
    auto it = entries_.find(id);
    if (it == entries_.end()) return std::nullopt;
    if (date) it->second.date = *date;
    if (title) it->second.title = *title;
    return it->second;
  }
  bool Delete(uint64_t id) { return entries_.erase(id) == 1; }
  std::vector<Entry> All() const {
    std::vector<Entry> out;
    for (const auto& [id, e] : entries_) out.push_back(e);
    return out;
  }
  std::vector<Entry> On(Date date) const {
    std::vector<Entry> out;
    for (const auto& [id, e] : entries_) {
      if (e.date == date) out.push_back(e);
    }
    return out;
  }
  uint64_t next_id() const { return next_id_; }

 private:
  uint64_t next_id_ = 1;
  std::map<uint64_t, Entry> entries_;
};

std::vector<Entry> Copy(const std::vector<EntryRef>& entries) {
  std::vector<Entry> out;
  for (const EntryRef& e : entries) out.push_back(e.ToEntry());
  return out;
}

// "<prefix><n>" (built without operator+, which trips GCC 12's -Wrestrict).
std::string Numbered(char prefix, uint64_t n) {
  std::string s(1, prefix);
  s += std::to_string(n);
  return s;
}

// Random adds, updates, deletes, restores and reads against the model.
// `grow_steps`/`shrink_steps` alternate phases: adds weigh more in a growing
// phase and deletes in a shrinking one, so a long run takes a list across
// TodoList::kIndexFrom records both ways (the index is built, kept, and
// dropped by a compaction). Returns the most records the list reached.
size_t CheckAgainstModel(uint64_t seed, int rounds, int steps, int grow_steps, int shrink_steps) {
  std::mt19937_64 rng(seed);  // fixed seed: failures reproduce
  std::vector<Date> dates;
  for (const char* s : {"2026-01-01", "2026-01-02", "2026-02-28", "2024-02-29", "9999-12-31"}) {
    dates.push_back(D(s));
  }
  auto pick_date = [&] { return dates[rng() % dates.size()]; };
  size_t most = 0;
  for (int round = 0; round < rounds; ++round) {
    TodoList list;
    ReferenceList ref;
    for (int step = 0; step < steps; ++step) {
      const bool growing = step % (grow_steps + shrink_steps) < grow_steps;
      uint64_t any_id = rng() % (ref.next_id() + 2);  // sometimes missing ids
      if (!growing && rng() % 2 == 0) {
        // Shrinking: delete an id that exists, oldest first half the time.
        std::vector<Entry> all = ref.All();
        if (!all.empty()) any_id = all[rng() % 2 ? 0 : rng() % all.size()].id;
      }
      const int dice = static_cast<int>(rng() % 10);
      const int adds = growing ? 5 : 1;     // of 10
      const int deletes = growing ? 1 : 5;  // of 10
      if (dice < adds) {
        Date d = pick_date();
        std::string title = Numbered('t', rng() % 1000);
        const EntryRef e = list.Add(d, title);
        if (e.id != ref.Add(d, title)) return 0;
      } else if (dice < adds + deletes) {
        EXPECT_EQ(list.Delete(any_id), ref.Delete(any_id));
      } else if (dice == 7) {
        std::optional<Date> d;
        std::optional<std::string> t;
        if (rng() % 2) d = pick_date();
        if (rng() % 2) t = Numbered('u', rng() % 1000);
        std::optional<std::string_view> tv;
        if (t) tv = *t;
        EXPECT_EQ(list.Update(any_id, d, tv), ref.Update(any_id, d, t));
      } else if (dice == 8 && rng() % 8 == 0) {
        // Restart: restore from the entries in a shuffled order.
        std::vector<Entry> stored = ref.All();
        std::shuffle(stored.begin(), stored.end(), rng);
        list = TodoList::Restore(stored, ref.next_id());
      } else {
        Date d = pick_date();
        EXPECT_EQ(Copy(list.EntriesOn(d)), ref.On(d)) << "step " << step;
      }
      EXPECT_EQ(list.next_id(), ref.next_id());
      EXPECT_EQ(list.size(), ref.All().size());
      EXPECT_EQ(list.empty(), ref.All().empty());
      most = std::max(most, list.size());
      if (step % 16 == 0) {
        EXPECT_EQ(Copy(list.Entries()), ref.All());
      }
      if (::testing::Test::HasFailure()) return most;
    }
    for (Date d : dates) EXPECT_EQ(Copy(list.EntriesOn(d)), ref.On(d));
    EXPECT_EQ(Copy(list.Entries()), ref.All());
  }
  return most;
}

TEST(TodoListPropertyTest, MatchesReferenceModel) {
  // Small lists: EntriesOn reads the records.
  const size_t most = CheckAgainstModel(20260101, 20, 400, 200, 200);
  EXPECT_LT(most, TodoList::kIndexFrom);
}

TEST(TodoListPropertyTest, MatchesReferenceModelAcrossTheIndexThreshold) {
  // Grows past kIndexFrom (the per-date index is built and kept), shrinks
  // until compactions drop it, and grows again.
  const size_t most = CheckAgainstModel(20261128, 3, 6000, 1500, 1500);
  EXPECT_GE(most, 2 * TodoList::kIndexFrom);
}

TEST(TodoListTest, IndexedAndScannedListsAnswerTheSame) {
  // The same entries in a list below the index threshold and one above.
  TodoList big;
  for (size_t i = 0; i < TodoList::kIndexFrom; ++i) {
    big.Add(D(i % 3 == 0 ? "2026-03-01" : "2026-03-02"), "filler");
  }
  TodoList small;
  for (int i = 0; i < 30; ++i) {
    small.Add(D(i % 3 == 0 ? "2026-03-01" : "2026-03-02"), Numbered('x', i));
    big.Add(D(i % 3 == 0 ? "2026-03-01" : "2026-03-02"), Numbered('x', i));
  }
  auto titles_on = [](const TodoList& l, const char* date) {
    std::vector<std::string> out;
    for (const EntryRef& e : l.EntriesOn(D(date))) {
      if (e.title != "filler") out.emplace_back(e.title);
    }
    return out;
  };
  EXPECT_EQ(titles_on(small, "2026-03-01"), titles_on(big, "2026-03-01"));
  EXPECT_EQ(titles_on(small, "2026-03-02"), titles_on(big, "2026-03-02"));
  EXPECT_TRUE(big.EntriesOn(D("2026-03-03")).empty());
  EXPECT_TRUE(small.EntriesOn(D("2026-03-03")).empty());
  EXPECT_EQ(titles_on(small, "2026-03-01").size(), 10u);
}

}  // namespace
}  // namespace todo

namespace todo {
namespace {

TEST(TodoListBytesTest, GrowsWithEntriesAndTitles) {
  TodoList list;
  const size_t empty = list.ApproxBytes();
  Date d = *ParseDate("2026-01-01");
  list.Add(d, "short");
  const size_t one_short = list.ApproxBytes();
  EXPECT_GT(one_short, empty);
  list.Add(d, std::string(1000, 'x'));
  EXPECT_GE(list.ApproxBytes() - one_short, 1000u);  // the long title counts
}

TEST(TodoListBytesTest, DeletedEntriesAndOldTitlesAreCompactedAway) {
  TodoList list;
  Date d = *ParseDate("2026-01-01");
  for (int i = 0; i < 400; ++i)
    list.Add(Date{20260101u + static_cast<uint32_t>(i % 28)}, std::string(100, 't'));
  const size_t full = list.ApproxBytes();
  EXPECT_GT(full, 400u * 100);
  // Titles rewritten again and again: the old bytes don't pile up.
  for (int round = 0; round < 10; ++round) {
    for (uint64_t id = 1; id <= 400; ++id) {
      ASSERT_TRUE(list.Update(id, std::nullopt, std::string(100, static_cast<char>('a' + round))));
    }
  }
  EXPECT_LT(list.ApproxBytes(), 3 * full);
  // Most entries deleted: the records and titles shrink with them.
  for (uint64_t id = 1; id <= 380; ++id) ASSERT_TRUE(list.Delete(id));
  EXPECT_LT(list.ApproxBytes(), full / 4);
  // And the survivors are intact, in order, in the index.
  EXPECT_EQ(list.size(), 20u);
  auto all = list.Entries();
  ASSERT_EQ(all.size(), 20u);
  for (size_t i = 0; i < all.size(); ++i) {
    EXPECT_EQ(all[i].id, 381 + i);
    EXPECT_EQ(all[i].title, std::string(100, 'j'));
    EXPECT_EQ(list.Find(all[i].id)->date, all[i].date);
  }
  size_t on_dates = 0;
  for (uint32_t day = 0; day < 28; ++day) on_dates += list.EntriesOn(Date{20260101u + day}).size();
  EXPECT_EQ(on_dates, 20u);
  EXPECT_EQ(list.Add(d, "next").id, 401u);
}

TEST(TodoListBytesTest, CopiesAndRestoresCountAboutTheSame) {
  TodoList list;
  for (int i = 0; i < 100; ++i) {
    list.Add(*ParseDate("2026-01-01"), std::string(static_cast<size_t>(i), 't'));
  }
  TodoList copy(list);
  std::vector<Entry> entries;
  for (const EntryRef& e : list.Entries()) entries.push_back(e.ToEntry());
  TodoList restored = TodoList::Restore(entries, list.next_id());
  // The same data; only the vectors' and the titles' spare room differ (an
  // exact-size copy holds at least half of what the grown original does).
  for (const TodoList* other : {&copy, &restored}) {
    EXPECT_LE(other->ApproxBytes(), list.ApproxBytes());
    EXPECT_GE(other->ApproxBytes() * 2, list.ApproxBytes());
  }
  // 100 entries with titles of 0..99 bytes: at least the records and titles.
  EXPECT_GT(list.ApproxBytes(), 100u * 24 + 4950);
}

}  // namespace
}  // namespace todo
