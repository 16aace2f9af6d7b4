#!/usr/bin/dumb-init /bin/sh
# shellcheck shell=sh
# Mirrors the hashicorp/consul image's entrypoint (POSIX sh: /bin/sh is dash here).
set -e

CONSUL_DATA_DIR=/consul/data
CONSUL_CONFIG_DIR=/consul/config

iface_addr() {
    ip -o -4 addr list "$1" | head -n 1 | awk '{print $4}' | cut -d/ -f1
}

# CONSUL_BIND_INTERFACE / CONSUL_CLIENT_INTERFACE: bind to that interface's IPv4 address.
CONSUL_BIND=
if [ -n "$CONSUL_BIND_INTERFACE" ]; then
    CONSUL_BIND_ADDRESS=$(iface_addr "$CONSUL_BIND_INTERFACE")
    if [ -z "$CONSUL_BIND_ADDRESS" ]; then
        echo "Could not find IP for interface '$CONSUL_BIND_INTERFACE', exiting" >&2
        exit 1
    fi
    CONSUL_BIND="-bind=$CONSUL_BIND_ADDRESS"
    echo "==> Found address '$CONSUL_BIND_ADDRESS' for interface '$CONSUL_BIND_INTERFACE', setting bind option..."
fi
CONSUL_CLIENT=
if [ -n "$CONSUL_CLIENT_INTERFACE" ]; then
    CONSUL_CLIENT_ADDRESS=$(iface_addr "$CONSUL_CLIENT_INTERFACE")
    if [ -z "$CONSUL_CLIENT_ADDRESS" ]; then
        echo "Could not find IP for interface '$CONSUL_CLIENT_INTERFACE', exiting" >&2
        exit 1
    fi
    CONSUL_CLIENT="-client=$CONSUL_CLIENT_ADDRESS"
    echo "==> Found address '$CONSUL_CLIENT_ADDRESS' for interface '$CONSUL_CLIENT_INTERFACE', setting client option..."
fi

# CONSUL_LOCAL_CONFIG: JSON configuration without mounting anything.
if [ -n "$CONSUL_LOCAL_CONFIG" ]; then
    echo "$CONSUL_LOCAL_CONFIG" > "$CONSUL_CONFIG_DIR/local.json"
fi

# Options only: run them with consul.
case "$1" in
    -*) set -- consul "$@" ;;
esac

if [ "$1" = 'agent' ]; then
    shift
    # shellcheck disable=SC2086 # unquoted on purpose: empty options must vanish
    set -- consul agent \
        -data-dir="$CONSUL_DATA_DIR" \
        -config-dir="$CONSUL_CONFIG_DIR" \
        $CONSUL_BIND \
        $CONSUL_CLIENT \
        "$@"
elif [ "$1" = 'version' ]; then
    set -- consul "$@"
elif [ -n "$1" ] && consul --help "$1" 2>&1 | grep -q "consul $1"; then
    # A consul subcommand (no usable exit code, hence the grep on the help text).
    set -- consul "$@"
fi

# Running consul: drop to the consul user, as upstream does (CONSUL_DISABLE_PERM_MGMT
# keeps the current user and leaves ownership alone).
if [ "$1" = 'consul' ] && [ -z "${CONSUL_DISABLE_PERM_MGMT+x}" ] && [ "$(id -u)" = 0 ]; then
    CONSUL_UID=${CONSUL_UID:-$(id -u consul)}
    CONSUL_GID=${CONSUL_GID:-$(id -g consul)}
    for dir in "$CONSUL_DATA_DIR" "$CONSUL_CONFIG_DIR"; do
        if [ "$(stat -c %u "$dir")" != "$CONSUL_UID" ]; then
            chown "$CONSUL_UID:$CONSUL_GID" "$dir"
        fi
    done
    set -- setpriv --reuid="$CONSUL_UID" --regid="$CONSUL_GID" --clear-groups "$@"
fi

exec "$@"
