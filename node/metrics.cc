#include "node/metrics.h"

#include <algorithm>
#include <msgpack.hpp>

#include "node/registry.h"
#include "node/replication/shard_replication.h"
#include "node/store/rid_filter.h"
#include "node/store/store.h"

namespace todo::node {
namespace {

using Clock = std::chrono::steady_clock;
using Packer = msgpack::packer<msgpack::sbuffer>;

std::string OpLabel(size_t op) {
  if (op >= protocol::kNumOps) return "invalid";
  return std::string(protocol::OpName(static_cast<protocol::Op>(op)));
}

std::string CodeLabel(size_t code) {
  return std::string(ErrorCodeName(static_cast<ErrorCode>(code)));
}

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

// NodeCounters fields, in the order both outputs list them.
struct Scalar {
  const char* name;
  const char* help;
  uint64_t NodeCounters::*field;
};
constexpr Scalar kScalars[] = {
    {"received", "Request messages read from the socket.", &NodeCounters::requests},
    {"bad_requests", "Requests answered bad_request or unknown_op by the socket loop.",
     &NodeCounters::bad_requests},
    {"overloaded", "Requests refused with overloaded by the socket loop.",
     &NodeCounters::overloaded},
    {"replies_sent", "Replies sent.", &NodeCounters::replies_sent},
    {"replies_dropped", "Replies dropped (client gone or not reading).",
     &NodeCounters::replies_dropped},
    {"fast_reads", "Reads answered on the socket loop, without a hand-off to the list's actor.",
     &NodeCounters::fast_reads},
    {"inline_writes",
     "Writes handled on the socket loop (their actor idle, nothing to read from disk), without a "
     "hand-off to a worker.",
     &NodeCounters::inline_writes},
    {"batches_in", "Router hop batches of requests taken.", &NodeCounters::batches_in},
    {"batches_out", "Hop batches of replies sent to routers.", &NodeCounters::batches_out},
    {"bad_batches", "Hop batches refused whole as malformed.", &NodeCounters::bad_batches},
};

}  // namespace

NodeMetrics::NodeMetrics(std::string name, Registry* registry, store::Store* store)
    : name_(std::move(name)), registry_(registry), store_(store) {}

NodeMetrics::~NodeMetrics() = default;

void NodeMetrics::OnReply(const Envelope::Trace& trace, const zmq::message_t& body,
                          Clock::time_point now) {
  std::optional<ErrorCode> code =
      protocol::PeekReplyCode(std::string_view(static_cast<const char*>(body.data()), body.size()));
  size_t op = trace.op < protocol::kNumOps ? trace.op : protocol::kNumOps;
  if (code) {
    ++live_.by_op_code[op][static_cast<size_t>(*code)];
  } else {
    ++live_.unreadable_replies;
  }
  if (op < protocol::kNumOps && trace.received != Clock::time_point{}) {
    live_.latency[op].Observe(std::chrono::duration<double>(now - trace.received).count());
  }
}

void NodeMetrics::Publish(const NodeServer& server) {
  Clock::time_point now = Clock::now();
  if (now >= next_mailbox_scan_) {
    registry_->MailboxDepths(&mailbox_sum_, &mailbox_max_);
    next_mailbox_scan_ = now + kMailboxEvery;
  }
  Published p;
  p.loop = live_;
  p.counters = server.counters();
  p.inflight = server.inflight();
  p.live_actors = registry_->size();
  p.actors_loaded = registry_->created();
  p.actors_evicted = registry_->evicted();
  p.actors_evicted_for_memory = registry_->evicted_for_bytes();
  p.cache_bytes = registry_->bytes();
  p.mailbox_sum = mailbox_sum_;
  p.mailbox_max = mailbox_max_;
  {
    std::lock_guard<std::mutex> lock(mu_);
    std::swap(published_, p);
  }
  published_at_ns_.store(NowNs(), std::memory_order_release);
}

bool NodeMetrics::serving() const {
  if (stopped_.load(std::memory_order_acquire)) return false;
  int64_t at = published_at_ns_.load(std::memory_order_acquire);
  return at != 0 && NowNs() - at <= std::chrono::nanoseconds(kStaleAfter).count();
}

std::string NodeMetrics::PrometheusText() const {
  Published p;
  {
    std::lock_guard<std::mutex> lock(mu_);
    p = published_;
  }
  metrics::TextWriter w;
  w.Family("todo_node_requests_total", "counter",
           "Requests answered, by op (invalid: did not decode) and reply code.");
  for (size_t op = 0; op < kOpSlots; ++op) {
    for (size_t code = 0; code < kCodes; ++code) {
      uint64_t v = p.loop.by_op_code[op][code];
      if (v == 0 && code != 0) continue;  // always list ok, so every op appears
      if (op == protocol::kNumOps && v == 0) continue;
      w.Sample("todo_node_requests_total", {{"op", OpLabel(op)}, {"code", CodeLabel(code)}},
               static_cast<double>(v));
    }
  }
  w.Family("todo_node_request_duration_seconds", "histogram",
           "Time from reading a request to sending its reply, by op.");
  for (size_t op = 0; op < protocol::kNumOps; ++op) {
    w.HistogramSamples("todo_node_request_duration_seconds", {{"op", OpLabel(op)}},
                       p.loop.latency[op]);
  }
  for (const Scalar& s : kScalars) {
    std::string name = std::string("todo_node_") + s.name + "_total";
    w.Family(name, "counter", s.help);
    w.Sample(name, {}, static_cast<double>(p.counters.*s.field));
  }
  w.Family("todo_node_inflight", "gauge", "Requests admitted and not yet answered.");
  w.Sample("todo_node_inflight", {}, static_cast<double>(p.inflight));
  w.Family("todo_node_live_actors", "gauge", "List actors in memory.");
  w.Sample("todo_node_live_actors", {}, static_cast<double>(p.live_actors));
  w.Family("todo_node_actors_loaded_total", "counter", "List actors created (lists loaded).");
  w.Sample("todo_node_actors_loaded_total", {}, static_cast<double>(p.actors_loaded));
  w.Family("todo_node_actors_evicted_total", "counter", "Idle list actors evicted from memory.");
  w.Sample("todo_node_actors_evicted_total", {}, static_cast<double>(p.actors_evicted));
  w.Family("todo_node_actors_evicted_for_memory_total", "counter",
           "List actors evicted because the cache was over --cache-mb (also in the total).");
  w.Sample("todo_node_actors_evicted_for_memory_total", {},
           static_cast<double>(p.actors_evicted_for_memory));
  w.Family("todo_node_cache_bytes", "gauge",
           "Estimated bytes held by the live list actors (bounded by --cache-mb).");
  w.Sample("todo_node_cache_bytes", {}, static_cast<double>(p.cache_bytes));
  w.Family("todo_node_mailbox_depth_sum", "gauge", "Messages queued in all mailboxes.");
  w.Sample("todo_node_mailbox_depth_sum", {}, static_cast<double>(p.mailbox_sum));
  w.Family("todo_node_mailbox_depth_max", "gauge", "Messages queued in the fullest mailbox.");
  w.Sample("todo_node_mailbox_depth_max", {}, static_cast<double>(p.mailbox_max));

  const uint32_t shards = store_->shards();
  auto shard_label = [](uint32_t i) { return metrics::Labels{{"shard", std::to_string(i)}}; };
  w.Family("todo_node_writer_queue_depth", "gauge",
           "Writes queued for (or being written by) the shard's writer.");
  for (uint32_t i = 0; i < shards; ++i) {
    w.Sample("todo_node_writer_queue_depth", shard_label(i),
             static_cast<double>(store_->writer(i).depth()));
  }
  struct WriterCounter {
    const char* name;
    const char* help;
    std::atomic<uint64_t> store::WriterStats::*field;
  };
  static constexpr WriterCounter kWriterCounters[] = {
      {"todo_node_group_commits_total", "Group commits (LevelDB writes).",
       &store::WriterStats::batches},
      {"todo_node_writes_total", "Writes committed in group commits.", &store::WriterStats::ops},
      {"todo_node_failed_commits_total", "Group commits that failed.",
       &store::WriterStats::failed_batches},
      {"todo_node_shard_reopens_total", "Shards reopened after a failed group commit.",
       &store::WriterStats::reopens},
      {"todo_node_shard_failed_reopens_total",
       "Attempts to reopen a failed shard that failed (disk probe, open or undo).",
       &store::WriterStats::failed_reopens},
      {"todo_node_refused_writes_total", "Writes answered internal while their shard was down.",
       &store::WriterStats::refused},
      {"todo_node_rid_written_total", "Rid records written (first writes that carried a rid).",
       &store::WriterStats::rid_written},
      {"todo_node_rid_hits_total",
       "Retries answered from a rid record (on disk, or of a write still in flight).",
       &store::WriterStats::rid_hits},
      {"todo_node_rid_conflicts_total",
       "Writes refused because their rid was used for a different request.",
       &store::WriterStats::rid_conflicts},
      {"todo_node_rid_expired_total", "Rid records dropped after --rid-ttl.",
       &store::WriterStats::rid_expired},
  };
  for (const WriterCounter& c : kWriterCounters) {
    w.Family(c.name, "counter", c.help);
    for (uint32_t i = 0; i < shards; ++i) {
      w.Sample(c.name, shard_label(i),
               static_cast<double>((store_->writer(i).stats().*c.field).load()));
    }
  }
  w.Family("todo_node_shard_read_failures_total", "counter",
           "Reads that met a damaged block or record in the shard (answered internal).");
  for (uint32_t i = 0; i < shards; ++i) {
    w.Sample("todo_node_shard_read_failures_total", shard_label(i),
             static_cast<double>(store_->read_failures(i)));
  }
  w.Family("todo_node_rid_records", "gauge",
           "Rid records stored in the shard (exact: a count kept in the same batches as the "
           "records).");
  for (uint32_t i = 0; i < shards; ++i) {
    w.Sample("todo_node_rid_records", shard_label(i),
             static_cast<double>(store_->writer(i).stats().RidRecords()));
  }
  w.Family("todo_node_rid_lookups_skipped_total", "counter",
           "First writes with a rid that the in-memory filter spared a disk lookup.");
  w.Sample("todo_node_rid_lookups_skipped_total", {},
           static_cast<double>(store_->rid_filter().skipped()));
  w.Family("todo_node_shard_unavailable", "gauge",
           "1 while the shard refuses writes after a storage failure.");
  for (uint32_t i = 0; i < shards; ++i) {
    w.Sample("todo_node_shard_unavailable", shard_label(i),
             static_cast<double>(store_->writer(i).stats().unavailable.load()));
  }
  std::vector<store::WriterHistograms> hists;
  for (uint32_t i = 0; i < shards; ++i) hists.push_back(store_->writer(i).histograms());
  w.Family("todo_node_group_commit_size", "histogram", "Writes per group commit.");
  for (uint32_t i = 0; i < shards; ++i) {
    w.HistogramSamples("todo_node_group_commit_size", shard_label(i), hists[i].batch_sizes);
  }
  w.Family("todo_node_write_duration_seconds", "histogram",
           "Time inside LevelDB's Write (with fsync unless --no-sync) per group commit.");
  for (uint32_t i = 0; i < shards; ++i) {
    w.HistogramSamples("todo_node_write_duration_seconds", shard_label(i), hists[i].write_seconds);
  }
  w.Family("todo_node_serving", "gauge", "1 while the node's socket loop serves requests.");
  w.Sample("todo_node_serving", {}, serving() ? 1 : 0);
  return w.text();
}

void NodeMetrics::EncodeStats(msgpack::sbuffer& out, const protocol::RequestId& id,
                              const NodeServer& server) {
  size_t mailbox_sum = 0, mailbox_max = 0;
  registry_->MailboxDepths(&mailbox_sum, &mailbox_max);
  protocol::BeginOkReply(out, id);
  Packer pk(out);
  const bool replicated = store_->replicated();
  pk.pack_map(14 + (replicated ? 1 : 0) + static_cast<uint32_t>(std::size(kScalars)));
  protocol::AppendStr(out, "role");
  protocol::AppendStr(out, "node");
  protocol::AppendStr(out, "name");
  protocol::AppendStr(out, name_);
  protocol::AppendUintField(out, "inflight", server.inflight());
  for (const Scalar& s : kScalars)
    protocol::AppendUintField(out, s.name, server.counters().*s.field);
  // {op: {code: n}} for the ops seen.
  std::vector<size_t> ops;
  for (size_t op = 0; op < kOpSlots; ++op) {
    for (uint64_t v : live_.by_op_code[op]) {
      if (v > 0) {
        ops.push_back(op);
        break;
      }
    }
  }
  protocol::AppendStr(out, "requests");
  pk.pack_map(static_cast<uint32_t>(ops.size()));
  for (size_t op : ops) {
    protocol::AppendStr(out, OpLabel(op));
    uint32_t n = 0;
    for (uint64_t v : live_.by_op_code[op]) n += v > 0;
    pk.pack_map(n);
    for (size_t code = 0; code < kCodes; ++code) {
      if (uint64_t v = live_.by_op_code[op][code]; v > 0)
        protocol::AppendUintField(out, CodeLabel(code), v);
    }
  }
  std::vector<size_t> timed;
  for (size_t op = 0; op < protocol::kNumOps; ++op) {
    if (live_.latency[op].count() > 0) timed.push_back(op);
  }
  protocol::AppendStr(out, "latency");
  pk.pack_map(static_cast<uint32_t>(timed.size()));
  for (size_t op : timed) {
    protocol::AppendStr(out, OpLabel(op));
    pk.pack_map(2);
    protocol::AppendUintField(out, "count", live_.latency[op].count());
    protocol::AppendStr(out, "sum_seconds");
    pk.pack_double(live_.latency[op].sum());
  }
  protocol::AppendUintField(out, "live_actors", registry_->size());
  protocol::AppendUintField(out, "actors_loaded", registry_->created());
  protocol::AppendUintField(out, "actors_evicted", registry_->evicted());
  protocol::AppendUintField(out, "actors_evicted_for_memory", registry_->evicted_for_bytes());
  protocol::AppendUintField(out, "cache_bytes",
                            static_cast<uint64_t>(std::max<int64_t>(0, registry_->bytes())));
  protocol::AppendUintField(out, "mailbox_depth_sum", mailbox_sum);
  protocol::AppendUintField(out, "mailbox_depth_max", mailbox_max);
  // The rid records of every shard, summed (each shard's are below too).
  uint64_t rid[5] = {};
  for (uint32_t i = 0; i < store_->shards(); ++i) {
    const store::WriterStats& st = store_->writer(i).stats();
    rid[0] += st.RidRecords();
    rid[1] += st.rid_written.load();
    rid[2] += st.rid_hits.load();
    rid[3] += st.rid_conflicts.load();
    rid[4] += st.rid_expired.load();
  }
  protocol::AppendStr(out, "rids");
  pk.pack_map(7);
  protocol::AppendUintField(out, "records", rid[0]);
  protocol::AppendUintField(out, "written", rid[1]);
  protocol::AppendUintField(out, "hits", rid[2]);
  protocol::AppendUintField(out, "conflicts", rid[3]);
  protocol::AppendUintField(out, "expired", rid[4]);
  protocol::AppendUintField(out, "lookups_skipped", store_->rid_filter().skipped());
  protocol::AppendUintField(out, "filter_bytes",
                            store_->rid_filter().complete() ? store_->rid_filter().bytes() : 0);
  protocol::AppendStr(out, "shards");
  pk.pack_array(store_->shards());
  for (uint32_t i = 0; i < store_->shards(); ++i) {
    const store::ShardWriter& wr = store_->writer(i);
    const store::WriterStats& st = wr.stats();
    pk.pack_map(14);
    protocol::AppendUintField(out, "queue_depth", wr.depth());
    protocol::AppendUintField(out, "rid_records", st.RidRecords());
    protocol::AppendUintField(out, "rid_written", st.rid_written.load());
    protocol::AppendUintField(out, "rid_hits", st.rid_hits.load());
    protocol::AppendUintField(out, "rid_conflicts", st.rid_conflicts.load());
    protocol::AppendUintField(out, "rid_expired", st.rid_expired.load());
    protocol::AppendUintField(out, "group_commits", st.batches.load());
    protocol::AppendUintField(out, "writes", st.ops.load());
    protocol::AppendUintField(out, "failed_commits", st.failed_batches.load());
    protocol::AppendUintField(out, "reopens", st.reopens.load());
    protocol::AppendUintField(out, "unavailable", st.unavailable.load());
    protocol::AppendUintField(out, "read_failures", store_->read_failures(i));
    protocol::AppendUintField(out, "max_batch", st.max_batch.load());
    protocol::AppendStr(out, "write_seconds_sum");
    pk.pack_double(static_cast<double>(st.write_micros.load()) / 1e6);
  }
  if (!replicated) return;
  // Replicated mode: per partition this node holds, its role, epochs,
  // sequence numbers and (as primary) each backup's state and lag.
  std::vector<PartitionStats> parts;
  for (uint32_t i = 0; i < store_->shards(); ++i) {
    auto s = store_->writer(i).replication()->stats();
    parts.insert(parts.end(), s.begin(), s.end());
  }
  std::sort(parts.begin(), parts.end(), [](const PartitionStats& a, const PartitionStats& b) {
    return a.partition < b.partition;
  });
  protocol::AppendStr(out, "partitions");
  pk.pack_array(static_cast<uint32_t>(parts.size()));
  for (const PartitionStats& p : parts) {
    pk.pack_map(p.role == "primary" ? 7 : 6);
    protocol::AppendUintField(out, "partition", p.partition);
    protocol::AppendStr(out, "role");
    protocol::AppendStr(out, p.role);
    protocol::AppendUintField(out, "epoch", p.epoch);
    protocol::AppendUintField(out, "leader_epoch", p.leader_epoch);
    protocol::AppendUintField(out, "seq", p.seq);
    protocol::AppendStr(out, "complete");
    pk.pack(p.complete);
    if (p.role != "primary") continue;
    protocol::AppendStr(out, "backups");
    pk.pack_array(static_cast<uint32_t>(p.backups.size()));
    for (const auto& b : p.backups) {
      pk.pack_map(5);
      protocol::AppendStr(out, "name");
      protocol::AppendStr(out, b.name);
      protocol::AppendStr(out, "mode");
      protocol::AppendStr(out, b.mode);
      protocol::AppendStr(out, "in_sync");
      pk.pack(b.in_sync);
      protocol::AppendUintField(out, "acked", b.acked);
      protocol::AppendUintField(out, "lag", b.lag);
    }
  }
}

}  // namespace todo::node
