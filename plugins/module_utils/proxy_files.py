# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the proxy container's configuration volume holds: where HAProxy's configuration and its candidate
and previous copies are, and the bash helpers (shipped next to them) that reach HAProxy's runtime API and
master CLI from inside the container, so nothing but the Docker API has to reach the proxy host."""

from __future__ import annotations

import io
import tarfile
import time

from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError

PRIVATE_MODE = 0o600  # the certificates' files, which hold their keys

CONFIG_DIR = "/usr/local/etc/haproxy"
CONFIG_FILE = CONFIG_DIR + "/haproxy.cfg"
CANDIDATE_FILE = CONFIG_DIR + "/haproxy.cfg.new"
PREVIOUS_FILE = CONFIG_DIR + "/haproxy.cfg.previous"  # what ran before the last activation, to restore it
CLI_SCRIPT = CONFIG_DIR + "/dockerflow-cli.sh"
RELOAD_SCRIPT = CONFIG_DIR + "/dockerflow-reload.sh"
# The running worker's unix stats socket (expose-fd listeners): a replacement container, which shares the volume,
# takes the listening sockets over from it with haproxy -x (HAProxy's -x wants a unix socket).
ADMIN_SOCKET = CONFIG_DIR + "/dockerflow-admin.sock"
SERVER_STATE_FILE = CONFIG_DIR + "/server-state"  # the servers' addresses and states a new worker starts from

# Talks to the runtime API or the master CLI (on the host loopback unless proxy_admin_address says
# otherwise); bash's /dev/tcp needs no extra tool.
CLI_SCRIPT_TEXT = """#!/bin/bash
# dockerflow-cli.sh PORT COMMAND [ADDRESS]: one command to HAProxy's runtime API or master CLI.
set -euo pipefail
exec 3<>"/dev/tcp/${3:-127.0.0.1}/$1"
printf '%s\\nquit\\n' "$2" >&3
timeout 10 cat <&3
"""

LIVE_MAP_FILE = CONFIG_DIR + "/live-colors.map"  # the routes' live colors (live_map), as haproxy.cfg's trailer says
BODY_KEY = ".body"  # the map's key of the digest of the body it goes with (live_map)
WEIGHTS_FILE = CONFIG_DIR + "/canary-weights.map"  # the canaries' weights (proxy_canary)

# Saves the servers' resolved addresses and states for the next worker (init-addr last), then reloads; with
# "save" only saves them (for the worker of a replacement container, which reads the same volume); with "install"
# first moves the checked candidate over haproxy.cfg (one exec for both: each costs a Docker round trip); with
# "place" only moves it (no check, no reload: the callers load it). The live colors' map is always written from
# haproxy.cfg's trailer right after the move, so the two files never tell two stories for long: a run killed
# between them leaves a haproxy.cfg the worker does not run, which the next run puts back (with its map).
# A slot DNS has not filled (address "-") is left out: without a line it starts as its line would have it
# (init-addr none, in maintenance until resolved), and those lines were ~40 % of a reload's CPU with 300 routes.
RELOAD_SCRIPT_TEXT = """#!/bin/bash
# dockerflow-reload.sh ADMIN_PORT STATE_FILE [ADDRESS] [save|install|place|recolor BODY LINE...]: save server
# state, then a hitless master-worker reload; "install" checks haproxy.cfg.new and moves it over haproxy.cfg first
# (in one docker exec with the reload: a switch waits for each). Exit 3 with haproxy -c's words if it refuses it: nothing changed.
set -euo pipefail
state_file="$2"
place() {
    mv "%(candidate)s" "%(config)s"
    sed -n 's/^# live-color //p' "%(config)s" > "%(map)s.tmp"
    mv "%(map)s.tmp" "%(map)s"
}
# recolor BODY LINE...: the map's new lines under the body (digest BODY) of the file that holds it, which becomes
# haproxy.cfg; the one that held it stays as the previous copy. Exit 4 if neither holds it: nothing changed.
recolor() {
    local base=""
    for file in "%(config)s" "%(previous)s"; do
        if grep -qxF "# live-color %(body_key)s $1" "$file" 2>/dev/null; then
            base="$file"
            break
        fi
    done
    if [ -z "$base" ]; then
        echo "neither haproxy.cfg nor its previous copy holds the configuration the proxy runs (body $1)"
        exit 4
    fi
    shift
    { grep -v '^# live-color ' "$base"; printf '# live-color %%s\n' "$@"; } > "%(candidate)s"
    if [ "$base" = "%(config)s" ]; then
        cp "%(config)s" "%(previous)s"
    fi
    place
}
if [ "${4:-}" = place ]; then
    place
    exit 0
fi
if [ "${4:-}" = recolor ]; then
    recolor "${@:5}"
    exit 0
fi
if [ "${4:-}" = install ]; then
    for read in "%(map)s" "%(weights)s"; do  # the candidate reads them (a volume of an earlier release may have none)
        [ -e "$read" ] || : > "$read"
    done
    if ! checked=$(haproxy -c -f "%(candidate)s" 2>&1); then
        echo "$checked"
        exit 3
    fi
    place
fi
if /bin/bash "$(dirname "$0")/dockerflow-cli.sh" "$1" "show servers state" "${3:-127.0.0.1}" \\
        | awk 'NR <= 2 || $5 != "-"' > "$state_file.tmp"; then
    mv "$state_file.tmp" "$state_file"
fi
if [ "${4:-}" != save ]; then
    kill -USR2 1
fi
""" % {"candidate": CANDIDATE_FILE, "config": CONFIG_FILE, "map": LIVE_MAP_FILE, "weights": WEIGHTS_FILE,
       "previous": PREVIOUS_FILE, "body_key": BODY_KEY}

CHECK_REFUSED_EXIT = 3  # RELOAD_SCRIPT_TEXT's exit when haproxy -c refuses the candidate
NOT_RUNNING_FILE_EXIT = 4  # its exit when no file holds the running configuration's body (recolor)


class ConfigRefused(FlowError):
    """``haproxy -c`` refused a new configuration (RELOAD_SCRIPT_TEXT's check), in HAProxy's own words."""

    def __init__(self, output: str) -> None:
        alerts = [line.strip() for line in output.splitlines() if "ALERT" in line]
        super().__init__("The new HAProxy configuration was rejected by haproxy -c, so it was not activated: %s"
                         % (" | ".join(alerts[:3]) or output.strip()[:300]), haproxy_output=output.splitlines())


# The helper scripts by file name in CONFIG_DIR, as ProxyNode.put_files writes them.
HELPER_FILES = {"dockerflow-cli.sh": CLI_SCRIPT_TEXT, "dockerflow-reload.sh": RELOAD_SCRIPT_TEXT}


def archive(files: dict[str, str], mode: int | None = None) -> bytes:
    """A tar of ``files`` (name: text) as put_archive unpacks it into CONFIG_DIR, owned by root: ``mode`` for all of
    them (PRIVATE_MODE for keys), else 0755 for scripts and 0644; their directories (certs/) 0700 when private."""
    stream = io.BytesIO()
    now = int(time.time())
    with tarfile.open(fileobj=stream, mode="w") as tar:
        # Every directory on the way (certs/ and certs/<digest>/), so that none is made by the engine with its mode.
        directories = {"/".join(name.split("/")[:depth]) for name in files for depth in range(1, name.count("/") + 1)}
        for directory in sorted(directories):
            info = tarfile.TarInfo(directory)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o700 if mode == PRIVATE_MODE else 0o755, now
            tar.addfile(info)
        for name, text in files.items():
            data = text.encode("utf-8")
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), now
            info.mode = mode if mode is not None else (0o755 if name.endswith(".sh") else 0o644)
            tar.addfile(info, io.BytesIO(data))
    return stream.getvalue()
