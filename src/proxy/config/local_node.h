#pragma once

#include <memory>

#include "envoy/config/core/v3/base.pb.h"

namespace sheave::config {

// The bootstrap's `node` (id, cluster, and Istio's node.metadata: NAME,
// NAMESPACE, LABELS, WORKLOAD_NAME, SERVICE_ACCOUNT, CLUSTER_ID, MESH_ID, ...)
// as the server finally settled it (command-line overrides applied). Filter
// factories read it while building their config (istio.metadata_exchange
// propagates it, istio.stats labels with it); the request path never does.
//
// Set once on the main thread before listeners are built; reading returns an
// immutable snapshot, an empty Node until set.
void setLocalNode(const envoy::config::core::v3::Node& node);
std::shared_ptr<const envoy::config::core::v3::Node> localNode();

}  // namespace sheave::config
