#include "proxy/stats/metric.h"

#include "proxy/stats/stat_registry.h"

namespace sheave::stats {

std::string Metric::name() const {
  if (node_ == nullptr) return {};
  return node_->registry().fullName(*node_, leaf_);
}

std::string Metric::tagExtractedName() const {
  if (node_ == nullptr) return {};
  std::vector<Tag> ignored;
  return node_->registry().tagProducer().produceTags(name(), ignored);
}

std::vector<Tag> Metric::tags() const {
  std::vector<Tag> out;
  if (node_ != nullptr) node_->registry().tagProducer().produceTags(name(), out);
  return out;
}

}  // namespace sheave::stats
