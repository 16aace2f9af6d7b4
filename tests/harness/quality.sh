#!/usr/bin/env bash
# make quality: ansible-test sanity, ansible-lint (production profile), ruff, unit coverage of
# plugins/module_utils and the registrator daemon, antsibull-changelog lint and ansible-doc of every
# role. Every stage runs; one summary line each; the exit status is the first failing stage's. Needs
# only what `make venv` installs (the Makefile puts the venv on PATH and sets ANSIBLE_COLLECTIONS_PATH).
# Sanity runs in the background beside the others (it is the longest). Logs: .cache/quality/logs/.
# QUALITY_STAGES="ruff lint" runs only those stages; SANITY_ARGS="--test pylint" narrows ansible-test.
# shellcheck disable=SC2317 # the stage_* functions are called by name
# shellcheck source=tests/harness/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
set -uo pipefail

# Unit-test coverage of plugins/module_utils and the registrator daemon (which was a module_util
# until it moved to roles/registrator/files/dockerflow_registrator; .coveragerc) below this
# (percent) fails the stage. Measured 80 %: the modules that only talk to Docker (backends/container,
# backends/swarm*, proxy_node) are covered by tests/integration; every other file is at 87-100 %.
COVERAGE_FLOOR=${DOCKERFLOW_COVERAGE_FLOOR:-77}

QUALITY_CACHE=$CACHE_DIR/quality
LOG_DIR=$QUALITY_CACHE/logs
# ansible-test wants to run inside .../ansible_collections/<namespace>/<name>; a copy of the
# files git would list sits there (the .build/collections link resolves to the repo itself).
SANITY_ROOT=$REPO_ROOT/.build/sanity/ansible_collections/dockerflow/flow
PYTHON_VERSION=$(python -c 'import sys; print("%d.%d" % sys.version_info[:2])')
mkdir -p "$LOG_DIR"
cd "$REPO_ROOT" || exit 1

# ansible-test --venv bootstraps pip with a script from a host this machine cannot reach, and
# looks for a cached copy first. Ours puts the pip wheel (from PyPI) on sys.path and runs
# `pip install` with the bootstrap's arguments. A real cached script is left alone.
PIP_BOOTSTRAP_VERSION=24.2
pip_bootstrap_standin() {
    local script=$HOME/.ansible/test/cache/get_pip_${PIP_BOOTSTRAP_VERSION//./_}.py
    local wheel_dir=$QUALITY_CACHE/pip-wheel marker="# dockerflow.flow stand-in for get-pip.py"
    local wheel
    if [ -f "$script" ] && ! grep -qF "$marker" "$script"; then
        return 0
    fi
    wheel=$(compgen -G "$wheel_dir/pip-$PIP_BOOTSTRAP_VERSION-*.whl" | head -n1)
    if [ -z "$wheel" ]; then
        python -m pip download -q --no-deps --only-binary :all: "pip==$PIP_BOOTSTRAP_VERSION" -d "$wheel_dir" ||
            return 1
        wheel=$(compgen -G "$wheel_dir/pip-$PIP_BOOTSTRAP_VERSION-*.whl" | head -n1)
    fi
    mkdir -p "$(dirname "$script")"
    cat >"$script.new" <<EOF
$marker (tests/harness/quality.sh writes it).
import runpy
import sys

sys.path.insert(0, "$wheel")
# get-pip.py options that pip install does not know.
args = [arg for arg in sys.argv[1:] if arg not in ("--no-setuptools", "--no-wheel")]
sys.argv = ["pip", "install"] + args
runpy.run_module("pip", run_name="__main__", alter_sys=True)
EOF
    mv "$script.new" "$script"
}

# The files git lists (tracked and untracked, not ignored), as ansible-test would see them.
sanity_copy() {
    mkdir -p "$SANITY_ROOT/tests"
    # Everything goes but tests/output, where ansible-test keeps its venv between runs.
    find "$SANITY_ROOT" -mindepth 1 -maxdepth 1 ! -name tests -exec rm -rf {} +
    find "$SANITY_ROOT/tests" -mindepth 1 -maxdepth 1 ! -name output -exec rm -rf {} +
    git ls-files -z --cached --others --exclude-standard |
        while IFS= read -r -d '' path; do
            [ -e "$path" ] || [ -L "$path" ] || continue # deleted, not yet committed
            printf '%s\0' "$path"
        done |
        tar --null --no-recursion -T - -cf - | tar -xf - -C "$SANITY_ROOT"
}

# Each stage ends its log with "summary: ..." for the summary line.
stage_sanity() {
    pip_bootstrap_standin || { echo "cannot download pip $PIP_BOOTSTRAP_VERSION for the --venv bootstrap"; return 1; }
    sanity_copy || return 1
    local extra rc=0 ignores
    read -ra extra <<<"${SANITY_ARGS:-}"
    (cd "$SANITY_ROOT" &&
        ANSIBLE_TEST_CONTENT_ROOT=$SANITY_ROOT ansible-test sanity --venv --python "$PYTHON_VERSION" --color no "${extra[@]}") ||
        rc=$?
    ignores=$(cat tests/sanity/ignore-*.txt 2>/dev/null | grep -cv '^\s*$')
    echo "summary: $(grep -c '^Running sanity test' "$LOG_DIR/sanity.log") tests on Python $PYTHON_VERSION," \
        "$ignores ignore line(s)"
    return "$rc"
}

# ansible-lint puts $ANSIBLE_HOME/collections first on the collections path: a private one keeps an
# older copy of this collection in ~/.ansible/collections from shadowing the tree under test.
stage_lint() {
    local rc=0
    ANSIBLE_HOME=$QUALITY_CACHE/ansible-home ansible-lint --nocolor || rc=$?
    echo "summary: $(grep -E '^(Passed|Failed)' "$LOG_DIR/lint.log" | tail -n1 | sed -E 's/ of [0-9]+ encountered\..*//'), production profile"
    return "$rc"
}

# The registrator daemon is Python outside plugins/: roles/registrator/files/dockerflow_registrator.
RUFF_PATHS=(plugins tests benchmarks examples roles/registrator/files)
stage_ruff() {
    local rc=0
    ruff check --output-format concise "${RUFF_PATHS[@]}" || rc=$?
    echo "summary: $(grep -cE '\.py:[0-9]+:[0-9]+: ' "$LOG_DIR/ruff.log") finding(s) in" \
        "$(git ls-files -co --exclude-standard -- "${RUFF_PATHS[@]/%//*.py}" | wc -l) files"
    return "$rc"
}

# Settings in .coveragerc; the data file stays in the cache. The floor is on the total; each part is
# reported beside it.
# Branch coverage is on: each figure is "LINES BRANCHES" (tests/harness/coverage_figures.py), the floor on lines.
coverage_figures() { # [--include=PATTERN]
    COVERAGE_FILE=$QUALITY_CACHE/coverage.data python tests/harness/coverage_figures.py "$@"
}
# QUALITY_REUSE_UNIT_COVERAGE=1 (`make test`, right after its unit stage measured the same tests with the same
# .coveragerc: tests/harness/coverage.sh measure unit): that stage's data and exit status are reported instead of
# running the unit tests a second time.
UNIT_MEASURED=$CACHE_DIR/coverage/unit
stage_coverage() {
    local rc=0 total branches utils daemon
    if [ "${QUALITY_REUSE_UNIT_COVERAGE:-0}" = 1 ]; then
        echo "the unit tests as measured in $UNIT_MEASURED"
        rc=$(cat "$UNIT_MEASURED/exit-status") && cp "$UNIT_MEASURED/data.pytest" "$QUALITY_CACHE/coverage.data" || return 1
        COVERAGE_FILE=$QUALITY_CACHE/coverage.data python -m coverage report || rc=$?
    else
        COVERAGE_FILE=$QUALITY_CACHE/coverage.data python -m pytest tests/unit -q -p no:cacheprovider \
            --cov --cov-report=term-missing || rc=$?
    fi
    read -r total branches < <(coverage_figures) || return 1
    utils=$(coverage_figures --include='plugins/module_utils/*' | cut -d' ' -f1) || return 1
    daemon=$(coverage_figures --include='roles/registrator/files/dockerflow_registrator/*' | cut -d' ' -f1) || return 1
    echo "summary: unit tests cover ${total} % of the lines of plugins/module_utils and the registrator daemon," \
        "${branches} % of their branches (lines: module_utils ${utils} %, registrator ${daemon} %; floor ${COVERAGE_FLOOR} %)"
    [ "$rc" = 0 ] || return "$rc"
    awk -v total="$total" -v floor="$COVERAGE_FLOOR" 'BEGIN { exit !(total + 0 >= floor + 0) }' || {
        echo "coverage ${total} % is below the floor of ${COVERAGE_FLOOR} %"
        return 1
    }
}

stage_changelog() {
    antsibull-changelog lint && antsibull-changelog lint-changelog-yaml changelogs/changelog.yaml || return 1
    echo "summary: $(find changelogs/fragments -name '*.yml' -o -name '*.yaml' | wc -l) fragment(s) and changelog.yaml"
}

# ansible-doc renders every role's argument specs without a warning (the modules:
# tests/integration/test_collection.py). It prints nothing and exits 0 for a role it cannot
# find, hence the count of entry points.
stage_role_docs() {
    local roles=() role shown entry_points
    for role in roles/*/meta/argument_specs.yml; do
        role=${role#roles/}
        roles+=("dockerflow.flow.${role%%/*}")
    done
    shown=$(ANSIBLE_NOCOLOR=1 ansible-doc -t role "${roles[@]}" 2>&1) || { echo "$shown"; return 1; }
    entry_points=$(grep -cE '^ENTRY POINT: \*?main\b' <<<"$shown")
    if grep -E '\[(WARNING|ERROR)\]|^(WARNING|ERROR)' <<<"$shown" || [ "$entry_points" != "${#roles[@]}" ]; then
        echo "ansible-doc rendered $entry_points main entry point(s) for ${#roles[@]} role(s): ${roles[*]}"
        return 1
    fi
    echo "summary: ${#roles[@]} roles render (${roles[*]#dockerflow.flow.})"
}

# run_stage NAME: runs stage_NAME into its log; writes "ok|FAILED, exit N (time): summary" to NAME.result.
run_stage() {
    local stage=$1 t0 rc=0 line
    t0=$(now)
    "stage_$stage" >"$LOG_DIR/$stage.log" 2>&1 || rc=$?
    line=$(grep '^summary: ' "$LOG_DIR/$stage.log" | tail -n1)
    line=${line#summary: }
    if [ "$rc" = 0 ]; then
        echo "$stage: ok ($(elapsed "$t0"))${line:+: $line}" >"$LOG_DIR/$stage.result"
    else
        echo "$stage: FAILED, exit $rc ($(elapsed "$t0"))${line:+: $line}; log $LOG_DIR/$stage.log" >"$LOG_DIR/$stage.result"
    fi
    return "$rc"
}

STAGES=${QUALITY_STAGES:-sanity lint ruff coverage changelog role_docs}
t_all=$(now)
status=0
rm -f "$LOG_DIR"/*.result
sanity_pid=
if [[ " $STAGES " == *" sanity "* ]]; then
    echo "==> quality: sanity (in the background)"
    run_stage sanity &
    sanity_pid=$!
fi
for stage in $STAGES; do
    [ "$stage" != sanity ] || continue
    echo "==> quality: $stage"
    run_stage "$stage" || { tail -n 40 "$LOG_DIR/$stage.log"; [ "$status" != 0 ] || status=1; }
    cat "$LOG_DIR/$stage.result"
done
if [ -n "$sanity_pid" ]; then
    wait "$sanity_pid" || { grep -E '^(ERROR|FATAL)' "$LOG_DIR/sanity.log" | head -n 40; [ "$status" != 0 ] || status=1; }
    cat "$LOG_DIR/sanity.result"
fi
echo "==> quality summary ($(elapsed "$t_all"))"
for stage in $STAGES; do
    cat "$LOG_DIR/$stage.result"
done
exit "$status"
