#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace sheave::stats {

// A tag pulled out of a stat name by a TagExtractor, e.g. envoy.cluster_name=api.
struct Tag {
  std::string name;
  std::string value;

  bool operator==(const Tag& other) const = default;
};

// What every stat has besides its value: its full Envoy name
// ("cluster.api.upstream_rq_2xx"), the name with the tag values cut out
// ("cluster.upstream_rq_xx") and the tags. Computed once, when the stat is
// created at config load, never on the request path.
class Metric {
 public:
  Metric(std::string name, std::string tag_extracted_name, std::vector<Tag> tags)
      : name_(std::move(name)),
        tag_extracted_name_(std::move(tag_extracted_name)),
        tags_(std::move(tags)) {}
  Metric(const Metric&) = delete;
  Metric& operator=(const Metric&) = delete;

  const std::string& name() const { return name_; }
  const std::string& tagExtractedName() const { return tag_extracted_name_; }
  const std::vector<Tag>& tags() const { return tags_; }

 private:
  const std::string name_;
  const std::string tag_extracted_name_;
  const std::vector<Tag> tags_;
};

}  // namespace sheave::stats
