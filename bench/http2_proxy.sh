#!/usr/bin/env bash
# HTTP/2 (h2c, prior knowledge) reverse-proxy benchmark on loopback: h2load -> proxy -> HTTP/1.1 nginx upstream,
# sheave-proxy and HAProxy (`bind ... proto h2`) side by side in the same run, same worker count.
# Upstream: nginx returning a fixed 1 KiB body with keep-alive (bench/configs, as http_proxy.sh).
# Prints a Markdown table: requests/s, mean request time, peak RSS (VmHWM) of each proxy, and the ratio.
#
# Targets sheave-h2up and haproxy-h2up proxy to the same nginx over h2c (prior knowledge) instead: HTTP/2 on both
# sides, one multiplexed upstream connection per worker for sheave (an HTTP/2 cluster).
#
# usage: bench/http2_proxy.sh [-w WORKERS] [-c CLIENTS] [-m STREAMS_PER_CLIENT] [-n REQUESTS] [-s SHEAVE_BINARY]
#                             [-N NAMES]   (NAMES: comma list of sheave, haproxy, sheave-h2up, haproxy-h2up;
#                                           default sheave,haproxy)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
workers=1 clients=4 streams=100 requests=200000 names="sheave,haproxy"
sheave_bin=${SHEAVE_PROXY:-$repo/build/bin/sheave-proxy}
while getopts "w:c:m:n:s:N:h" opt; do
  case "$opt" in
    w) workers=$OPTARG ;;
    c) clients=$OPTARG ;;
    m) streams=$OPTARG ;;
    n) requests=$OPTARG ;;
    s) sheave_bin=$OPTARG ;;
    N) names=$OPTARG ;;
    h) sed -n '2,12p' "$0"; exit 0 ;;
    *) exit 2 ;;
  esac
done

bench_name=http2_proxy.sh
# shellcheck source=bench/lib.sh
. "$here/lib.sh"
bench_require h2load nginx haproxy python3 curl

peak_rss_kib() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

h2_port=$(free_port)  # the same nginx, h2c with prior knowledge
start_upstream_nginx -e "s|^\(    listen 127.0.0.1:@PORT@ backlog=4096;\)$|\1\n    listen 127.0.0.1:$h2_port http2;|"

start_proxy() {  # start_proxy NAME PORT; sets proxy_pid
  local name=$1 port=$2 admin
  mkdir -p "$work/$name"
  case "$name" in
    sheave)
      admin=$(free_port)
      # The HTTP/1.1 benchmark's config: its listener's codec_type is AUTO, which serves h2c too.
      sed -e "s|@PORT@|$port|g" -e "s|@ADMIN_PORT@|$admin|g" -e "s|@UPSTREAM_PORT@|$up_port|g" \
        "$here/configs/sheave.yaml" >"$work/sheave/envoy.yaml"
      "$sheave_bin" -c "$work/sheave/envoy.yaml" --concurrency "$workers" --log-level warn \
        >"$work/sheave/stdout.log" 2>"$work/sheave/stderr.log" &
      ;;
    sheave-h2up)
      admin=$(free_port)
      sed -e "s|@PORT@|$port|g" -e "s|@ADMIN_PORT@|$admin|g" -e "s|@UPSTREAM_PORT@|$h2_port|g" \
        "$here/configs/sheave.yaml" >"$work/$name/envoy.yaml"
      # The cluster is the file's last entry: its protocol options go at its indentation.
      cat >>"$work/$name/envoy.yaml" <<'YAML'
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: { http2_protocol_options: {} }
YAML
      "$sheave_bin" -c "$work/$name/envoy.yaml" --concurrency "$workers" --log-level warn \
        >"$work/$name/stdout.log" 2>"$work/$name/stderr.log" &
      ;;
    haproxy | haproxy-h2up)
      local server_port=$up_port server_proto=""
      [ "$name" = haproxy-h2up ] && server_port=$h2_port server_proto=" proto h2"
      sed -e "s|@PORT@|$port|g" -e "s|@UPSTREAM_PORT@|$server_port|g" -e "s|@WORKERS@|$workers|g" \
        -e "s|@DIR@|$work/$name|g" -e "s|^\(  bind 127.0.0.1:$port\)$|\1 proto h2|" \
        -e "s|^\(  server s1 127.0.0.1:$server_port\)|\1$server_proto|" \
        "$here/configs/haproxy.cfg" >"$work/$name/haproxy.cfg"
      haproxy -db -f "$work/$name/haproxy.cfg" >"$work/$name/haproxy.log" 2>&1 &
      ;;
    *) echo "http2_proxy.sh: unknown target $name" >&2; return 1 ;;
  esac
  proxy_pid=$!
  pids+=("$proxy_pid")
}

declare -A rps mean rss
for name in ${names//,/ }; do
  port=$(free_port)
  start_proxy "$name" "$port"
  url="http://127.0.0.1:$port/1k"
  wait_http "$url" 15 --http2-prior-knowledge
  [ "$(curl -s --http2-prior-knowledge --max-time 2 "$url" | wc -c)" = 1024 ] ||
    { echo "http2_proxy.sh: $name returns a wrong body over h2c" >&2; exit 1; }
  echo "== $name: warm-up, then h2load -n$requests -c$clients -m$streams $url" >&2
  h2load -n $((requests / 10)) -c "$clients" -m "$streams" "$url" >/dev/null
  out=$(h2load -n "$requests" -c "$clients" -m "$streams" "$url")
  echo "$out" >"$work/h2load-$name.txt"
  grep -q "$requests succeeded" <<<"$out" || { echo "http2_proxy.sh: $name had failures:" >&2; grep -E "^requests|^status" <<<"$out" >&2; }
  rps[$name]=$(awk '/^finished in/ {gsub(",", "", $4); printf "%.0f", $4}' <<<"$out")
  mean[$name]=$(awk '/^time for request:/ {print $5}' <<<"$out")
  rss[$name]=$(peak_rss_kib "$proxy_pid")
  kill -TERM "$proxy_pid" 2>/dev/null || true
  wait "$proxy_pid" 2>/dev/null || true
done

echo
echo "HTTP/2 (h2c) -> HTTP/1.1 upstream (*-h2up: h2c upstream), 1 KiB responses, loopback; workers=$workers, h2load -n$requests -c$clients -m$streams; $(nproc) CPUs; $(date -u +%Y-%m-%dT%H:%MZ)"
echo
echo "| target | requests/s | mean request time | peak RSS MiB |"
echo "|---|---:|---:|---:|"
for name in ${names//,/ }; do
  echo "| $name | ${rps[$name]:-n/a} | ${mean[$name]:-n/a} | $(awk -v k="${rss[$name]:-0}" 'BEGIN {printf "%.1f", k/1024}') |"
done
if [ -n "${rps[sheave]:-}" ] && [ -n "${rps[haproxy]:-}" ]; then
  echo
  echo "sheave/haproxy requests/s: $(awk -v a="${rps[sheave]}" -v b="${rps[haproxy]}" 'BEGIN {printf "%.2f", a/b}')"
fi
if [ -n "${rps[sheave-h2up]:-}" ] && [ -n "${rps[haproxy-h2up]:-}" ]; then
  echo
  echo "sheave-h2up/haproxy-h2up requests/s: $(awk -v a="${rps[sheave-h2up]}" -v b="${rps[haproxy-h2up]}" 'BEGIN {printf "%.2f", a/b}')"
fi
