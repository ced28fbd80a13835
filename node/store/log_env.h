// LogEnv: LevelDB's write-ahead logs written over pre-zeroed files.
//
// Why: every group commit ends in an fdatasync of the shard's log. After an
// append, ext4 must commit its journal as well (the file's size changed), so
// each sync is two device flushes, and concurrent syncs of several processes
// queue on the one journal. Over blocks that are already written (zeros),
// the same sync flushes the data only: 123-132 µs instead of 192-219 µs for a
// 2 KB write here, 225 instead of 336 µs with three writers at once
// (docs/performance.md, "The replicated node's writer").
//
// How: a new log ("NNNNNN.log") is a file of `prealloc_bytes` zeros, synced
// with its size and directory entry before the first record goes in; records
// then overwrite the zeros from the start (past the end the file grows as
// before). A background thread keeps one spare zero-filled file per shard
// directory ready, so a memtable switch renames it into place instead of
// writing megabytes of zeros on the writer's thread.
//
// Not on tmpfs (a sync there costs nothing anyway), and not when the disk
// has less than 16 logs' worth of space free: then, or on any error while
// preparing one, a log is LevelDB's own, appended, as before.
//
// A log is read back (at open, to replay it) up to its logical end
// (LogicalLogEnd): LevelDB's reader would take a record torn by a crash and
// followed by zeros for a checksum mismatch, and with paranoid_checks refuse
// the shard, where the same torn record at the end of an appended file is
// dropped as a short read. So the reader is shown the file cut before a torn
// or missing record whose rest is all zeros; a bad record with anything
// written after it is left for LevelDB to report, as before.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "node/store/pread_env.h"

namespace todo::store {

// The length of a LevelDB log's records in `log`: the offset of the first
// physical record that is missing (a zero header) or invalid (an unknown
// type, a length past its block, a CRC32C mismatch) when every byte from
// that record's declared end to the end of `log` is zero; log.size() if
// every record is valid, or if something was written after a bad one.
size_t LogicalLogEnd(std::string_view log);

// The CRC32C (Castagnoli) of `data`, as LevelDB's crc32c::Value.
uint32_t Crc32c(std::string_view data);

class LogEnv : public PreadEnv {
 public:
  // prealloc_bytes 0: logs are LevelDB's own (appended).
  LogEnv(leveldb::Env* base, size_t prealloc_bytes);
  ~LogEnv() override;
  LogEnv(const LogEnv&) = delete;
  LogEnv& operator=(const LogEnv&) = delete;

  leveldb::Status NewWritableFile(const std::string& fname,
                                  leveldb::WritableFile** result) override;
  leveldb::Status NewSequentialFile(const std::string& fname,
                                    leveldb::SequentialFile** result) override;

  // The spare's name in a directory (not a name LevelDB uses or removes).
  static std::string SpareName(const std::string& dir);

 private:
  // Creates `path` as prealloc_bytes_ zeros, synced; false on an I/O error.
  bool MakeZeroed(const std::string& path) const;
  void SpareLoop();

  const size_t prealloc_bytes_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> wanted_;    // directories that need a spare (each once)
  std::map<std::string, bool> ready_;  // directory -> its spare is ready
  bool stopping_ = false;
  std::thread spare_thread_;
};

}  // namespace todo::store
