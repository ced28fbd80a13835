// TableCheck: which table files of a shard are damaged, once a read or a
// compaction reported corruption.
//
// Why: reads verify block checksums (ReadOptions::verify_checksums), but
// LevelDB's "Corruption: block checksum mismatch" names no file. The store
// answers the read `internal` at once, naming the shard; this finds the
// file(s) so the log, and later error messages, can name them too.
//
// Design: one background thread, started by the first Request(). A
// requested shard is checked once per process (damage does not heal): every
// table file (*.ldb, *.sst) in its directory is opened on its own
// (leveldb::Table, footer and index verified) and read to the end with
// checksums verified. Each damaged file is logged at error level. A table
// deleted meanwhile (a compaction) is skipped. The thread only reads the
// files; it never touches the open database.
// Thread-safety: every method may be called from any thread.
#pragma once

#include <leveldb/env.h>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace todo::store {

class TableCheck {
 public:
  // `env` must outlive the checker.
  explicit TableCheck(leveldb::Env* env);
  ~TableCheck();  // stops (an unfinished check is abandoned) and joins
  TableCheck(const TableCheck&) = delete;
  TableCheck& operator=(const TableCheck&) = delete;

  // Schedules a check of shard `shard`, whose LevelDB directory is `dir`,
  // unless it was requested before.
  void Request(uint32_t shard, const std::string& dir);

  // What the check of `shard` found: "" while it runs (or if it was never
  // requested), then "damaged table(s): FILE (why), ..." or "no damaged
  // table found".
  std::string Findings(uint32_t shard) const;

  // Checks the tables of `dir` now, on the calling thread: each damaged
  // file with its error.
  static std::vector<std::pair<std::string, std::string>> CheckDir(leveldb::Env* env,
                                                                   const std::string& dir);

 private:
  void Loop();

  leveldb::Env* const env_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::pair<uint32_t, std::string>> queue_;  // guarded by mu_
  std::map<uint32_t, std::string> findings_;            // guarded by mu_; "" while pending
  bool stopping_ = false;                               // guarded by mu_
  std::thread thread_;                                  // started by the first Request()
};

}  // namespace todo::store
