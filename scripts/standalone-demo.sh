#!/usr/bin/env bash
# sheave-proxy on its own: install the dependencies, build, run sheave-proxy with
# examples/standalone/envoy.yaml in front of two demo upstreams, and show requests going through.
#
#   bash scripts/standalone-demo.sh           # demo, then keep the proxy running until Ctrl-C
#   bash scripts/standalone-demo.sh --once    # demo, then stop everything and exit
#   SHEAVE_DEMO_SKIP_BUILD=1 ...   # use an existing build/bin/sheave-proxy (or $SHEAVE_PROXY)
set -euo pipefail
cd "$(dirname "$0")/.."

once=0
for arg in "$@"; do
  case "$arg" in
    --once) once=1 ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) echo "demo: unknown argument $arg" >&2; exit 2 ;;
  esac
done

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

# The example's fixed ports: listener 8080, admin 9901, upstreams 18081 and 18082.
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...: polls COMMAND until it succeeds
  local deadline=$((SECONDS + $1)) what=$2
  shift 2
  until "$@" >/dev/null 2>&1; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "demo: timed out waiting for $what" >&2
      return 1
    fi
    sleep 0.2
  done
}

if [ "${SHEAVE_DEMO_SKIP_BUILD:-0}" != 1 ]; then
  say "Installing dependencies (Debian packages)"
  bash scripts/install-deps.sh
  say "Configuring and building (cmake --preset release)"
  cmake --preset release >/dev/null
  cmake --build --preset release
fi

proxy_bin=${SHEAVE_PROXY:-build/bin/sheave-proxy}
if [ ! -x "$proxy_bin" ]; then
  echo "demo: $proxy_bin was not built" >&2
  exit 1
fi

for port in 8080 9901 18081 18082; do
  if port_busy "$port"; then
    echo "demo: port $port is already in use on 127.0.0.1; stop whatever uses it and try again" >&2
    exit 1
  fi
done

workdir=$(mktemp -d -t sheave-demo.XXXXXX)
pids=()
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  for pid in "${pids[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  # bounded: give them 5 s, then force
  for _ in $(seq 50); do
    local alive=0
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.1
  done
  for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$workdir"
  exit "$status"
}
trap cleanup EXIT
trap 'echo; echo "demo: stopping"; exit 0' INT TERM

say "Starting two demo upstreams (127.0.0.1:18081 api_service, 127.0.0.1:18082 api_v2_service)"
python3 examples/standalone/demo_upstream.py --port 18081 --name api_service >"$workdir/upstream1.log" 2>&1 &
pids+=($!)
python3 examples/standalone/demo_upstream.py --port 18082 --name api_v2_service >"$workdir/upstream2.log" 2>&1 &
pids+=($!)
wait_for 10 "upstream on 18081" curl -sf -o /dev/null http://127.0.0.1:18081/
wait_for 10 "upstream on 18082" curl -sf -o /dev/null http://127.0.0.1:18082/

say "Starting $proxy_bin -c examples/standalone/envoy.yaml"
"$proxy_bin" -c examples/standalone/envoy.yaml >"$workdir/access.log" 2>"$workdir/proxy.log" &
proxy_pid=$!
pids+=("$proxy_pid")
if ! wait_for 15 "sheave-proxy /ready on 127.0.0.1:9901" curl -sf http://127.0.0.1:9901/ready; then
  echo "--- sheave-proxy log ---" >&2
  cat "$workdir/proxy.log" >&2
  exit 1
fi
echo "ready: $(curl -s http://127.0.0.1:9901/ready)"

show() {
  echo
  echo "\$ curl -si http://127.0.0.1:8080$1"
  curl -si --max-time 10 "http://127.0.0.1:8080$1" || echo "(request failed)"
  echo
}
say "Requests through the proxy"
show /api/v1/users       # -> api_service (retries on 5xx)
show /api/v2/orders      # -> api_v2_service
show /nope               # no route: 404, response flag NR in the access log

say "Access log (stdout of sheave-proxy; flushed every second)"
wait_for 5 "the access log" grep -q ' 404 NR ' "$workdir/access.log" || true
cat "$workdir/access.log"

if [ "$once" = 1 ]; then
  say "Done (--once): stopping"
  exit 0
fi

say "sheave-proxy is running"
cat <<EOF
  listener  http://127.0.0.1:8080   (try: curl -i http://127.0.0.1:8080/api/v1/hello)
  admin     http://127.0.0.1:9901   (/stats, /stats/prometheus, /clusters, /config_dump)
  logs      $workdir/access.log, $workdir/proxy.log
Press Ctrl-C to stop.
EOF
# Follow the access log while waiting; returns when the proxy exits or on Ctrl-C (the trap cleans up).
tail -n 0 -f "$workdir/access.log" &
pids+=($!)
wait "$proxy_pid" || true
echo "demo: sheave-proxy exited; log:" >&2
tail -n 20 "$workdir/proxy.log" >&2
exit 1
