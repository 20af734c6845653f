#include "control/xds/xds_status.h"

#include <algorithm>

namespace sheave::control::xds {

Histogram Histogram::seconds() {
  Histogram h;
  // Istio's pilot histograms span 10 ms to 30 s; finer at the low end because
  // the convergence target is under a second.
  h.bounds = {0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 3, 5, 10, 20, 30};
  h.counts.assign(h.bounds.size() + 1, 0);
  return h;
}

void Histogram::record(double value) {
  auto it = std::lower_bound(bounds.begin(), bounds.end(), value);
  counts[static_cast<size_t>(it - bounds.begin())]++;
  sum += value;
  count++;
}

}  // namespace sheave::control::xds
