#!/usr/bin/env bash
# Build benchmarks/.venv-peers: the tools shipyard is measured against.
#
# The peers live in their own virtualenv, never in shipyard's: a benchmark that
# imported MLflow from shipyard's venv would also prove nothing about shipyard's
# import-time cost or its dependency footprint.
#
# Idempotent: a marker file records the pins that were installed, so a second
# run with the same pins returns at once. Change a pin (or delete the marker)
# to reinstall. Usage:
#
#     bash benchmarks/setup_peers.sh          # install or check
#     PYTHON=python3.12 bash benchmarks/setup_peers.sh
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="${PEERS_VENV:-$here/.venv-peers}"
python="${PYTHON:-python3}"
marker="$venv/.peers-installed"

# One pin per peer; a benchmark that needs a new peer adds its line here.
# mlflow 3.18 needs packages this registry lacks, so we stay on 3.17.
MLFLOW_PINS=("mlflow==3.17.*")
# Later benchmarks (flows, monitoring, features, serving) uncomment theirs:
# PREFECT_PINS=("prefect==3.8.*" "fastapi<0.155")   # benchmarks/flows.py
# EVIDENTLY_PINS=("evidently==0.7.*" "pandas<3")     # benchmarks/monitoring.py
# FEAST_PINS=("feast==0.67.*")                       # benchmarks/features.py
# BENTOML_PINS=("bentoml")                           # benchmarks/serving.py

pins=(
    "${MLFLOW_PINS[@]}"
    # "${PREFECT_PINS[@]}"
    # "${EVIDENTLY_PINS[@]}"
    # "${FEAST_PINS[@]}"
    # "${BENTOML_PINS[@]}"
)
wanted="$(printf '%s\n' "${pins[@]}")"

if [[ -f "$marker" && "$(cat "$marker")" == "$wanted" ]]; then
    echo "peers already installed in $venv:"
    printf '  %s\n' "${pins[@]}"
    exit 0
fi

if [[ ! -x "$venv/bin/python" ]]; then
    echo "creating $venv"
    "$python" -m venv "$venv"
fi

echo "installing into $venv: ${pins[*]}"
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet "${pins[@]}"

# Write the marker only after pip succeeded, so a failed install is retried.
printf '%s\n' "$wanted" >"$marker"
"$venv/bin/python" -m pip list --format=freeze 2>/dev/null \
    | grep -iE '^(mlflow|prefect|evidently|feast|bentoml)=' || true
