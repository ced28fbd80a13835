#include "node/store/pread_env.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace todo::store {
namespace {

leveldb::Status IoError(const std::string& context, int err) {
  if (err == ENOENT) return leveldb::Status::NotFound(context, std::strerror(err));
  return leveldb::Status::IOError(context, std::strerror(err));
}

class PreadFile : public leveldb::RandomAccessFile {
 public:
  PreadFile(std::string name, int fd) : name_(std::move(name)), fd_(fd) {}
  ~PreadFile() override { close(fd_); }

  // Thread-safe (pread has no file position), as LevelDB requires.
  leveldb::Status Read(uint64_t offset, size_t n, leveldb::Slice* result,
                       char* scratch) const override {
    size_t got = 0;
    while (got < n) {
      const ssize_t r = pread(fd_, scratch + got, n - got, static_cast<off_t>(offset + got));
      if (r < 0) {
        if (errno == EINTR) continue;
        *result = leveldb::Slice(scratch, 0);
        return IoError(name_, errno);
      }
      if (r == 0) break;  // end of file: a short read, as LevelDB's own Env
      got += static_cast<size_t>(r);
    }
    *result = leveldb::Slice(scratch, got);
    return leveldb::Status::OK();
  }

 private:
  const std::string name_;
  const int fd_;
};

}  // namespace

leveldb::Status PreadEnv::NewRandomAccessFile(const std::string& fname,
                                              leveldb::RandomAccessFile** result) {
  *result = nullptr;
  const int fd = open(fname.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return IoError(fname, errno);
  *result = new PreadFile(fname, fd);
  return leveldb::Status::OK();
}

}  // namespace todo::store
