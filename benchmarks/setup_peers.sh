#!/usr/bin/env bash
# Build benchmarks/.venv-peers: MLflow, the peer benchmarks/tracking.py measures against.
# mlflow 3.18 needs packages this registry lacks, so we stay on 3.17.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/_venv.sh"
build_peer_venv "${PEERS_VENV:-$here/.venv-peers}" "mlflow==3.17.*"
