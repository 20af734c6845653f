#include "cli/debug/proxy_config.h"

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <ctime>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <vector>

#include "cli/debug/table.h"

namespace sheave::cli {

using nlohmann::json;

namespace {

Result<json> parseDump(std::string_view text) {
  json dump = json::parse(text, nullptr, false);
  if (dump.is_discarded() || !dump.contains("configs") || !dump["configs"].is_array()) {
    return invalidArgument("the proxy's /config_dump is not Envoy's ConfigDump JSON");
  }
  return dump;
}

const json* section(const json& dump, std::string_view type_suffix) {
  for (const auto& c : dump["configs"]) {
    if (c.is_object() && c.value("@type", "").ends_with(type_suffix)) return &c;
  }
  return nullptr;
}

std::string str(const json& j, const char* key, const std::string& fallback = "") {
  if (!j.is_object()) return fallback;
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : fallback;
}

const json& at(const json& j, std::initializer_list<const char*> path) {
  static const json kNull;
  const json* cur = &j;
  for (const char* key : path) {
    if (!cur->is_object()) return kNull;
    auto it = cur->find(key);
    if (it == cur->end()) return kNull;
    cur = &*it;
  }
  return *cur;
}

// "/apis/networking.istio.io/v1/namespaces/default/destination-rule/reviews" -> "reviews.default".
std::string istioConfigName(const json& resource) {
  const std::string path = str(at(resource, {"metadata", "filter_metadata", "istio"}), "config");
  if (path.empty()) return "";
  const size_t ns_at = path.find("/namespaces/");
  const size_t name_at = path.rfind('/');
  if (ns_at == std::string::npos || name_at == std::string::npos) return path;
  const size_t ns_start = ns_at + 12;
  const std::string ns = path.substr(ns_start, path.find('/', ns_start) - ns_start);
  return path.substr(name_at + 1) + "." + ns;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    size_t end = s.find(sep, start);
    out.push_back(s.substr(start, end == std::string::npos ? std::string::npos : end - start));
    if (end == std::string::npos) return out;
    start = end + 1;
  }
}

std::string orDash(const std::string& s) { return s.empty() ? "-" : s; }

}  // namespace

Result<std::string> clustersTable(std::string_view config_dump, const ProxyConfigFilter& filter) {
  SHEAVE_ASSIGN_OR_RETURN(json dump, parseDump(config_dump));
  Table table({"SERVICE FQDN", "PORT", "SUBSET", "DIRECTION", "TYPE", "DESTINATION RULE"});
  const json* clusters = section(dump, "ClustersConfigDump");
  if (clusters == nullptr) return table.render();
  std::vector<const json*> all;
  for (const char* key : {"static_clusters", "dynamic_active_clusters"}) {
    if (!clusters->contains(key)) continue;
    for (const auto& e : (*clusters)[key]) {
      if (e.contains("cluster")) all.push_back(&e["cluster"]);
    }
  }
  for (const json* c : all) {
    const std::string name = str(*c, "name");
    std::string fqdn = name, port = "-", subset = "-", direction = "-";
    auto parts = split(name, '|');
    if (parts.size() == 4 && (parts[0] == "outbound" || parts[0] == "inbound")) {
      direction = parts[0];
      port = parts[1];
      subset = orDash(parts[2]);
      fqdn = orDash(parts[3]);
    }
    if (!filter.fqdn.empty() && fqdn.find(filter.fqdn) == std::string::npos) continue;
    if (filter.port != 0 && port != std::to_string(filter.port)) continue;
    if (!filter.subset.empty() && subset != filter.subset) continue;
    if (!filter.direction.empty() && direction != filter.direction) continue;
    // proto3 JSON leaves the default (STATIC) out.
    std::string type = str(*c, "type", c->contains("cluster_type") ? "" : "STATIC");
    if (type.empty()) type = str(at(*c, {"cluster_type"}), "name");
    table.add({fqdn, port, subset, direction, type, orDash(istioConfigName(*c))});
  }
  return table.render();
}

namespace {

std::string chainMatch(const json& chain) {
  const json& m = at(chain, {"filter_chain_match"});
  std::vector<std::string> parts;
  if (m.is_object()) {
    if (m.contains("destination_port")) {
      parts.push_back("port " + std::to_string(m["destination_port"].get<int64_t>()));
    }
    if (m.contains("transport_protocol")) parts.push_back("Trans: " + str(m, "transport_protocol"));
    if (m.contains("application_protocols")) {
      std::string alpn;
      for (const auto& p : m["application_protocols"]) {
        alpn += (alpn.empty() ? "" : ",") + p.get<std::string>();
      }
      parts.push_back("App: " + alpn);
    }
    if (m.contains("server_names")) {
      std::string sni;
      for (const auto& p : m["server_names"]) {
        sni += (sni.empty() ? "" : ",") + p.get<std::string>();
      }
      parts.push_back("SNI: " + sni);
    }
    if (m.contains("prefix_ranges")) {
      for (const auto& r : m["prefix_ranges"]) {
        parts.push_back("Addr: " + str(r, "address_prefix") + "/" +
                        std::to_string(r.value("prefix_len", json(0)).get<int64_t>()));
      }
    }
  }
  if (parts.empty()) return "ALL";
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : "; ") + p;
  return out;
}

std::string chainDestination(const json& chain) {
  if (!chain.contains("filters")) return "-";
  for (const auto& f : chain["filters"]) {
    const json& cfg = at(f, {"typed_config"});
    const std::string type = str(cfg, "@type");
    if (type.ends_with("HttpConnectionManager")) {
      const std::string rds = str(at(cfg, {"rds"}), "route_config_name");
      if (!rds.empty()) return "Route: " + rds;
      const std::string inline_name = str(at(cfg, {"route_config"}), "name");
      return "Inline Route: " + orDash(inline_name);
    }
    if (type.ends_with("TcpProxy")) {
      const std::string cluster = str(cfg, "cluster");
      if (!cluster.empty()) return "Cluster: " + cluster;
      return "Weighted Clusters";
    }
  }
  return "Non-HTTP/Non-TCP";
}

}  // namespace

Result<std::string> listenersTable(std::string_view config_dump, const ProxyConfigFilter& filter) {
  SHEAVE_ASSIGN_OR_RETURN(json dump, parseDump(config_dump));
  Table table({"NAME", "ADDRESSES", "PORT", "MATCH", "DESTINATION"});
  const json* listeners = section(dump, "ListenersConfigDump");
  if (listeners == nullptr) return table.render();
  std::vector<const json*> all;
  if (listeners->contains("static_listeners")) {
    for (const auto& e : (*listeners)["static_listeners"]) {
      if (e.contains("listener")) all.push_back(&e["listener"]);
    }
  }
  if (listeners->contains("dynamic_listeners")) {
    for (const auto& e : (*listeners)["dynamic_listeners"]) {
      const json& l = at(e, {"active_state", "listener"});
      if (l.is_object()) all.push_back(&l);
    }
  }
  for (const json* l : all) {
    const json& sa = at(*l, {"address", "socket_address"});
    const std::string address = str(sa, "address");
    const int64_t port =
        sa.is_object() && sa.contains("port_value") ? sa["port_value"].get<int64_t>() : 0;
    if (filter.port != 0 && port != filter.port) continue;
    if (!filter.address.empty() && address != filter.address) continue;
    std::vector<const json*> chains;
    if (l->contains("filter_chains")) {
      for (const auto& c : (*l)["filter_chains"]) chains.push_back(&c);
    }
    if (l->contains("default_filter_chain")) chains.push_back(&(*l)["default_filter_chain"]);
    if (chains.empty()) table.add({str(*l, "name"), address, std::to_string(port), "-", "-"});
    for (const json* c : chains) {
      table.add(
          {str(*l, "name"), address, std::to_string(port), chainMatch(*c), chainDestination(*c)});
    }
  }
  return table.render();
}

namespace {

std::string routeMatch(const json& route) {
  const json& m = at(route, {"match"});
  if (!m.is_object()) return "-";
  std::string out;
  if (m.contains("prefix")) out = str(m, "prefix") + "*";
  if (m.contains("path")) out = str(m, "path");
  if (m.contains("safe_regex")) out = "regex " + str(m["safe_regex"], "regex");
  if (m.contains("path_separated_prefix")) out = str(m, "path_separated_prefix") + "/*";
  if (m.contains("headers")) {
    for (const auto& h : m["headers"]) out += " [" + str(h, "name") + "]";
  }
  return out.empty() ? "-" : out;
}

}  // namespace

Result<std::string> routesTable(std::string_view config_dump, const ProxyConfigFilter& filter) {
  SHEAVE_ASSIGN_OR_RETURN(json dump, parseDump(config_dump));
  Table table({"NAME", "VHOST NAME", "DOMAINS", "MATCH", "VIRTUAL SERVICE"});
  std::set<std::vector<std::string>> seen;
  const json* routes = section(dump, "RoutesConfigDump");
  if (routes == nullptr) return table.render();
  for (const char* key : {"static_route_configs", "dynamic_route_configs"}) {
    if (!routes->contains(key)) continue;
    for (const auto& e : (*routes)[key]) {
      const json& rc = at(e, {"route_config"});
      const std::string name = str(rc, "name");
      if (!filter.name.empty() && name != filter.name) continue;
      if (!rc.contains("virtual_hosts")) continue;
      for (const auto& vh : rc["virtual_hosts"]) {
        std::string domains;
        size_t count = 0;
        if (vh.contains("domains")) {
          count = vh["domains"].size();
          if (count > 0) domains = vh["domains"][0].get<std::string>();
          if (count > 1) domains += " +" + std::to_string(count - 1) + " more";
        }
        if (!vh.contains("routes")) continue;
        for (const auto& r : vh["routes"]) {
          // Inline route configurations repeat in every filter chain that carries them.
          std::vector<std::string> row = {orDash(name), str(vh, "name"), orDash(domains),
                                          routeMatch(r), orDash(istioConfigName(r))};
          if (seen.insert(row).second) table.add(std::move(row));
        }
      }
    }
  }
  return table.render();
}

Result<std::string> endpointsTable(std::string_view clusters_json,
                                   const ProxyConfigFilter& filter) {
  json doc = json::parse(clusters_json, nullptr, false);
  if (doc.is_discarded() || !doc.contains("cluster_statuses")) {
    return invalidArgument("the proxy's /clusters?format=json is not Envoy's Clusters JSON");
  }
  Table table({"ENDPOINT", "STATUS", "OUTLIER CHECK", "CLUSTER"});
  for (const auto& c : doc["cluster_statuses"]) {
    const std::string cluster = str(c, "name");
    if (!filter.cluster.empty() && cluster != filter.cluster) continue;
    if (!c.contains("host_statuses")) continue;
    for (const auto& h : c["host_statuses"]) {
      const json& sa = at(h, {"address", "socket_address"});
      const std::string address = str(sa, "address");
      const int64_t port =
          sa.is_object() && sa.contains("port_value") ? sa["port_value"].get<int64_t>() : 0;
      if (filter.port != 0 && port != filter.port) continue;
      if (!filter.address.empty() && address != filter.address) continue;
      const json& health = at(h, {"health_status"});
      const bool ejected = health.is_object() && health.value("failed_outlier_check", false);
      table.add({address + ":" + std::to_string(port), str(health, "eds_health_status", "UNKNOWN"),
                 ejected ? "FAILED" : "OK", cluster});
    }
  }
  return table.render();
}

namespace {

std::string base64Decode(const std::string& in) {
  std::string out((in.size() / 4 + 1) * 3, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()),
                          static_cast<int>(in.size()));
  if (n < 0) return "";
  size_t len = static_cast<size_t>(n);
  // EVP_DecodeBlock counts the padding as zero bytes.
  if (!in.empty() && in.back() == '=') --len;
  if (in.size() > 1 && in[in.size() - 2] == '=') --len;
  out.resize(len);
  return out;
}

// The PEM text of a DataSource (inline_bytes base64, inline_string).
std::string dataSourceText(const json& source) {
  if (!source.is_object()) return "";
  if (source.contains("inline_string")) return str(source, "inline_string");
  if (source.contains("inline_bytes")) return base64Decode(str(source, "inline_bytes"));
  return "";
}

struct X509Deleter {
  void operator()(X509* x) const { X509_free(x); }
};

std::vector<std::unique_ptr<X509, X509Deleter>> readCertificates(const std::string& pem) {
  std::vector<std::unique_ptr<X509, X509Deleter>> out;
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(
      BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), &BIO_free);
  if (!bio) return out;
  while (X509* x = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) out.emplace_back(x);
  return out;
}

std::chrono::system_clock::time_point asn1Time(const ASN1_TIME* t) {
  std::tm tm{};
  if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) return {};
  return std::chrono::system_clock::from_time_t(timegm(&tm));
}

std::string isoTime(std::chrono::system_clock::time_point t) {
  std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string serialHex(X509* x) {
  BIGNUM* bn = ASN1_INTEGER_to_BN(X509_get_serialNumber(x), nullptr);
  if (bn == nullptr) return "-";
  char* hex = BN_bn2hex(bn);
  std::string out = hex != nullptr ? hex : "-";
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  OPENSSL_free(hex);
  BN_free(bn);
  return out;
}

std::string uriSan(X509* x) {
  auto* names =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(x, NID_subject_alt_name, nullptr, nullptr));
  std::string out;
  if (names == nullptr) return "-";
  for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* n = sk_GENERAL_NAME_value(names, i);
    if (n->type != GEN_URI) continue;
    const ASN1_STRING* s = n->d.uniformResourceIdentifier;
    out.assign(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
               static_cast<size_t>(ASN1_STRING_length(s)));
    break;
  }
  GENERAL_NAMES_free(names);
  return out.empty() ? "-" : out;
}

std::string duration(std::chrono::seconds s) {
  if (s.count() < 0) return "expired";
  const auto days = s.count() / 86400;
  const auto hours = (s.count() % 86400) / 3600;
  const auto minutes = (s.count() % 3600) / 60;
  if (days > 0) return std::to_string(days) + "d" + std::to_string(hours) + "h";
  if (hours > 0) return std::to_string(hours) + "h" + std::to_string(minutes) + "m";
  return std::to_string(minutes) + "m" + std::to_string(s.count() % 60) + "s";
}

}  // namespace

Result<std::string> secretsTable(std::string_view config_dump,
                                 std::chrono::system_clock::time_point now) {
  SHEAVE_ASSIGN_OR_RETURN(json dump, parseDump(config_dump));
  Table table({"RESOURCE NAME", "TYPE", "STATUS", "VALID CERT", "SERIAL NUMBER", "NOT AFTER",
               "NOT BEFORE", "EXPIRES IN", "IDENTITY"});
  const json* secrets = section(dump, "SecretsConfigDump");
  if (secrets == nullptr) return table.render();
  for (const char* key : {"dynamic_active_secrets", "static_secrets"}) {
    if (!secrets->contains(key)) continue;
    for (const auto& e : (*secrets)[key]) {
      const json& secret = at(e, {"secret"});
      const std::string name = str(e, "name", str(secret, "name"));
      std::string pem, type;
      if (secret.contains("tls_certificate")) {
        type = "Cert Chain";
        pem = dataSourceText(at(secret, {"tls_certificate", "certificate_chain"}));
      } else if (secret.contains("validation_context")) {
        type = "CA";
        pem = dataSourceText(at(secret, {"validation_context", "trusted_ca"}));
      } else {
        continue;
      }
      auto certs = readCertificates(pem);
      if (certs.empty()) {
        table.add({name, type, "WARMING", "false", "-", "-", "-", "-", "-"});
        continue;
      }
      // A chain shows its leaf; a trust bundle every root.
      const size_t shown = type == "CA" ? certs.size() : 1;
      for (size_t i = 0; i < shown; ++i) {
        X509* x = certs[i].get();
        const auto not_before = asn1Time(X509_get0_notBefore(x));
        const auto not_after = asn1Time(X509_get0_notAfter(x));
        const bool valid = now >= not_before && now <= not_after;
        table.add({name, type, "ACTIVE", valid ? "true" : "false", serialHex(x), isoTime(not_after),
                   isoTime(not_before),
                   duration(std::chrono::duration_cast<std::chrono::seconds>(not_after - now)),
                   uriSan(x)});
      }
    }
  }
  return table.render();
}

}  // namespace sheave::cli
