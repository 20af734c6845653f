# Shared by the bench drivers (sourced): the scratch directory, process cleanup, ports, readiness.
# The caller sets `bench_name` (for messages) and `here` (its directory) before sourcing; `bench_on_exit` may name a function that runs
# before the scratch directory is removed (e.g. to copy results out).

bench_require() {  # bench_require TOOL...
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null || { echo "$bench_name: $tool not found (bash scripts/install-deps.sh)" >&2; exit 1; }
  done
}

work=$(mktemp -d -t "sheave-$bench_name.XXXXXX")
chmod 755 "$work"  # nginx workers may run as another user when started as root
pids=()
bench_cleanup() {
  trap - EXIT INT TERM
  local pid
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for _ in $(seq 50); do
    local alive=0
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.1
  done
  for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ -n "${bench_on_exit:-}" ]; then "$bench_on_exit"; fi
  rm -rf "$work"
}
trap bench_cleanup EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

wait_http() {  # wait_http URL SECONDS [curl args...]
  local url=$1 deadline=$((SECONDS + $2))
  shift 2
  until curl -sf -o /dev/null --max-time 1 "$@" "$url"; do
    [ "$SECONDS" -ge "$deadline" ] && { echo "$bench_name: $url not answering" >&2; return 1; }
    sleep 0.1
  done
}

# nginx on a free port serving a 1 KiB file with keep-alive (configs/upstream-nginx.conf, beside the
# caller: $here); sets up_port. Extra arguments are more sed expressions for the config.
start_upstream_nginx() {
  up_port=$(free_port)
  mkdir -p "$work/upstream/www" "$work/upstream/tmp"
  head -c 1024 /dev/zero | tr '\0' 'x' >"$work/upstream/www/1k"
  chmod -R 755 "$work/upstream"
  sed "$@" -e "s|@DIR@|$work/upstream|g" -e "s|@PORT@|$up_port|g" "$here/configs/upstream-nginx.conf" \
    >"$work/upstream/nginx.conf"
  nginx -p "$work/upstream" -c "$work/upstream/nginx.conf" -e "$work/upstream/error.log" &
  pids+=($!)
  wait_http "http://127.0.0.1:$up_port/1k" 10
}
