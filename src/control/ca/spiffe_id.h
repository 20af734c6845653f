#pragma once

#include <string>
#include <string_view>

#include "common/result.h"

namespace sheave::ca {

// A workload identity in Istio's SPIFFE form:
// spiffe://<trust_domain>/ns/<ns>/sa/<sa>. Only this shape is accepted: the
// CA never signs, and the authenticators never accept, anything looser.
struct SpiffeId {
  std::string trust_domain;
  std::string ns;
  std::string sa;

  // Strict: lower-case "spiffe" scheme, a trust domain of [a-z0-9.-_] (no
  // port, no user info), a path of exactly /ns/<ns>/sa/<sa> whose segments
  // are [A-Za-z0-9.-_] and not "." or "..", no query, no fragment.
  static Result<SpiffeId> parse(std::string_view uri);
  // Checks the three parts with the same rules as parse().
  Status validate() const;
  std::string toString() const;

  bool operator==(const SpiffeId&) const = default;
};

}  // namespace sheave::ca
