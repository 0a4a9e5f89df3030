#!/usr/bin/env bash
# Build benchmarks/.venv-evidently: Evidently 0.7, the peer benchmarks/monitoring.py measures against
# (its DataDriftPreset). Evidently 0.7 does not run on pandas 3, so pandas stays below it.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/_venv.sh"
build_peer_venv "${EVIDENTLY_VENV:-$here/.venv-evidently}" "evidently==0.7.*" "pandas<3"
