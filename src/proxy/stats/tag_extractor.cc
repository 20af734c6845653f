#include "proxy/stats/tag_extractor.h"

#include <re2/re2.h>

#include <algorithm>

namespace sheave::stats {
namespace {

struct DefaultExtractor {
  std::string_view tag_name;
  std::string_view regex;
  std::string_view negative_value;
};

// Pattern fragments shared by the default regexes.
constexpr std::string_view kAddressPattern =
    R"((?:(?:\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}|\[[a-fA-F_\d]+\])_\d+))";
constexpr std::string_view kTagValuePattern = R"([^\.]+)";
constexpr std::string_view kCipherPattern = R"([\w-]+)";

std::string expand(std::string_view regex) {
  std::string out(regex);
  auto replaceAll = [&out](std::string_view from, std::string_view to) {
    size_t pos = 0;
    while ((pos = out.find(from, pos)) != std::string::npos) {
      out.replace(pos, from.size(), to);
      pos += to.size();
    }
  };
  replaceAll("<ADDRESS>", kAddressPattern);
  replaceAll("<TAG_VALUE>", kTagValuePattern);
  replaceAll("<CIPHER>", kCipherPattern);
  replaceAll("<TLS_VERSION>", R"(TLSv\d\.\d)");
  replaceAll("<ROUTE_CONFIG_NAME>", R"([\w\-\.]+)");
  replaceAll("<LISTENER_OR_CLUSTER_WITH_NAME>", R"((?:listener|cluster)\..*?)");
  return out;
}

// The subset of Envoy's default extractors that Sheave's stats can produce.
// Envoy writes some of them as token patterns ("cluster.$.**"); those are
// spelled here as the equivalent regex. Order = tag order in the output.
const std::vector<DefaultExtractor>& defaultExtractors() {
  using namespace tag_names;
  static const std::vector<DefaultExtractor> extractors = {
      {kResponseCode, R"(_rq(_(\d{3}))$)", ""},
      {kResponseCodeClass, R"(_rq_((\d))xx$)", ""},
      {kGrpcBridgeMethod, R"(^cluster\.<TAG_VALUE>\.grpc\.<TAG_VALUE>\.((<TAG_VALUE>)\.))", ""},
      {kHttpUserAgent, R"(^http\.<TAG_VALUE>\.user_agent\.((<TAG_VALUE>)\.))", ""},
      {kVirtualCluster, R"(^vhost\.<TAG_VALUE>\.vcluster\.((<TAG_VALUE>)\.))", ""},
      {kFaultDownstreamCluster, R"(^http\.<TAG_VALUE>\.fault\.((<TAG_VALUE>)\.))", ""},
      {kSslCipher, R"(^listener\..*?\.ssl\.ciphers(\.(<CIPHER>))$)", ""},
      {kSslCurve, R"(^<LISTENER_OR_CLUSTER_WITH_NAME>\.ssl\.curves(\.(<CIPHER>))$)", ""},
      {kSslSigalg, R"(^<LISTENER_OR_CLUSTER_WITH_NAME>\.ssl\.sigalgs(\.(<CIPHER>))$)", ""},
      {kSslVersion, R"(^<LISTENER_OR_CLUSTER_WITH_NAME>\.ssl\.versions(\.(<TLS_VERSION>))$)", ""},
      {kSslCipherSuite, R"(^cluster\.<TAG_VALUE>\.ssl\.ciphers(\.(<CIPHER>))$)", ""},
      {kGrpcBridgeService, R"(^cluster\.<TAG_VALUE>\.grpc\.((<TAG_VALUE>)\.))", ""},
      {kTcpPrefix, R"(^tcp\.((<TAG_VALUE>)\.))", ""},
      {kUdpPrefix, R"(^udp\.((<TAG_VALUE>)\.))", ""},
      {kRatelimitPrefix, R"(^ratelimit\.((<TAG_VALUE>)\.))", ""},
      {kClusterName, R"(^cluster\.((<TAG_VALUE>)\.))", ""},
      {kHttpConnManagerPrefix, R"(^listener\..*?\.http\.((<TAG_VALUE>)\.))", ""},
      {kExtAuthzPrefix, R"(^(?:cluster|http)\.<TAG_VALUE>\.ext_authz\.((<TAG_VALUE>)\.))", ""},
      {kHttpConnManagerPrefix, R"(^http\.((<TAG_VALUE>)\.))", ""},
      {kWorkerId,
       R"(^(?:listener\.(?:<ADDRESS>|<TAG_VALUE>)\.|server\.|listener_manager\.)worker_((\d+)\.))",
       ""},
      {kListenerAddress, R"(^listener\.((<ADDRESS>|<TAG_VALUE>)\.))", "admin"},
      {kVirtualHost, R"(^vhost\.((<TAG_VALUE>)\.))", ""},
      {kRdsRouteConfig, R"(^http\.<TAG_VALUE>\.rds\.((<ROUTE_CONFIG_NAME>)\.)\w+?$)", ""},
      {kRoute, R"(^vhost\.<TAG_VALUE>\.route\.((<TAG_VALUE>)\.))", ""},
      {kLocalHttpRatelimitPrefix, R"(^((<TAG_VALUE>)\.)http_local_rate_limit\.)", ""},
      {kLocalNetworkRatelimitPrefix, R"(^local_rate_limit\.((<TAG_VALUE>)\.))", ""},
  };
  return extractors;
}

}  // namespace

TagExtractor::TagExtractor(std::string tag_name, std::unique_ptr<re2::RE2> regex,
                           std::string negative_value)
    : tag_name_(std::move(tag_name)),
      regex_(std::move(regex)),
      negative_value_(std::move(negative_value)) {}

TagExtractor::~TagExtractor() = default;

Result<std::unique_ptr<TagExtractor>> TagExtractor::create(std::string tag_name,
                                                           std::string_view regex,
                                                           std::string negative_value) {
  if (tag_name.empty()) return invalidArgument("tag extractor: tag_name must not be empty");
  RE2::Options options;
  options.set_log_errors(false);
  auto re = std::make_unique<re2::RE2>(re2::StringPiece(regex.data(), regex.size()), options);
  if (!re->ok()) {
    return invalidArgument("tag extractor '" + tag_name + "': invalid regex '" +
                           std::string(regex) + "': " + re->error());
  }
  if (re->NumberOfCapturingGroups() < 1) {
    return invalidArgument("tag extractor '" + tag_name + "': regex '" + std::string(regex) +
                           "' needs at least one capture group");
  }
  return std::unique_ptr<TagExtractor>(
      new TagExtractor(std::move(tag_name), std::move(re), std::move(negative_value)));
}

bool TagExtractor::extract(std::string_view name, std::vector<Tag>& tags,
                           std::vector<std::pair<size_t, size_t>>& removals) const {
  re2::StringPiece groups[3];
  const int n = std::min(regex_->NumberOfCapturingGroups(), 2) + 1;
  const re2::StringPiece text(name.data(), name.size());
  if (!regex_->Match(text, 0, text.size(), RE2::UNANCHORED, groups, n)) return false;
  const re2::StringPiece& remove = groups[1];
  const re2::StringPiece& value = n > 2 && groups[2].data() != nullptr ? groups[2] : groups[1];
  if (remove.data() == nullptr) return false;
  std::string value_str(value.data(), value.size());
  if (!negative_value_.empty() && value_str == negative_value_) return false;
  tags.push_back(Tag{tag_name_, std::move(value_str)});
  const size_t begin = static_cast<size_t>(remove.data() - name.data());
  removals.emplace_back(begin, begin + remove.size());
  return true;
}

TagProducer::TagProducer() = default;
TagProducer::TagProducer(TagProducer&&) noexcept = default;
TagProducer& TagProducer::operator=(TagProducer&&) noexcept = default;
TagProducer::~TagProducer() = default;

Result<TagProducer> TagProducer::create(const std::vector<TagSpecifier>& specifiers,
                                        bool use_all_default_tags) {
  TagProducer producer;
  std::vector<std::string> custom_names;
  std::vector<std::string> requested_defaults;
  for (size_t i = 0; i < specifiers.size(); ++i) {
    const TagSpecifier& spec = specifiers[i];
    const std::string where = "stats_config.stats_tags[" + std::to_string(i) + "]";
    if (spec.tag_name.empty()) return invalidArgument("tag_name must not be empty").at(where);
    if (!spec.regex.empty() && !spec.fixed_value.empty()) {
      return invalidArgument("only one of regex and fixed_value may be set").at(where);
    }
    if (!spec.fixed_value.empty()) {
      producer.fixed_tags_.push_back(Tag{spec.tag_name, spec.fixed_value});
      continue;
    }
    if (spec.regex.empty()) {
      const auto& defaults = defaultExtractors();
      const bool known = std::any_of(defaults.begin(), defaults.end(),
                                     [&](const auto& d) { return d.tag_name == spec.tag_name; });
      if (!known) {
        return invalidArgument("no regex, no fixed_value and '" + spec.tag_name +
                               "' is not a default tag name")
            .at(where);
      }
      requested_defaults.push_back(spec.tag_name);
      continue;
    }
    auto extractor = TagExtractor::create(spec.tag_name, spec.regex);
    if (!extractor.ok()) return std::move(extractor).error().at(where);
    producer.extractors_.push_back(std::move(extractor).value());
    custom_names.push_back(spec.tag_name);
  }
  for (const DefaultExtractor& d : defaultExtractors()) {
    const std::string tag_name(d.tag_name);
    if (std::find(custom_names.begin(), custom_names.end(), tag_name) != custom_names.end()) {
      continue;
    }
    if (!use_all_default_tags && std::find(requested_defaults.begin(), requested_defaults.end(),
                                           tag_name) == requested_defaults.end()) {
      continue;
    }
    auto extractor = TagExtractor::create(tag_name, expand(d.regex), std::string(d.negative_value));
    if (!extractor.ok()) return std::move(extractor).error();
    producer.extractors_.push_back(std::move(extractor).value());
  }
  return producer;
}

std::string TagProducer::produceTags(std::string_view name, std::vector<Tag>& tags) const {
  tags.insert(tags.end(), fixed_tags_.begin(), fixed_tags_.end());
  std::vector<std::pair<size_t, size_t>> removals;
  for (const auto& extractor : extractors_) {
    // One value per tag name: the first extractor that matches wins.
    const bool seen = std::any_of(tags.begin(), tags.end(),
                                  [&](const Tag& t) { return t.name == extractor->tagName(); });
    if (seen) continue;
    extractor->extract(name, tags, removals);
  }
  if (removals.empty()) return std::string(name);
  std::vector<bool> removed(name.size(), false);
  for (const auto& [begin, end] : removals) {
    for (size_t i = begin; i < end; ++i) removed[i] = true;
  }
  std::string out;
  out.reserve(name.size());
  for (size_t i = 0; i < name.size(); ++i) {
    if (!removed[i]) out.push_back(name[i]);
  }
  return out;
}

}  // namespace sheave::stats
