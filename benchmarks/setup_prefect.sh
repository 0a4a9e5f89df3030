#!/usr/bin/env bash
# Build benchmarks/.venv-prefect: Prefect 3, the peer benchmarks/flows.py measures shipyard's
# flows against. It lives in its own virtualenv so that neither tool's imports, dependency
# pins or start-up cost leak into the other's numbers.
#
# Idempotent: a marker file records the pins that were installed; a second run with the
# same pins returns at once. Usage:
#
#     bash benchmarks/setup_prefect.sh
#     PYTHON=python3.12 bash benchmarks/setup_prefect.sh
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="${PREFECT_VENV:-$here/.venv-prefect}"
python="${PYTHON:-python3}"
marker="$venv/.prefect-installed"

# fastapi 0.155 changed what Prefect 3.8's ephemeral server imports.
pins=("prefect==3.8.*" "fastapi<0.155")
wanted="$(printf '%s\n' "${pins[@]}")"

if [[ -f "$marker" && "$(cat "$marker")" == "$wanted" ]]; then
    echo "prefect already installed in $venv"
    exit 0
fi

if [[ ! -x "$venv/bin/python" ]]; then
    echo "creating $venv"
    "$python" -m venv "$venv"
fi

echo "installing into $venv: ${pins[*]}"
export DO_NOT_TRACK=true PREFECT_SERVER_ANALYTICS_ENABLED=false
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet "${pins[@]}"

printf '%s\n' "$wanted" >"$marker"
"$venv/bin/python" -m pip list --format=freeze 2>/dev/null | grep -iE '^(prefect|fastapi)=' || true
