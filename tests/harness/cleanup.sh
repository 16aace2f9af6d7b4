#!/usr/bin/env bash
# Removes what tests leave behind; never fails (always exits 0):
#   containers labelled dockerflow.test=1 (never all dockerflow.service ones: real releases carry it),
#   named dockerflow-test-*, or of a compose project named dftest*;
#   networks and volumes labelled dockerflow.test=1 or of a compose project named dftest*.
# Usage: cleanup.sh [--dry-run]   (or CLEANUP_DRY_RUN=1: only list what would be removed)
set -uo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PROJECT_LABEL=com.docker.compose.project
DRY_RUN=${CLEANUP_DRY_RUN:-0}
[ "${1:-}" = --dry-run ] && DRY_RUN=1

# rm_cmd WHAT CMD...: run CMD (or, dry run, only say what it would remove).
rm_cmd() {
    local what=$1
    shift
    if [ "$DRY_RUN" = 1 ]; then
        log "dry run, would remove $what"
    elif "$@" >/dev/null 2>&1; then
        log "removed $what"
    else
        log "could not remove $what (in use?)"
    fi
}

# Extra dockerds (tests/support/dockerd.py) whose test process died: they need no main engine.
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
if [ "$DRY_RUN" != 1 ] && [ -x "$repo/.venv/bin/python" ]; then
    "$repo/.venv/bin/python" "$repo/tests/support/dockerd.py" reap 2>&1 | while IFS= read -r line; do log "$line"; done
fi

if ! docker_ok; then
    log "no Docker engine answers; nothing to clean"
    exit 0
fi

# Lines "ID NAME PROJECT" -> IDs that match by name prefix or compose project prefix.
match_name_or_project() {
    awk -v want_name="${1:-}" '
        (want_name != "" && index($2, want_name) == 1) || index($3, "dftest") == 1 { print $1 }'
}

containers=$(
    {
        docker ps -aq --filter label=dockerflow.test=1
        docker ps -a --format "{{.ID}} {{.Names}} {{.Label \"$PROJECT_LABEL\"}}" |
            match_name_or_project dockerflow-test-
    } 2>/dev/null | sort -u
)
if [ -n "$containers" ]; then
    # shellcheck disable=SC2086
    rm_cmd "container(s) ${containers//$'\n'/ }" docker rm -f -v $containers
fi

networks=$(
    {
        docker network ls -q --filter label=dockerflow.test=1
        docker network ls --format "{{.ID}} {{.Name}} {{.Label \"$PROJECT_LABEL\"}}" |
            match_name_or_project
    } 2>/dev/null | sort -u
)
for n in $networks; do
    rm_cmd "network $n" docker network rm "$n"
done

volumes=$(
    {
        docker volume ls -q --filter label=dockerflow.test=1
        docker volume ls --format "{{.Name}} {{.Name}} {{.Label \"$PROJECT_LABEL\"}}" |
            match_name_or_project dockerflow-test-
    } 2>/dev/null | sort -u
)
for v in $volumes; do
    rm_cmd "volume $v" docker volume rm -f "$v"
done
exit 0
