#include "proxy/config/local_node.h"

#include <mutex>

namespace sheave::config {
namespace {

std::mutex& nodeMutex() {
  static std::mutex mu;
  return mu;
}

std::shared_ptr<const envoy::config::core::v3::Node>& nodeSlot() {
  static std::shared_ptr<const envoy::config::core::v3::Node> node =
      std::make_shared<const envoy::config::core::v3::Node>();
  return node;
}

}  // namespace

void setLocalNode(const envoy::config::core::v3::Node& node) {
  auto copy = std::make_shared<const envoy::config::core::v3::Node>(node);
  std::lock_guard<std::mutex> lock(nodeMutex());
  nodeSlot() = std::move(copy);
}

std::shared_ptr<const envoy::config::core::v3::Node> localNode() {
  std::lock_guard<std::mutex> lock(nodeMutex());
  return nodeSlot();
}

}  // namespace sheave::config
