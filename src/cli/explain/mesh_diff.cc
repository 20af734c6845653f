#include "cli/explain/mesh_diff.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>

#include <map>
#include <set>

#include "control/compiler/cluster_generator.h"
#include "control/compiler/endpoint_generator.h"
#include "control/compiler/proxy_resources.h"

namespace sheave::cli {

using control::ProxyContext;
using control::PushContext;

namespace {

std::string deterministicBytes(const google::protobuf::Message& m) {
  std::string bytes;
  google::protobuf::io::StringOutputStream stream(&bytes);
  google::protobuf::io::CodedOutputStream coded(&stream);
  coded.SetSerializationDeterministic(true);
  m.SerializeToCodedStream(&coded);
  coded.Trim();
  return bytes;
}

// "CDS <name>" -> the resource's bytes, for one proxy.
std::map<std::string, std::string> compile(const ProxyContext& proxy, const PushContext& push) {
  std::map<std::string, std::string> out;
  std::vector<control::ResourceError> errors;
  for (const auto& l : control::generateListeners(proxy, push, &errors)) {
    out["LDS " + l.name()] = deterministicBytes(l);
  }
  for (const auto& r : control::generateRoutes(proxy, push, {}, &errors)) {
    out["RDS " + r.name()] = deterministicBytes(r);
  }
  for (const auto& c : control::generateClusters(proxy, push)) {
    out["CDS " + c.name()] = deterministicBytes(c);
  }
  for (const auto& e :
       control::generateEndpoints(proxy, push, control::edsClusterNames(proxy, push))) {
    out["EDS " + e.cluster_name()] = deterministicBytes(e);
  }
  return out;
}

struct Workload {
  std::string namespace_name, name, address;
  bool router = false;  // an ingress gateway: its proxy runs in router mode
};

std::map<std::string, Workload> workloadsOf(const PushContext& push) {
  std::map<std::string, Workload> out;
  for (const auto& we : push.config().workload_entries) {
    out[we.metadata.name + "." + we.metadata.namespace_name] = Workload{
        we.metadata.namespace_name, we.metadata.name, we.spec.address,
        we.spec.labels.count("istio") > 0 && we.spec.labels.at("istio") == "ingressgateway"};
  }
  return out;
}

// The verdict of a request under one configuration, or why it cannot be explained.
std::string verdictUnder(const PushContext& push, const SampleRequest& sample) {
  for (const auto& we : push.config().workload_entries) {
    const std::string& name = we.metadata.name;
    if (name != sample.from && name != sample.from + "-0") continue;
    auto proxy =
        proxyForWorkload(push.registry(), we.metadata.namespace_name, name, we.spec.address);
    if (!proxy.ok()) return proxy.error().message();
    auto e = explainRequest(push, *proxy, sample.request, 0);
    return e.ok() ? e->verdict : e.error().message();
  }
  return "no workload " + sample.from;
}

}  // namespace

std::string SampleRequest::describe() const {
  std::string out = from + " " + request.method + " " + request.url;
  for (const auto& [k, v] : request.headers) out += " " + k + ": " + v;
  return out;
}

MeshDiff diffMeshes(const PushContext& before, const PushContext& after,
                    const std::vector<SampleRequest>& requests) {
  MeshDiff out;
  auto old_workloads = workloadsOf(before);
  auto new_workloads = workloadsOf(after);
  std::set<std::string> names;
  for (const auto& [k, _] : old_workloads) names.insert(k);
  for (const auto& [k, _] : new_workloads) names.insert(k);
  for (const auto& key : names) {
    auto compileIn = [&](const PushContext& push, const std::map<std::string, Workload>& all) {
      std::map<std::string, std::string> resources;
      auto it = all.find(key);
      if (it == all.end()) return resources;
      auto proxy = proxyForWorkload(push.registry(), it->second.namespace_name, it->second.name,
                                    it->second.address, it->second.router);
      if (proxy.ok()) resources = compile(*proxy, push);
      return resources;
    };
    const auto was = compileIn(before, old_workloads);
    const auto now = compileIn(after, new_workloads);
    ProxyChange change{key, {}};
    if (was.empty() && !now.empty()) change.changes.push_back("new workload");
    if (!was.empty() && now.empty()) change.changes.push_back("workload removed");
    if (!was.empty() && !now.empty()) {
      for (const auto& [name, bytes] : now) {
        auto it = was.find(name);
        if (it == was.end()) {
          change.changes.push_back(name + " added");
        } else if (it->second != bytes) {
          change.changes.push_back(name + " changed");
        }
      }
      for (const auto& [name, _] : was) {
        if (now.count(name) == 0) change.changes.push_back(name + " removed");
      }
    }
    if (change.changes.empty()) {
      ++out.unchanged_proxies;
    } else {
      out.proxies.push_back(std::move(change));
    }
  }
  for (const auto& sample : requests) {
    std::string a = verdictUnder(before, sample);
    std::string b = verdictUnder(after, sample);
    if (a == b) {
      ++out.unchanged_requests;
    } else {
      out.requests.push_back(RequestChange{sample.describe(), std::move(a), std::move(b)});
    }
  }
  return out;
}

std::vector<SampleRequest> sampleRequests(const PushContext& push) {
  std::vector<SampleRequest> out;
  std::set<std::string> seen;
  for (const auto& lw : push.config().local_workloads) {
    std::vector<std::string> texts = lw.spec.command;
    for (const auto& [_, v] : lw.spec.env) texts.push_back(v);
    for (const auto& text : texts) {
      // "http://host:port..." URLs the workload is configured with.
      size_t at = 0;
      while ((at = text.find("http://", at)) != std::string::npos) {
        size_t end = text.find_first_of(" ,;\"'", at);
        std::string url = text.substr(at, end == std::string::npos ? std::string::npos : end - at);
        at += 7;
        const size_t path = url.find('/', 7);
        if (path == std::string::npos) url += "/";
        SampleRequest sample{lw.metadata.name, ExplainRequest{url, "GET", {}}};
        if (seen.insert(sample.describe()).second) out.push_back(std::move(sample));
      }
    }
  }
  return out;
}

std::string formatMeshDiff(const MeshDiff& diff) {
  std::string out;
  if (diff.proxies.empty()) {
    out += "No proxy's configuration changes";
  } else {
    out += "Proxies whose configuration changes:\n";
    for (const auto& p : diff.proxies) {
      out += "  " + p.proxy + "\n";
      for (const auto& c : p.changes) out += "    " + c + "\n";
    }
    out += "Unchanged: " + std::to_string(diff.unchanged_proxies) + " proxies";
  }
  out += "\n";
  if (diff.requests.empty()) {
    out += "No sample request is routed or authorized differently (" +
           std::to_string(diff.unchanged_requests) + " checked)\n";
  } else {
    out += "Requests routed or authorized differently:\n";
    for (const auto& r : diff.requests) {
      out += "  " + r.request + "\n    before: " + r.before + "\n    after:  " + r.after + "\n";
    }
    out += "Unchanged: " + std::to_string(diff.unchanged_requests) + " requests\n";
  }
  return out;
}

}  // namespace sheave::cli
