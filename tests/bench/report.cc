#include "tests/bench/report.h"

#include <sys/resource.h>

#include <cstdarg>
#include <cstdio>

namespace todo::bench {
namespace {

void Appendf(std::string* out, const char* format, ...) __attribute__((format(printf, 2, 3)));
void Appendf(std::string* out, const char* format, ...) {
  char buf[512];
  va_list args;
  va_start(args, format);
  int n = vsnprintf(buf, sizeof buf, format, args);
  va_end(args);
  if (n > 0) out->append(buf, std::min<size_t>(static_cast<size_t>(n), sizeof buf - 1));
}

double Us(uint64_t ns) { return static_cast<double>(ns) / 1000.0; }

// The figures of one table row: one op, or all of them.
struct Row {
  std::string_view name;
  std::array<uint64_t, kNumOutcomes> outcomes{};
  LatencyHistogram latency;

  uint64_t ok() const { return outcomes[static_cast<int>(Outcome::kOk)]; }
  uint64_t errors() const {
    uint64_t n = 0;
    for (int o = 1; o < kNumOutcomes; ++o) n += outcomes[o];
    return n;
  }
};

std::vector<Row> Rows(const BenchSummary& s) {
  std::vector<Row> rows;
  Row all;
  all.name = "all";
  for (BenchOp op : kLoadOps) {
    int i = static_cast<int>(op);
    Row row;
    row.name = BenchOpName(op);
    row.outcomes = s.stats.outcomes[i];
    row.latency.Merge(s.stats.latency[i]);
    for (int o = 0; o < kNumOutcomes; ++o) all.outcomes[o] += row.outcomes[o];
    all.latency.Merge(row.latency);
    // An op of the mix gets a row even if nothing finished; others only if used.
    if (s.options->parsed_mix.Has(op) || row.ok() + row.errors() > 0)
      rows.push_back(std::move(row));
  }
  rows.push_back(std::move(all));
  return rows;
}

void JsonString(std::string* out, std::string_view s) {
  out->push_back('"');
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out->push_back('\\');
      out->push_back(static_cast<char>(c));
    } else if (c < 0x20) {
      Appendf(out, "\\u%04x", c);
    } else {
      out->push_back(static_cast<char>(c));
    }
  }
  out->push_back('"');
}

// {"code":n,...} with the non-zero error outcomes.
void JsonErrors(std::string* out, const std::array<uint64_t, kNumOutcomes>& outcomes) {
  out->push_back('{');
  bool first = true;
  for (int o = 1; o < kNumOutcomes; ++o) {
    if (outcomes[o] == 0) continue;
    if (!first) out->push_back(',');
    first = false;
    JsonString(out, OutcomeName(static_cast<Outcome>(o)));
    Appendf(out, ":%llu", static_cast<unsigned long long>(outcomes[o]));
  }
  out->push_back('}');
}

uint64_t Failed(const std::array<uint64_t, kNumOutcomes>& outcomes) {
  uint64_t n = 0;
  for (int o = 1; o < kNumOutcomes; ++o) n += outcomes[o];
  return n;
}

void JsonLatency(std::string* out, const LatencyHistogram& h) {
  Appendf(out,
          "{\"count\":%llu,\"mean\":%.1f,\"p50\":%.1f,\"p90\":%.1f,\"p99\":%.1f,\"p999\":%.1f,"
          "\"max\":%.1f}",
          static_cast<unsigned long long>(h.count()), h.mean() / 1000.0, Us(h.ValueAtQuantile(0.5)),
          Us(h.ValueAtQuantile(0.9)), Us(h.ValueAtQuantile(0.99)), Us(h.ValueAtQuantile(0.999)),
          Us(h.max()));
}

double MeasuredCorePercent(const BenchSummary& s) {
  return 100.0 * s.cpu_measured.total_s() / s.options->duration_s;
}

}  // namespace

CpuTimes ProcessCpu() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  auto seconds = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
  };
  return {seconds(u.ru_utime), seconds(u.ru_stime)};
}

std::string FormatTable(const BenchSummary& s) {
  const BenchOptions& o = *s.options;
  std::string out;
  Appendf(&out,
          "todo-bench %s%s: %u connections x %u in flight, %u thread%s, %u lists, mix %s, seed "
          "%llu%s\n",
          o.backend == "zmq" ? "" : "(redis) ", o.endpoint.c_str(), o.connections, o.window,
          o.threads, o.threads == 1 ? "" : "s", o.lists, o.parsed_mix.ToString().c_str(),
          static_cast<unsigned long long>(o.seed), o.rids ? ", a rid on every write" : "");
  if (o.preload > 0) {
    uint64_t ok = s.stats.preload[0], failed = 0;
    for (int i = 1; i < kNumOutcomes; ++i) failed += s.stats.preload[i];
    Appendf(&out, "preload: %llu adds ok in %.2f s, %llu failed",
            static_cast<unsigned long long>(ok), s.preload_s,
            static_cast<unsigned long long>(failed));
    if (failed > 0) {
      out += ' ';
      JsonErrors(&out, s.stats.preload);
    }
    out += '\n';
  }
  std::vector<Row> rows = Rows(s);
  const Row& all = rows.back();
  Appendf(&out, "measured %.1f s after %.1f s warmup: %llu ok = %.1f ops/s, %llu errors\n\n",
          o.duration_s, o.warmup_s, static_cast<unsigned long long>(all.ok()),
          static_cast<double>(all.ok()) / o.duration_s,
          static_cast<unsigned long long>(all.errors()));
  Appendf(&out, "%-12s %10s %10s %8s %9s %9s %9s %9s %9s   latency in us, ok replies\n", "op", "ok",
          "ops/s", "errors", "p50", "p90", "p99", "p999", "max");
  for (const Row& r : rows) {
    const LatencyHistogram& h = r.latency;
    Appendf(&out, "%-12.*s %10llu %10.1f %8llu %9.1f %9.1f %9.1f %9.1f %9.1f\n",
            static_cast<int>(r.name.size()), r.name.data(), static_cast<unsigned long long>(r.ok()),
            static_cast<double>(r.ok()) / o.duration_s, static_cast<unsigned long long>(r.errors()),
            Us(h.ValueAtQuantile(0.5)), Us(h.ValueAtQuantile(0.9)), Us(h.ValueAtQuantile(0.99)),
            Us(h.ValueAtQuantile(0.999)), Us(h.max()));
  }
  out += "\nerrors by code:";
  if (all.errors() == 0) out += " none";
  for (int i = 1; i < kNumOutcomes; ++i) {
    if (all.outcomes[i] == 0) continue;
    std::string_view name = OutcomeName(static_cast<Outcome>(i));
    Appendf(&out, " %.*s=%llu", static_cast<int>(name.size()), name.data(),
            static_cast<unsigned long long>(all.outcomes[i]));
  }
  out += '\n';
  Appendf(&out, "warmup ok %llu, late replies %llu, stray replies %llu, unanswered at exit %llu",
          static_cast<unsigned long long>(s.stats.warmup_ok),
          static_cast<unsigned long long>(s.stats.late_replies),
          static_cast<unsigned long long>(s.stats.stray_replies),
          static_cast<unsigned long long>(s.stats.unfinished));
  if (s.stats.broken_connections > 0) {
    Appendf(&out, ", BROKEN connections %llu",
            static_cast<unsigned long long>(s.stats.broken_connections));
  }
  out += '\n';
  if (s.options->smart) {
    Appendf(&out, "smart: %s; %llu requests redirected (resent to a refreshed map's primary)\n",
            s.smart_note.c_str(), static_cast<unsigned long long>(s.stats.redirected));
  }
  Appendf(&out,
          "bench cpu: %.2f s user+sys (user %.2f, sys %.2f); measured window %.2f s = %.0f%% of "
          "one core\n",
          s.cpu_total.total_s(), s.cpu_total.user_s, s.cpu_total.sys_s, s.cpu_measured.total_s(),
          MeasuredCorePercent(s));
  return out;
}

std::string FormatJson(const BenchSummary& s) {
  const BenchOptions& o = *s.options;
  std::vector<Row> rows = Rows(s);
  const Row& all = rows.back();
  std::string out = "{\"endpoint\":";
  JsonString(&out, o.endpoint);
  out += ",\"backend\":";
  JsonString(&out, o.backend);
  out += ",\"mix\":";
  JsonString(&out, o.parsed_mix.ToString());
  out += ",\"list_prefix\":";
  JsonString(&out, o.list_prefix);
  Appendf(&out,
          ",\"connections\":%u,\"window\":%u,\"threads\":%u,\"lists\":%u,\"seed\":%llu,"
          "\"duration_s\":%g,\"warmup_s\":%g,\"preload\":%u,\"dates\":%u,\"title_bytes\":%u,"
          "\"timeout_ms\":%lld,\"rids\":%s",
          o.connections, o.window, o.threads, o.lists, static_cast<unsigned long long>(o.seed),
          o.duration_s, o.warmup_s, o.preload, o.dates, o.title_bytes,
          static_cast<long long>(o.timeout_ms), o.rids ? "true" : "false");
  Appendf(&out, ",\"ok\":%llu,\"ops_per_sec\":%.1f,\"errors_total\":%llu,\"errors\":",
          static_cast<unsigned long long>(all.ok()), static_cast<double>(all.ok()) / o.duration_s,
          static_cast<unsigned long long>(all.errors()));
  JsonErrors(&out, all.outcomes);
  out += ",\"latency_us\":";
  JsonLatency(&out, all.latency);
  out += ",\"ops\":{";
  for (size_t i = 0; i + 1 < rows.size(); ++i) {
    const Row& r = rows[i];
    if (i > 0) out += ',';
    JsonString(&out, r.name);
    Appendf(&out, ":{\"ok\":%llu,\"ops_per_sec\":%.1f,\"errors_total\":%llu,\"errors\":",
            static_cast<unsigned long long>(r.ok()), static_cast<double>(r.ok()) / o.duration_s,
            static_cast<unsigned long long>(r.errors()));
    JsonErrors(&out, r.outcomes);
    out += ",\"latency_us\":";
    JsonLatency(&out, r.latency);
    out += '}';
  }
  out += '}';
  Appendf(&out, ",\"preload_ok\":%llu,\"preload_s\":%.3f,\"preload_errors\":",
          static_cast<unsigned long long>(s.stats.preload[0]), s.preload_s);
  JsonErrors(&out, s.stats.preload);
  Appendf(&out,
          ",\"warmup_ok\":%llu,\"late_replies\":%llu,\"stray_replies\":%llu,"
          "\"unanswered_at_exit\":%llu,\"broken_connections\":%llu",
          static_cast<unsigned long long>(s.stats.warmup_ok),
          static_cast<unsigned long long>(s.stats.late_replies),
          static_cast<unsigned long long>(s.stats.stray_replies),
          static_cast<unsigned long long>(s.stats.unfinished),
          static_cast<unsigned long long>(s.stats.broken_connections));
  if (o.smart) {
    Appendf(&out,
            ",\"smart\":{\"map\":%s,\"redirected\":%llu,\"note\":", s.smart_map ? "true" : "false",
            static_cast<unsigned long long>(s.stats.redirected));
    JsonString(&out, s.smart_note);
    out += '}';
  }
  Appendf(&out,
          ",\"cpu\":{\"user_s\":%.3f,\"sys_s\":%.3f,\"total_s\":%.3f,\"measured_s\":%.3f,"
          "\"measured_core_pct\":%.1f}}",
          s.cpu_total.user_s, s.cpu_total.sys_s, s.cpu_total.total_s(), s.cpu_measured.total_s(),
          MeasuredCorePercent(s));
  return out;
}

std::string FormatTouchLine(const BenchSummary& s) {
  const BenchOptions& o = *s.options;
  std::string out;
  uint64_t failed = Failed(s.stats.preload);
  Appendf(&out, "todo-bench %s: touched %u lists in %.2f s: %llu ok, %llu failed",
          o.endpoint.c_str(), o.lists, s.preload_s,
          static_cast<unsigned long long>(s.stats.preload[0]),
          static_cast<unsigned long long>(failed));
  if (failed > 0) {
    out += ' ';
    JsonErrors(&out, s.stats.preload);
  }
  out += '\n';
  return out;
}

std::string FormatTouchJson(const BenchSummary& s) {
  const BenchOptions& o = *s.options;
  std::string out = "{\"endpoint\":";
  JsonString(&out, o.endpoint);
  out += ",\"backend\":";
  JsonString(&out, o.backend);
  Appendf(&out, ",\"lists\":%u,\"touched_ok\":%llu,\"touch_s\":%.3f,\"errors\":", o.lists,
          static_cast<unsigned long long>(s.stats.preload[0]), s.preload_s);
  JsonErrors(&out, s.stats.preload);
  Appendf(&out, ",\"cpu\":{\"total_s\":%.3f}}", s.cpu_total.total_s());
  return out;
}

}  // namespace todo::bench
