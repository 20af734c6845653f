#pragma once

#include <cstdint>
#include <string_view>

#include "common/result.h"
#include "envoy/type/v3/percent.pb.h"

namespace sheave {

// envoy.type.v3.FractionalPercent with its denominator resolved.
struct Fraction {
  uint64_t numerator = 0;
  uint64_t denominator = 100;
  // Envoy's rule: on when random % denominator < numerator.
  bool enabled(uint64_t random) const { return random % denominator < numerator; }
};

// An unknown denominator is an error at `where`.denominator.
Result<Fraction> parseFractionalPercent(const envoy::type::v3::FractionalPercent& p,
                                        std::string_view where);

}  // namespace sheave
