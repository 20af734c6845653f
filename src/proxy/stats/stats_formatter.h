#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "common/result.h"
#include "proxy/stats/store.h"

namespace re2 {
class RE2;
}

namespace sheave::stats {

// Query parameters of Envoy's /stats and /stats/prometheus admin endpoints.
struct StatsParams {
  enum class Format { kText, kJson, kPrometheus };
  Format format = Format::kText;
  // RE2, matched anywhere in the full stat name; empty selects everything.
  std::string filter;
  // Only stats written at least once (?usedonly).
  bool used_only = false;

  // Parses a URL query string without the '?': "format=json&filter=^http&usedonly".
  // "format" accepts text, json and prometheus; unknown parameters are ignored
  // as Envoy does, a bad value is an error.
  static Result<StatsParams> parseQuery(std::string_view query);
};

// Content type of the Prometheus text exposition format 0.0.4.
inline constexpr std::string_view kPrometheusContentType =
    "text/plain; version=0.0.4; charset=utf-8";

// Renders a Store the way Envoy's admin does:
// - text: "name: value" lines, counters and gauges sorted together by name,
//   then histograms as "name: P0(interval,cumulative) P25(...) ... P100(...)"
//   or "name: No recorded values";
// - json: {"stats":[{"name":..,"value":..},...,{"histograms":{
//   "supported_quantiles":[...],"computed_quantiles":[{"name":..,"values":
//   [{"interval":x,"cumulative":y},...]}]}}]}, NaN as null;
// - prometheus: families named envoy_<sanitized tag-extracted name> with the
//   extracted tags as labels, sorted by family, one "# TYPE" line each; then
//   the labelled families (Scope::labeledFamily) under their own names, and
//   sheave_labeled_series_dropped_total{metric=...} when a family was full.
// Quantiles are interpolated inside the fixed buckets, an approximation of
// Envoy's log-linear histograms (exact at bucket bounds).
class StatsFormatter {
 public:
  static Result<StatsFormatter> create(const StatsParams& params);
  StatsFormatter(StatsFormatter&&) noexcept;
  StatsFormatter& operator=(StatsFormatter&&) noexcept;
  ~StatsFormatter();

  // Output in params.format.
  std::string format(const Store& store) const;
  std::string text(const Store& store) const;
  std::string json(const Store& store) const;
  std::string prometheus(const Store& store) const;

 private:
  StatsFormatter() = default;
  bool selected(const std::string& name, bool used) const;
  // Labelled families (Istio's metrics) under their own names, no envoy_ prefix.
  void appendLabeledFamilies(const Store& store, std::string& out) const;

  StatsParams params_;
  std::unique_ptr<re2::RE2> filter_;
};

// Prometheus naming: every character outside [a-zA-Z0-9_] becomes '_'.
std::string prometheusSanitizeName(std::string_view name);

}  // namespace sheave::stats
