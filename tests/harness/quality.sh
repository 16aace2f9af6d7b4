#!/usr/bin/env bash
# make quality: ansible-test sanity, ansible-lint (production profile), ruff, unit coverage of
# plugins/module_utils, antsibull-changelog lint and ansible-doc of every role. Every stage runs;
# one summary line each; the exit status is the first failing stage's. Needs only what `make venv`
# installs (the Makefile puts the venv on PATH and sets ANSIBLE_COLLECTIONS_PATH).
# QUALITY_STAGES="ruff lint" runs only those stages; SANITY_ARGS="--test pylint" narrows ansible-test.
# shellcheck disable=SC2317 # the stage_* functions are called by name
# shellcheck source=tests/harness/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
set -uo pipefail

# Unit-test coverage of plugins/module_utils below this (percent) fails the stage; measured 0 %.
COVERAGE_FLOOR=${DOCKERFLOW_COVERAGE_FLOOR:-0}

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

stage_sanity() {
    pip_bootstrap_standin || { echo "cannot download pip $PIP_BOOTSTRAP_VERSION for the --venv bootstrap"; return 1; }
    sanity_copy || return 1
    local extra
    read -ra extra <<<"${SANITY_ARGS:-}"
    (cd "$SANITY_ROOT" &&
        ANSIBLE_TEST_CONTENT_ROOT=$SANITY_ROOT ansible-test sanity --venv --python "$PYTHON_VERSION" --color no "${extra[@]}")
}

# ansible-lint puts $ANSIBLE_HOME/collections first on the collections path: a private one keeps an
# older copy of this collection in ~/.ansible/collections from shadowing the tree under test.
stage_lint() {
    ANSIBLE_HOME=$QUALITY_CACHE/ansible-home ansible-lint --nocolor
}

stage_ruff() {
    ruff check --quiet --output-format concise plugins tests benchmarks examples
}

stage_coverage() {
    python -m pytest tests/unit -q -p no:cacheprovider \
        --cov=plugins/module_utils --cov-report=term-missing --cov-fail-under="$COVERAGE_FLOOR"
}

stage_changelog() {
    antsibull-changelog lint && antsibull-changelog lint-changelog-yaml changelogs/changelog.yaml
}

# ansible-doc renders each role's argument specs, without a warning (the modules:
# tests/integration/test_collection.py).
stage_role_docs() {
    local role shown status=0
    for role in roles/*/; do
        role=$(basename "$role")
        if ! shown=$(ANSIBLE_NOCOLOR=1 ansible-doc -t role "dockerflow.flow.$role" 2>&1) ||
            grep -qE '\[(WARNING|ERROR)\]|^(WARNING|ERROR)' <<<"$shown" || ! grep -qE '^ENTRY POINT: \*?main\b' <<<"$shown"; then
            printf 'ansible-doc -t role dockerflow.flow.%s:\n%s\n' "$role" "$(grep -vE '^ {2,}|^-|^$' <<<"$shown" | head -n 20)"
            status=1
        fi
    done
    echo "$(find roles -mindepth 1 -maxdepth 1 -type d | wc -l) role(s) documented"
    return "$status"
}

STAGES=${QUALITY_STAGES:-sanity lint ruff coverage changelog role_docs}
status=0
summary=()
for stage in $STAGES; do
    t0=$(now)
    rc=0
    echo "==> quality: $stage"
    "stage_$stage" >"$LOG_DIR/$stage.log" 2>&1 || rc=$?
    if [ $rc = 0 ]; then
        line="$stage: ok ($(elapsed "$t0"))"
    else
        tail -n 60 "$LOG_DIR/$stage.log"
        line="$stage: FAILED, exit $rc ($(elapsed "$t0")); full log $LOG_DIR/$stage.log"
        [ $status != 0 ] || status=$rc
    fi
    summary+=("$line")
    echo "==> $line"
done
printf '%s\n' "${summary[@]}"
exit $status
