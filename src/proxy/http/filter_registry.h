#pragma once

#include <google/protobuf/any.pb.h>

#include <functional>
#include <map>
#include <string>
#include <string_view>

#include "common/result.h"
#include "proxy/http/filter.h"
#include "proxy/stats/scope.h"

namespace sheave::http {

struct FilterFactoryContext {
  stats::Scope& scope;  // the connection manager's "http.<stat_prefix>." scope
  std::string_view stat_prefix;
  stats::Scope& root;  // the server's root scope, for filters whose stats Envoy roots there
};

// HTTP filter factories keyed by the type URL of their typed_config (Envoy's
// rule: the type, not the filter's name, selects the implementation). A
// factory parses its proto once and returns the per-stream creator.
class FilterRegistry {
 public:
  using Factory =
      std::function<Result<FilterFactoryCb>(const google::protobuf::Any&, FilterFactoryContext&)>;

  void add(std::string type_url, Factory factory) {
    factories_[std::move(type_url)] = std::move(factory);
  }
  const Factory* find(std::string_view type_url) const {
    auto it = factories_.find(std::string(type_url));
    return it == factories_.end() ? nullptr : &it->second;
  }

 private:
  std::map<std::string, Factory, std::less<>> factories_;
};

}  // namespace sheave::http
