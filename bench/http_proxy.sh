#!/usr/bin/env bash
# HTTP/1.1 reverse-proxy benchmark on loopback: the same workload four ways,
#   direct (wrk -> upstream), sheave-proxy, HAProxy, nginx
# each proxy with one HTTP/1.1 listener, a keep-alive upstream pool and the same worker count.
# Upstream: nginx returning a fixed 1 KiB body with keep-alive. Load: wrk, after a warm-up run.
# Prints a Markdown table: requests/s, p50/p99 latency, peak RSS (VmHWM) of each proxy, and ratios.
#
# usage: bench/http_proxy.sh [-w WORKERS] [-c CONNECTIONS] [-d SECONDS] [-t WRK_THREADS] [-W WARMUP_SECONDS]
#                            [-o RESULTS_DIR] [-s SHEAVE_BINARY] [-n NAMES]   (NAMES: comma list, default
#                            direct,sheave,haproxy,nginx; also sheave-resilience: configs/sheave-resilience.yaml)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
workers=1 conns=64 duration=10 wrk_threads=1 warmup=3 results_dir="" names="direct,sheave,haproxy,nginx"
sheave_bin=${SHEAVE_PROXY:-$repo/build/bin/sheave-proxy}
while getopts "w:c:d:t:W:o:s:n:h" opt; do
  case "$opt" in
    w) workers=$OPTARG ;;
    c) conns=$OPTARG ;;
    d) duration=$OPTARG ;;
    t) wrk_threads=$OPTARG ;;
    W) warmup=$OPTARG ;;
    o) results_dir=$OPTARG ;;
    s) sheave_bin=$OPTARG ;;
    n) names=$OPTARG ;;
    h) sed -n '2,10p' "$0"; exit 0 ;;
    *) exit 2 ;;
  esac
done

bench_name=http_proxy.sh
copy_results() { if [ -n "$results_dir" ]; then mkdir -p "$results_dir" && cp -r "$work"/. "$results_dir"/; fi; }
bench_on_exit=copy_results
# shellcheck source=bench/lib.sh
. "$here/lib.sh"
bench_require wrk nginx haproxy python3 curl

# Peak RSS in KiB of a process and all its descendants (nginx: master + workers).
peak_rss_kib() {
  local root=$1 total=0 pid hwm
  for pid in $root $(pgrep -P "$root" || true); do
    hwm=$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
    total=$((total + ${hwm:-0}))
  done
  echo "$total"
}

# ---------------------------------------------------------------------------------------------------------------
# Upstream: nginx serving a 1 KiB file, keep-alive, its own worker count (not limited by -w: it must not be the
# bottleneck more than it has to be).
start_upstream_nginx

# ---------------------------------------------------------------------------------------------------------------
start_sheave() {  # start_sheave PORT [CONFIG_NAME]
  local port=$1 config=${2:-sheave} admin
  admin=$(free_port)
  mkdir -p "$work/$config"
  sed -e "s|@PORT@|$port|g" -e "s|@ADMIN_PORT@|$admin|g" -e "s|@UPSTREAM_PORT@|$up_port|g" \
    "$here/configs/$config.yaml" >"$work/$config/envoy.yaml"
  "$sheave_bin" -c "$work/$config/envoy.yaml" --concurrency "$workers" --log-level warn \
    >"$work/$config/stdout.log" 2>"$work/$config/stderr.log" &
  proxy_pid=$!
  pids+=("$proxy_pid")
  wait_http "http://127.0.0.1:$admin/ready" 15
}

start_haproxy() {
  local port=$1
  mkdir -p "$work/haproxy"
  sed -e "s|@PORT@|$port|g" -e "s|@UPSTREAM_PORT@|$up_port|g" -e "s|@WORKERS@|$workers|g" \
    -e "s|@DIR@|$work/haproxy|g" "$here/configs/haproxy.cfg" >"$work/haproxy/haproxy.cfg"
  haproxy -db -f "$work/haproxy/haproxy.cfg" >"$work/haproxy/haproxy.log" 2>&1 &
  proxy_pid=$!
  pids+=("$proxy_pid")
}

start_nginx() {
  local port=$1
  mkdir -p "$work/nginx/tmp"
  chmod -R 755 "$work/nginx"
  sed -e "s|@PORT@|$port|g" -e "s|@UPSTREAM_PORT@|$up_port|g" -e "s|@WORKERS@|$workers|g" \
    -e "s|@DIR@|$work/nginx|g" "$here/configs/proxy-nginx.conf" >"$work/nginx/nginx.conf"
  nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" -e "$work/nginx/error.log" &
  proxy_pid=$!
  pids+=("$proxy_pid")
}

stop_proxy() {
  kill -TERM "$proxy_pid" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$proxy_pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$proxy_pid" 2>/dev/null || true
  wait "$proxy_pid" 2>/dev/null || true
}

# wrk's --latency output gives "50%   1.23ms"; convert to milliseconds.
to_ms() {
  awk -v v="$1" 'BEGIN {
    n = v; sub(/[a-z]+$/, "", n); u = v; sub(/^[0-9.]+/, "", u);
    if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000;
    printf "%.3f", n }'
}

declare -A rps p50 p99 rss
run_one() {  # run_one NAME
  local name=$1 port url out
  port=$(free_port)
  proxy_pid=""
  case "$name" in
    direct) port=$up_port ;;
    sheave|sheave-resilience)
      if [ ! -x "$sheave_bin" ]; then
        echo "http_proxy.sh: $sheave_bin not built; skipping $name" >&2
        return 0
      fi
      start_sheave "$port" "$name" ;;
    haproxy) start_haproxy "$port" ;;
    nginx) start_nginx "$port" ;;
    *) echo "http_proxy.sh: unknown target $name" >&2; return 1 ;;
  esac
  url="http://127.0.0.1:$port/1k"
  wait_http "$url" 10
  # the proxy must deliver the upstream's 1 KiB body, or the comparison means nothing
  [ "$(curl -s --max-time 2 "$url" | wc -c)" = 1024 ] || { echo "http_proxy.sh: $name returns a wrong body" >&2; return 1; }
  echo "== $name: warm-up ${warmup}s, then wrk -t$wrk_threads -c$conns -d${duration}s --latency $url" >&2
  wrk -t"$wrk_threads" -c"$conns" -d"${warmup}s" "$url" >/dev/null
  out=$(wrk -t"$wrk_threads" -c"$conns" -d"${duration}s" --latency "$url")
  echo "$out" >"$work/wrk-$name.txt"
  if grep -q "Non-2xx or 3xx responses" <<<"$out"; then
    echo "http_proxy.sh: $name answered errors:" >&2
    grep -E "Non-2xx|Socket errors" <<<"$out" >&2
  fi
  rps[$name]=$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' <<<"$out")
  p50[$name]=$(to_ms "$(awk '$1 == "50%" {print $2}' <<<"$out")")
  p99[$name]=$(to_ms "$(awk '$1 == "99%" {print $2}' <<<"$out")")
  if [ -n "$proxy_pid" ]; then
    rss[$name]=$(peak_rss_kib "$proxy_pid")
    stop_proxy
  else
    rss[$name]=""
  fi
}

IFS=, read -r -a targets <<<"$names"
for t in "${targets[@]}"; do run_one "$t"; done

ratio() {  # ratio A B -> A/B with 2 decimals, or n/a
  if [ -n "${1:-}" ] && [ -n "${2:-}" ] && [ "${2:-0}" != 0 ]; then awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a/b}'; else echo "n/a"; fi
}

echo
echo "HTTP/1.1, 1 KiB responses, loopback; workers=$workers, wrk -t$wrk_threads -c$conns -d${duration}s; $(nproc) CPUs; $(date -u +%Y-%m-%dT%H:%MZ)"
echo
echo "| target | requests/s | p50 ms | p99 ms | peak RSS MiB |"
echo "|---|---:|---:|---:|---:|"
for t in "${targets[@]}"; do
  [ -n "${rps[$t]:-}" ] || { echo "| $t | n/a | n/a | n/a | n/a |"; continue; }
  if [ -n "${rss[$t]}" ]; then mib=$(awk -v k="${rss[$t]}" 'BEGIN {printf "%.1f", k/1024}'); else mib="-"; fi
  echo "| $t | ${rps[$t]} | ${p50[$t]} | ${p99[$t]} | $mib |"
done
echo
echo "| ratio | requests/s | p99 | peak RSS |"
echo "|---|---:|---:|---:|"
for other in haproxy nginx; do
  echo "| sheave/$other | $(ratio "${rps[sheave]:-}" "${rps[$other]:-}") | $(ratio "${p99[sheave]:-}" "${p99[$other]:-}") | $(ratio "${rss[sheave]:-}" "${rss[$other]:-}") |"
done
if [ -n "${rps[sheave-resilience]:-}" ]; then
  echo "| sheave-resilience/sheave | $(ratio "${rps[sheave-resilience]:-}" "${rps[sheave]:-}") | $(ratio "${p99[sheave-resilience]:-}" "${p99[sheave]:-}") | $(ratio "${rss[sheave-resilience]:-}" "${rss[sheave]:-}") |"
fi
