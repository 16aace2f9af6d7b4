#!/usr/bin/env bash
# Starts/stops the test Consul: container dockerflow-test-consul (dev mode, in-memory
# server) on the host network, HTTP API on 127.0.0.1:${CONSUL_HTTP_PORT:-8500}.
# Usage: consul.sh start|stop|status      (idempotent)
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

NAME=dockerflow-test-consul
IMAGE=dockerflow-test/consul:1.8.7
PORT=${CONSUL_HTTP_PORT:-8500}
URL=http://127.0.0.1:$PORT
WAIT_SECONDS=${CONSUL_WAIT_SECONDS:-30}

http_get() { # URL -> body on stdout; fails on connection errors and HTTP errors
    if command -v curl >/dev/null; then
        curl -fsS --max-time 2 "$1"
    else
        python3 -c 'import sys, urllib.request as u
sys.stdout.write(u.build_opener(u.ProxyHandler({})).open(sys.argv[1], timeout=2).read().decode())' "$1"
    fi
}

leader() { { http_get "$URL/v1/status/leader" 2>/dev/null || true; } | tr -d '"[:space:]'; }

# "<running> <port>" of our container, empty when there is none.
state() {
    docker inspect -f '{{.State.Running}} {{index .Config.Labels "dockerflow.test.consul-port"}}' \
        "$NAME" 2>/dev/null || true
}

start() {
    local start_t st l
    start_t=$(now)
    st=$(state)
    if [ "$st" = "true $PORT" ] && [ -n "$(leader)" ]; then
        log "$NAME already running, leader $(leader) ($URL)"
        return 0
    fi
    [ -n "$st" ] && docker rm -f -v "$NAME" >/dev/null
    docker image inspect "$IMAGE" >/dev/null 2>&1 ||
        die "image $IMAGE missing: run tests/harness/build-images.sh (make images) first"
    docker run -d --name "$NAME" --network host \
        --label dockerflow.test=1 --label "dockerflow.test.consul-port=$PORT" \
        "$IMAGE" agent -dev -client 127.0.0.1 -bind 127.0.0.1 -http-port "$PORT" >/dev/null
    for _ in $(seq 1 $((WAIT_SECONDS * 4))); do
        l=$(leader)
        if [ -n "$l" ]; then
            log "$NAME up after $(elapsed "$start_t"): leader $l, API $URL"
            return 0
        fi
        if [ "$(docker inspect -f '{{.State.Running}}' "$NAME" 2>/dev/null)" != true ]; then
            docker logs --tail 30 "$NAME" >&2 || true
            die "$NAME exited (port $PORT or 8300/8301/8302/8600 already in use?)"
        fi
        sleep 0.25
    done
    docker logs --tail 30 "$NAME" >&2 || true
    die "$NAME has no leader at $URL/v1/status/leader after ${WAIT_SECONDS}s"
}

stop() {
    if docker_ok && [ -n "$(state)" ]; then
        docker rm -f -v "$NAME" >/dev/null
        log "$NAME removed"
    fi
    return 0
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status)
        l=$(leader)
        if [ -n "$l" ]; then echo "running: leader $l, API $URL"; else echo "not running ($URL)"; exit 1; fi
        ;;
    *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
