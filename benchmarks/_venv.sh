# Sourced by the setup_*.sh scripts: build one peer's virtualenv, idempotently.
#
# Peers live in virtualenvs of their own, never in shipyard's: their pins must not constrain
# ours, and their imports must not leak into our numbers. A marker file records the pins that
# were installed, so a second run with the same pins returns at once; change a pin (or delete
# the marker) to reinstall. PYTHON picks the interpreter (default python3).

# Telemetry off while installing too (some peers read these at import time).
export DO_NOT_TRACK=true BENTOML_DO_NOT_TRACK=true MLFLOW_DISABLE_TELEMETRY=true \
    PREFECT_SERVER_ANALYTICS_ENABLED=false

# build_peer_venv VENV PIN [PIN...]
build_peer_venv() {
    local venv="$1"
    shift
    local marker="$venv/.peers-installed"
    local wanted
    wanted="$(printf '%s\n' "$@")"
    if [[ -f "$marker" && "$(cat "$marker")" == "$wanted" ]]; then
        echo "already installed in $venv: $*"
        return 0
    fi
    if [[ ! -x "$venv/bin/python" ]]; then
        echo "creating $venv"
        "${PYTHON:-python3}" -m venv "$venv"
    fi
    echo "installing into $venv: $*"
    "$venv/bin/python" -m pip install --quiet --upgrade pip
    # pip warns once per package about index folders that do not exist here; keep real messages.
    "$venv/bin/python" -m pip install --quiet "$@" 2> >(grep -v "is ignored: it is neither" >&2)
    # The marker only after pip succeeded, so a failed install is retried.
    printf '%s\n' "$wanted" >"$marker"
}
