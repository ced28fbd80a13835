#include "tests/bench/redis_connection.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <thread>

namespace todo::bench {
namespace {

// KEYS[1] the counter, KEYS[2] the hash, ARGV[1] the value: the new id.
constexpr const char* kAddScript =
    "local id = redis.call('INCR', KEYS[1])\n"
    "redis.call('HSET', KEYS[2], id, ARGV[1])\n"
    "return id\n";

// KEYS[1] the hash, ARGV[1] the id, ARGV[2] the value: 1 if updated, 0 if
// the list has no such entry.
constexpr const char* kUpdateScript =
    "if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then\n"
    "  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])\n"
    "  return 1\n"
    "end\n"
    "return 0\n";

using ReplyPtr = std::unique_ptr<redisReply, void (*)(void*)>;

ReplyPtr Command(redisContext* c, const char* format, const char* arg) {
  return ReplyPtr(static_cast<redisReply*>(redisCommand(c, format, arg)), freeReplyObject);
}

std::string_view View(const redisReply& r) { return std::string_view(r.str, r.len); }

// Error replies start with a code word (Redis's convention). Those that say
// the command was not run map to the protocol's retryable codes.
Outcome ErrorOutcome(std::string_view message) {
  for (std::string_view busy : {"LOADING", "BUSY", "MASTERDOWN", "TRYAGAIN"}) {
    if (message.starts_with(busy)) return Outcome::kUnavailable;
  }
  if (message.starts_with("OOM")) return Outcome::kOverloaded;
  return Outcome::kInternal;
}

}  // namespace

StatusOr<RedisEndpoint> ParseRedisEndpoint(std::string_view endpoint) {
  constexpr std::string_view kScheme = "tcp://";
  auto bad = [&] {
    return Status::BadRequest("--endpoint of --backend redis must be tcp://HOST:PORT, not '" +
                              std::string(endpoint) + "'");
  };
  if (!endpoint.starts_with(kScheme)) return bad();
  std::string_view rest = endpoint.substr(kScheme.size());
  size_t colon = rest.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return bad();
  std::string_view port_text = rest.substr(colon + 1);
  int port = 0;
  auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc() || end != port_text.data() + port_text.size() || port < 1 || port > 65535) {
    return bad();
  }
  return RedisEndpoint{std::string(rest.substr(0, colon)), port};
}

StatusOr<RedisScripts> LoadRedisScripts(const RedisEndpoint& endpoint, double timeout_s) {
  using Clock = std::chrono::steady_clock;
  auto deadline = Clock::now() + std::chrono::duration<double>(timeout_s);
  std::string where = endpoint.host + ":" + std::to_string(endpoint.port);
  redisContext* c = nullptr;
  for (;;) {
    c = redisConnectWithTimeout(endpoint.host.c_str(), endpoint.port, timeval{1, 0});
    if (c != nullptr && c->err == 0) break;
    std::string why = c != nullptr ? c->errstr : "out of memory";
    redisFree(c);
    if (Clock::now() + std::chrono::milliseconds(100) >= deadline) {
      return Status(ErrorCode::kUnavailable, "could not connect to Redis at " + where + " within " +
                                                 std::to_string(timeout_s) + " s: " + why);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  std::unique_ptr<redisContext, void (*)(redisContext*)> owner(c, redisFree);
  RedisScripts scripts;
  for (auto [script, sha] :
       {std::pair{kAddScript, &scripts.add_sha}, std::pair{kUpdateScript, &scripts.update_sha}}) {
    ReplyPtr r = Command(c, "SCRIPT LOAD %s", script);
    if (!r) return Status::Internal("SCRIPT LOAD at " + where + ": " + c->errstr);
    if (r->type != REDIS_REPLY_STRING) {
      return Status::Internal("SCRIPT LOAD at " + where + " failed: " +
                              (r->type == REDIS_REPLY_ERROR ? std::string(View(*r)) : "bad reply"));
    }
    *sha = std::string(View(*r));
  }
  return scripts;
}

std::string EncodeRedisEntry(Date date, std::string_view title) {
  std::string value(11 + title.size(), '\t');
  FormatDateTo(date, value.data());
  std::memcpy(value.data() + 11, title.data(), title.size());
  return value;
}

bool DecodeRedisEntries(const redisReply& reply, std::optional<Date> date,
                        std::vector<RedisEntry>* out) {
  out->clear();
  if (reply.type != REDIS_REPLY_ARRAY || reply.elements % 2 != 0) return false;
  char want[10];
  if (date) FormatDateTo(*date, want);
  for (size_t i = 0; i < reply.elements; i += 2) {
    const redisReply& field = *reply.element[i];
    const redisReply& value = *reply.element[i + 1];
    if (field.type != REDIS_REPLY_STRING || value.type != REDIS_REPLY_STRING) return false;
    std::string_view v = View(value);
    if (v.size() < 11 || v[10] != '\t') return false;
    RedisEntry e;
    if (date) {
      if (std::memcmp(v.data(), want, 10) != 0) continue;  // another date's
      e.date = *date;
    } else {
      std::optional<Date> d = ParseDate(v.substr(0, 10));
      if (!d) return false;
      e.date = *d;
    }
    std::string_view f = View(field);
    auto [end, ec] = std::from_chars(f.data(), f.data() + f.size(), e.id);
    if (ec != std::errc() || end != f.data() + f.size() || f.empty()) return false;
    e.title = v.substr(11);
    out->push_back(e);
  }
  std::sort(out->begin(), out->end(),
            [](const RedisEntry& a, const RedisEntry& b) { return a.id < b.id; });
  return true;
}

Outcome RedisOutcome(BenchOp op, std::optional<Date> date, const redisReply& reply,
                     std::vector<RedisEntry>* scratch) {
  if (reply.type == REDIS_REPLY_ERROR) return ErrorOutcome(View(reply));
  bool integer = reply.type == REDIS_REPLY_INTEGER;
  switch (op) {
    case BenchOp::kAdd:
      return integer && reply.integer >= 1 ? Outcome::kOk : Outcome::kBadReply;
    case BenchOp::kEntries:
    case BenchOp::kEntriesAll:
      return DecodeRedisEntries(reply, date, scratch) ? Outcome::kOk : Outcome::kBadReply;
    case BenchOp::kUpdate:
      if (integer && reply.integer == 1) return Outcome::kOk;
      return integer && reply.integer == 0 ? Outcome::kNotFound : Outcome::kBadReply;
    case BenchOp::kDelete:
      return integer && (reply.integer == 0 || reply.integer == 1) ? Outcome::kOk
                                                                   : Outcome::kBadReply;
    case BenchOp::kPing:
      return reply.type == REDIS_REPLY_STATUS ? Outcome::kOk : Outcome::kBadReply;
  }
  return Outcome::kBadReply;
}

StatusOr<std::unique_ptr<RedisConnection>> RedisConnection::Open(const RedisEndpoint& endpoint,
                                                                 const RedisScripts& scripts) {
  redisContext* c = redisConnectNonBlock(endpoint.host.c_str(), endpoint.port);
  if (c == nullptr || c->err != 0) {
    std::string why = c != nullptr ? c->errstr : "out of memory";
    redisFree(c);
    return Status(ErrorCode::kUnavailable, "cannot connect to Redis at " + endpoint.host + ":" +
                                               std::to_string(endpoint.port) + ": " + why);
  }
  return std::unique_ptr<RedisConnection>(new RedisConnection(c, scripts));
}

RedisConnection::RedisConnection(redisContext* context, const RedisScripts& scripts)
    : context_(context), scripts_(scripts) {}

RedisConnection::~RedisConnection() { redisFree(context_); }

void RedisConnection::Break(const char* what) {
  if (broken_) return;
  broken_ = true;
  std::fprintf(stderr, "todo-bench: redis connection broken (%s): %s\n", what,
               context_->err != 0 ? context_->errstr : "?");
}

void RedisConnection::Format(std::initializer_list<std::string_view> args) {
  char digits[24];
  auto append_number = [&](size_t n) {
    auto [end, ec] = std::to_chars(digits, digits + sizeof digits, n);
    out_.append(digits, end);
  };
  out_.clear();
  out_ += '*';
  append_number(args.size());
  out_ += "\r\n";
  for (std::string_view a : args) {
    out_ += '$';
    append_number(a.size());
    out_ += "\r\n";
    out_ += a;
    out_ += "\r\n";
  }
}

Connection::SendResult RedisConnection::Send(const BenchRequest& b, uint64_t tag) {
  if (broken_) return SendResult::kFailed;
  std::optional<Date> date;
  if (b.op != BenchOp::kPing) {
    key_entries_.assign("e:").append(b.list);
  }
  if (b.op == BenchOp::kAdd || b.op == BenchOp::kUpdate) {
    value_.assign(11, '\t');
    FormatDateTo(b.date, value_.data());
    value_.append(b.title);
  }
  if (b.op == BenchOp::kUpdate || b.op == BenchOp::kDelete) {
    number_ = std::to_string(b.entry_id);
  }
  switch (b.op) {
    case BenchOp::kAdd:
      key_counter_.assign("n:").append(b.list);
      Format({"EVALSHA", scripts_.add_sha, "2", key_counter_, key_entries_, value_});
      break;
    case BenchOp::kEntries:
      date = b.date;
      Format({"HGETALL", key_entries_});
      break;
    case BenchOp::kEntriesAll:
      Format({"HGETALL", key_entries_});
      break;
    case BenchOp::kUpdate:
      Format({"EVALSHA", scripts_.update_sha, "1", key_entries_, number_, value_});
      break;
    case BenchOp::kDelete:
      Format({"HDEL", key_entries_, number_});
      break;
    case BenchOp::kPing:
      Format({"PING"});
      break;
  }
  if (redisAppendFormattedCommand(context_, out_.data(), out_.size()) != REDIS_OK) {
    Break("append");
    return SendResult::kFailed;
  }
  pending_.push_back({tag, b.op, date});
  return SendResult::kSent;
}

Status RedisConnection::Flush() {
  if (broken_) return Status(ErrorCode::kUnavailable, "redis connection broken");
  int done = 0;
  if (redisBufferWrite(context_, &done) != REDIS_OK) {
    Break("write");
    return Status(ErrorCode::kUnavailable, context_->errstr);
  }
  return Status::Ok();
}

zmq_pollitem_t RedisConnection::PollItem() {
  return zmq_pollitem_t{nullptr, broken_ ? -1 : context_->fd, ZMQ_POLLIN, 0};
}

bool RedisConnection::WantsWrite() const { return !broken_ && sdslen(context_->obuf) > 0; }

size_t RedisConnection::Receive(std::vector<Completion>* out, size_t max) {
  if (broken_) return 0;
  if (redisBufferRead(context_) != REDIS_OK) {
    Break("read");
    return 0;
  }
  size_t n = 0;
  while (n < max) {
    void* raw = nullptr;
    if (redisGetReplyFromReader(context_, &raw) != REDIS_OK) {
      Break("protocol");
      break;
    }
    if (raw == nullptr) break;
    ReplyPtr reply(static_cast<redisReply*>(raw), freeReplyObject);
    if (pending_.empty()) {
      ++stray_;
      continue;
    }
    Pending p = pending_.front();
    pending_.pop_front();
    out->push_back({p.tag, RedisOutcome(p.op, p.date, *reply, &scratch_)});
    ++n;
  }
  return n;
}

}  // namespace todo::bench
