#include "proxy/stats/stats_formatter.h"
#include "common/json_string.h"

#include <fmt/format.h>
#include <re2/re2.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <optional>

namespace sheave::stats {
namespace {

std::string formatDouble(double v) {
  if (std::isnan(v)) return "nan";
  return fmt::format("{}", v);
}

std::string jsonDouble(double v) { return std::isnan(v) ? "null" : fmt::format("{}", v); }

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string urlDecode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out.push_back(' ');
    } else if (s[i] == '%' && i + 2 < s.size() && hexValue(s[i + 1]) >= 0 &&
               hexValue(s[i + 2]) >= 0) {
      out.push_back(static_cast<char>(hexValue(s[i + 1]) * 16 + hexValue(s[i + 2])));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

std::string prometheusLabelValue(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::string prometheusLabels(const std::vector<Tag>& tags, std::string_view extra_name = {},
                             std::string_view extra_value = {}) {
  std::string out = "{";
  bool first = true;
  for (const Tag& tag : tags) {
    if (!first) out.push_back(',');
    first = false;
    std::string name = prometheusSanitizeName(tag.name);
    if (!name.empty() && name[0] >= '0' && name[0] <= '9') name.insert(0, "_");
    out += name;
    out += "=\"";
    out += prometheusLabelValue(tag.value);
    out.push_back('"');
  }
  if (!extra_name.empty()) {
    if (!first) out.push_back(',');
    out += extra_name;
    out += "=\"";
    out += extra_value;
    out.push_back('"');
  }
  out.push_back('}');
  return out;
}

}  // namespace

std::string prometheusSanitizeName(std::string_view name) {
  std::string out(name);
  for (char& c : out) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (!ok) c = '_';
  }
  return out;
}

Result<StatsParams> StatsParams::parseQuery(std::string_view query) {
  StatsParams params;
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair.empty()) continue;
    size_t eq = pair.find('=');
    std::string key = urlDecode(pair.substr(0, eq));
    std::string value = eq == std::string_view::npos ? "" : urlDecode(pair.substr(eq + 1));
    if (key == "format") {
      if (value == "json") {
        params.format = Format::kJson;
      } else if (value == "prometheus") {
        params.format = Format::kPrometheus;
      } else if (value == "text" || value.empty()) {
        params.format = Format::kText;
      } else {
        return invalidArgument("usage: /stats?format=(text|json|prometheus); unknown format '" +
                               value + "'");
      }
    } else if (key == "filter") {
      params.filter = value;
    } else if (key == "usedonly") {
      params.used_only = true;
    }
  }
  return params;
}

StatsFormatter::StatsFormatter(StatsFormatter&&) noexcept = default;
StatsFormatter& StatsFormatter::operator=(StatsFormatter&&) noexcept = default;
StatsFormatter::~StatsFormatter() = default;

Result<StatsFormatter> StatsFormatter::create(const StatsParams& params) {
  StatsFormatter f;
  f.params_ = params;
  if (!params.filter.empty()) {
    re2::RE2::Options options;
    options.set_log_errors(false);
    f.filter_ = std::make_unique<re2::RE2>(params.filter, options);
    if (!f.filter_->ok()) {
      return invalidArgument("invalid filter regex '" + params.filter + "': " + f.filter_->error());
    }
  }
  return f;
}

bool StatsFormatter::selected(const std::string& name, bool used) const {
  if (params_.used_only && !used) return false;
  return filter_ == nullptr || re2::RE2::PartialMatch(name, *filter_);
}

std::string StatsFormatter::format(const Store& store) const {
  switch (params_.format) {
    case StatsParams::Format::kJson:
      return json(store);
    case StatsParams::Format::kPrometheus:
      return prometheus(store);
    case StatsParams::Format::kText:
      break;
  }
  return text(store);
}

namespace {
// Counters and gauges interleaved by name, as Envoy prints them.
std::map<std::string, uint64_t> scalarValues(
    const Store& store, const std::function<bool(const std::string&, bool)>& keep) {
  std::map<std::string, uint64_t> out;
  for (const auto& c : store.counters()) {
    std::string name = c->name();
    if (keep(name, c->used())) out.emplace(std::move(name), c->value());
  }
  for (const auto& g : store.gauges()) {
    std::string name = g->name();
    if (keep(name, g->used())) out.emplace(std::move(name), g->value());
  }
  return out;
}
}  // namespace

std::string StatsFormatter::text(const Store& store) const {
  auto keep = [this](const std::string& n, bool u) { return selected(n, u); };
  std::string out;
  for (const auto& [name, value] : scalarValues(store, keep)) {
    out += name;
    out += ": ";
    out += std::to_string(value);
    out.push_back('\n');
  }
  for (const auto& h : store.histograms()) {
    const std::string name = h->name();
    if (!selected(name, h->used())) continue;
    out += name;
    out += ": ";
    if (!h->used()) {
      out += "No recorded values\n";
      continue;
    }
    const std::vector<double> interval = h->interval().computedQuantiles();
    const std::vector<double> cumulative = h->cumulative().computedQuantiles();
    const auto& quantiles = supportedQuantiles();
    for (size_t i = 0; i < quantiles.size(); ++i) {
      if (i > 0) out.push_back(' ');
      out += fmt::format("P{}({},{})", quantiles[i], formatDouble(interval[i]),
                         formatDouble(cumulative[i]));
    }
    out.push_back('\n');
  }
  return out;
}

std::string StatsFormatter::json(const Store& store) const {
  auto keep = [this](const std::string& n, bool u) { return selected(n, u); };
  std::string out = "{\"stats\":[";
  bool first = true;
  for (const auto& [name, value] : scalarValues(store, keep)) {
    if (!first) out.push_back(',');
    first = false;
    out += "{\"name\":";
    appendJsonString(out, name);
    out += ",\"value\":";
    out += std::to_string(value);
    out.push_back('}');
  }
  std::string computed;
  for (const auto& h : store.histograms()) {
    const std::string name = h->name();
    if (!selected(name, h->used())) continue;
    if (!computed.empty()) computed.push_back(',');
    computed += "{\"name\":";
    appendJsonString(computed, name);
    computed += ",\"values\":[";
    const std::vector<double> interval = h->interval().computedQuantiles();
    const std::vector<double> cumulative = h->cumulative().computedQuantiles();
    for (size_t i = 0; i < interval.size(); ++i) {
      if (i > 0) computed.push_back(',');
      computed += fmt::format("{{\"interval\":{},\"cumulative\":{}}}", jsonDouble(interval[i]),
                              jsonDouble(cumulative[i]));
    }
    computed += "]}";
  }
  if (!computed.empty()) {
    if (!first) out.push_back(',');
    out += "{\"histograms\":{\"supported_quantiles\":[";
    const auto& quantiles = supportedQuantiles();
    for (size_t i = 0; i < quantiles.size(); ++i) {
      if (i > 0) out.push_back(',');
      out += fmt::format("{}", quantiles[i]);
    }
    out += "],\"computed_quantiles\":[";
    out += computed;
    out += "]}}";
  }
  out += "]}";
  return out;
}

std::string StatsFormatter::prometheus(const Store& store) const {
  enum class Type { kCounter, kGauge, kHistogram };
  struct Family {
    Type type;
    // Samples sorted by full stat name for a stable output.
    std::map<std::string, std::string> lines;
  };
  std::map<std::string, Family> families;
  // Tags are not stored with the stats: they are extracted here, once per
  // stat and scrape, from the full name.
  const TagProducer& producer = store.tagProducer();
  struct Labeled {
    std::string name;
    std::string family;
    std::vector<Tag> tags;
  };
  auto label = [&](const Metric& m) {
    Labeled l;
    l.name = m.name();
    if (!selected(l.name, m.used())) return std::optional<Labeled>();
    l.family = "envoy_" + prometheusSanitizeName(producer.produceTags(l.name, l.tags));
    return std::optional<Labeled>(std::move(l));
  };
  auto add = [&families](Type type, Labeled& l, std::string lines) {
    auto [it, inserted] = families.try_emplace(l.family, Family{type, {}});
    // A family has one type; a stat of another type under the same name
    // would make the exposition invalid, so it is left out.
    if (it->second.type != type) return;
    it->second.lines.emplace(std::move(l.name), std::move(lines));
  };

  for (const auto& c : store.counters()) {
    auto l = label(*c);
    if (!l) continue;
    std::string line =
        l->family + prometheusLabels(l->tags) + " " + std::to_string(c->value()) + "\n";
    add(Type::kCounter, *l, std::move(line));
  }
  for (const auto& g : store.gauges()) {
    auto l = label(*g);
    if (!l) continue;
    std::string line =
        l->family + prometheusLabels(l->tags) + " " + std::to_string(g->value()) + "\n";
    add(Type::kGauge, *l, std::move(line));
  }
  for (const auto& h : store.histograms()) {
    auto l = label(*h);
    if (!l) continue;
    const std::string& family = l->family;
    const std::vector<Tag>& tags = l->tags;
    const HistogramSnapshot snap = h->cumulative();
    const std::vector<uint64_t> cumulative = snap.cumulativeCounts();
    std::string lines;
    for (size_t i = 0; i < snap.bounds.size(); ++i) {
      lines += family + "_bucket" +
               prometheusLabels(tags, "le", fmt::format("{}", snap.bounds[i])) + " " +
               std::to_string(cumulative[i]) + "\n";
    }
    lines += family + "_bucket" + prometheusLabels(tags, "le", "+Inf") + " " +
             std::to_string(snap.sample_count) + "\n";
    lines +=
        family + "_sum" + prometheusLabels(tags) + " " + std::to_string(snap.sample_sum) + "\n";
    lines +=
        family + "_count" + prometheusLabels(tags) + " " + std::to_string(snap.sample_count) + "\n";
    add(Type::kHistogram, *l, std::move(lines));
  }

  std::string out;
  for (const auto& [name, family] : families) {
    out += "# TYPE ";
    out += name;
    switch (family.type) {
      case Type::kCounter:
        out += " counter\n";
        break;
      case Type::kGauge:
        out += " gauge\n";
        break;
      case Type::kHistogram:
        out += " histogram\n";
        break;
    }
    for (const auto& [_, lines] : family.lines) out += lines;
  }
  appendLabeledFamilies(store, out);
  return out;
}

void StatsFormatter::appendLabeledFamilies(const Store& store, std::string& out) const {
  std::string dropped;
  for (const auto& family : store.labeledFamilies()) {
    const std::string& name = family->name();
    if (!selected(name, true)) continue;
    if (family->dropped() > 0) {
      dropped += "sheave_labeled_series_dropped_total{metric=\"" + prometheusLabelValue(name) +
                 "\"} " + std::to_string(family->dropped()) + "\n";
    }
    if (family->size() == 0) continue;
    const bool histogram = family->type() == LabeledFamily::Type::kHistogram;
    out += "# TYPE " + name + (histogram ? " histogram\n" : " counter\n");
    const auto& label_names = family->labelNames();
    family->forEach([&](const LabeledFamily::Series& series) {
      std::vector<Tag> tags;
      tags.reserve(label_names.size());
      for (size_t i = 0; i < label_names.size(); ++i) {
        tags.push_back(Tag{label_names[i], series.values()[i]});
      }
      if (!histogram) {
        out +=
            name + prometheusLabels(tags) + " " + std::to_string(series.counter().value()) + "\n";
        return;
      }
      const HistogramSnapshot snap = series.histogram()->cumulative();
      const std::vector<uint64_t> cumulative = snap.cumulativeCounts();
      for (size_t i = 0; i < snap.bounds.size(); ++i) {
        out += name + "_bucket" + prometheusLabels(tags, "le", fmt::format("{}", snap.bounds[i])) +
               " " + std::to_string(cumulative[i]) + "\n";
      }
      out += name + "_bucket" + prometheusLabels(tags, "le", "+Inf") + " " +
             std::to_string(snap.sample_count) + "\n";
      out += name + "_sum" + prometheusLabels(tags) + " " + std::to_string(snap.sample_sum) + "\n";
      out +=
          name + "_count" + prometheusLabels(tags) + " " + std::to_string(snap.sample_count) + "\n";
    });
  }
  if (!dropped.empty()) {
    out += "# TYPE sheave_labeled_series_dropped_total counter\n";
    out += dropped;
  }
}

}  // namespace sheave::stats
