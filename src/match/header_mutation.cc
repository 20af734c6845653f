#include "match/header_mutation.h"

#include <utility>

#include "match/field_path.h"
#include "match/string_matcher.h"

namespace sheave {

namespace {

// Envoy refuses to let route configuration touch the request line or the
// authority through header lists; rewrites have their own fields.
bool isModifiable(std::string_view lower_name) {
  return !lower_name.empty() && lower_name[0] != ':' && lower_name != "host";
}

}  // namespace

Result<HeaderMutations> HeaderMutations::create(
    const google::protobuf::RepeatedPtrField<envoy::config::core::v3::HeaderValueOption>& add,
    const google::protobuf::RepeatedPtrField<std::string>& remove, std::string_view add_field,
    std::string_view remove_field) {
  using Option = envoy::config::core::v3::HeaderValueOption;
  HeaderMutations out;
  for (int i = 0; i < remove.size(); ++i) {
    std::string name = asciiLower(remove[i]);
    if (name.empty()) return invalidArgument("must not be empty").at(indexedField(remove_field, i));
    if (!isModifiable(name)) {
      return invalidArgument("':'-prefixed or host headers may not be removed ('" + remove[i] +
                             "')")
          .at(indexedField(remove_field, i));
    }
    out.removals_.push_back(std::move(name));
  }
  for (int i = 0; i < add.size(); ++i) {
    const Option& opt = add[i];
    const std::string where = indexedField(add_field, i);
    Addition a;
    a.name = asciiLower(opt.header().key());
    if (a.name.empty()) return invalidArgument("must not be empty").at(where + ".header.key");
    if (!isModifiable(a.name)) {
      return invalidArgument("':'-prefixed or host headers may not be modified ('" +
                             opt.header().key() + "')")
          .at(where + ".header.key");
    }
    a.value = !opt.header().value().empty() ? opt.header().value() : opt.header().raw_value();
    if (opt.has_append()) {
      if (opt.append_action() != Option::APPEND_IF_EXISTS_OR_ADD) {
        return invalidArgument("both append and append_action are set, which is not allowed")
            .at(where);
      }
      a.action = opt.append().value() ? AppendAction::kAppendIfExistsOrAdd
                                      : AppendAction::kOverwriteIfExistsOrAdd;
    } else {
      switch (opt.append_action()) {
        case Option::APPEND_IF_EXISTS_OR_ADD:
          a.action = AppendAction::kAppendIfExistsOrAdd;
          break;
        case Option::ADD_IF_ABSENT:
          a.action = AppendAction::kAddIfAbsent;
          break;
        case Option::OVERWRITE_IF_EXISTS_OR_ADD:
          a.action = AppendAction::kOverwriteIfExistsOrAdd;
          break;
        case Option::OVERWRITE_IF_EXISTS:
          a.action = AppendAction::kOverwriteIfExists;
          break;
        default:
          return invalidArgument("unknown value " + std::to_string(opt.append_action()))
              .at(where + ".append_action");
      }
    }
    a.keep_empty_value = opt.keep_empty_value();
    out.additions_.push_back(std::move(a));
  }
  return out;
}

void HeaderMutations::apply(HeaderMap& headers) const {
  for (const auto& name : removals_) headers.remove(name);
  if (additions_.empty()) return;

  // Decide every addition against the headers as they were before this level
  // added anything (as Envoy does), then overwrite, then append.
  std::vector<const Addition*> overwrites;
  std::vector<const Addition*> appends;
  for (const auto& a : additions_) {
    const std::string& v = value(a);
    if (v.empty() && !a.keep_empty_value) continue;
    switch (a.action) {
      case AppendAction::kAppendIfExistsOrAdd:
        appends.push_back(&a);
        break;
      case AppendAction::kAddIfAbsent:
        if (!headers.has(a.name)) appends.push_back(&a);
        break;
      case AppendAction::kOverwriteIfExists:
        if (headers.has(a.name)) overwrites.push_back(&a);
        break;
      case AppendAction::kOverwriteIfExistsOrAdd:
        overwrites.push_back(&a);
        break;
    }
  }
  for (const Addition* a : overwrites) headers.set(a->name, value(*a));
  for (const Addition* a : appends) headers.add(a->name, value(*a));
}

}  // namespace sheave
