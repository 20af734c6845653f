#!/usr/bin/env bash
# Two sidecars in a row on loopback, the mesh's request path:
#   wrk -> front proxy (plain HTTP) -> [mTLS] -> back proxy -> nginx upstream (1 KiB)
# side by side, in one run:
#   sheave-plain        two sheave-proxy, plaintext between them
#   sheave-mtls         mTLS between them (SPIFFE URI SANs checked both ways)
#   sheave-mtls-rbac50  mTLS, and the back proxy enforces an RBAC policy set of 50 ALLOW policies
#                       (principal + path each); only the last one matches, so all 50 are evaluated
#   haproxy-plain       two HAProxy instances, plaintext between them
#   haproxy-mtls        two HAProxy instances doing the same mTLS both ways (verify required)
#   *-newconn           the front proxy opens a new upstream connection per request: requests/s is
#                       mTLS handshakes/s (session resumption on, as both proxies do by default)
# Prints a Markdown table (requests/s, p50/p99) and the ratios the issue asks for.
#
# usage: bench/mtls_proxy.sh [-w WORKERS] [-c CONNECTIONS] [-d SECONDS] [-W WARMUP_SECONDS] [-s SHEAVE_BINARY]
#                            [-n NAMES]   (default: all of the above)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
workers=1 conns=32 duration=8 warmup=2
names="sheave-plain,sheave-mtls,sheave-mtls-rbac50,haproxy-plain,haproxy-mtls,sheave-mtls-newconn,haproxy-mtls-newconn"
sheave_bin=${SHEAVE_PROXY:-$repo/build/bin/sheave-proxy}
while getopts "w:c:d:W:s:n:h" opt; do
  case "$opt" in
    w) workers=$OPTARG ;;
    c) conns=$OPTARG ;;
    d) duration=$OPTARG ;;
    W) warmup=$OPTARG ;;
    s) sheave_bin=$OPTARG ;;
    n) names=$OPTARG ;;
    h) sed -n '2,15p' "$0"; exit 0 ;;
    *) exit 2 ;;
  esac
done
bench_name=mtls_proxy.sh
# shellcheck source=bench/lib.sh
. "$here/lib.sh"
bench_require wrk nginx haproxy python3 curl openssl

# --- certificates: one CA, a client and a server identity (ECDSA P-256, SPIFFE URI SANs) ----------------------
pki=$work/pki
mkdir -p "$pki"
gen() {  # gen NAME SPIFFE_ID
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$pki/$1.key" -out "$pki/$1.csr" \
    -subj "/O=sheave-bench" 2>/dev/null
  printf 'subjectAltName=URI:%s\nextendedKeyUsage=serverAuth,clientAuth\n' "$2" >"$pki/$1.ext"
  openssl x509 -req -in "$pki/$1.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial -days 2 \
    -extfile "$pki/$1.ext" -out "$pki/$1.crt" 2>/dev/null
  cat "$pki/$1.crt" "$pki/$1.key" >"$pki/$1.pem"  # HAProxy's format
}
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$pki/ca.key" -out "$pki/ca.crt" \
  -days 2 -subj "/O=sheave-bench-ca" 2>/dev/null
client_id=spiffe://cluster.local/ns/default/sa/client
server_id=spiffe://cluster.local/ns/default/sa/server
gen client "$client_id"
gen server "$server_id"

# --- upstream --------------------------------------------------------------------------------------------------
start_upstream_nginx

# --- sheave pair -----------------------------------------------------------------------------------------------
# sheave_config ROLE(front|back) LISTEN_PORT ADMIN_PORT TARGET_PORT TLS(0|1) RBAC(0|1) NEWCONN(0|1) > file
sheave_config() {
  python3 - "$@" "$pki" "$client_id" "$server_id" <<'EOF'
import json, sys
role, port, admin, target, tls, rbac, newconn, pki, client_id, server_id = sys.argv[1:]
tls, rbac, newconn = tls == "1", rbac == "1", newconn == "1"
def cert(name):
    return {"certificate_chain": {"filename": f"{pki}/{name}.crt"}, "private_key": {"filename": f"{pki}/{name}.key"}}
filters = []
if rbac:
    policies = {}
    for i in range(49):  # none of these match the bench's caller
        policies[f"p{i:02d}"] = {
            "permissions": [{"url_path": {"path": {"prefix": f"/api/v{i}/"}}}],
            "principals": [{"authenticated": {"principal_name": {"exact": f"spiffe://cluster.local/ns/other/sa/s{i}"}}}]}
    policies["p49"] = {"permissions": [{"url_path": {"path": {"prefix": "/"}}}],
                       "principals": [{"authenticated": {"principal_name": {"exact": client_id}}}]}
    filters.append({"name": "envoy.filters.http.rbac", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC",
        "rules": {"action": "ALLOW", "policies": policies}}})
filters.append({"name": "envoy.filters.http.router",
                "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}})
hcm = {"name": "envoy.filters.network.http_connection_manager", "typed_config": {
    "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
    "stat_prefix": role, "http_filters": filters,
    "route_config": {"virtual_hosts": [{"name": "all", "domains": ["*"],
                                        "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "next"}}]}]}}}
chain = {"filters": [hcm]}
if tls and role == "back":
    chain["transport_socket"] = {"name": "envoy.transport_sockets.tls", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
        "require_client_certificate": True,
        "common_tls_context": {"tls_certificates": [cert("server")], "validation_context": {
            "trusted_ca": {"filename": f"{pki}/ca.crt"},
            "match_typed_subject_alt_names": [{"san_type": "URI", "matcher": {"prefix": "spiffe://cluster.local/"}}]}}}}
cluster = {"name": "next", "type": "STATIC", "connect_timeout": "5s", "load_assignment": {"cluster_name": "next",
           "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {"socket_address": {
               "address": "127.0.0.1", "port_value": int(target)}}}}]}]}}
if tls and role == "front":
    cluster["transport_socket"] = {"name": "envoy.transport_sockets.tls", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
        "common_tls_context": {"tls_certificates": [cert("client")], "validation_context": {
            "trusted_ca": {"filename": f"{pki}/ca.crt"},
            "match_typed_subject_alt_names": [{"san_type": "URI", "matcher": {"exact": server_id}}]}}}}
if newconn and role == "front":
    cluster["typed_extension_protocol_options"] = {"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
        "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
        "common_http_protocol_options": {"max_requests_per_connection": 1},
        "explicit_http_config": {"http_protocol_options": {}}}}
print(json.dumps({"admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": int(admin)}}},
                  "static_resources": {"listeners": [{"name": role, "address": {"socket_address": {
                      "address": "127.0.0.1", "port_value": int(port)}}, "filter_chains": [chain]}],
                                       "clusters": [cluster]}}))
EOF
}

start_sheave() {  # start_sheave ROLE PORT TARGET TLS RBAC NEWCONN
  local admin dir
  admin=$(free_port)
  dir=$work/sheave-$1-$2
  mkdir -p "$dir"
  sheave_config "$1" "$2" "$admin" "$3" "$4" "$5" "$6" >"$dir/envoy.json"
  "$sheave_bin" -c "$dir/envoy.json" --concurrency "$workers" --log-level warn >"$dir/out.log" 2>&1 &
  run_pids+=($!)
  pids+=($!)
  wait_http "http://127.0.0.1:$admin/ready" 15
}

start_haproxy() {  # start_haproxy ROLE PORT TARGET NEWCONN TLS
  local dir=$work/haproxy-$1-$2 bind server reuse
  mkdir -p "$dir"
  if [ "${5:-1}" = 0 ]; then
    bind="bind 127.0.0.1:$2"
    server="server s1 127.0.0.1:$3 maxconn 1000"
  elif [ "$1" = back ]; then
    bind="bind 127.0.0.1:$2 ssl crt $pki/server.pem ca-file $pki/ca.crt verify required"
    server="server s1 127.0.0.1:$3 maxconn 1000"
  else
    bind="bind 127.0.0.1:$2"
    server="server s1 127.0.0.1:$3 maxconn 1000 ssl crt $pki/client.pem ca-file $pki/ca.crt verify required"
  fi
  reuse="http-reuse always"
  [ "$4" = 1 ] && reuse="http-reuse never
  option http-server-close"
  cat >"$dir/haproxy.cfg" <<EOF
global
  nbthread $workers
  maxconn 8000
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  timeout http-keep-alive 300s
  $reuse
frontend f
  $bind
  default_backend b
backend b
  $server
EOF
  haproxy -db -f "$dir/haproxy.cfg" >"$dir/out.log" 2>&1 &
  run_pids+=($!)
  pids+=($!)
}

stop_run() {
  for pid in "${run_pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${run_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}

to_ms() {
  awk -v v="$1" 'BEGIN { n = v; sub(/[a-z]+$/, "", n); u = v; sub(/^[0-9.]+/, "", u);
    if (u == "us") n /= 1000; else if (u == "s") n *= 1000; printf "%.3f", n }'
}

declare -A rps p50 p99
run_one() {
  local name=$1 front back newconn=0 tls=1 rbac=0 out url
  run_pids=()
  front=$(free_port) back=$(free_port)
  case "$name" in *-newconn) newconn=1 ;; esac
  case "$name" in
    sheave-plain) tls=0 ;&
    sheave-mtls|sheave-mtls-newconn|sheave-mtls-rbac50)
      [ "$name" = sheave-mtls-rbac50 ] && rbac=1
      start_sheave back "$back" "$up_port" "$tls" "$rbac" 0
      start_sheave front "$front" "$back" "$tls" 0 "$newconn" ;;
    haproxy-plain) tls=0 ;&
    haproxy-mtls|haproxy-mtls-newconn)
      start_haproxy back "$back" "$up_port" 0 "$tls"
      start_haproxy front "$front" "$back" "$newconn" "$tls" ;;
    *) echo "mtls_proxy.sh: unknown target $name" >&2; return 1 ;;
  esac
  url="http://127.0.0.1:$front/1k"
  wait_http "$url" 10
  [ "$(curl -s --max-time 2 "$url" | wc -c)" = 1024 ] || { echo "mtls_proxy.sh: $name returns a wrong body" >&2; stop_run; return 1; }
  echo "== $name: warm-up ${warmup}s, then wrk -c$conns -d${duration}s" >&2
  wrk -t1 -c"$conns" -d"${warmup}s" "$url" >/dev/null
  out=$(wrk -t1 -c"$conns" -d"${duration}s" --latency "$url")
  grep -q "Non-2xx or 3xx" <<<"$out" && { echo "mtls_proxy.sh: $name answered errors" >&2; grep -E "Non-2xx" <<<"$out" >&2; }
  rps[$name]=$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' <<<"$out")
  p50[$name]=$(to_ms "$(awk '$1 == "50%" {print $2}' <<<"$out")")
  p99[$name]=$(to_ms "$(awk '$1 == "99%" {print $2}' <<<"$out")")
  stop_run
}

IFS=, read -r -a targets <<<"$names"
for t in "${targets[@]}"; do run_one "$t"; done

ratio() { if [ -n "${1:-}" ] && [ -n "${2:-}" ] && [ "${2:-0}" != 0 ]; then awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a/b}'; else echo "n/a"; fi; }
per_req_us() {  # what A costs per request over B, from throughput: 1e6/A - 1e6/B microseconds
  if [ -n "${1:-}" ] && [ -n "${2:-}" ]; then awk -v a="$1" -v b="$2" 'BEGIN {printf "%.1f", 1e6/a - 1e6/b}'; else echo "n/a"; fi
}

echo
echo "Two proxies in a row, HTTP/1.1 1 KiB, loopback; workers=$workers per proxy, wrk -t1 -c$conns -d${duration}s; $(nproc) CPUs; $(date -u +%Y-%m-%dT%H:%MZ)"
echo
echo "| path | requests/s | p50 ms | p99 ms |"
echo "|---|---:|---:|---:|"
for t in "${targets[@]}"; do echo "| $t | ${rps[$t]:-n/a} | ${p50[$t]:-n/a} | ${p99[$t]:-n/a} |"; done
echo
echo "| ratio | value |"
echo "|---|---:|"
echo "| sheave-mtls / haproxy-mtls requests/s | $(ratio "${rps[sheave-mtls]:-}" "${rps[haproxy-mtls]:-}") |"
echo "| sheave-mtls / haproxy-mtls p99 | $(ratio "${p99[sheave-mtls]:-}" "${p99[haproxy-mtls]:-}") |"
echo "| mTLS cost, sheave (mtls/plain requests/s) | $(ratio "${rps[sheave-mtls]:-}" "${rps[sheave-plain]:-}") |"
echo "| mTLS cost, haproxy (mtls/plain requests/s) | $(ratio "${rps[haproxy-mtls]:-}" "${rps[haproxy-plain]:-}") |"
echo "| RBAC with 50 policies: added time per request, 1/throughput difference (µs) | $(per_req_us "${rps[sheave-mtls-rbac50]:-}" "${rps[sheave-mtls]:-}") |"
echo "| new mTLS connections/s, sheave / haproxy | $(ratio "${rps[sheave-mtls-newconn]:-}" "${rps[haproxy-mtls-newconn]:-}") |"
