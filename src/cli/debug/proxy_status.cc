#include "cli/debug/proxy_status.h"

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>

#include "cli/debug/table.h"

namespace sheave::cli {

using nlohmann::json;

namespace {

std::string nameFromNodeId(const std::string& id) {
  // type~ip~id.namespace~dns-domain
  size_t first = id.find('~');
  size_t second = first == std::string::npos ? first : id.find('~', first + 1);
  size_t third = second == std::string::npos ? second : id.find('~', second + 1);
  if (third == std::string::npos) return id;
  return id.substr(second + 1, third - second - 1);
}

std::string str(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace

Result<std::vector<ProxySyncStatus>> parseSyncz(std::string_view json_text) {
  json all = json::parse(json_text, nullptr, false);
  if (all.is_discarded() || !all.is_array()) {
    return invalidArgument("sheave-control's /debug/syncz did not return a JSON list");
  }
  static const std::map<std::string, std::string> kShort = {
      {"type.googleapis.com/envoy.config.cluster.v3.Cluster", "CDS"},
      {"type.googleapis.com/envoy.config.listener.v3.Listener", "LDS"},
      {"type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment", "EDS"},
      {"type.googleapis.com/envoy.config.route.v3.RouteConfiguration", "RDS"},
      {"type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret", "SDS"},
  };
  std::vector<ProxySyncStatus> out;
  for (const auto& conn : all) {
    ProxySyncStatus p;
    p.node_id = str(conn, "proxy");
    p.name = nameFromNodeId(p.node_id);
    std::map<std::string, std::string> states = {{"CDS", "NOT SENT"},
                                                 {"LDS", "NOT SENT"},
                                                 {"EDS", "NOT SENT"},
                                                 {"RDS", "NOT SENT"},
                                                 {"SDS", "NOT SENT"}};
    if (conn.contains("types") && conn["types"].is_array()) {
      for (const auto& t : conn["types"]) {
        auto it = kShort.find(str(t, "type_url"));
        if (it == kShort.end()) continue;
        const std::string sent = str(t, "sent_version");
        const bool nacked = t.value("nacked", false);
        std::string state = "SYNCED";
        if (nacked) {
          state = "NACKED";
          p.nacks.push_back(it->second + ": " + str(t, "last_nack"));
        } else if (sent.empty()) {
          state = "NOT SENT";
        } else if (sent != str(t, "acked_version")) {
          state = "STALE";
        }
        states[it->second] = state;
      }
    }
    p.cds = states["CDS"];
    p.lds = states["LDS"];
    p.eds = states["EDS"];
    p.rds = states["RDS"];
    p.sds = states["SDS"];
    out.push_back(std::move(p));
  }
  std::sort(out.begin(), out.end(),
            [](const ProxySyncStatus& a, const ProxySyncStatus& b) { return a.name < b.name; });
  return out;
}

std::string formatProxyStatus(const std::vector<ProxySyncStatus>& proxies,
                              std::string_view control_plane) {
  Table table({"NAME", "CDS", "LDS", "EDS", "RDS", "SDS", "ISTIOD"});
  std::string errors;
  for (const auto& p : proxies) {
    table.add({p.name, p.cds, p.lds, p.eds, p.rds, p.sds, std::string(control_plane)});
    for (const auto& n : p.nacks) errors += p.name + " " + n + "\n";
  }
  std::string out = table.render();
  if (!errors.empty()) out += "\nNACKs:\n" + errors;
  return out;
}

namespace {

// name -> the resource (its JSON) of one type in a config dump. Versions are
// not compared: a proxy keeps a resource's version_info when an update left
// it unchanged (after a control plane restart numbers start again).
using Versions = std::map<std::string, json>;

struct DumpTypes {
  Versions clusters, listeners, routes;
};

Result<DumpTypes> readDump(std::string_view text, const char* who) {
  json dump = json::parse(text, nullptr, false);
  if (dump.is_discarded() || !dump.contains("configs") || !dump["configs"].is_array()) {
    return invalidArgument(std::string(who) + " config dump is not Envoy's ConfigDump JSON");
  }
  DumpTypes out;
  for (const auto& c : dump["configs"]) {
    const std::string type = str(c, "@type");
    if (type.ends_with("ClustersConfigDump") && c.contains("dynamic_active_clusters")) {
      for (const auto& e : c["dynamic_active_clusters"]) {
        if (e.contains("cluster")) out.clusters[str(e["cluster"], "name")] = e["cluster"];
      }
    } else if (type.ends_with("ListenersConfigDump") && c.contains("dynamic_listeners")) {
      for (const auto& e : c["dynamic_listeners"]) {
        json listener;
        if (e.contains("active_state") && e["active_state"].contains("listener")) {
          listener = e["active_state"]["listener"];
        }
        out.listeners[str(e, "name")] = listener;
      }
    } else if (type.ends_with("RoutesConfigDump") && c.contains("dynamic_route_configs")) {
      for (const auto& e : c["dynamic_route_configs"]) {
        if (e.contains("route_config")) {
          out.routes[str(e["route_config"], "name")] = e["route_config"];
        }
      }
    }
  }
  return out;
}

std::string compare(const char* what, const Versions& want, const Versions& have) {
  std::vector<std::string> problems;
  for (const auto& [name, resource] : want) {
    auto it = have.find(name);
    if (it == have.end()) {
      problems.push_back(name + " missing in the proxy");
    } else if (it->second != resource) {
      problems.push_back(name + " differs from what sheave-control would send");
    }
  }
  for (const auto& [name, _] : have) {
    if (want.count(name) == 0) problems.push_back(name + " not sent by sheave-control");
  }
  if (problems.empty()) return std::string(what) + " Match";
  std::string out = std::string(what) + " Don't Match:";
  for (const auto& p : problems) out += "\n  " + p;
  return out;
}

}  // namespace

Result<std::vector<std::string>> diffConfigDumps(std::string_view control_dump,
                                                 std::string_view proxy_dump) {
  SHEAVE_ASSIGN_OR_RETURN(DumpTypes want, readDump(control_dump, "sheave-control's"));
  SHEAVE_ASSIGN_OR_RETURN(DumpTypes have, readDump(proxy_dump, "the proxy's"));
  return std::vector<std::string>{compare("Clusters", want.clusters, have.clusters),
                                  compare("Listeners", want.listeners, have.listeners),
                                  compare("Routes", want.routes, have.routes)};
}

}  // namespace sheave::cli
