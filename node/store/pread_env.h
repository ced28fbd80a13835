// PreadEnv: a LevelDB Env that reads tables with pread(2) instead of mmap.
//
// Why: LevelDB's default Env maps up to 1,000 table files into memory for
// reading. Their pages then count in the node's RSS (~90 MiB after a flood
// over 20,000 lists here), though the process doesn't hold them: RSS would
// follow the data on disk instead of the node's own bounds (the list cache
// and LevelDB's block cache, --cache-mb). Read through pread, a table costs
// its file descriptor (the table cache keeps max_open_files of them) and
// the block cache; the kernel's page cache still keeps hot blocks.
// Everything else is the wrapped Env's.
#pragma once

#include <leveldb/env.h>

namespace todo::store {

class PreadEnv : public leveldb::EnvWrapper {
 public:
  explicit PreadEnv(leveldb::Env* base) : EnvWrapper(base) {}

  leveldb::Status NewRandomAccessFile(const std::string& fname,
                                      leveldb::RandomAccessFile** result) override;
};

}  // namespace todo::store
