#!/usr/bin/env bash
# Memory cost of configuration objects in sheave-proxy: starts it with generated bootstraps
#   baseline (admin only), 1000 STATIC clusters of one endpoint each, 1 STATIC cluster of 10,000 endpoints
# reads RSS once /ready answers (after a short settle), and prints the growth per cluster and per endpoint.
# No traffic is sent: endpoints are 127.0.0.1 ports that are never connected to.
#
# usage: bench/memory_per_object.sh [-s SHEAVE_BINARY] [-c CLUSTERS] [-e ENDPOINTS] [-w WORKERS]
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
sheave_bin=${SHEAVE_PROXY:-$repo/build/bin/sheave-proxy}
clusters=1000 endpoints=10000 workers=1
while getopts "s:c:e:w:h" opt; do
  case "$opt" in
    s) sheave_bin=$OPTARG ;;
    c) clusters=$OPTARG ;;
    e) endpoints=$OPTARG ;;
    w) workers=$OPTARG ;;
    h) sed -n '2,7p' "$0"; exit 0 ;;
    *) exit 2 ;;
  esac
done
[ -x "$sheave_bin" ] || { echo "memory_per_object.sh: $sheave_bin not built (or pass -s)" >&2; exit 1; }

work=$(mktemp -d -t sheave-mem.XXXXXX)
proxy_pid=""
cleanup() {
  trap - EXIT INT TERM
  if [ -n "$proxy_pid" ]; then
    kill -TERM "$proxy_pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$proxy_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$proxy_pid" 2>/dev/null || true
    wait "$proxy_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# gen KIND N ADMIN_PORT > file.json   (KIND: none | clusters | endpoints)
gen() {
  python3 - "$1" "$2" "$3" <<'EOF'
import json, sys
kind, n, admin = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])

def cluster(name, ports):
    return {"name": name, "type": "STATIC", "connect_timeout": "1s", "lb_policy": "ROUND_ROBIN",
            "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [
                {"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": p}}}}
                for p in ports]}]}}

if kind == "none":
    clusters = []
elif kind == "clusters":
    clusters = [cluster("cluster_%05d" % i, [20000 + i % 40000]) for i in range(n)]
else:
    clusters = [cluster("big", [20000 + i % 40000 for i in range(n)])]
print(json.dumps({"admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin}}},
                  "static_resources": {"clusters": clusters}}))
EOF
}

measure() {  # measure KIND N -> prints RSS KiB after ready
  local kind=$1 n=$2 admin cfg deadline rss
  admin=$(free_port)
  cfg="$work/$kind-$n.json"
  gen "$kind" "$n" "$admin" >"$cfg"
  "$sheave_bin" -c "$cfg" --concurrency "$workers" --log-level warn >"$work/$kind.out" 2>"$work/$kind.err" &
  proxy_pid=$!
  deadline=$((SECONDS + 60))
  until curl -sf -o /dev/null --max-time 1 "http://127.0.0.1:$admin/ready"; do
    if ! kill -0 "$proxy_pid" 2>/dev/null || [ "$SECONDS" -ge "$deadline" ]; then
      echo "memory_per_object.sh: sheave-proxy not ready for $kind $n:" >&2
      tail -20 "$work/$kind.err" >&2
      exit 1
    fi
    sleep 0.1
  done
  sleep 1  # let workers receive their snapshot
  rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$proxy_pid/status")
  kill -TERM "$proxy_pid"
  for _ in $(seq 100); do kill -0 "$proxy_pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$proxy_pid" 2>/dev/null || true
  wait "$proxy_pid" 2>/dev/null || true
  proxy_pid=""
  echo "$rss"
}

base=$(measure none 0)
with_clusters=$(measure clusters "$clusters")
with_endpoints=$(measure endpoints "$endpoints")

echo
echo "sheave-proxy RSS after /ready, --concurrency $workers"
echo
echo "| bootstrap | RSS MiB | growth per object |"
echo "|---|---:|---:|"
awk -v b="$base" -v c="$with_clusters" -v e="$with_endpoints" -v nc="$clusters" -v ne="$endpoints" 'BEGIN {
  printf "| admin only | %.1f | |\n", b / 1024
  printf "| %d clusters (1 endpoint each) | %.1f | %.2f KiB per cluster |\n", nc, c / 1024, (c - b) / nc
  printf "| 1 cluster, %d endpoints | %.1f | %.0f bytes per endpoint |\n", ne, e / 1024, (e - b) * 1024 / ne
}'
