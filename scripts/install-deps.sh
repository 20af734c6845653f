#!/usr/bin/env bash
# Installs every system dependency Sheave needs on Debian 12, from Debian's
# packages only. Idempotent: packages already present are skipped, and when
# nothing is missing it does not touch apt at all.
set -euo pipefail

packages=(
  # toolchain
  build-essential cmake ninja-build pkg-config g++ clang-14 libclang-rt-14-dev
  clang-format clang-tidy
  # libraries
  libprotobuf-dev protobuf-compiler libgrpc++-dev protobuf-compiler-grpc
  libssl-dev libnghttp2-dev libre2-dev libyaml-cpp-dev libxxhash-dev
  libspdlog-dev libfmt-dev libcli11-dev nlohmann-json3-dev
  libcpp-httplib-dev  # sheave-demo-app's HTTP server and client
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev
  curl wrk haproxy nginx-light nghttp2-client openssl python3 iproute2 procps prometheus
  iptables  # sheave up: transparent interception inside each workload's namespace
  python3-grpcio python3-protobuf
  python3-websockets  # WebSocket client and server for the upgrade tests
  python3-yaml  # reads the CLI's -o yaml output in tests
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
# The packaged web servers are test peers and benchmark baselines only: never
# leave them running as system services.
for svc in nginx haproxy; do
  if command -v systemctl >/dev/null 2>&1; then
    "${sudo_cmd[@]}" systemctl disable --now "$svc" >/dev/null 2>&1 || true
  fi
  "${sudo_cmd[@]}" service "$svc" stop >/dev/null 2>&1 || true
done
