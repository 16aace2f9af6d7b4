#!/usr/bin/env bash
# Makes sure a Docker engine answers `docker info`. If none does and we are root on Debian:
# installs docker.io when dockerd is missing, starts dockerd in the background (log in
# $DOCKERD_LOG, extra daemon flags in $DOCKERD_ARGS) and waits up to 60 s for it.
# Otherwise fails with a clear message.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DOCKERD_LOG=${DOCKERD_LOG:-/tmp/dockerflow-dockerd.log}
WAIT_SECONDS=${DOCKERD_WAIT_SECONDS:-60}

docker_ok && exit 0

if ! can_apt; then
    die "no Docker engine answers 'docker info'${DOCKER_HOST:+ (DOCKER_HOST=$DOCKER_HOST)}, and starting one automatically needs root on Debian. Start dockerd (or Docker Desktop) yourself, or make sure your user may use the Docker socket."
fi

if ! command -v dockerd >/dev/null || ! command -v docker >/dev/null; then
    apt_install docker.io
    # A systemd host starts the service from the package.
    docker_ok && { log "Docker engine is up (started by the package)"; exit 0; }
fi

log "starting dockerd${DOCKERD_ARGS:+ $DOCKERD_ARGS} in the background (log: $DOCKERD_LOG)"
start=$(now)
# shellcheck disable=SC2086
setsid nohup dockerd ${DOCKERD_ARGS:-} >>"$DOCKERD_LOG" 2>&1 </dev/null &
dockerd_pid=$!
for _ in $(seq 1 "$WAIT_SECONDS"); do
    if docker_ok; then
        log "Docker engine is up after $(elapsed "$start") (dockerd pid $dockerd_pid)"
        exit 0
    fi
    if ! kill -0 "$dockerd_pid" 2>/dev/null; then
        tail -n 30 "$DOCKERD_LOG" >&2 || true
        die "dockerd exited early; see $DOCKERD_LOG"
    fi
    sleep 1
done
tail -n 30 "$DOCKERD_LOG" >&2 || true
die "dockerd did not answer 'docker info' within ${WAIT_SECONDS}s; see $DOCKERD_LOG"
