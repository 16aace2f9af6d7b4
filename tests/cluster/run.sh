#!/usr/bin/env bash
# `make test-cluster`: brings the multi-node cluster up (cluster.sh up), runs every test in
# tests/cluster with pytest, and always takes the cluster down again (cluster.sh down), also when
# a test fails or the run is interrupted. Prints each stage's time and the walkthrough's figures.
# Exit status: pytest's (or the first failing stage's).
#
#   DOCKERFLOW_CLUSTER_KEEP=1     leave the cluster running afterwards (to look at it)
#   PYTEST_ARGS="-k walkthrough"  passed on to pytest
#   DOCKERFLOW_CLUSTER_NAME, _NET, _REGISTRY_PORT: a second cluster beside the first (cluster.sh)
set -uo pipefail
# shellcheck source-path=SCRIPTDIR source=../harness/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../harness/lib.sh"

CLUSTER_SH=$REPO_ROOT/tests/cluster/cluster.sh
CLUSTER_NAME=${DOCKERFLOW_CLUSTER_NAME:-dftest}
CLUSTER_DIR=$CACHE_DIR/cluster
[ "$CLUSTER_NAME" = dftest ] || CLUSTER_DIR=$CACHE_DIR/cluster-$CLUSTER_NAME
PYTHON=${PYTHON:-$REPO_ROOT/.venv/bin/python}
export ANSIBLE_COLLECTIONS_PATH=${ANSIBLE_COLLECTIONS_PATH:-$REPO_ROOT/.build/collections}
export PYTHONPATH=${PYTHONPATH:-$REPO_ROOT/.build/collections}
export PATH=$REPO_ROOT/.venv/bin:$PATH
export DOCKERFLOW_CLUSTER_ENV=$CLUSTER_DIR/env.sh

status=0
timings=()
total_start=$(now)

stage() { # NAME CMD...: run it, remember its time, keep the first failure's status
    local name=$1 start rc=0
    shift
    start=$(now)
    log "==> $name"
    "$@" || rc=$?
    timings+=("$name: $([ "$rc" = 0 ] && echo ok || echo "FAILED, exit $rc") ($(elapsed "$start"))")
    [ "$status" != 0 ] || status=$rc
    return "$rc"
}

finish() {
    trap - EXIT INT TERM
    if [ "${DOCKERFLOW_CLUSTER_KEEP:-0}" = 1 ]; then
        log "DOCKERFLOW_CLUSTER_KEEP=1: the cluster stays up ($CLUSTER_SH down removes it)"
    else
        stage "cluster down" "$CLUSTER_SH" down
    fi
    if [ -f "$CLUSTER_DIR/walkthrough-report.txt" ]; then
        log "walkthrough figures:"
        sed 's/^/    /' "$CLUSTER_DIR/walkthrough-report.txt" >&2
    fi
    log "timings:"
    printf '    %s\n' "${timings[@]}" >&2
    log "test-cluster: exit $status ($(elapsed "$total_start"))"
    exit "$status"
}
trap finish EXIT
trap 'status=130; exit 130' INT TERM

rm -f "$CLUSTER_DIR/walkthrough-report.txt"
stage "cluster up" "$CLUSTER_SH" up || exit
# shellcheck disable=SC2086 # PYTEST_ARGS is a list of words
stage "pytest tests/cluster" "$PYTHON" -m pytest "$REPO_ROOT/tests/cluster" -q -s -p no:cacheprovider ${PYTEST_ARGS:-}
