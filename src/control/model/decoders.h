#pragma once

// Decoders for every message of the model, one overload per type, so the
// generic vector/map/optional decoders in yaml_decoder.h find them. Internal
// to the module: users call parseDocuments()/loadFile()/loadDirectory().

#include <string>

#include "control/model/authorization_policy.h"
#include "control/model/destination_rule.h"
#include "control/model/gateway.h"
#include "control/model/kubernetes.h"
#include "control/model/local_workload.h"
#include "control/model/peer_authentication.h"
#include "control/model/request_authentication.h"
#include "control/model/resource.h"
#include "control/model/service_entry.h"
#include "control/model/sidecar.h"
#include "control/model/telemetry.h"
#include "control/model/virtual_service.h"
#include "control/model/workload_entry.h"
#include "control/model/workload_selector.h"
#include "control/model/yaml_decoder.h"

namespace sheave::control {

// T is a type name: it cannot be parenthesized.
// NOLINTBEGIN(bugprone-macro-parentheses)
#define SHEAVE_MODEL_DECODER(T) \
  void decode(Decoder& d, const YAML::Node& n, const std::string& path, T& out)
// NOLINTEND(bugprone-macro-parentheses)

// Shared
SHEAVE_MODEL_DECODER(WorkloadSelector);
SHEAVE_MODEL_DECODER(NetworkingWorkloadSelector);
SHEAVE_MODEL_DECODER(PolicyTargetReference);
SHEAVE_MODEL_DECODER(ObjectMeta);

// VirtualService
SHEAVE_MODEL_DECODER(StringMatch);
SHEAVE_MODEL_DECODER(PortSelector);
SHEAVE_MODEL_DECODER(Destination);
SHEAVE_MODEL_DECODER(HeaderOperations);
SHEAVE_MODEL_DECODER(Headers);
SHEAVE_MODEL_DECODER(HTTPMatchRequest);
SHEAVE_MODEL_DECODER(HTTPRouteDestination);
SHEAVE_MODEL_DECODER(RouteDestination);
SHEAVE_MODEL_DECODER(HTTPRedirect);
SHEAVE_MODEL_DECODER(HTTPBody);
SHEAVE_MODEL_DECODER(HTTPDirectResponse);
SHEAVE_MODEL_DECODER(Delegate);
SHEAVE_MODEL_DECODER(RegexRewrite);
SHEAVE_MODEL_DECODER(HTTPRewrite);
SHEAVE_MODEL_DECODER(HTTPRetry);
SHEAVE_MODEL_DECODER(HTTPFaultInjection::Delay);
SHEAVE_MODEL_DECODER(HTTPFaultInjection::Abort);
SHEAVE_MODEL_DECODER(HTTPFaultInjection);
SHEAVE_MODEL_DECODER(HTTPMirrorPolicy);
SHEAVE_MODEL_DECODER(CorsPolicy);
SHEAVE_MODEL_DECODER(HTTPRoute);
SHEAVE_MODEL_DECODER(L4MatchAttributes);
SHEAVE_MODEL_DECODER(TLSMatchAttributes);
SHEAVE_MODEL_DECODER(TCPRoute);
SHEAVE_MODEL_DECODER(TLSRoute);
SHEAVE_MODEL_DECODER(VirtualService);

// DestinationRule
SHEAVE_MODEL_DECODER(LocalityLoadBalancerSetting::Distribute);
SHEAVE_MODEL_DECODER(LocalityLoadBalancerSetting::Failover);
SHEAVE_MODEL_DECODER(LocalityLoadBalancerSetting);
SHEAVE_MODEL_DECODER(ConsistentHashLB::HTTPCookie);
SHEAVE_MODEL_DECODER(ConsistentHashLB::RingHash);
SHEAVE_MODEL_DECODER(ConsistentHashLB::MagLev);
SHEAVE_MODEL_DECODER(ConsistentHashLB);
SHEAVE_MODEL_DECODER(LoadBalancerSettings);
SHEAVE_MODEL_DECODER(ConnectionPoolSettings::TCPSettings::TcpKeepalive);
SHEAVE_MODEL_DECODER(ConnectionPoolSettings::TCPSettings);
SHEAVE_MODEL_DECODER(ConnectionPoolSettings::HTTPSettings);
SHEAVE_MODEL_DECODER(ConnectionPoolSettings);
SHEAVE_MODEL_DECODER(OutlierDetection);
SHEAVE_MODEL_DECODER(ClientTLSSettings);
SHEAVE_MODEL_DECODER(TunnelSettings);
SHEAVE_MODEL_DECODER(ProxyProtocol);
SHEAVE_MODEL_DECODER(PortTrafficPolicy);
SHEAVE_MODEL_DECODER(TrafficPolicy);
SHEAVE_MODEL_DECODER(Subset);
SHEAVE_MODEL_DECODER(DestinationRule);

// ServiceEntry, WorkloadEntry, Gateway, Sidecar
SHEAVE_MODEL_DECODER(WorkloadEntry);
SHEAVE_MODEL_DECODER(ServicePort);
SHEAVE_MODEL_DECODER(ServiceEntry);
SHEAVE_MODEL_DECODER(Port);
SHEAVE_MODEL_DECODER(ServerTLSSettings);
SHEAVE_MODEL_DECODER(Server);
SHEAVE_MODEL_DECODER(Gateway);
SHEAVE_MODEL_DECODER(SidecarPort);
SHEAVE_MODEL_DECODER(IstioIngressListener);
SHEAVE_MODEL_DECODER(IstioEgressListener);
SHEAVE_MODEL_DECODER(OutboundTrafficPolicy);
SHEAVE_MODEL_DECODER(Sidecar);

// Security
SHEAVE_MODEL_DECODER(PeerAuthenticationMutualTLS);
SHEAVE_MODEL_DECODER(PeerAuthentication);
SHEAVE_MODEL_DECODER(Source);
SHEAVE_MODEL_DECODER(Operation);
SHEAVE_MODEL_DECODER(Condition);
SHEAVE_MODEL_DECODER(Rule::From);
SHEAVE_MODEL_DECODER(Rule::To);
SHEAVE_MODEL_DECODER(Rule);
SHEAVE_MODEL_DECODER(ExtensionProvider);
SHEAVE_MODEL_DECODER(AuthorizationPolicy);
SHEAVE_MODEL_DECODER(JWTHeader);
SHEAVE_MODEL_DECODER(ClaimToHeader);
SHEAVE_MODEL_DECODER(JWTRule);
SHEAVE_MODEL_DECODER(RequestAuthentication);

// Telemetry
SHEAVE_MODEL_DECODER(ProviderRef);
SHEAVE_MODEL_DECODER(TracingSelector);
SHEAVE_MODEL_DECODER(CustomTag::Literal);
SHEAVE_MODEL_DECODER(CustomTag::Environment);
SHEAVE_MODEL_DECODER(CustomTag::RequestHeader);
SHEAVE_MODEL_DECODER(CustomTag);
SHEAVE_MODEL_DECODER(Tracing);
SHEAVE_MODEL_DECODER(MetricSelector);
SHEAVE_MODEL_DECODER(TagOverride);
SHEAVE_MODEL_DECODER(MetricsOverrides);
SHEAVE_MODEL_DECODER(Metrics);
SHEAVE_MODEL_DECODER(AccessLogSelector);
SHEAVE_MODEL_DECODER(AccessLogFilter);
SHEAVE_MODEL_DECODER(AccessLogging);
SHEAVE_MODEL_DECODER(Telemetry);

// Kubernetes
SHEAVE_MODEL_DECODER(IntOrString);
SHEAVE_MODEL_DECODER(KubernetesServicePort);
SHEAVE_MODEL_DECODER(KubernetesService);
SHEAVE_MODEL_DECODER(KubernetesNamespace);

// Sheave
SHEAVE_MODEL_DECODER(LocalWorkload);

#undef SHEAVE_MODEL_DECODER

}  // namespace sheave::control
