#include "match/fractional_percent.h"

#include <string>

namespace sheave {

Result<Fraction> parseFractionalPercent(const envoy::type::v3::FractionalPercent& p,
                                        std::string_view where) {
  Fraction out;
  out.numerator = p.numerator();
  switch (p.denominator()) {
    case envoy::type::v3::FractionalPercent::HUNDRED:
      out.denominator = 100;
      break;
    case envoy::type::v3::FractionalPercent::TEN_THOUSAND:
      out.denominator = 10000;
      break;
    case envoy::type::v3::FractionalPercent::MILLION:
      out.denominator = 1000000;
      break;
    default:
      return invalidArgument("unknown denominator " + std::to_string(p.denominator()))
          .at(std::string(where) + ".denominator");
  }
  return out;
}

}  // namespace sheave
