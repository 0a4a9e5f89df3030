#!/usr/bin/env bash
# Build benchmarks/.venv-feast: Feast 0.67, the peer benchmarks/features.py measures against,
# with its DuckDB offline store (feast[duckdb]) besides the file one and the SQLite online one.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/_venv.sh"
# Feast's own usage telemetry, on top of the DO_NOT_TRACK that _venv.sh sets.
export FEAST_USAGE=False
build_peer_venv "${FEAST_VENV:-$here/.venv-feast}" "feast[duckdb]==0.67.*"
