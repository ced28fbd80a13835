#include "node/store/log_env.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <spdlog/spdlog.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <utility>

namespace todo::store {
namespace {

constexpr size_t kBlockSize = 32768;  // LevelDB's log block
constexpr size_t kHeaderSize = 7;     // crc (4) | length (2) | type (1)
constexpr int kMaxRecordType = 4;     // full, first, middle, last
constexpr uint32_t kMaskDelta = 0xa282ead8u;
constexpr size_t kWriteBuffer = 64 << 10;

std::array<uint32_t, 256> MakeCrcTable() {
  std::array<uint32_t, 256> t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82f63b78u : c >> 1;
    t[i] = c;
  }
  return t;
}

uint32_t Unmask(uint32_t masked) {
  const uint32_t rot = masked - kMaskDelta;
  return (rot >> 17) | (rot << 15);
}

uint32_t Fixed32(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return uint32_t{u[0]} | (uint32_t{u[1]} << 8) | (uint32_t{u[2]} << 16) | (uint32_t{u[3]} << 24);
}

// "NNNNNN.log": a write-ahead log (LevelDB's LogFileName).
bool IsLogFile(const std::string& fname) {
  const size_t slash = fname.rfind('/');
  const std::string_view base =
      std::string_view(fname).substr(slash == std::string::npos ? 0 : slash + 1);
  if (base.size() <= 4 || base.substr(base.size() - 4) != ".log") return false;
  return std::all_of(base.begin(), base.end() - 4, [](char c) { return c >= '0' && c <= '9'; });
}

std::string DirOf(const std::string& fname) {
  const size_t slash = fname.rfind('/');
  return slash == std::string::npos ? std::string(".") : fname.substr(0, slash);
}

bool SyncDir(const std::string& dir) {
  const int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool ok = fsync(fd) == 0;
  close(fd);
  return ok;
}

leveldb::Status IoError(const std::string& context, int err) {
  return leveldb::Status::IOError(context, std::strerror(err));
}

// Writes over a pre-zeroed file from its start (LevelDB's own writable file
// appends to an empty one); buffered as LevelDB's.
class ZeroedLogFile : public leveldb::WritableFile {
 public:
  ZeroedLogFile(std::string name, int fd) : name_(std::move(name)), fd_(fd) {}
  ~ZeroedLogFile() override {
    if (fd_ >= 0) Close();
  }

  leveldb::Status Append(const leveldb::Slice& data) override {
    buf_.append(data.data(), data.size());
    return buf_.size() >= kWriteBuffer ? WriteBuffer() : leveldb::Status::OK();
  }
  leveldb::Status Close() override {
    leveldb::Status s = WriteBuffer();
    if (fd_ >= 0 && close(fd_) != 0 && s.ok()) s = IoError(name_, errno);
    fd_ = -1;
    return s;
  }
  leveldb::Status Flush() override { return WriteBuffer(); }
  leveldb::Status Sync() override {
    leveldb::Status s = WriteBuffer();
    if (s.ok() && fdatasync(fd_) != 0) s = IoError(name_, errno);
    return s;
  }

 private:
  leveldb::Status WriteBuffer() {
    size_t done = 0;
    while (done < buf_.size()) {
      const ssize_t n = write(fd_, buf_.data() + done, buf_.size() - done);
      if (n < 0) {
        if (errno == EINTR) continue;
        return IoError(name_, errno);
      }
      done += static_cast<size_t>(n);
    }
    buf_.clear();
    return leveldb::Status::OK();
  }

  const std::string name_;
  int fd_;
  std::string buf_;
};

// A log as LevelDB's reader is to see it: held in memory, cut at its end.
class CutLogFile : public leveldb::SequentialFile {
 public:
  explicit CutLogFile(std::string data) : data_(std::move(data)) {}
  leveldb::Status Read(size_t n, leveldb::Slice* result, char* scratch) override {
    n = std::min(n, data_.size() - pos_);
    std::memcpy(scratch, data_.data() + pos_, n);
    pos_ += n;
    *result = leveldb::Slice(scratch, n);
    return leveldb::Status::OK();
  }
  leveldb::Status Skip(uint64_t n) override {
    pos_ += static_cast<size_t>(std::min<uint64_t>(n, data_.size() - pos_));
    return leveldb::Status::OK();
  }

 private:
  const std::string data_;
  size_t pos_ = 0;
};

}  // namespace

uint32_t Crc32c(std::string_view data) {
  static const std::array<uint32_t, 256> table = MakeCrcTable();
  uint32_t c = 0xffffffffu;
  for (char ch : data) c = table[(c ^ static_cast<uint8_t>(ch)) & 0xff] ^ (c >> 8);
  return ~c;
}

size_t LogicalLogEnd(std::string_view log) {
  const size_t n = log.size();
  const auto zeros_from = [&](size_t from) {
    return std::all_of(log.begin() + static_cast<ptrdiff_t>(std::min(from, n)), log.end(),
                       [](char c) { return c == 0; });
  };
  size_t pos = 0;
  while (pos < n) {
    const size_t left = kBlockSize - pos % kBlockSize;
    if (left < kHeaderSize) {  // the block's trailer: padding
      pos += left;
      continue;
    }
    if (n - pos < kHeaderSize) return pos;  // a header cut short by the file's end
    const char* h = log.data() + pos;
    const size_t len = static_cast<uint8_t>(h[4]) | (size_t{static_cast<uint8_t>(h[5])} << 8);
    const int type = static_cast<uint8_t>(h[6]);
    const bool fits = kHeaderSize + len <= left && pos + kHeaderSize + len <= n;
    const bool valid = fits && type >= 1 && type <= kMaxRecordType &&
                       Unmask(Fixed32(h)) == Crc32c(log.substr(pos + 6, 1 + len));
    if (!valid) {
      // Missing or torn if nothing was written after it.
      const size_t declared_end = pos + std::min(left, kHeaderSize + len);
      return zeros_from(declared_end) ? pos : n;
    }
    pos += kHeaderSize + len;
  }
  return n;
}

LogEnv::LogEnv(leveldb::Env* base, size_t prealloc_bytes)
    : PreadEnv(base), prealloc_bytes_(prealloc_bytes) {
  if (prealloc_bytes_ > 0) spare_thread_ = std::thread([this] { SpareLoop(); });
}

LogEnv::~LogEnv() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (spare_thread_.joinable()) spare_thread_.join();
}

std::string LogEnv::SpareName(const std::string& dir) { return dir + "/SPARE-LOG"; }

bool LogEnv::MakeZeroed(const std::string& path) const {
  static const std::string zeros(1 << 20, '\0');
  // Only where it pays and costs no availability: not on tmpfs (its syncs
  // cost nothing), and not on a disk with less than 16 logs' worth free
  // (the space goes to the data; the log is then appended as LevelDB's).
  struct statfs fs {};
  if (statfs(DirOf(path).c_str(), &fs) != 0 || fs.f_type == TMPFS_MAGIC ||
      static_cast<uint64_t>(fs.f_bavail) * static_cast<uint64_t>(fs.f_bsize) <
          16 * uint64_t{prealloc_bytes_}) {
    return false;
  }
  const int fd = open(path.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644);
  if (fd < 0) return false;
  bool ok = true;
  for (size_t done = 0; ok && done < prealloc_bytes_;) {
    const size_t chunk = std::min(zeros.size(), prealloc_bytes_ - done);
    const ssize_t n = write(fd, zeros.data(), chunk);
    if (n < 0 && errno == EINTR) continue;
    ok = n > 0;
    if (ok) done += static_cast<size_t>(n);
  }
  // The zeros and the file's size durable: from now on a sync of what
  // overwrites them is the data's only.
  ok = ok && fdatasync(fd) == 0;
  close(fd);
  if (!ok) unlink(path.c_str());  // e.g. the disk filled up: give the space back
  return ok;
}

leveldb::Status LogEnv::NewWritableFile(const std::string& fname, leveldb::WritableFile** result) {
  if (prealloc_bytes_ == 0 || !IsLogFile(fname)) return target()->NewWritableFile(fname, result);
  *result = nullptr;
  const std::string dir = DirOf(fname);
  bool spare = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = ready_.find(dir);
    if (it != ready_.end() && it->second) {
      it->second = false;
      spare = true;
    }
  }
  bool ok = spare && rename(SpareName(dir).c_str(), fname.c_str()) == 0;
  if (!ok) ok = MakeZeroed(fname);  // the first log of a shard, or no spare yet
  // The new name durable before any record relies on it.
  ok = ok && SyncDir(dir);
  const int fd = ok ? open(fname.c_str(), O_WRONLY | O_CLOEXEC) : -1;
  {
    // Once per directory at most: the queue holds no more than the shards.
    std::lock_guard<std::mutex> lock(mu_);
    if (std::find(wanted_.begin(), wanted_.end(), dir) == wanted_.end()) wanted_.push_back(dir);
  }
  cv_.notify_one();
  if (fd < 0) {
    // tmpfs, a disk nearly full, or an I/O error: LevelDB's own log.
    spdlog::debug("{}: not pre-zeroed; appended as LevelDB's own", fname);
    return target()->NewWritableFile(fname, result);
  }
  *result = new ZeroedLogFile(fname, fd);
  return leveldb::Status::OK();
}

leveldb::Status LogEnv::NewSequentialFile(const std::string& fname,
                                          leveldb::SequentialFile** result) {
  if (!IsLogFile(fname)) return target()->NewSequentialFile(fname, result);
  *result = nullptr;
  std::string data;
  leveldb::Status s = leveldb::ReadFileToString(target(), fname, &data);
  if (!s.ok()) return s;
  data.resize(LogicalLogEnd(data));
  *result = new CutLogFile(std::move(data));
  return leveldb::Status::OK();
}

void LogEnv::SpareLoop() {
  pthread_setname_np(pthread_self(), "todo-log-spare");
  for (;;) {
    std::string dir;
    {
      std::unique_lock<std::mutex> lock(mu_);
      // Woken for work or to stop; the timeout only bounds the wait.
      cv_.wait_for(lock, std::chrono::seconds(1), [&] { return stopping_ || !wanted_.empty(); });
      if (stopping_) return;
      if (wanted_.empty()) continue;
      dir = std::move(wanted_.front());
      wanted_.erase(wanted_.begin());
      if (ready_[dir]) continue;
    }
    const bool ok = MakeZeroed(SpareName(dir));
    std::lock_guard<std::mutex> lock(mu_);
    ready_[dir] = ok;
  }
}

}  // namespace todo::store
