#!/usr/bin/env bash
# Builds dockerflow-test/ee:local, the execution environment the AWX tests run a job in, without pulling
# any image (inventories/README.md shows the same commands by hand):
#   1. dockerflow-test/ee-base:bookworm: tests/awx/ee-base on dockerflow-test/python:3 (`make images`),
#      with this machine's CA bundle, so pip in the build reaches PyPI as the host does;
#   2. ansible-builder create -f tests/awx/execution-environment.local.yml: the build context, Dockerfile;
#   3. docker build of that context with the legacy builder (never pulls a FROM image).
# Skipped when the image's label matches a hash of its inputs. Usage: build-ee.sh [--force]
# Needs ansible-builder on PATH (tests/requirements.txt), PyPI and Debian's archive from containers.
set -euo pipefail
# shellcheck source=tests/harness/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../harness/lib.sh"

AWX_DIR=$REPO_ROOT/tests/awx
BASE=dockerflow-test/ee-base:bookworm
EE=${DOCKERFLOW_TEST_EE_IMAGE:-dockerflow-test/ee:local}
HASH_LABEL=dockerflow.test.context-hash
HOST_CA=${DOCKERFLOW_TEST_HOST_CA:-/etc/ssl/certs/ca-certificates.crt}
WORK=$CACHE_DIR/ee
FORCE=0
[ "${1:-}" = --force ] && FORCE=1
export DOCKER_BUILDKIT=0

label() { docker image inspect -f "{{ index .Config.Labels \"$HASH_LABEL\" }}" "$1" 2>/dev/null || true; }

build() { # NAME HASH CONTEXT [DOCKERFILE]
    local name=$1 hash=$2 context=$3 dockerfile=${4:-$3/Dockerfile} start logf
    if [ "$FORCE" = 0 ] && [ "$(label "$name")" = "$hash" ]; then
        log "$name is up to date"
        return
    fi
    start=$(now)
    logf=$WORK/build-${name//[\/:]/_}.log
    if ! docker build --force-rm --label "$HASH_LABEL=$hash" -t "$name" -f "$dockerfile" "$context" >"$logf" 2>&1; then
        tail -n 40 "$logf" >&2
        die "docker build of $name failed (full log: $logf)"
    fi
    log "built $name in $(elapsed "$start")"
}

docker image inspect dockerflow-test/python:3 >/dev/null 2>&1 || die "dockerflow-test/python:3 is missing: run make images"
[ -r "$HOST_CA" ] || die "no CA bundle at $HOST_CA (DOCKERFLOW_TEST_HOST_CA names another)"
mkdir -p "$WORK"
rm -rf "$WORK/base-context" "$WORK/context"
cp -r "$AWX_DIR/ee-base" "$WORK/base-context"
cp "$HOST_CA" "$WORK/base-context/host-ca.crt"
base_hash=$(context_hash "$WORK/base-context" "parent=$(docker image inspect -f '{{.Id}}' dockerflow-test/python:3)")
build "$BASE" "$base_hash" "$WORK/base-context"

ansible-builder create -f "$AWX_DIR/execution-environment.local.yml" -c "$WORK/context" --output-filename Dockerfile \
    >"$WORK/create.log" 2>&1 || { cat "$WORK/create.log" >&2; die "ansible-builder create failed"; }
ee_hash=$(context_hash "$WORK/context" "parent=$(docker image inspect -f '{{.Id}}' "$BASE")")
build "$EE" "$ee_hash" "$WORK/context"
