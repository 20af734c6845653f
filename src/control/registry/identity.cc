#include "control/registry/identity.h"

namespace sheave::control {

std::string spiffeIdentity(std::string_view namespace_name, std::string_view service_account,
                           std::string_view trust_domain) {
  if (service_account.empty()) service_account = kDefaultServiceAccount;
  std::string out = "spiffe://";
  out.append(trust_domain)
      .append("/ns/")
      .append(namespace_name)
      .append("/sa/")
      .append(service_account);
  return out;
}

}  // namespace sheave::control
