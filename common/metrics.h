// Metrics values and the Prometheus text exposition format (version 0.0.4).
// Pure: plain values and string building; no threads, atomics, clocks or I/O.
// The counters themselves live where they are counted (node/metrics.h,
// router/metrics.h); those copy them into these values and format them here.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace todo::metrics {

// Bucket upper bounds (seconds) for request latencies: 50 us to 10 s.
inline constexpr double kLatencySeconds[] = {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025,
                                             0.005,   0.01,   0.025,   0.05,   0.1,   0.25,
                                             0.5,     1,      2.5,     5,      10};
// Bucket upper bounds for group-commit batch sizes (writes per commit).
inline constexpr double kBatchSizes[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096};

// A histogram with fixed bucket bounds. Not thread-safe: one owner records,
// and others see copies.
class Histogram {
 public:
  // `bounds`: ascending upper bounds; must outlive the histogram (use the
  // constants above). A last bucket, +Inf, is implied.
  explicit Histogram(std::span<const double> bounds = kLatencySeconds)
      : bounds_(bounds), counts_(bounds.size() + 1, 0) {}

  void Observe(double v) { ObserveN(v, 1); }
  // Records `n` observations of value `v`.
  void ObserveN(double v, uint64_t n) {
    size_t i =
        static_cast<size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin());
    counts_[i] += n;
    sum_ += v * static_cast<double>(n);
    count_ += n;
  }
  // Sets bucket i (0..bounds().size(), the last is +Inf) directly: for
  // building a histogram from counts kept elsewhere (e.g. atomics).
  void SetBucket(size_t i, uint64_t n) {
    count_ += n - counts_[i];
    counts_[i] = n;
  }
  void SetSum(double sum) { sum_ = sum; }

  std::span<const double> bounds() const { return bounds_; }
  // Per bucket, not cumulative; counts()[bounds().size()] is the +Inf bucket.
  const std::vector<uint64_t>& counts() const { return counts_; }
  double sum() const { return sum_; }
  uint64_t count() const { return count_; }

 private:
  std::span<const double> bounds_;
  std::vector<uint64_t> counts_;
  double sum_ = 0;
  uint64_t count_ = 0;
};

// Label name/value pairs of one sample, in output order.
using Labels = std::vector<std::pair<std::string_view, std::string>>;

// Builds a Prometheus text exposition. Call Family() once per metric name,
// then its samples. Names must match [a-zA-Z_:][a-zA-Z0-9_:]*; label values
// may hold any bytes (escaped here).
class TextWriter {
 public:
  // "# HELP name help" and "# TYPE name type"; type is "counter", "gauge" or
  // "histogram".
  void Family(std::string_view name, std::string_view type, std::string_view help) {
    out_.append("# HELP ").append(name).append(" ");
    AppendEscaped(help, /*quote=*/false);
    out_.append("\n# TYPE ").append(name).append(" ").append(type).append("\n");
  }

  // One sample line: name{labels} value.
  void Sample(std::string_view name, const Labels& labels, double value) {
    out_.append(name);
    AppendLabels(labels, {});
    out_.append(" ").append(FormatNumber(value)).append("\n");
  }

  // A histogram's _bucket (cumulative, le="..."), _sum and _count lines.
  void HistogramSamples(std::string_view name, const Labels& labels, const Histogram& h) {
    uint64_t cumulative = 0;
    std::string bucket = std::string(name) + "_bucket";
    for (size_t i = 0; i < h.counts().size(); ++i) {
      cumulative += h.counts()[i];
      std::string le = i < h.bounds().size() ? FormatNumber(h.bounds()[i]) : "+Inf";
      out_.append(bucket);
      AppendLabels(labels, le);
      out_.append(" ").append(std::to_string(cumulative)).append("\n");
    }
    Sample(std::string(name) + "_sum", labels, h.sum());
    Sample(std::string(name) + "_count", labels, static_cast<double>(h.count()));
  }

  const std::string& text() const { return out_; }

  // Integers exactly (up to 2^53), other values with up to 9 significant
  // digits; NaN and infinities as Prometheus spells them.
  static std::string FormatNumber(double v) {
    if (std::isnan(v)) return "NaN";
    if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
    char buf[32];
    if (v == std::floor(v) && std::fabs(v) < 9007199254740992.0) {
      std::snprintf(buf, sizeof buf, "%.0f", v);
    } else {
      std::snprintf(buf, sizeof buf, "%.9g", v);
    }
    return buf;
  }

 private:
  void AppendLabels(const Labels& labels, std::string_view le) {
    if (labels.empty() && le.empty()) return;
    out_.append("{");
    bool first = true;
    for (const auto& [k, v] : labels) {
      if (!first) out_.append(",");
      first = false;
      out_.append(k).append("=\"");
      AppendEscaped(v, /*quote=*/true);
      out_.append("\"");
    }
    if (!le.empty()) {
      if (!first) out_.append(",");
      out_.append("le=\"").append(le).append("\"");
    }
    out_.append("}");
  }

  // Escapes backslash and newline (and the double quote in label values).
  void AppendEscaped(std::string_view s, bool quote) {
    for (char c : s) {
      if (c == '\\') {
        out_.append("\\\\");
      } else if (c == '\n') {
        out_.append("\\n");
      } else if (c == '"' && quote) {
        out_.append("\\\"");
      } else {
        out_.push_back(c);
      }
    }
  }

  std::string out_;
};

// Where an HTTP endpoint (--http, --metrics) listens: "HOST:PORT", with
// HOST an address or name ("[::1]" for IPv6) and PORT 0-65535 (0: any).
struct ListenAddress {
  std::string host;
  int port = 0;
};
// The address, or nullopt if `s` is not HOST:PORT.
inline std::optional<ListenAddress> ParseListenAddress(std::string_view s) {
  size_t colon = s.rfind(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == s.size()) return std::nullopt;
  std::string_view host = s.substr(0, colon), port = s.substr(colon + 1);
  if (host.front() == '[') {
    if (host.size() < 3 || host.back() != ']') return std::nullopt;
    host = host.substr(1, host.size() - 2);
  } else if (host.find(':') != std::string_view::npos) {
    return std::nullopt;  // IPv6 needs brackets
  }
  if (port.size() > 5) return std::nullopt;
  int p = 0;
  for (char c : port) {
    if (c < '0' || c > '9') return std::nullopt;
    p = p * 10 + (c - '0');
  }
  if (p > 65535) return std::nullopt;
  for (char c : host) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) return std::nullopt;
  }
  return ListenAddress{std::string(host), p};
}

}  // namespace todo::metrics
