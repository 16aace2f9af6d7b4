# Shared helpers for the test harness scripts (source it; not executable on its own).
# shellcheck shell=bash

HARNESS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$HARNESS_DIR/../.." && pwd)
# shellcheck disable=SC2034 # used by the scripts that source this file
CACHE_DIR=${DOCKERFLOW_TEST_CACHE:-$REPO_ROOT/.cache}

log() { printf '%s: %s\n' "${0##*/}" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# Seconds since the epoch with a fraction (bash 5: EPOCHREALTIME).
now() { printf '%s' "${EPOCHREALTIME:-$(date +%s.%N)}"; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1fs", b - a }'; }

docker_ok() { timeout 20 docker info >/dev/null 2>&1; }

can_apt() { [ "$(id -u)" = 0 ] && [ -f /etc/debian_version ] && command -v apt-get >/dev/null; }

# apt_install PKG...: install Debian packages on the host (root on Debian only).
apt_install() {
    can_apt || die "need $* but cannot install it: not root on Debian. Install it yourself."
    log "installing $* with apt-get"
    if [ -z "${_APT_UPDATED:-}" ]; then
        DEBIAN_FRONTEND=noninteractive apt-get update -q || die "apt-get update failed"
        _APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" || die "apt-get install $* failed"
}

# context_hash DIR [EXTRA...]: sha256 over EXTRA lines and every file's path, exec bit
# and content (bytecode caches excluded).
context_hash() {
    local dir=$1 f x
    shift
    {
        printf '%s\n' "$@"
        (cd "$dir" && find . -type f -not -name '*.pyc' -not -path '*/__pycache__/*' -print0 |
            LC_ALL=C sort -z |
            while IFS= read -r -d '' f; do
                x=-; [ -x "$f" ] && x=x
                printf '%s %s %s\n' "$(sha256sum <"$f" | cut -d' ' -f1)" "$x" "$f"
            done)
    } | sha256sum | cut -d' ' -f1
}
