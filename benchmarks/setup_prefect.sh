#!/usr/bin/env bash
# Build benchmarks/.venv-prefect: Prefect 3, the peer benchmarks/flows.py measures against.
# fastapi 0.155 changed what Prefect 3's server imports, so it stays below it.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/_venv.sh"
build_peer_venv "${PREFECT_VENV:-$here/.venv-prefect}" "prefect==3.9.*" "fastapi<0.155"
