#!/usr/bin/env bash
# Coverage of plugins/module_utils by the unit and the integration tests together (not part of
# `make test`: it runs the whole integration suite once more, about 30 minutes on a busy machine).
# Needs what the integration tests need (`make engine images consul`); run it with the environment
# the Makefile gives them, e.g.
#   make venv collection-path && ANSIBLE_COLLECTIONS_PATH=$PWD/.build/collections \
#     PYTHONPATH=$PWD/.build/collections PATH=$PWD/.venv/bin:$PATH \
#     DOCKERFLOW_TEST_CONSUL=http://127.0.0.1:8500 DOCKERFLOW_TEST_CONSUL_DNS=127.0.0.1:8600 \
#     tests/harness/coverage-combined.sh
# The modules run as AnsiballZ payloads in their own processes: ansible-core's own coverage hook
# (_ANSIBLE_ANSIBALLZ_COVERAGE_CONFIG) records each one, and [paths] maps the payloads' copies of
# module_utils back to this tree. Extra arguments go to the integration pytest (e.g. -k proxy).
# shellcheck source=tests/harness/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
set -euo pipefail

work=$CACHE_DIR/coverage-combined
rm -rf "$work"
mkdir -p "$work/modules"
cd "$REPO_ROOT"
cat >"$work/modules.rc" <<'EOF'
[run]
parallel = True
EOF
cat >"$work/combine.rc" <<EOF
[paths]
source =
    $REPO_ROOT/plugins/module_utils
    */ansible_collections/dockerflow/flow/plugins/module_utils
[report]
include = $REPO_ROOT/plugins/module_utils/*
show_missing = true
exclude_also =
    raise NotImplementedError
    if __name__ == .__main__.:
EOF

log "unit tests"
COVERAGE_FILE=$work/data.unit python -m pytest tests/unit -q -p no:cacheprovider --cov --cov-report= >"$work/unit.log" 2>&1 ||
    { tail -n 20 "$work/unit.log"; die "unit tests failed"; }
log "integration tests (modules measured in their own processes)"
rc=0
_ANSIBLE_ANSIBALLZ_COVERAGE_CONFIG="{\"config\": \"$work/modules.rc\", \"output\": \"$work/modules/data\"}" \
    COVERAGE_FILE=$work/data.integration python -m pytest tests/integration -q -p no:cacheprovider -n 2 \
    --cov --cov-report= "$@" >"$work/integration.log" 2>&1 || rc=$?
tail -n 5 "$work/integration.log"
[ "$rc" = 0 ] || log "integration tests exit $rc: the figure counts the tests that ran"
for file in "$work"/modules/data=*; do
    mv "$file" "$work/data.module.${file##*.}" # one name per process for combine
done
COVERAGE_FILE=$work/combined python -m coverage combine --rcfile="$work/combine.rc" -q "$work"/data.*
COVERAGE_FILE=$work/combined python -m coverage report --rcfile="$work/combine.rc"
