// Load-balancer pick cost: ROUND_ROBIN, LEAST_REQUEST, RANDOM, RING_HASH and
// MAGLEV over 5, 50 and 500 hosts, with a fresh hash key per pick for the hash
// policies (as a request with its own x-user would bring). Also the table
// build, which a worker pays once per host change (shared through the cache).

#include <benchmark/benchmark.h>

#include <string>

#include "proxy/upstream/load_balancer.h"

namespace {

using namespace sheave;
using namespace sheave::upstream;

std::shared_ptr<const HostVector> hosts(int n) {
  auto out = std::make_shared<HostVector>();
  for (int i = 0; i < n; ++i) {
    out->push_back(std::make_shared<Host>(
        Address::parse("10." + std::to_string(i / 250) + ".0." + std::to_string(i % 250 + 1), 8080)
            .value(),
        "", 1));
  }
  return out;
}

void pick(benchmark::State& state, LbPolicy policy) {
  RandomGenerator random(1);
  LbConfig config;
  config.policy = policy;
  auto lb = LoadBalancer::create(config, hosts(static_cast<int>(state.range(0))), random);
  RandomGenerator keys(2);
  LbContext context;
  const bool hashed = policy == LbPolicy::kRingHash || policy == LbPolicy::kMaglev;
  for (auto _ : state) {
    if (hashed) context.hash_key = keys.next();
    benchmark::DoNotOptimize(lb->chooseHost(&context));
  }
}

void BM_RoundRobin(benchmark::State& s) { pick(s, LbPolicy::kRoundRobin); }
void BM_LeastRequest(benchmark::State& s) { pick(s, LbPolicy::kLeastRequest); }
void BM_Random(benchmark::State& s) { pick(s, LbPolicy::kRandom); }
void BM_RingHash(benchmark::State& s) { pick(s, LbPolicy::kRingHash); }
void BM_Maglev(benchmark::State& s) { pick(s, LbPolicy::kMaglev); }
BENCHMARK(BM_RoundRobin)->Arg(5)->Arg(50)->Arg(500);
BENCHMARK(BM_LeastRequest)->Arg(5)->Arg(50)->Arg(500);
BENCHMARK(BM_Random)->Arg(5)->Arg(50)->Arg(500);
BENCHMARK(BM_RingHash)->Arg(5)->Arg(50)->Arg(500);
BENCHMARK(BM_Maglev)->Arg(5)->Arg(50)->Arg(500);

void BM_BuildRingHash(benchmark::State& state) {
  auto h = hosts(static_cast<int>(state.range(0)));
  for (auto _ : state) benchmark::DoNotOptimize(buildRingHash(*h, 1024, 8 * 1024 * 1024));
}
void BM_BuildMaglev(benchmark::State& state) {
  auto h = hosts(static_cast<int>(state.range(0)));
  for (auto _ : state) benchmark::DoNotOptimize(buildMaglev(*h, 65537));
}
BENCHMARK(BM_BuildRingHash)->Arg(5)->Arg(500)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_BuildMaglev)->Arg(5)->Arg(500)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
