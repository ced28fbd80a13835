// HttpStream: one HTTP/1.1 request over its own TCP connection, whose
// answer body is read as it arrives. It carries etcd's watch stream (the
// gateway answers POST /v3/watch with a chunked body of one JSON object a
// line, for as long as the watch lives) and the watch's liveness probes.
//
// Why not cpp-httplib here: its client reads a streamed body on the
// caller's thread until the stream ends, with a timeout per read; an idle
// watch would either hang up every few seconds or sit in recv(2) where only
// closing the socket from another thread (a race with its own close) stops
// it. This class does only what the watch needs, with every wait a poll(2)
// on the socket and a cancel fd until a deadline: the owner's thread wakes
// as soon as another thread makes the cancel fd readable (an eventfd), so
// stopping a watch is prompt whatever the stream is doing.
//
// Bounds: the status line and headers at most 64 KiB, a chunk-size or
// trailer line at most 4 KiB; the body is handed out as it is read (the
// caller bounds what it keeps). Not thread-safe: one thread uses an
// HttpStream; only the cancel fd is shared.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace todo::io {

class HttpStream {
 public:
  using Clock = std::chrono::steady_clock;

  // `cancel_fd`: readable = give up now (-1: never). Not owned.
  explicit HttpStream(int cancel_fd) : cancel_fd_(cancel_fd) {}
  ~HttpStream();  // closes the connection
  HttpStream(const HttpStream&) = delete;
  HttpStream& operator=(const HttpStream&) = delete;

  // Connects to host:port, sends `method path` with `body` (as
  // application/json; Connection: close) plus `extra_headers` (each
  // "Name: value\r\n"), and reads the status line and headers, all before
  // `deadline`. unavailable naming the step that failed; timeout at the
  // deadline; unavailable "canceled" (and canceled() true) if the cancel fd
  // fired. Call once.
  Status Open(const std::string& host, int port, std::string_view method, std::string_view path,
              std::string_view body, std::string_view extra_headers, Clock::time_point deadline);

  // The answer's HTTP status (after Open succeeded).
  int status() const { return status_; }
  bool canceled() const { return canceled_; }

  enum class Read {
    kData,   // bytes were appended to *out
    kIdle,   // the deadline passed with nothing new
    kEnd,    // the body is complete (the connection is then closed)
    kError,  // *error says why: closed mid-body, malformed chunk, canceled
  };
  // Appends the body bytes that arrive before `deadline` to *out.
  Read ReadSome(std::string* out, Clock::time_point deadline, Status* error);

  // Reads the rest of the body into *out, at most `max` bytes, by
  // `deadline`. internal if it is larger; timeout; unavailable.
  Status ReadAll(std::string* out, size_t max, Clock::time_point deadline);

 private:
  enum class Framing { kLength, kChunked, kUntilClose };
  enum class ChunkState { kSize, kData, kDataEnd, kTrailers, kDone };

  // Waits for `events` on the socket until `deadline`: OK, timeout, or
  // unavailable "canceled".
  Status Wait(short events, Clock::time_point deadline);
  // recv(2) into raw_: >0 bytes, 0 on EOF, -1 on error (errno).
  ssize_t Fill();
  Status ParseHead(std::string_view head);
  // Moves decoded body bytes from raw_ to *out; false with *error on a
  // framing error.
  bool Decode(std::string* out, Status* error);
  // A "\r\n"-terminated line at the start of raw_ (consumed), if whole.
  bool TakeLine(std::string* line, Status* error);
  bool done() const;

  const int cancel_fd_;
  int fd_ = -1;
  bool canceled_ = false;
  bool eof_ = false;
  int status_ = 0;
  std::string raw_;  // received, not yet decoded
  Framing framing_ = Framing::kUntilClose;
  uint64_t remaining_ = 0;  // kLength: body bytes left; kChunked kData: chunk bytes left
  ChunkState chunk_ = ChunkState::kSize;
};

}  // namespace todo::io
