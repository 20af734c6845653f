#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "match/route_table.h"

namespace sheave::http {

// Where an HTTP connection manager gets its routes: a fixed table
// (route_config in the listener) or one that RDS replaces while connections
// keep running. Each request takes the table once and keeps it, so a route
// it matched lives as long as the request, whatever RDS does meanwhile.
class RouteConfigProvider {
 public:
  // RDS: empty until the first update (every request gets 404 NR).
  explicit RouteConfigProvider(std::string name)
      : name_(std::move(name)), table_(emptyTable(name_)) {}
  // A static route_config.
  explicit RouteConfigProvider(std::shared_ptr<const RouteTable> table)
      : name_(table->name()), table_(std::move(table)), ready_(true) {}

  const std::string& name() const { return name_; }
  // Any thread.
  std::shared_ptr<const RouteTable> current() const {
    return table_.load(std::memory_order_acquire);
  }
  // Whether a config arrived (a listener waits for this before it serves).
  bool ready() const { return ready_.load(std::memory_order_acquire); }
  // Main thread (RDS).
  void update(std::shared_ptr<const RouteTable> table) {
    table_.store(std::move(table), std::memory_order_release);
    ready_.store(true, std::memory_order_release);
  }

 private:
  static std::shared_ptr<const RouteTable> emptyTable(const std::string& name) {
    envoy::config::route::v3::RouteConfiguration empty;
    empty.set_name(name);
    return RouteTable::create(empty).value();
  }

  const std::string name_;
  std::atomic<std::shared_ptr<const RouteTable>> table_;
  std::atomic<bool> ready_{false};
};

}  // namespace sheave::http
