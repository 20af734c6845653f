#!/usr/bin/env bash
# Installs the dependencies, builds Sheave and runs every test.
# This is the README's test command and the whole of CI.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release
ctest --preset release -j2
