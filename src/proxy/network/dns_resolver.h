#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/address.h"
#include "common/result.h"
#include "proxy/network/event_loop.h"

namespace sheave::network {

// Envoy's cluster dns_lookup_family.
enum class DnsLookupFamily {
  kAuto,  // IPv6 if the name has any, else IPv4
  kV4Only,
  kV6Only,
  kV4Preferred,  // IPv4 if the name has any, else IPv6
  kAll,          // both, IPv4 first
};

// A query in flight. Destroying it (or cancel()) guarantees the callback will not run; both must
// happen on the requesting loop's thread.
class ActiveDnsQuery {
 public:
  virtual ~ActiveDnsQuery() = default;
  virtual void cancel() = 0;
};

// Resolves names with getaddrinfo (which blocks) on a few resolver threads, then posts the result
// to the requesting loop. Shared by every worker; resolve() is thread-safe. The loops that asked
// must outlive their pending queries (destroy or cancel them first); the resolver must outlive
// every ActiveDnsQuery it returned.
class DnsResolver {
 public:
  using ResolveCallback = std::function<void(Result<std::vector<Address>> result)>;

  explicit DnsResolver(size_t threads = 2);
  ~DnsResolver();
  DnsResolver(const DnsResolver&) = delete;
  DnsResolver& operator=(const DnsResolver&) = delete;

  // Addresses come back with port 0 (callers add the cluster's port with withPort()). An IP
  // literal resolves without a thread hop (still delivered from the loop). No address: an error.
  std::unique_ptr<ActiveDnsQuery> resolve(EventLoop& loop, std::string host, DnsLookupFamily family,
                                          ResolveCallback cb);

  // Filters/orders raw getaddrinfo results for a family (exposed for tests).
  static std::vector<Address> selectFamily(const std::vector<Address>& all, DnsLookupFamily family);

 private:
  struct Query;
  class QueryHandle;
  void workerMain();
  static void complete(const std::shared_ptr<Query>& q, Result<std::vector<Address>> result);

  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Query>> queue_;  // guarded by mutex_
  bool stopping_ = false;                     // guarded by mutex_
  std::vector<std::thread> threads_;
};

}  // namespace sheave::network
