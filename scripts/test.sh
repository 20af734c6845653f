#!/usr/bin/env bash
# Installs the dependencies, builds Sheave and runs every test.
# This is the README's test command and the whole of CI.
#   1. release build (g++ 12): every unit and integration test;
#   2. asan build (clang 14, AddressSanitizer + UBSan): the proxy and the codec and network unit
#      tests, then the integration tests that send hostile input to the proxy.
# SHEAVE_TEST_SKIP_ASAN=1 skips stage 2 (for quick local runs).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh

echo "== release build and all tests"
cmake --preset release >/dev/null
cmake --build --preset release
ctest --preset release -j2

if [ "${SHEAVE_TEST_SKIP_ASAN:-0}" = 1 ]; then exit 0; fi
echo "== asan+ubsan build: hostile-input tests"
asan_tests=(proxy_http1_parser_test proxy_network_buffer_test proxy_network_connection_test)
cmake --preset asan >/dev/null
cmake --build --preset asan --target sheave-proxy "${asan_tests[@]}"
export ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
ctest --test-dir build-asan -j2 --output-on-failure \
  -R '^(Http1Parser|BufferTest|ConnectionTest|integration\.test_bad_input|integration\.test_http1)'
