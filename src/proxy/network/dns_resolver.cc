#include "proxy/network/dns_resolver.h"

#include <netdb.h>
#include <sys/socket.h>

#include <algorithm>

namespace sheave::network {

struct DnsResolver::Query {
  EventLoop* loop;
  std::string host;
  DnsLookupFamily family;
  ResolveCallback cb;
  // Taken by the resolver thread while it posts, and by cancel(): once cancel() returns, nothing
  // touches the loop for this query any more (so the loop may then go away).
  std::mutex mutex;
  bool cancelled = false;  // guarded by mutex; read again on the loop thread before running cb
};

class DnsResolver::QueryHandle final : public ActiveDnsQuery {
 public:
  explicit QueryHandle(std::shared_ptr<Query> q) : q_(std::move(q)) {}
  ~QueryHandle() override { cancel(); }
  void cancel() override {
    std::lock_guard<std::mutex> lock(q_->mutex);
    q_->cancelled = true;
  }

 private:
  std::shared_ptr<Query> q_;
};

DnsResolver::DnsResolver(size_t threads) {
  if (threads == 0) threads = 1;
  for (size_t i = 0; i < threads; ++i) threads_.emplace_back([this] { workerMain(); });
}

DnsResolver::~DnsResolver() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
    queue_.clear();
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
}

std::vector<Address> DnsResolver::selectFamily(const std::vector<Address>& all,
                                               DnsLookupFamily family) {
  std::vector<Address> v4;
  std::vector<Address> v6;
  for (const Address& a : all) {
    auto& list = a.family() == AF_INET ? v4 : v6;
    if (std::find(list.begin(), list.end(), a) == list.end()) list.push_back(a);
  }
  switch (family) {
    case DnsLookupFamily::kV4Only:
      return v4;
    case DnsLookupFamily::kV6Only:
      return v6;
    case DnsLookupFamily::kAuto:
      return v6.empty() ? v4 : v6;
    case DnsLookupFamily::kV4Preferred:
      return v4.empty() ? v6 : v4;
    case DnsLookupFamily::kAll:
      v4.insert(v4.end(), v6.begin(), v6.end());
      return v4;
  }
  return {};
}

void DnsResolver::complete(const std::shared_ptr<Query>& q, Result<std::vector<Address>> result) {
  std::lock_guard<std::mutex> lock(q->mutex);
  if (q->cancelled) return;
  q->loop->post([q, result = std::move(result)]() mutable {
    {
      std::lock_guard<std::mutex> inner(q->mutex);
      if (q->cancelled) return;
      q->cancelled = true;  // at most once
    }
    auto cb = std::move(q->cb);
    cb(std::move(result));
  });
}

std::unique_ptr<ActiveDnsQuery> DnsResolver::resolve(EventLoop& loop, std::string host,
                                                     DnsLookupFamily family, ResolveCallback cb) {
  auto q = std::make_shared<Query>();
  q->loop = &loop;
  q->host = std::move(host);
  q->family = family;
  q->cb = std::move(cb);
  auto handle = std::make_unique<QueryHandle>(q);

  std::string_view literal = q->host;
  if (literal.size() > 2 && literal.front() == '[' && literal.back() == ']') {
    literal = literal.substr(1, literal.size() - 2);
  }
  auto parsed = Address::parse(literal, 0);
  if (parsed.ok()) {
    auto selected = selectFamily({*parsed}, family);
    if (selected.empty()) {
      complete(q, notFound("'" + q->host + "' is an IP literal of the wrong family"));
    } else {
      complete(q, std::move(selected));
    }
    return handle;
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    queue_.push_back(q);
  }
  cv_.notify_one();
  return handle;
}

void DnsResolver::workerMain() {
  for (;;) {
    std::shared_ptr<Query> q;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      q = std::move(queue_.front());
      queue_.pop_front();
    }
    {
      std::lock_guard<std::mutex> lock(q->mutex);
      if (q->cancelled) continue;  // nobody waits for it any more
    }

    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_family = q->family == DnsLookupFamily::kV4Only   ? AF_INET
                      : q->family == DnsLookupFamily::kV6Only ? AF_INET6
                                                              : AF_UNSPEC;
    addrinfo* res = nullptr;
    int rc = ::getaddrinfo(q->host.c_str(), nullptr, &hints, &res);
    if (rc != 0) {
      complete(q, notFound("cannot resolve '" + q->host + "': " + ::gai_strerror(rc)));
      continue;
    }
    std::vector<Address> all;
    for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
      Address a = Address::fromSockaddr(ai->ai_addr, ai->ai_addrlen);
      if (!a.empty()) all.push_back(a.withPort(0));
    }
    ::freeaddrinfo(res);
    auto selected = selectFamily(all, q->family);
    if (selected.empty()) {
      complete(q, notFound("'" + q->host + "' has no address of the requested family"));
    } else {
      complete(q, std::move(selected));
    }
  }
}

}  // namespace sheave::network
