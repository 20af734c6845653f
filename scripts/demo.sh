#!/usr/bin/env bash
# The README's first command: install the dependencies, build, bring up Bookinfo as a local mesh
# (`sheave up examples/bookinfo`: each workload in its own network namespace behind a sidecar, the
# control plane with its CA, the ingress gateway on 127.0.0.1:8080) and show requests through it.
#
#   bash scripts/demo.sh           # demo, then keep the mesh running until Ctrl-C
#   bash scripts/demo.sh --once    # demo, then stop the mesh and exit
#   SHEAVE_DEMO_SKIP_BUILD=1 ...   # use an existing build/bin
# Needs root (network namespaces, iptables). Without it: bash scripts/standalone-demo.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

once=0
for arg in "$@"; do
  case "$arg" in
    --once) once=1 ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "demo: unknown argument $arg" >&2; exit 2 ;;
  esac
done

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

if [ "$(id -u)" != 0 ]; then
  echo "demo: sheave up needs root to create network namespaces; run this as root, or try" \
       "bash scripts/standalone-demo.sh (sheave-proxy alone, no root needed)" >&2
  exit 1
fi

if [ "${SHEAVE_DEMO_SKIP_BUILD:-0}" != 1 ]; then
  say "Installing dependencies (Debian packages)"
  bash scripts/install-deps.sh
  say "Configuring and building (cmake --preset release)"
  cmake --preset release >/dev/null
  cmake --build --preset release
fi

sheave=build/bin/sheave
state=$(mktemp -d -t sheave-demo.XXXXXX)
up_pid=
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  if [ -n "$up_pid" ] && kill -0 "$up_pid" 2>/dev/null; then
    "$sheave" --state-dir "$state" down >/dev/null || true
    wait "$up_pid" 2>/dev/null || true
  fi
  rm -rf "$state"
  exit "$status"
}
trap cleanup EXIT
trap 'echo; echo "demo: stopping"; exit 0' INT TERM

say "sheave up examples/bookinfo"
"$sheave" --state-dir "$state" up examples/bookinfo &
up_pid=$!
deadline=$((SECONDS + 120))
until "$sheave" --state-dir "$state" status >/dev/null 2>&1; do
  if ! kill -0 "$up_pid" 2>/dev/null; then echo "demo: sheave up failed" >&2; exit 1; fi
  if [ "$SECONDS" -ge "$deadline" ]; then echo "demo: the mesh did not come up in time" >&2; exit 1; fi
  sleep 0.5
done

show() {
  echo
  echo "\$ curl -s http://127.0.0.1:8080$1"
  curl -s --max-time 10 "${@:2}" "http://127.0.0.1:8080$1" | python3 -m json.tool || echo "(request failed)"
}
say "Requests through the ingress gateway"
show /productpage
show /productpage -H "x-canary-user: true"
echo
echo "Each answer shows which reviews version served it, and details' \"caller\": the SPIFFE ID its"
echo "sidecar verified over mTLS. Scenarios to try: docs/local-mesh.md."

if [ "$once" = 1 ]; then
  say "Done (--once): stopping the mesh"
  exit 0
fi
say "The mesh is running; Ctrl-C stops it"
wait "$up_pid" || true
