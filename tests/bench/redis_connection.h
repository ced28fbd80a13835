// The Redis backend of todo-bench (--backend redis): the same requests as the
// todo protocol, done with Redis commands over hiredis, so a todo node or
// router and a Redis server can be loaded with the same request stream.
//
// DATA MODEL. A list L is two keys: "n:" L, the counter of its entry ids, and
// "e:" L, a hash from the entry id (decimal) to "YYYY-MM-DD\ttitle". The
// prefixes keep every list name, whatever its bytes, apart from the others.
//
// COMMANDS (one round trip each, in one pipeline per connection):
//   add          EVALSHA <add> 2 n:L e:L "date\ttitle"   INCR the counter, HSET
//                                                        the entry, return the id
//   entries      HGETALL e:L, then only that date's entries kept, by the
//                client (DecodeRedisEntries), ascending by id
//   entries_all  HGETALL e:L, all entries, ascending by id
//   update       EVALSHA <update> 1 e:L id "date\ttitle" HSET if the field
//                exists: 1, else 0 (= not_found, as a node answers)
//   delete       HDEL e:L id                              0 or 1, both success
//   ping         PING
// The two scripts are loaded once per run (LoadRedisScripts, SCRIPT LOAD)
// and called by their SHA1.
//
// I/O. A RedisConnection is a hiredis redisContext in non-blocking mode:
// Send() formats the command into hiredis's output buffer
// (redisAppendFormattedCommand), Flush() writes it (redisBufferWrite),
// Receive() reads (redisBufferRead) and takes the parsed replies
// (redisGetReplyFromReader). Redis answers a connection's commands in order,
// so a FIFO of the requests sent pairs each reply with its tag. The driver
// polls the socket's fd with zmq_poll like a ZeroMQ socket.
#pragma once

#include <hiredis.h>

#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/date.h"
#include "common/status.h"
#include "tests/bench/connection.h"

namespace todo::bench {

struct RedisEndpoint {
  std::string host;
  int port = 0;
};

// Parses "tcp://HOST:PORT" (HOST a name or an IPv4 address, PORT 1-65535).
StatusOr<RedisEndpoint> ParseRedisEndpoint(std::string_view endpoint);

// The SHA1 of the two scripts, as SCRIPT LOAD returned them.
struct RedisScripts {
  std::string add_sha;
  std::string update_sha;
};

// Connects (blocking; retrying every 100 ms until `timeout_s` has passed, so
// a server that is still starting is waited for) and loads the scripts.
// unavailable if no connection could be made, internal if Redis refused.
StatusOr<RedisScripts> LoadRedisScripts(const RedisEndpoint& endpoint, double timeout_s);

// "YYYY-MM-DD\ttitle", the value stored for an entry.
std::string EncodeRedisEntry(Date date, std::string_view title);

// An entry decoded from an HGETALL reply; `title` points into the reply.
struct RedisEntry {
  uint64_t id = 0;
  Date date;
  std::string_view title;
  friend bool operator==(const RedisEntry&, const RedisEntry&) = default;
};

// Decodes an HGETALL reply (an array of field, value, field, value ...) into
// *out (cleared first): every entry, or only `date`'s if given, ascending by
// id. Returns false if the reply has another shape, a field that is not a
// decimal id, or a value that is not "YYYY-MM-DD\ttitle".
bool DecodeRedisEntries(const redisReply& reply, std::optional<Date> date,
                        std::vector<RedisEntry>* out);

// How a reply to `op` ends the request (entries use *scratch for decoding):
// an error reply is internal; an update answered 0 is not_found; a reply of
// an unexpected type, or entries that don't decode, is bad_reply.
Outcome RedisOutcome(BenchOp op, std::optional<Date> date, const redisReply& reply,
                     std::vector<RedisEntry>* scratch);

class RedisConnection final : public Connection {
 public:
  // Starts a non-blocking connect to `endpoint` (a refused connection shows
  // at the first write: the driver then finds the connection broken).
  // `scripts` must hold the SHA1s from LoadRedisScripts.
  static StatusOr<std::unique_ptr<RedisConnection>> Open(const RedisEndpoint& endpoint,
                                                         const RedisScripts& scripts);
  ~RedisConnection() override;

  // Always kSent (the window bounds the output buffer), or kFailed once the
  // connection is broken.
  SendResult Send(const BenchRequest& request, uint64_t tag) override;
  Status Flush() override;
  // The socket's fd; -1 once broken (poll then ignores it).
  zmq_pollitem_t PollItem() override;
  bool WantsWrite() const override;
  // Reads once (up to hiredis's 16 KiB) and returns the replies parsed so
  // far, at most `max`; replies left in the reader wait for the next read.
  size_t Receive(std::vector<Completion>* out, size_t max) override;
  // Replies with no request left to pair with (Redis answers every command
  // in order, so this stays 0 unless the server misbehaves).
  uint64_t stray_replies() const override { return stray_; }

 private:
  struct Pending {
    uint64_t tag;
    BenchOp op;
    std::optional<Date> date;  // the filter of an `entries`
  };

  RedisConnection(redisContext* context, const RedisScripts& scripts);
  // Marks the connection broken and says why on stderr (once).
  void Break(const char* what);
  // Appends one command, its arguments given as views, to out_.
  void Format(std::initializer_list<std::string_view> args);

  redisContext* context_;
  RedisScripts scripts_;
  bool broken_ = false;
  uint64_t stray_ = 0;
  std::deque<Pending> pending_;
  std::string out_, key_counter_, key_entries_, value_, number_;
  std::vector<RedisEntry> scratch_;
};

}  // namespace todo::bench
