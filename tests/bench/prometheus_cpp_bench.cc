// prometheus_cpp_bench: Debian's prometheus-cpp (1.0) beside the project's
// hand-written metrics (common/metrics.h, router/metrics.h), on the two
// things that matter: the cost a request pays on the hot path, and the cost
// of rendering /metrics. The README's "Metrics" section quotes the results
// and the decision.
//
//   build/tests/bench/prometheus_cpp_bench [--benchmark_repetitions=5 ...]
//
// Hot path, per forwarded reply, as the router's loop counts it
// (ForwardedStats::Record: the reply's op and code, and its latency):
//   Hand/RecordReply  ++by_op_code[op][code]; Histogram::Observe (plain
//                     fields owned by the loop thread, published by copy)
//   Prom/RecordReply  Counter::Increment on a pre-resolved counter (an
//                     atomic<double> compare-exchange, a call into the .so)
//                     and Histogram::Observe (a mutex, a bucket search, two
//                     atomic<double> adds)
//   Prom/RecordReplyByLabels  the counter found by its labels each time
//                     (Family::Add), so that only pairs that occur export
// Render, the router's families with the same series (8 ops, 8 codes, 4
// forwarded ops with 3 codes each, 4 latency histograms of 17 buckets, 12
// scalars, 3 nodes):
//   Hand/Render       metrics::TextWriter from a snapshot
//   Prom/Render       Registry::Collect() + TextSerializer::Serialize()
#include <benchmark/benchmark.h>
#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <array>
#include <random>
#include <string>
#include <vector>

#include "common/metrics.h"
#include "common/protocol.h"
#include "router/metrics.h"

namespace {

using todo::ErrorCode;
using todo::protocol::kNumOps;
using todo::protocol::Op;
using todo::router::kNumCodes;

constexpr size_t kForwardedOps = 4;  // add_entry, entries, update_entry, delete_entry
constexpr size_t kScalars = 12;
constexpr size_t kNodes = 3;

// A stream of (op, code, latency) like a busy router's.
struct Sample {
  Op op;
  ErrorCode code;
  std::chrono::nanoseconds latency;
};
std::vector<Sample> Samples() {
  std::mt19937 rng(1);
  std::vector<Sample> out(4096);
  for (Sample& s : out) {
    s.op = static_cast<Op>(rng() % kForwardedOps);
    s.code = rng() % 50 == 0 ? ErrorCode::kNotFound : ErrorCode::kOk;
    s.latency = std::chrono::microseconds(200 + rng() % 3000);
  }
  return out;
}

std::string OpLabel(size_t op) { return std::string(todo::protocol::OpName(static_cast<Op>(op))); }
std::string CodeLabel(size_t c) {
  return std::string(todo::ErrorCodeName(static_cast<ErrorCode>(c)));
}

// --- The hot path ---

void HandRecordReply(benchmark::State& state) {
  const auto samples = Samples();
  todo::router::ForwardedStats stats;
  size_t i = 0;
  for (auto _ : state) {
    const Sample& s = samples[i++ & 4095];
    stats.Record(s.op, s.code, s.latency);
  }
  benchmark::DoNotOptimize(stats.by_op_code);
}
BENCHMARK(HandRecordReply)->Name("Hand/RecordReply");

struct PromRouter {
  std::shared_ptr<prometheus::Registry> registry = std::make_shared<prometheus::Registry>();
  std::array<std::array<prometheus::Counter*, kNumCodes>, kNumOps> replies{};
  std::array<prometheus::Histogram*, kNumOps> latency{};
  PromRouter() {
    auto& fr = prometheus::BuildCounter()
                   .Name("todo_router_forwarded_replies_total")
                   .Help("Replies to forwarded requests, by op and code.")
                   .Register(*registry);
    auto& lat = prometheus::BuildHistogram()
                    .Name("todo_router_request_duration_seconds")
                    .Help("Forwarded requests' latency, by op.")
                    .Register(*registry);
    const prometheus::Histogram::BucketBoundaries bounds(std::begin(todo::metrics::kLatencySeconds),
                                                         std::end(todo::metrics::kLatencySeconds));
    for (size_t op = 0; op < kForwardedOps; ++op) {
      for (size_t c = 0; c < kNumCodes; ++c) {
        replies[op][c] = &fr.Add({{"op", OpLabel(op)}, {"code", CodeLabel(c)}});
      }
      latency[op] = &lat.Add({{"op", OpLabel(op)}}, bounds);
    }
  }
};

void PromRecordReply(benchmark::State& state) {
  const auto samples = Samples();
  PromRouter m;
  size_t i = 0;
  for (auto _ : state) {
    const Sample& s = samples[i++ & 4095];
    const size_t op = static_cast<size_t>(s.op);
    m.replies[op][static_cast<size_t>(s.code)]->Increment();
    m.latency[op]->Observe(std::chrono::duration<double>(s.latency).count());
  }
}
BENCHMARK(PromRecordReply)->Name("Prom/RecordReply");

// The same, but looking the series up by its labels on each reply
// (Family::Add: a mutex and a hash of the labels), which is what it takes
// for prometheus-cpp to export only the (op, code) pairs that occur, as the
// hand-written exposition does, instead of every pair pre-registered at 0.
void PromRecordReplyByLabels(benchmark::State& state) {
  const auto samples = Samples();
  PromRouter m;
  auto& fr = prometheus::BuildCounter()
                 .Name("todo_router_forwarded_replies_lazy_total")
                 .Help("Replies to forwarded requests, by op and code.")
                 .Register(*m.registry);
  std::array<std::string, kNumOps> ops;
  std::array<std::string, kNumCodes> codes;
  for (size_t op = 0; op < kNumOps; ++op) ops[op] = OpLabel(op);
  for (size_t c = 0; c < kNumCodes; ++c) codes[c] = CodeLabel(c);
  size_t i = 0;
  for (auto _ : state) {
    const Sample& s = samples[i++ & 4095];
    const size_t op = static_cast<size_t>(s.op);
    fr.Add({{"op", ops[op]}, {"code", codes[static_cast<size_t>(s.code)]}}).Increment();
    m.latency[op]->Observe(std::chrono::duration<double>(s.latency).count());
  }
}
BENCHMARK(PromRecordReplyByLabels)->Name("Prom/RecordReplyByLabels");

// --- Rendering /metrics ---

todo::router::ForwardedStats FilledStats() {
  todo::router::ForwardedStats stats;
  for (const Sample& s : Samples()) stats.Record(s.op, s.code, s.latency);
  for (size_t op = 0; op < kForwardedOps; ++op) stats.by_op_code[op][6] += 3;  // some timeouts
  return stats;
}

void HandRender(benchmark::State& state) {
  const todo::router::ForwardedStats stats = FilledStats();
  std::array<uint64_t, kNumOps> requests{};
  std::array<uint64_t, kNumCodes> own{};
  for (size_t op = 0; op < kNumOps; ++op) requests[op] = 1000 + op;
  for (size_t c = 0; c < kNumCodes; ++c) own[c] = 10 + c;
  size_t bytes = 0;
  for (auto _ : state) {
    todo::metrics::TextWriter w;
    w.Family("todo_router_requests_total", "counter", "Requests decoded by the router, by op.");
    for (size_t op = 0; op < kNumOps; ++op) {
      w.Sample("todo_router_requests_total", {{"op", OpLabel(op)}},
               static_cast<double>(requests[op]));
    }
    w.Family("todo_router_own_replies_total", "counter", "Replies the router built itself.");
    for (size_t c = 0; c < kNumCodes; ++c) {
      w.Sample("todo_router_own_replies_total", {{"code", CodeLabel(c)}},
               static_cast<double>(own[c]));
    }
    w.Family("todo_router_forwarded_replies_total", "counter", "Replies to forwarded requests.");
    for (size_t op = 0; op < kNumOps; ++op) {
      for (size_t c = 0; c < kNumCodes; ++c) {
        if (stats.by_op_code[op][c] == 0) continue;
        w.Sample("todo_router_forwarded_replies_total",
                 {{"op", OpLabel(op)}, {"code", CodeLabel(c)}},
                 static_cast<double>(stats.by_op_code[op][c]));
      }
    }
    w.Family("todo_router_request_duration_seconds", "histogram", "Forwarded requests' latency.");
    for (size_t op = 0; op < kForwardedOps; ++op) {
      w.HistogramSamples("todo_router_request_duration_seconds", {{"op", OpLabel(op)}},
                         stats.latency[op]);
    }
    for (size_t s = 0; s < kScalars; ++s) {
      const std::string name = "todo_router_scalar_" + std::to_string(s) + "_total";
      w.Family(name, "counter", "A scalar counter.");
      w.Sample(name, {}, static_cast<double>(s * 7));
    }
    w.Family("todo_router_node_up", "gauge", "1 if the router routes to the node.");
    for (size_t n = 0; n < kNodes; ++n) {
      w.Sample("todo_router_node_up",
               {{"node", "n" + std::to_string(n)},
                {"endpoint", "tcp://127.0.0.1:700" + std::to_string(n)}},
               1);
    }
    bytes = w.text().size();
    benchmark::DoNotOptimize(w.text().data());
  }
  state.counters["bytes"] = static_cast<double>(bytes);
}
BENCHMARK(HandRender)->Name("Hand/Render");

void PromRender(benchmark::State& state) {
  PromRouter m;
  for (const Sample& s : Samples()) {
    const size_t op = static_cast<size_t>(s.op);
    m.replies[op][static_cast<size_t>(s.code)]->Increment();
    m.latency[op]->Observe(std::chrono::duration<double>(s.latency).count());
  }
  auto& req = prometheus::BuildCounter()
                  .Name("todo_router_requests_total")
                  .Help("Requests decoded by the router, by op.")
                  .Register(*m.registry);
  for (size_t op = 0; op < kNumOps; ++op) req.Add({{"op", OpLabel(op)}}).Increment(1000 + op);
  auto& own = prometheus::BuildCounter()
                  .Name("todo_router_own_replies_total")
                  .Help("Replies the router built itself.")
                  .Register(*m.registry);
  for (size_t c = 0; c < kNumCodes; ++c) own.Add({{"code", CodeLabel(c)}}).Increment(10 + c);
  for (size_t s = 0; s < kScalars; ++s) {
    prometheus::BuildCounter()
        .Name("todo_router_scalar_" + std::to_string(s) + "_total")
        .Help("A scalar counter.")
        .Register(*m.registry)
        .Add({})
        .Increment(static_cast<double>(s * 7));
  }
  auto& up = prometheus::BuildGauge()
                 .Name("todo_router_node_up")
                 .Help("1 if the router routes to the node.")
                 .Register(*m.registry);
  for (size_t n = 0; n < kNodes; ++n) {
    up.Add({{"node", "n" + std::to_string(n)},
            {"endpoint", "tcp://127.0.0.1:700" + std::to_string(n)}})
        .Set(1);
  }
  const prometheus::TextSerializer serializer;
  size_t bytes = 0;
  for (auto _ : state) {
    const std::string text = serializer.Serialize(m.registry->Collect());
    bytes = text.size();
    benchmark::DoNotOptimize(text.data());
  }
  state.counters["bytes"] = static_cast<double>(bytes);
}
BENCHMARK(PromRender)->Name("Prom/Render");

}  // namespace

BENCHMARK_MAIN();
