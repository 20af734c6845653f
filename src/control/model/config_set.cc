#include "control/model/config_set.h"

#include <algorithm>
#include <array>
#include <fstream>
#include <map>
#include <sstream>
#include <system_error>

#include "control/model/decoders.h"

namespace sheave::control {

namespace {

// One document's text and where it starts in its file (0-based line).
struct DocumentText {
  std::string text;
  int first_line = 0;
};

bool isSeparator(std::string_view line) {
  if (line.substr(0, 3) != "---") return false;
  return line.size() == 3 || line[3] == ' ' || line[3] == '\t' || line[3] == '\r';
}

// Splits at "---" lines ourselves (instead of YAML::LoadAll) so that a syntax
// error in one document does not take the others down with it.
std::vector<DocumentText> splitDocuments(std::string_view text) {
  std::vector<DocumentText> docs(1);
  int line_no = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view line = text.substr(pos, end - pos);
    if (isSeparator(line)) {
      // Content after "--- " on the same line belongs to the new document;
      // the marker is blanked out so columns stay right.
      docs.push_back(DocumentText{"   " + std::string(line.substr(3)) + "\n", line_no});
    } else {
      docs.back().text.append(line);
      docs.back().text.push_back('\n');
    }
    pos = end + 1;
    ++line_no;
  }
  return docs;
}

template <typename Spec>
void decodeInto(Decoder& d, MapReader& root, const std::string& api_version,
                const std::string& kind, const ObjectMeta& metadata, const SourceLocation& source,
                std::vector<Resource<Spec>>& out) {
  Resource<Spec> r;
  r.api_version = api_version;
  r.kind = kind;
  r.metadata = metadata;
  r.source = source;
  if (const YAML::Node* spec = root.find("spec"); spec != nullptr) {
    root.field("spec", r.spec);
  } else {
    root.ignore("spec");  // `spec:` with no value
    // An absent spec is an empty one; it still has to pass validation.
    decode(d, YAML::Node(), "spec", r.spec);
  }
  root.finish();
  if (!d.failed()) out.push_back(std::move(r));
}

enum class Kind {
  kVirtualService,
  kDestinationRule,
  kServiceEntry,
  kWorkloadEntry,
  kSidecar,
  kGateway,
  kPeerAuthentication,
  kAuthorizationPolicy,
  kRequestAuthentication,
  kTelemetry,
  kService,
  kNamespace,
  kLocalWorkload,
};

struct KindInfo {
  std::string_view group;  // "" for the Kubernetes core group
  std::string_view name;
  Kind kind;
};

constexpr KindInfo kKinds[] = {
    {"networking.istio.io", "VirtualService", Kind::kVirtualService},
    {"networking.istio.io", "DestinationRule", Kind::kDestinationRule},
    {"networking.istio.io", "ServiceEntry", Kind::kServiceEntry},
    {"networking.istio.io", "WorkloadEntry", Kind::kWorkloadEntry},
    {"networking.istio.io", "Sidecar", Kind::kSidecar},
    {"networking.istio.io", "Gateway", Kind::kGateway},
    {"security.istio.io", "PeerAuthentication", Kind::kPeerAuthentication},
    {"security.istio.io", "AuthorizationPolicy", Kind::kAuthorizationPolicy},
    {"security.istio.io", "RequestAuthentication", Kind::kRequestAuthentication},
    {"telemetry.istio.io", "Telemetry", Kind::kTelemetry},
    {"", "Service", Kind::kService},
    {"", "Namespace", Kind::kNamespace},
    {"sheave.io", "LocalWorkload", Kind::kLocalWorkload},
};

struct GroupInfo {
  std::string_view group;
  std::string_view versions;  // served versions, as listed in messages
  std::array<std::string_view, 3> version_list;
};

constexpr GroupInfo kGroups[] = {
    {"networking.istio.io", "v1, v1beta1, v1alpha3", {"v1", "v1beta1", "v1alpha3"}},
    {"security.istio.io", "v1, v1beta1", {"v1", "v1beta1", ""}},
    {"telemetry.istio.io", "v1, v1alpha1", {"v1", "v1alpha1", ""}},
    {"", "v1", {"v1", "", ""}},
    {"sheave.io", "v1alpha1", {"v1alpha1", "", ""}},
};

// Best-effort identity of a document for ResourceError, read without
// validation so even a broken document gets a name in the error list.
void describeDocument(const YAML::Node& root, ResourceError& e) {
  if (!root.IsMap()) return;
  auto scalar = [](const YAML::Node& n) { return n && n.IsScalar() ? n.Scalar() : ""; };
  e.kind = scalar(root["kind"]);
  const YAML::Node meta = root["metadata"];
  if (meta && meta.IsMap()) {
    e.name = scalar(meta["name"]);
    e.namespace_name = scalar(meta["namespace"]);
  }
  if (e.namespace_name.empty() && e.kind != "Namespace" && !e.name.empty()) {
    e.namespace_name = "default";
  }
}

void decodeDocument(Decoder& d, const YAML::Node& root, const SourceLocation& source,
                    ConfigSet& out) {
  if (!root.IsMap()) {
    d.fail(root, "", "expected a Kubernetes resource (a map), got " + describeNode(root));
    return;
  }
  MapReader m(d, root, "");
  std::string api_version;
  std::string kind;
  m.field("apiVersion", api_version);
  m.field("kind", kind);
  if (d.failed()) return;
  if (api_version.empty()) return m.failField("apiVersion", "required");
  if (kind.empty()) return m.failField("kind", "required");

  const size_t slash = api_version.find('/');
  const std::string_view group = slash == std::string::npos
                                     ? std::string_view()
                                     : std::string_view(api_version).substr(0, slash);
  const std::string_view version = slash == std::string::npos
                                       ? std::string_view(api_version)
                                       : std::string_view(api_version).substr(slash + 1);
  const GroupInfo* group_info = nullptr;
  for (const GroupInfo& g : kGroups) {
    if (g.group == group) group_info = &g;
  }
  if (group_info == nullptr) {
    return m.failField("apiVersion", "unsupported apiVersion \"" + api_version +
                                         "\" (expected networking.istio.io, security.istio.io, "
                                         "telemetry.istio.io, sheave.io or v1)");
  }
  if (std::find(group_info->version_list.begin(), group_info->version_list.end(), version) ==
          group_info->version_list.end() ||
      version.empty()) {
    return m.failField("apiVersion",
                       "unsupported apiVersion \"" + api_version +
                           "\" (served versions: " + std::string(group_info->versions) + ")");
  }
  const KindInfo* kind_info = nullptr;
  for (const KindInfo& k : kKinds) {
    if (k.group == group && k.name == kind) kind_info = &k;
  }
  if (kind_info == nullptr) {
    return m.failField("kind", "unknown kind \"" + kind + "\" for apiVersion " + api_version);
  }

  ObjectMeta metadata;
  if (!m.has("metadata")) return m.failField("metadata", "required");
  m.field("metadata", metadata);
  m.ignore("status");
  if (d.failed()) return;
  if (kind_info->kind == Kind::kNamespace) metadata.namespace_name.clear();

  auto into = [&](auto& list) {
    decodeInto(d, m, std::move(api_version), std::move(kind), std::move(metadata), source, list);
  };
  switch (kind_info->kind) {
    case Kind::kVirtualService:
      return into(out.virtual_services);
    case Kind::kDestinationRule:
      return into(out.destination_rules);
    case Kind::kServiceEntry:
      return into(out.service_entries);
    case Kind::kWorkloadEntry:
      return into(out.workload_entries);
    case Kind::kSidecar:
      return into(out.sidecars);
    case Kind::kGateway:
      return into(out.gateways);
    case Kind::kPeerAuthentication:
      return into(out.peer_authentications);
    case Kind::kAuthorizationPolicy:
      return into(out.authorization_policies);
    case Kind::kRequestAuthentication:
      return into(out.request_authentications);
    case Kind::kTelemetry:
      return into(out.telemetries);
    case Kind::kService:
      return into(out.services);
    case Kind::kNamespace:
      return into(out.namespaces);
    case Kind::kLocalWorkload:
      return into(out.local_workloads);
  }
}

// Moves every resource of `from` whose key is new into `to`; later
// duplicates become errors.
template <typename Spec>
void mergeKind(std::vector<Resource<Spec>>& to, std::vector<Resource<Spec>>& from,
               std::vector<ResourceError>& errors) {
  std::map<std::pair<std::string, std::string>, SourceLocation> seen;
  for (const Resource<Spec>& r : to) {
    seen.emplace(std::make_pair(r.metadata.namespace_name, r.metadata.name), r.source);
  }
  std::vector<Resource<Spec>> accepted;
  for (Resource<Spec>& r : from) {
    auto key = std::make_pair(r.metadata.namespace_name, r.metadata.name);
    auto it = seen.find(key);
    if (it != seen.end()) {
      const std::string who =
          r.kind + " " + (key.first.empty() ? key.second : key.first + "/" + key.second);
      errors.push_back(
          ResourceError{r.source, r.kind, r.metadata.namespace_name, r.metadata.name,
                        invalidArgument(r.source.toString() + ": metadata.name: duplicate " + who +
                                        ", first defined at " + it->second.toString())});
      continue;
    }
    seen.emplace(key, r.source);
    accepted.push_back(std::move(r));
  }
  from.clear();
  for (Resource<Spec>& r : accepted) to.push_back(std::move(r));
}

}  // namespace

size_t ConfigSet::resourceCount() const {
  return virtual_services.size() + destination_rules.size() + service_entries.size() +
         workload_entries.size() + sidecars.size() + gateways.size() + peer_authentications.size() +
         authorization_policies.size() + request_authentications.size() + telemetries.size() +
         services.size() + namespaces.size() + local_workloads.size();
}

void ConfigSet::merge(ConfigSet&& other) {
  mergeKind(virtual_services, other.virtual_services, errors);
  mergeKind(destination_rules, other.destination_rules, errors);
  mergeKind(service_entries, other.service_entries, errors);
  mergeKind(workload_entries, other.workload_entries, errors);
  mergeKind(sidecars, other.sidecars, errors);
  mergeKind(gateways, other.gateways, errors);
  mergeKind(peer_authentications, other.peer_authentications, errors);
  mergeKind(authorization_policies, other.authorization_policies, errors);
  mergeKind(request_authentications, other.request_authentications, errors);
  mergeKind(telemetries, other.telemetries, errors);
  mergeKind(services, other.services, errors);
  mergeKind(namespaces, other.namespaces, errors);
  mergeKind(local_workloads, other.local_workloads, errors);
  for (ResourceError& e : other.errors) errors.push_back(std::move(e));
  other.errors.clear();
}

ConfigSet parseDocuments(std::string_view text, std::string_view source_name) {
  ConfigSet result;
  const std::string file(source_name);
  for (const DocumentText& doc : splitDocuments(text)) {
    ConfigSet one;
    Decoder d(file, doc.first_line);
    ResourceError err{SourceLocation{file, doc.first_line + 1, 1}, "", "", "", invalidArgument("")};
    try {
      const YAML::Node root = YAML::Load(doc.text);
      if (!root || root.IsNull()) continue;  // empty document or comments only
      err.source = d.locate(root.Mark());
      describeDocument(root, err);
      d.setFallback(root.Mark());
      decodeDocument(d, root, err.source, one);
    } catch (const YAML::Exception& e) {
      // Syntax errors carry the position of the offending character.
      d.failAt(e.mark, "", "invalid YAML: " + e.msg);
    } catch (const std::exception& e) {
      // Nothing else should throw; keep the promise that nothing escapes.
      d.failAt(YAML::Mark::null_mark(), "", std::string("internal error: ") + e.what());
    }
    if (std::optional<Error> error = d.takeError()) {
      err.error = std::move(*error);
      result.errors.push_back(std::move(err));
      continue;
    }
    result.merge(std::move(one));
  }
  return result;
}

Result<ConfigSet> loadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return ioError(path.string() + ": cannot open file");
  std::ostringstream buf;
  buf << in.rdbuf();
  if (in.bad()) return ioError(path.string() + ": read error");
  return parseDocuments(buf.str(), path.string());
}

Result<ConfigSet> loadDirectory(const std::filesystem::path& dir) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) {
    return ioError(dir.string() + ": not a directory");
  }
  std::vector<std::filesystem::path> files;
  auto it = std::filesystem::recursive_directory_iterator(
      dir, std::filesystem::directory_options::skip_permission_denied, ec);
  if (ec) return ioError(dir.string() + ": " + ec.message());
  for (; it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) return ioError(dir.string() + ": " + ec.message());
    const std::filesystem::path& p = it->path();
    const std::string ext = p.extension().string();
    if ((ext == ".yaml" || ext == ".yml") && it->is_regular_file(ec)) files.push_back(p);
  }
  std::sort(files.begin(), files.end());
  ConfigSet result;
  for (const std::filesystem::path& p : files) {
    Result<ConfigSet> one = loadFile(p);
    if (!one.ok()) {
      result.errors.push_back(
          ResourceError{SourceLocation{p.string(), 0, 0}, "", "", "", std::move(one).error()});
      continue;
    }
    result.merge(std::move(*one));
  }
  return result;
}

}  // namespace sheave::control
