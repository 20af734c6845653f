#include "control/model/duration.h"

#include <cstdint>
#include <limits>

namespace sheave::control {

namespace {

struct Unit {
  std::string_view name;
  int64_t nanos;
};

constexpr Unit kUnits[] = {
    {"ns", 1},
    {"us", 1'000},
    {"\xC2\xB5s", 1'000},  // µs (micro sign)
    {"\xCE\xBCs", 1'000},  // μs (Greek mu), as Go accepts both
    {"ms", 1'000'000},
    {"s", 1'000'000'000},
    {"m", 60LL * 1'000'000'000},
    {"h", 3600LL * 1'000'000'000},
};

bool isDigit(char c) { return c >= '0' && c <= '9'; }

}  // namespace

Result<Duration> parseDuration(std::string_view text) {
  auto bad = [&](const std::string& why) {
    return invalidArgument("invalid duration \"" + std::string(text) + "\": " + why);
  };
  if (text.empty()) return bad("empty");
  if (text[0] == '-') return bad("must not be negative");
  if (text[0] == '+') text.remove_prefix(1);
  if (text == "0") return Duration::zero();

  // Accumulate in long double so "1.5s" and "0.001s" are exact enough, then
  // check the range once.
  long double total = 0;
  size_t i = 0;
  while (i < text.size()) {
    const size_t start = i;
    while (i < text.size() && isDigit(text[i])) ++i;
    const size_t int_end = i;
    size_t frac_end = i;
    if (i < text.size() && text[i] == '.') {
      ++i;
      while (i < text.size() && isDigit(text[i])) ++i;
      frac_end = i;
    }
    const bool has_int = int_end > start;
    const bool has_frac = frac_end > int_end + 1;
    if (!has_int && !has_frac) return bad("expected a number");
    long double value = 0;
    for (size_t k = start; k < int_end; ++k) value = value * 10 + (text[k] - '0');
    long double scale = 0.1L;
    for (size_t k = int_end + 1; k < frac_end; ++k, scale /= 10) value += (text[k] - '0') * scale;

    const size_t unit_start = i;
    while (i < text.size() && !isDigit(text[i]) && text[i] != '.') ++i;
    const std::string_view unit = text.substr(unit_start, i - unit_start);
    if (unit.empty()) return bad("missing unit (ns, us, ms, s, m, h)");
    const Unit* found = nullptr;
    for (const Unit& u : kUnits) {
      if (u.name == unit) found = &u;
    }
    if (found == nullptr) return bad("unknown unit \"" + std::string(unit) + "\"");
    total += value * found->nanos;
  }
  if (total > static_cast<long double>(std::numeric_limits<int64_t>::max())) {
    return bad("too large");
  }
  return Duration(static_cast<int64_t>(total + 0.5L));
}

std::string formatDuration(Duration d) {
  const int64_t ns = d.count();
  if (ns == 0) return "0s";
  if (ns % 1'000'000'000 == 0) return std::to_string(ns / 1'000'000'000) + "s";
  if (ns % 1'000'000 == 0) {
    const int64_t ms = ns / 1'000'000;
    if (ms < 1000) return std::to_string(ms) + "ms";
  }
  if (ns < 1'000'000 && ns % 1'000 == 0) return std::to_string(ns / 1'000) + "us";
  if (ns < 1'000) return std::to_string(ns) + "ns";
  // Seconds with the fraction trimmed of trailing zeros.
  std::string frac = std::to_string(ns % 1'000'000'000);
  frac.insert(0, 9 - frac.size(), '0');
  while (!frac.empty() && frac.back() == '0') frac.pop_back();
  return std::to_string(ns / 1'000'000'000) + "." + frac + "s";
}

}  // namespace sheave::control
