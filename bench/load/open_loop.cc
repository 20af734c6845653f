// An open-loop HTTP/1.1 load generator: requests are sent on a fixed
// schedule (rate / connections per keep-alive connection) and each latency
// is measured from when the request was *due*, not when it was sent, so a
// slow response does not hide the queueing behind it (coordinated omission;
// the wrk2 approach). Built by bench/mesh_path.sh with g++; not a test.
//
//   open_loop HOST PORT PATH RATE SECONDS CONNECTIONS [HOST_HEADER]
// prints: requests errors achieved_rps p50_us p90_us p99_us max_us
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

using Clock = std::chrono::steady_clock;

namespace {

int connectTo(const sockaddr_in& addr) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// Reads one response with a Content-Length body; false on error or close.
bool readResponse(int fd, std::string& buf) {
  buf.clear();
  char chunk[16384];
  size_t header_end = std::string::npos;
  size_t need = 0;
  while (true) {
    if (header_end == std::string::npos) {
      header_end = buf.find("\r\n\r\n");
      if (header_end != std::string::npos) {
        if (buf.compare(0, 12, "HTTP/1.1 200") != 0) return false;
        std::string lower = buf.substr(0, header_end);
        for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        size_t cl = lower.find("content-length:");
        if (cl == std::string::npos) return false;
        need = header_end + 4 + std::strtoul(lower.c_str() + cl + 15, nullptr, 10);
      }
    }
    if (header_end != std::string::npos && buf.size() >= need) return true;
    ssize_t n = ::recv(fd, chunk, sizeof(chunk), 0);
    if (n <= 0) return false;
    buf.append(chunk, static_cast<size_t>(n));
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 7) {
    std::fprintf(stderr, "usage: %s HOST PORT PATH RATE SECONDS CONNECTIONS [HOST_HEADER]\n",
                 argv[0]);
    return 2;
  }
  addrinfo hints{};
  hints.ai_family = AF_INET;
  addrinfo* res = nullptr;
  if (::getaddrinfo(argv[1], nullptr, &hints, &res) != 0 || res == nullptr) {
    std::fprintf(stderr, "cannot resolve %s\n", argv[1]);
    return 1;
  }
  sockaddr_in addr = *reinterpret_cast<sockaddr_in*>(res->ai_addr);
  ::freeaddrinfo(res);
  addr.sin_port = htons(static_cast<uint16_t>(std::atoi(argv[2])));
  const std::string path = argv[3];
  const double rate = std::atof(argv[4]);
  const double seconds = std::atof(argv[5]);
  const int connections = std::max(1, std::atoi(argv[6]));
  const std::string host = argc > 7 ? argv[7] : argv[1];
  const std::string request = "GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\n\r\n";
  const auto interval = std::chrono::nanoseconds(static_cast<int64_t>(1e9 * connections / rate));
  const auto start = Clock::now() + std::chrono::milliseconds(100);
  const auto end = start + std::chrono::nanoseconds(static_cast<int64_t>(seconds * 1e9));

  std::vector<std::vector<int64_t>> latencies(connections);
  std::atomic<long> errors{0};
  std::vector<std::thread> threads;
  for (int c = 0; c < connections; ++c) {
    threads.emplace_back([&, c] {
      int fd = connectTo(addr);
      std::string buf;
      // Connections start staggered across one interval.
      auto due = start + interval * c / connections;
      for (; due < end; due += interval) {
        std::this_thread::sleep_until(due);
        if (fd < 0) fd = connectTo(addr);
        bool ok = fd >= 0 &&
                  ::send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
                      static_cast<ssize_t>(request.size()) &&
                  readResponse(fd, buf);
        if (!ok) {
          errors++;
          if (fd >= 0) ::close(fd);
          fd = -1;
          continue;
        }
        latencies[c].push_back(
            std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - due).count());
      }
      if (fd >= 0) ::close(fd);
    });
  }
  for (auto& t : threads) t.join();
  std::vector<int64_t> all;
  for (auto& l : latencies) all.insert(all.end(), l.begin(), l.end());
  std::sort(all.begin(), all.end());
  auto pct = [&](double p) {
    if (all.empty()) return int64_t{0};
    return all[std::min(all.size() - 1, static_cast<size_t>(p * static_cast<double>(all.size())))];
  };
  std::printf("%zu %ld %.0f %lld %lld %lld %lld\n", all.size(), errors.load(),
              static_cast<double>(all.size()) / seconds, static_cast<long long>(pct(0.50)),
              static_cast<long long>(pct(0.90)), static_cast<long long>(pct(0.99)),
              static_cast<long long>(all.empty() ? 0 : all.back()));
  return 0;
}
