#!/usr/bin/env bash
# Coverage of plugins/module_utils and of the registrator daemon
# (roles/registrator/files/dockerflow_registrator) over every stage of `make test`, not only the
# unit tests: the Docker backends and the proxy node are tested against the real engine
# (integration, faults, cluster), not against fakes, so a unit-only figure leaves them out
# (quality.sh reports that one). The daemon is measured where pytest imports it (the unit tests);
# in its image, under the integration tests, it runs unmeasured.
#
#   coverage.sh measure [--local-runs-only] STAGE CMD...
#       runs CMD with coverage on: pytest's own process (PYTEST_ADDOPTS=--cov) and every module
#       that ansible-playbook starts (ansible-core's AnsiballZ coverage hook). Data in
#       .cache/coverage/STAGE; exits with CMD's status. --local-runs-only: the hook goes only to
#       the harness's local ansible-playbook runs (DOCKERFLOW_TEST_LOCAL_MODULE_COVERAGE, read by
#       tests/integration/conftest.py's FlowProject), for stages that also reach hosts over SSH,
#       where the hook would fail the modules (no `coverage` there, no path to write to).
#   coverage.sh report
#       combines the data of every stage measured since `coverage.sh reset`, prints it per file,
#       and fails when the total is below DOCKERFLOW_COVERAGE_FLOOR_ALL (percent, default 90).
#   coverage.sh reset
# shellcheck source=tests/harness/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
set -uo pipefail

COVERAGE_DIR=$CACHE_DIR/coverage
PYTHON=${PYTHON:-$REPO_ROOT/.venv/bin/python}
FLOOR=${DOCKERFLOW_COVERAGE_FLOOR_ALL:-90}
# The payloads carry their own copy of module_utils; [paths] maps it back to this tree.
PAYLOAD_PATTERN='*/ansible_collections/dockerflow/flow/plugins/module_utils'
REGISTRATOR_DIR=roles/registrator/files/dockerflow_registrator

measure() {
    local local_only=0 stage dir hook rc=0 file
    if [ "${1:-}" = --local-runs-only ]; then
        local_only=1
        shift
    fi
    [ $# -ge 2 ] || die "usage: coverage.sh measure [--local-runs-only] STAGE CMD..."
    stage=$1
    shift
    dir=$COVERAGE_DIR/$stage
    rm -rf "$dir"
    mkdir -p "$dir/modules"
    cat >"$dir/modules.rc" <<EOF
[run]
parallel = True
branch = True
include = $PAYLOAD_PATTERN/*
EOF
    hook="{\"config\": \"$dir/modules.rc\", \"output\": \"$dir/modules/data\"}"
    if [ "$local_only" = 1 ]; then
        export DOCKERFLOW_TEST_LOCAL_MODULE_COVERAGE=$hook
    else
        export _ANSIBLE_ANSIBALLZ_COVERAGE_CONFIG=$hook
    fi
    COVERAGE_FILE=$dir/data.pytest PYTEST_ADDOPTS="${PYTEST_ADDOPTS:-} --cov --cov-report=" "$@" || rc=$?
    for file in "$dir"/modules/data=*; do
        [ -e "$file" ] || continue
        mv "$file" "$dir/data.module.${file##*.}" # `coverage combine` takes data.* files
    done
    echo "$rc" >"$dir/exit-status"
    return "$rc"
}

combined_figures() { # [--include=PATTERN] -> "LINES BRANCHES" (branch coverage is on; the floor is on lines)
    (cd "$REPO_ROOT" && COVERAGE_FILE=$COVERAGE_DIR/combined "$PYTHON" "$REPO_ROOT/tests/harness/coverage_figures.py" \
        --rcfile="$COVERAGE_DIR/combine.rc" "$@")
}

report() {
    local rc=0 total branches utils daemon stage stages=() files
    mkdir -p "$COVERAGE_DIR"
    for stage in "$COVERAGE_DIR"/*/exit-status; do
        [ -e "$stage" ] || continue
        stage=${stage%/exit-status}
        stages+=("${stage##*/}$([ "$(cat "$stage/exit-status")" = 0 ] || echo ' (failed: partial)')")
    done
    [ ${#stages[@]} -gt 0 ] || die "no stage measured: run \`make test\` (or coverage.sh measure STAGE CMD...)"
    cat >"$COVERAGE_DIR/combine.rc" <<EOF
[run]
branch = True
[paths]
source =
    $REPO_ROOT/plugins/module_utils
    $PAYLOAD_PATTERN
[report]
include =
    $REPO_ROOT/plugins/module_utils/*
    $REPO_ROOT/$REGISTRATOR_DIR/*
show_missing = true
skip_empty = true
exclude_also =
    raise NotImplementedError
    if __name__ == .__main__.:
EOF
    files=$(compgen -G "$COVERAGE_DIR/*/data.*") || die "the measured stages left no data"
    rm -f "$COVERAGE_DIR/combined"
    # shellcheck disable=SC2086 # one word a file
    COVERAGE_FILE=$COVERAGE_DIR/combined "$PYTHON" -m coverage combine --keep -q --rcfile="$COVERAGE_DIR/combine.rc" $files ||
        return 1
    (cd "$REPO_ROOT" && COVERAGE_FILE=$COVERAGE_DIR/combined "$PYTHON" -m coverage report --rcfile="$COVERAGE_DIR/combine.rc") || rc=$?
    read -r total branches < <(combined_figures) || return 1
    utils=$(combined_figures --include="$REPO_ROOT/plugins/module_utils/*" | cut -d' ' -f1) || return 1
    daemon=$(combined_figures --include="$REPO_ROOT/$REGISTRATOR_DIR/*" | cut -d' ' -f1) || return 1
    echo "summary: all stages (${stages[*]}) cover ${total} % of the lines of plugins/module_utils and the registrator" \
        "daemon, ${branches} % of their branches (lines: module_utils ${utils} %, registrator ${daemon} %; floor ${FLOOR} %)"
    [ "$rc" = 0 ] || return "$rc"
    awk -v total="$total" -v floor="$FLOOR" 'BEGIN { exit !(total + 0 >= floor + 0) }' || {
        echo "coverage ${total} % is below the floor of ${FLOOR} %"
        return 1
    }
}

case "${1:-}" in
measure)
    shift
    measure "$@"
    ;;
report) report ;;
reset) rm -rf "$COVERAGE_DIR" ;;
*) die "usage: coverage.sh measure [--local-runs-only] STAGE CMD... | report | reset" ;;
esac
