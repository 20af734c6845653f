#!/usr/bin/env bash
# The mesh's full request path against no mesh, in one run, with an open-loop load (a fixed request rate,
# latency measured from when each request was due): client -> sidecar -> mTLS -> sidecar -> nginx, as
# `sheave up` runs it (network namespaces, iptables interception, certificates from sheave-control, STRICT
# mTLS, Bookinfo's configuration loaded beside), against client -> nginx on loopback. Also the sidecars'
# CPU per 1,000 requests/s and their RSS at idle and after the load. Needs root (network namespaces).
#
#   bash bench/mesh_path.sh                  # -r 1000 -d 10 -c 8
#   bash bench/mesh_path.sh -r 2000 -d 20 -c 16
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
bench_name=mesh_path
rate=1000
duration=10
conns=8
while getopts "r:d:c:h" opt; do
  case "$opt" in
    r) rate=$OPTARG ;;
    d) duration=$OPTARG ;;
    c) conns=$OPTARG ;;
    *) sed -n '2,10p' "$0"; exit 2 ;;
  esac
done
if [ "$(id -u)" != 0 ]; then echo "$bench_name: needs root (sheave up creates network namespaces)" >&2; exit 1; fi
source "$here/lib.sh"
bench_require nginx curl g++ ip iptables-restore
sheave=${SHEAVE:-$repo/build/bin/sheave}
[ -x "$sheave" ] || { echo "$bench_name: $sheave not built" >&2; exit 1; }

g++ -O2 -std=c++20 -pthread "$here/load/open_loop.cc" -o "$work/open_loop"

# Direct: nginx on loopback, no mesh.
start_upstream_nginx

# The mesh: the same nginx config listening on 8080 inside the server's namespace.
mesh=$work/mesh
state=$work/state
mkdir -p "$mesh" "$work/server/tmp"
cp -r "$work/upstream/www" "$work/server/www"
sed -e "s|@DIR@|$work/server|g" -e "s|listen 127.0.0.1:@PORT@|listen 8080|" "$here/configs/upstream-nginx.conf" \
  >"$work/server/nginx.conf"
chmod -R 755 "$work/server"
cp "$repo"/examples/bookinfo/*.yaml "$mesh/"
cat >"$mesh/bench.yaml" <<YAML
apiVersion: v1
kind: Service
metadata: {name: server}
spec:
  selector: {app: server}
  ports: [{name: http, port: 8080}]
---
apiVersion: sheave.io/v1alpha1
kind: LocalWorkload
metadata: {name: server}
spec:
  serviceAccount: server
  labels: {app: server, version: v1}
  ports: {http: 8080}
  command: [nginx, -p, "$work/server", -c, "$work/server/nginx.conf", -e, "$work/server/error.log"]
---
apiVersion: sheave.io/v1alpha1
kind: LocalWorkload
metadata: {name: client}
spec:
  serviceAccount: client
  labels: {app: client, version: v1}
  command: [sleep, "86400"]
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: istio-system}
spec:
  mtls: {mode: STRICT}
YAML
mesh_down() { "$sheave" --state-dir "$state" down >/dev/null 2>&1 || true; }
bench_on_exit=mesh_down
"$sheave" --state-dir "$state" up "$mesh" --quiet >"$work/up.log" 2>&1 &
deadline=$((SECONDS + 120))
until "$sheave" --state-dir "$state" status >/dev/null 2>&1; do
  [ "$SECONDS" -ge "$deadline" ] && { echo "$bench_name: sheave up did not come up" >&2; cat "$work/up.log" >&2; exit 1; }
  sleep 0.5
done
client_ns=sheave-default-client-0
until ip netns exec "$client_ns" curl -sf -o /dev/null --max-time 2 http://server:8080/1k; do
  [ "$SECONDS" -ge "$deadline" ] && { echo "$bench_name: server not reachable through the mesh" >&2; exit 1; }
  sleep 0.2
done

sidecar_pid() { python3 -c "import json,sys; print([w['sidecar_pid'] for w in json.load(open('$state/status.json'))['workloads'] if w['name']==sys.argv[1]][0])" "$1"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_kib() { awk -v k="$2" '$1 == k":" {print $2}' "/proc/$1/status"; }
# Proportional and private memory: most of a sidecar's RSS is library and binary text shared by every sidecar.
smaps_kib() { awk -v k="$2" '$1 == k":" {print $2}' "/proc/$1/smaps_rollup"; }
mib() { echo "$(($1 / 1024)).$((($1 % 1024) * 10 / 1024)) MiB"; }
client_pid=$(sidecar_pid client-0)
server_pid=$(sidecar_pid server-0)
idle_client=$(rss_kib "$client_pid" VmRSS)
idle_server=$(rss_kib "$server_pid" VmRSS)
idle_pss=$(smaps_kib "$client_pid" Pss)
idle_private=$(smaps_kib "$client_pid" Private_Dirty)

load() {  # load LABEL NETNS HOST PORT
  local ns=$3
  local cmd=("$work/open_loop" "$4" "$5" /1k "$rate" 2 "$conns")
  local run=("$work/open_loop" "$4" "$5" /1k "$rate" "$duration" "$conns")
  if [ -n "$ns" ]; then cmd=(ip netns exec "$ns" "${cmd[@]}"); run=(ip netns exec "$ns" "${run[@]}"); fi
  "${cmd[@]}" >/dev/null  # warm-up
  "${run[@]}" >"$work/$1.out"
}
load direct "" "" 127.0.0.1 "$up_port"
t0_client=$(cpu_ticks "$client_pid"); t0_server=$(cpu_ticks "$server_pid")
load mesh "" "$client_ns" server 8080
t1_client=$(cpu_ticks "$client_pid"); t1_server=$(cpu_ticks "$server_pid")
peak_client=$(rss_kib "$client_pid" VmHWM)
peak_server=$(rss_kib "$server_pid" VmHWM)
load_pss=$(smaps_kib "$client_pid" Pss)
load_private=$(smaps_kib "$client_pid" Private_Dirty)
sidecars=$(python3 -c "import json; print(len(json.load(open('$state/status.json'))['workloads']))")
hz=$(getconf CLK_TCK)

echo "## mesh path, open loop: $rate requests/s for ${duration}s over $conns connections, 1 KiB responses ($(nproc) cores)"
echo
echo "| path | requests | errors | achieved req/s | p50 µs | p90 µs | p99 µs | max µs |"
echo "|---|---|---|---|---|---|---|---|"
for label in direct mesh; do
  read -r n err rps p50 p90 p99 max <"$work/$label.out"
  printf "| %s | %s | %s | %s | %s | %s | %s | %s |\n" "$label" "$n" "$err" "$rps" "$p50" "$p90" "$p99" "$max"
done
read -r _ _ _ d50 _ d99 _ <"$work/direct.out"
read -r _ _ _ m50 _ m99 _ <"$work/mesh.out"
echo
echo "added by the two sidecars + mTLS: p50 $((m50 - d50)) µs, p99 $((m99 - d99)) µs"
awk -v c=$((t1_client - t0_client)) -v s=$((t1_server - t0_server)) -v hz="$hz" -v d="$duration" -v r="$rate" \
  'BEGIN { printf "sidecar CPU per 1,000 req/s: client %.3f cores, server %.3f cores\n", c/hz/d*1000/r, s/hz/d*1000/r }'
echo "sidecar RSS: client idle $(mib "$idle_client"), peak $(mib "$peak_client"); server idle $(mib "$idle_server"), peak $(mib "$peak_server")"
echo "client sidecar PSS ($sidecars sidecars share the text): idle $(mib "$idle_pss"), after load $(mib "$load_pss"); private dirty: idle $(mib "$idle_private"), after load $(mib "$load_private")"
mesh_down
