#!/usr/bin/env bash
# Builds the offline test images when missing or out of date:
#   dockerflow-test/base:bookworm      debootstrap minbase, `docker import`ed
#   dockerflow-test/consul:1.8.7       tests/images/consul
#   dockerflow-test/haproxy:3.0        tests/images/haproxy
#   dockerflow-test/app:{1,2,unhealthy,nohealthcheck}   tests/images/app
#   dockerflow-test/app-record:{1,2}   tests/images/app-record, FROM app:1/:2 (the POST benchmark)
#   dockerflow-test/pebble:2.4         tests/images/pebble (the ACME server of tests/integration/test_acme.py)
# and, with --bench only (`make images-bench`, which `make benchmarks` runs; not for the tests):
#   dockerflow-test/nginx:light        tests/images/nginx (proxy_overhead.py's nginx peer)
# An image is out of date when its label dockerflow.test.context-hash differs from a sha256
# over its build context files, build target/args and the base image's hash (and, for an image
# built FROM another of these, that image's hash: app-record follows app's changes).
# Usage: build-images.sh [--force] [--bench]      (VERBOSE=1 streams build output)
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

IMAGES_DIR=$REPO_ROOT/tests/images
HASH_LABEL=dockerflow.test.context-hash
BASE_IMAGE=dockerflow-test/base:bookworm
LOG_DIR=$CACHE_DIR/logs
FORCE=0
BENCH=0
for arg in "$@"; do
    case $arg in
        --force) FORCE=1 ;;
        --bench) BENCH=1 ;;
        *) die "unknown argument $arg (usage: build-images.sh [--force] [--bench])" ;;
    esac
done

# name | context dir (under tests/images) | --target | build args | FROM image of this list, if any
IMAGES=(
    "dockerflow-test/consul:1.8.7|consul||"
    "dockerflow-test/haproxy:3.0|haproxy||"
    "dockerflow-test/app:1|app|healthcheck|VERSION=1 HEALTH=ok"
    "dockerflow-test/app:2|app|healthcheck|VERSION=2 HEALTH=ok"
    "dockerflow-test/app:unhealthy|app|healthcheck|VERSION=unhealthy HEALTH=fail"
    "dockerflow-test/app:nohealthcheck|app|nohealthcheck|VERSION=nohc HEALTH=ok"
    "dockerflow-test/python:3|python||"
    "dockerflow-test/app-record:1|app-record||VERSION=1|dockerflow-test/app:1"
    "dockerflow-test/app-record:2|app-record||VERSION=2|dockerflow-test/app:2"
    "dockerflow-test/pebble:2.4|pebble||"
)
# Only the benchmarks need these (--bench): `make test` and CI do not build them.
BENCH_IMAGES=(
    "dockerflow-test/nginx:light|nginx||"
)

# Image config given to `docker import` (part of the base image's hash).
IMPORT_CHANGES=(
    'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
    'ENV LANG=C.UTF-8'
    'CMD ["bash"]'
)

export DOCKER_BUILDKIT=0 # legacy builder: no buildx needed, never pulls a FROM image

image_hash() {
    docker image inspect -f "{{ index .Config.Labels \"$HASH_LABEL\" }}" "$1" 2>/dev/null || true
}

up_to_date() { [ "$FORCE" = 0 ] && [ "$(image_hash "$1")" = "$2" ]; }

logfile() { printf '%s/build-%s.log' "$LOG_DIR" "$(printf '%s' "$1" | tr '/:' '__')"; }

# run_logged LOG CMD...: run CMD with output to LOG (and the terminal when VERBOSE=1);
# on failure show the end of the log.
run_logged() {
    local logf=$1 rc=0
    shift
    if [ "${VERBOSE:-0}" = 1 ]; then
        "$@" 2>&1 | tee "$logf" || rc=$?
    else
        "$@" >"$logf" 2>&1 || rc=$?
    fi
    if [ "$rc" != 0 ]; then
        tail -n 40 "$logf" >&2 || true
        log "FAILED: $* (exit $rc; full log: $logf)"
    fi
    return "$rc"
}

unmount_under() { # lazily unmount anything debootstrap left mounted below $1
    local m
    awk -v p="$1/" 'index($2, p) == 1 { print $2 }' /proc/mounts | sort -r |
        while read -r m; do umount -l "$m" 2>/dev/null || true; done
}

build_base() { # HASH ROOTFS_HASH
    local hash=$1 rootfs_hash=$2 SUITE VARIANT MIRROR tarball tmp start logf change
    local changes=()
    # shellcheck disable=SC1091
    . "$IMAGES_DIR/base/base.env"
    tarball=$CACHE_DIR/base-$SUITE-$rootfs_hash.tar
    logf=$(logfile "$BASE_IMAGE")
    start=$(now)
    if [ -f "$tarball" ]; then
        log "building $BASE_IMAGE from cached rootfs $tarball"
    else
        log "building $BASE_IMAGE: debootstrap --variant=$VARIANT $SUITE ($MIRROR)"
        [ "$(id -u)" = 0 ] || die "debootstrap needs root; run as root or build $BASE_IMAGE yourself"
        command -v debootstrap >/dev/null || apt_install debootstrap
        tmp=$(mktemp -d "${TMPDIR:-/tmp}/dockerflow-base.XXXXXX")
        # shellcheck disable=SC2064
        trap "unmount_under '$tmp'; rm -rf '$tmp'" EXIT
        run_logged "$logf" debootstrap --variant="$VARIANT" "$SUITE" "$tmp/rootfs" "$MIRROR"
        "$IMAGES_DIR/base/rootfs-setup.sh" "$tmp/rootfs"
        rm -f "$CACHE_DIR"/base-"$SUITE"-*.tar # older recipes
        tar -C "$tmp/rootfs" --numeric-owner -cf "$tarball.tmp" .
        mv "$tarball.tmp" "$tarball"
        unmount_under "$tmp"
        rm -rf "$tmp"
        trap - EXIT
    fi
    for change in "LABEL $HASH_LABEL=$hash" "${IMPORT_CHANGES[@]}"; do
        changes+=(--change "$change")
    done
    run_logged "$logf.import" docker import "${changes[@]}" "$tarball" "$BASE_IMAGE"
    log "built $BASE_IMAGE in $(elapsed "$start")"
}

build_image() { # NAME CONTEXT TARGET "ARGS" HASH
    local name=$1 ctx=$2 target=$3 args=$4 hash=$5 start a
    local cmd=(docker build --force-rm --label "$HASH_LABEL=$hash" -t "$name")
    [ -n "$target" ] && cmd+=(--target "$target")
    for a in $args; do cmd+=(--build-arg "$a"); done
    cmd+=("$IMAGES_DIR/$ctx")
    log "building $name (tests/images/$ctx${target:+, target $target}${args:+, $args})"
    start=$(now)
    run_logged "$(logfile "$name")" "${cmd[@]}"
    log "built $name in $(elapsed "$start")"
}

main() {
    local total_start entry name ctx target args parent hash rootfs_hash base_hash built=0
    total_start=$(now)
    "$HARNESS_DIR/ensure-docker.sh"
    mkdir -p "$LOG_DIR"
    exec 9>"$CACHE_DIR/build-images.lock"
    flock 9 # one build at a time (parallel test runs)

    rootfs_hash=$(context_hash "$IMAGES_DIR/base" "image=base")
    base_hash=$(printf '%s\n' "$rootfs_hash" "${IMPORT_CHANGES[@]}" | sha256sum | cut -d' ' -f1)
    if up_to_date "$BASE_IMAGE" "$base_hash"; then
        log "$BASE_IMAGE is up to date"
    else
        build_base "$base_hash" "$rootfs_hash"
        built=$((built + 1))
    fi

    local wanted=("${IMAGES[@]}")
    [ "$BENCH" = 1 ] && wanted=("${BENCH_IMAGES[@]}")
    for entry in "${wanted[@]}"; do
        IFS='|' read -r name ctx target args parent <<<"$entry"
        hash=$(context_hash "$IMAGES_DIR/$ctx" "parent=$base_hash" "target=$target" "args=$args" \
            ${parent:+"from=$(image_hash "$parent")"})
        if up_to_date "$name" "$hash"; then
            log "$name is up to date"
        else
            build_image "$name" "$ctx" "$target" "$args" "$hash"
            built=$((built + 1))
        fi
    done

    if [ "$built" -gt 0 ]; then # drop the untagged images that rebuilds replaced
        docker image prune -f --filter "label=$HASH_LABEL" >/dev/null || true
    fi
    log "all images ready: $built built, total $(elapsed "$total_start")"
}

main "$@"
