#pragma once

#include <map>
#include <string>
#include <string_view>

#include "common/result.h"
#include "control/model/source_location.h"

namespace sheave::control {

// Kubernetes object metadata, as far as the mesh uses it. Bookkeeping fields
// (generation, resourceVersion, uid, managedFields, ...) are accepted and
// dropped.
struct ObjectMeta {
  std::string name;
  std::string namespace_name = "default";  // "namespace"; empty for a Namespace
  std::map<std::string, std::string> labels;
  std::map<std::string, std::string> annotations;
};

// One parsed resource: its envelope plus the typed spec (for Istio kinds the
// spec type carries the kind's name, e.g. Resource<VirtualService>).
template <typename Spec>
struct Resource {
  std::string api_version;  // as written: "networking.istio.io/v1beta1"
  std::string kind;
  ObjectMeta metadata;
  SourceLocation source;  // where the document's top-level map starts
  Spec spec;
};

// A resource that was rejected; the rest of the configuration still loads.
struct ResourceError {
  SourceLocation source;  // the document (or the file, when unreadable)
  // What the document claimed to be, as far as it could be read.
  std::string kind;
  std::string namespace_name;
  std::string name;
  // "file:line:col: field.path: what is wrong" — the offending node's line.
  Error error;

  // The error message followed by the resource it belongs to, e.g.
  // "... (VirtualService default/reviews)".
  std::string toString() const {
    std::string out = error.message();
    if (!kind.empty() || !name.empty()) {
      out += " (" + (kind.empty() ? std::string("resource") : kind);
      if (!name.empty()) {
        out += " " + (namespace_name.empty() ? name : namespace_name + "/" + name);
      }
      out += ")";
    }
    return out;
  }
};

}  // namespace sheave::control
