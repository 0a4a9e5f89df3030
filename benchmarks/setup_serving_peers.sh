#!/usr/bin/env bash
# Build benchmarks/.venv-serving: the model servers shipyard's serving is measured against.
#
# `mlflow models serve` and BentoML live in their own virtualenv, never in shipyard's
# (and not in .venv-peers either: BentoML pins a web stack of its own). scikit-learn is
# pinned to the version in shipyard's venv so every server unpickles the same model.
#
# Idempotent: a marker file records the pins that were installed; a second run with the
# same pins returns at once. Usage:
#
#     bash benchmarks/setup_serving_peers.sh
#     PYTHON=python3.12 bash benchmarks/setup_serving_peers.sh
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="${SERVING_VENV:-$here/.venv-serving}"
python="${PYTHON:-python3}"
marker="$venv/.peers-installed"
# Telemetry off while installing too (bentoml reads these at import time).
export DO_NOT_TRACK=true BENTOML_DO_NOT_TRACK=true MLFLOW_DISABLE_TELEMETRY=true

sklearn="$("$here/../.venv/bin/python" -c 'import sklearn; print(sklearn.__version__)' 2>/dev/null || echo "")"
pins=("mlflow==3.17.*" "bentoml==1.4.*" "pandas" "pyarrow")
if [[ -n "$sklearn" ]]; then
    pins+=("scikit-learn==$sklearn")
else
    pins+=("scikit-learn")
fi
wanted="$(printf '%s\n' "${pins[@]}")"

if [[ -f "$marker" && "$(cat "$marker")" == "$wanted" ]]; then
    echo "serving peers already installed in $venv:"
    printf '  %s\n' "${pins[@]}"
    exit 0
fi

if [[ ! -x "$venv/bin/python" ]]; then
    echo "creating $venv"
    "$python" -m venv "$venv"
fi

echo "installing into $venv: ${pins[*]}"
"$venv/bin/python" -m pip install --quiet --upgrade pip
# pip warns once per package about index folders that do not exist here; keep only real messages.
"$venv/bin/python" -m pip install --quiet "${pins[@]}" 2> >(grep -v "is ignored: it is neither" >&2)

printf '%s\n' "$wanted" >"$marker"
"$venv/bin/python" -m pip list --format=freeze 2>/dev/null \
    | grep -iE '^(mlflow|bentoml|scikit-learn|uvicorn|gunicorn)=' || true
