#!/usr/bin/env bash
# Build benchmarks/.venv-serving: `mlflow models serve` and BentoML, the peers
# benchmarks/serving.py measures against (not in .venv-peers: BentoML pins a web stack of
# its own). scikit-learn is pinned to shipyard's so every server unpickles the same model.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/_venv.sh"
sklearn="$("$here/../.venv/bin/python" -c 'import sklearn; print(sklearn.__version__)' 2>/dev/null || echo "")"
build_peer_venv "${SERVING_VENV:-$here/.venv-serving}" "mlflow==3.17.*" "bentoml==1.4.*" pandas pyarrow \
    "scikit-learn${sklearn:+==$sklearn}"
