#!/usr/bin/env bash
# A multi-node Docker cluster on this machine, for tests/cluster (README.md there):
# Docker-in-Docker nodes on the network dftest-cluster (10.231.0.0/24), a private registry,
# TLS on every engine, sshd with a generated key, an Ansible inventory and an env file.
#
#   cluster.sh up       build the images when missing or out of date, start what is not running,
#                       push the test images to the registry, write inventory.yml and env.sh
#   cluster.sh swarm    (development convenience) swarm init on node1, join node2 and node3
#   cluster.sh down     remove the cluster's containers, their volumes and the network
#   cluster.sh status   what runs
#
# Idempotent; run as root. Certificates, the SSH key, inventory.yml and env.sh go to
# $DOCKERFLOW_TEST_CACHE/cluster (.cache/cluster by default) and stay after `down`.
# A second cluster can run beside the first (say, while someone else's tests use it):
#   DOCKERFLOW_CLUSTER_NAME=dftest2 DOCKERFLOW_CLUSTER_NET=10.232.0 DOCKERFLOW_CLUSTER_REGISTRY_PORT=15001
# names it dftest2-*, puts it on 10.232.0.0/24 and its files in .cache/cluster-dftest2.
# The host's own engine never joins a swarm: every swarm command runs inside a node.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../harness/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../harness/lib.sh"

CLUSTER_SRC=$REPO_ROOT/tests/cluster
CLUSTER_NAME=${DOCKERFLOW_CLUSTER_NAME:-dftest}
NET=${DOCKERFLOW_CLUSTER_NET:-10.231.0}
REGISTRY_HOST_PORT=${DOCKERFLOW_CLUSTER_REGISTRY_PORT:-15000}
[[ $CLUSTER_NAME =~ ^dftest[a-z0-9-]*$ ]] || die "DOCKERFLOW_CLUSTER_NAME must start with dftest (the harness's cleanup prefix)"
[[ $NET =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "DOCKERFLOW_CLUSTER_NET must be the first three octets of a /24, e.g. 10.231.0"
CLUSTER_DIR=$CACHE_DIR/cluster
[ "$CLUSTER_NAME" = dftest ] || CLUSTER_DIR=$CACHE_DIR/cluster-$CLUSTER_NAME
CERTS_DIR=$CLUSTER_DIR/certs
SSH_DIR=$CLUSTER_DIR/ssh
BUILD_DIR=$CLUSTER_DIR/build
INVENTORY=$CLUSTER_DIR/inventory.yml
ENV_FILE=$CLUSTER_DIR/env.sh

NETWORK=$CLUSTER_NAME-cluster
SUBNET=$NET.0/24
REGISTRY_NAME=$CLUSTER_NAME-registry
REGISTRY_IP=$NET.2
REGISTRY=$REGISTRY_NAME:5000
NODE_IMAGE=dockerflow-test/node:bookworm
REGISTRY_IMAGE=dockerflow-test/registry:2
HASH_LABEL=dockerflow.test.context-hash
SPEC_LABEL=dockerflow.test.cluster.spec
# The files (certificates, key) a cluster's nodes use live in one checkout's .cache: another
# checkout must not replace or remove that cluster, which would cut its owner off.
OWNER_LABEL=dockerflow.test.cluster.dir
# dockerflow.test=1 lets tests/harness/cleanup.sh remove a cluster a crashed run left behind.
LABELS=(--label dockerflow.test=1 --label "dockerflow.test.cluster=$CLUSTER_NAME")

# inventory name | IP; the container is dftest-<name>, its hostname <name>.
NODES=(
    "node1|$NET.11"
    "node2|$NET.12"
    "node3|$NET.13"
    "proxyhost|$NET.20"
)
MANAGER=node1
WORKERS=(node2 node3)

# The test images the nodes pull, as dftest-registry:5000/dockerflow-test/<name:tag>.
PUSHED_IMAGES=(app:1 app:2 app:unhealthy app:nohealthcheck consul:1.8.7 haproxy:3.0 python:3)
# The Python packages the nodes need to run modules and the proxy role (pins from tests/requirements.txt).
NODE_PYTHON_PACKAGES=(docker py-consul requests)

# Without --privileged (this VM refuses it): every capability the VM grants, devices and
# cgroups the inner engine manages, its own cgroup namespace (multi-node-cluster.md).
NODE_RUN_OPTIONS=(
    --init --cap-add ALL --cap-drop SYS_RESOURCE
    --security-opt seccomp=unconfined --security-opt systempaths=unconfined
    --device-cgroup-rule 'a *:* rwm' --cgroupns private
)

export DOCKER_BUILDKIT=0 # legacy builder: no buildx needed, never pulls a FROM image

node_ip() {
    local entry
    for entry in "${NODES[@]}"; do
        if [ "${entry%%|*}" = "$1" ]; then echo "${entry#*|}"; return 0; fi
    done
    die "no node named $1"
}
node_names() { local entry; for entry in "${NODES[@]}"; do echo "${entry%%|*}"; done; }
container_of() { echo "$CLUSTER_NAME-$1"; }
cluster_containers() { docker ps -a --filter "label=dockerflow.test.cluster=$CLUSTER_NAME" --format '{{.Names}}'; }

# in_node NODE CMD...: run CMD in the node (its own docker CLI talks to the inner engine).
in_node() { local node=$1; shift; docker exec "$(container_of "$node")" "$@"; }

# --- images ---------------------------------------------------------------------------------

pinned() { # PACKAGE: its pin line from tests/requirements.txt
    grep -iE "^$1==" "$REPO_ROOT/tests/requirements.txt" ||
        die "tests/requirements.txt pins no version of $1"
}

# The wheels go into the node's build context (gitignored under .cache), downloaded on the host
# for the node's Python (Debian bookworm: CPython 3.11, glibc 2.36).
node_wheels() { # DIR
    local dir=$1 pins=() pkg python
    for pkg in "${NODE_PYTHON_PACKAGES[@]}"; do pins+=("$(pinned "$pkg")"); done
    if [ -f "$dir/requirements.txt" ] && [ "$(printf '%s\n' "${pins[@]}")" = "$(cat "$dir/requirements.txt")" ]; then
        return 0
    fi
    python=$REPO_ROOT/.venv/bin/python
    [ -x "$python" ] || python=python3
    log "downloading wheels for the node image: ${pins[*]}"
    rm -rf "$dir"
    mkdir -p "$dir"
    run_quiet "$python" -m pip download --disable-pip-version-check -q --dest "$dir" \
        --only-binary=:all: --implementation cp --python-version 3.11 --abi cp311 \
        --platform "manylinux_2_36_$(uname -m)" "${pins[@]}"
    printf '%s\n' "${pins[@]}" >"$dir/requirements.txt"
}

run_quiet() { # CMD...: its output only when it fails
    local out rc=0
    out=$("$@" 2>&1) || rc=$?
    [ "$rc" = 0 ] || { printf '%s\n' "$out" | tail -n 40 >&2; die "failed (exit $rc): $*"; }
}

image_hash() { docker image inspect -f "{{ index .Config.Labels \"$HASH_LABEL\" }}" "$1" 2>/dev/null || true; }

# build_image NAME SOURCE_DIR [EXTRA_DIR_NAME EXTRA_DIR]: assemble the context under .cache and
# build it unless the image's hash label already matches the context and the base image.
build_image() {
    local name=$1 src=$2 ctx hash logf start
    ctx=$BUILD_DIR/$(basename "$src")
    mkdir -p "$ctx"
    find "$ctx" -mindepth 1 -maxdepth 1 -not -name wheels -exec rm -rf {} +
    cp -a "$src"/. "$ctx"/
    hash=$(context_hash "$ctx" "parent=$(image_hash dockerflow-test/base:bookworm)")
    if [ "$(image_hash "$name")" = "$hash" ]; then
        log "$name is up to date"
        return 0
    fi
    log "building $name (tests/cluster/images/$(basename "$src"))"
    start=$(now)
    logf=$CACHE_DIR/logs/build-$(printf '%s' "$name" | tr '/:' '__').log
    mkdir -p "$CACHE_DIR/logs"
    if ! docker build --network host --force-rm --label "$HASH_LABEL=$hash" -t "$name" "$ctx" >"$logf" 2>&1; then
        tail -n 40 "$logf" >&2
        die "building $name failed (full log: $logf)"
    fi
    docker image prune -f --filter "label=$HASH_LABEL" >/dev/null || true
    log "built $name in $(elapsed "$start")"
}

build_images() {
    "$REPO_ROOT/tests/harness/build-images.sh"
    mkdir -p "$BUILD_DIR/node"
    node_wheels "$BUILD_DIR/node/wheels"
    build_image "$NODE_IMAGE" "$CLUSTER_SRC/images/node"
    build_image "$REGISTRY_IMAGE" "$CLUSTER_SRC/images/registry"
}

# --- certificates and keys -------------------------------------------------------------------

# One CA; a server certificate per node (its IP, container name, hostname, loopback); one
# client certificate named as the docker CLI and DOCKER_CERT_PATH expect (ca/cert/key.pem).
make_certs() {
    local node ip dir
    mkdir -p "$CERTS_DIR"
    chmod 0700 "$CERTS_DIR"
    if [ ! -f "$CERTS_DIR/ca.pem" ] || [ ! -f "$CERTS_DIR/ca-key.pem" ]; then
        log "generating the cluster CA and client certificate in $CERTS_DIR"
        rm -rf "${CERTS_DIR:?}"/*
        run_quiet openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
            -subj "/CN=dockerflow test cluster CA" -keyout "$CERTS_DIR/ca-key.pem" -out "$CERTS_DIR/ca.pem"
    fi
    if [ ! -f "$CERTS_DIR/cert.pem" ]; then
        sign_cert "$CERTS_DIR/key.pem" "$CERTS_DIR/cert.pem" "/CN=dockerflow-test-client" \
            "extendedKeyUsage=clientAuth"
    fi
    for node in $(node_names); do
        ip=$(node_ip "$node")
        dir=$CERTS_DIR/nodes/$node
        [ -f "$dir/server-cert.pem" ] && continue
        mkdir -p "$dir"
        sign_cert "$dir/server-key.pem" "$dir/server-cert.pem" "/CN=$(container_of "$node")" \
            "extendedKeyUsage=serverAuth" \
            "subjectAltName=IP:$ip,DNS:$(container_of "$node"),DNS:$node,IP:127.0.0.1,DNS:localhost"
        cp "$CERTS_DIR/ca.pem" "$dir/ca.pem"
    done
}

sign_cert() { # KEY CERT SUBJECT EXTENSION...
    local key=$1 cert=$2 subject=$3 ext
    shift 3
    local exts=()
    for ext in "$@"; do exts+=(-addext "$ext"); done
    run_quiet openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
        -subj "$subject" -CA "$CERTS_DIR/ca.pem" -CAkey "$CERTS_DIR/ca-key.pem" \
        -addext "basicConstraints=critical,CA:FALSE" "${exts[@]}" -keyout "$key" -out "$cert"
    chmod 0600 "$key"
}

make_ssh_key() {
    mkdir -p "$SSH_DIR"
    chmod 0700 "$SSH_DIR"
    [ -f "$SSH_DIR/id_ed25519" ] ||
        run_quiet ssh-keygen -q -t ed25519 -N '' -C dockerflow-test-cluster -f "$SSH_DIR/id_ed25519"
}

write_daemon_json() {
    cat >"$CLUSTER_DIR/daemon.json" <<EOF
{
  "hosts": ["unix:///var/run/docker.sock", "tcp://0.0.0.0:2376"],
  "tls": true,
  "tlsverify": true,
  "tlscacert": "/etc/docker/tls/ca.pem",
  "tlscert": "/etc/docker/tls/server-cert.pem",
  "tlskey": "/etc/docker/tls/server-key.pem",
  "insecure-registries": ["$REGISTRY"],
  "storage-driver": "overlay2"
}
EOF
}

# --- containers ------------------------------------------------------------------------------

ensure_network() {
    docker network inspect "$NETWORK" >/dev/null 2>&1 && return 0
    log "creating network $NETWORK ($SUBNET)"
    docker network create "${LABELS[@]}" --subnet "$SUBNET" "$NETWORK" >/dev/null ||
        die "cannot create $NETWORK with $SUBNET (does another network use that range?)"
}

# ensure_container NAME RUN_ARGS...: run it unless a container with the same spec label exists
# (then only start it when stopped); a different spec replaces it.
ensure_container() {
    local name=$1 spec current running
    shift
    spec=$(printf '%s\n' "${LABELS[@]}" "$@" | sha256sum | cut -d' ' -f1)
    check_owner "$name"
    current=$(docker container inspect -f "{{ index .Config.Labels \"$SPEC_LABEL\" }}" "$name" 2>/dev/null || true)
    if [ -n "$current" ] && [ "$current" != "$spec" ]; then
        log "replacing $name (its image or options changed)"
        docker rm -f -v "$name" >/dev/null
        current=
    fi
    if [ -z "$current" ]; then
        docker rm -f -v "$name" >/dev/null 2>&1 || true
        docker run -d --name "$name" "${LABELS[@]}" --label "$SPEC_LABEL=$spec" --label "$OWNER_LABEL=$CLUSTER_DIR" \
            "$@" >/dev/null
        log "started $name"
        return 0
    fi
    running=$(docker container inspect -f '{{.State.Running}}' "$name")
    if [ "$running" != true ]; then
        docker start "$name" >/dev/null
        log "started the stopped $name"
    fi
}

check_owner() { # CONTAINER: fail when it belongs to a cluster another checkout made
    local owner
    owner=$(docker container inspect -f "{{ index .Config.Labels \"$OWNER_LABEL\" }}" "$1" 2>/dev/null || true)
    [ -z "$owner" ] || [ "$owner" = "$CLUSTER_DIR" ] ||
        die "$1 belongs to the cluster whose files are in $owner, not $CLUSTER_DIR: use another DOCKERFLOW_CLUSTER_NAME (with its own _NET and _REGISTRY_PORT), or run cluster.sh down from that checkout"
}

file_hashes() { sha256sum "$@" | cut -d' ' -f1 | tr '\n' ' '; }

start_registry() {
    ensure_container "$REGISTRY_NAME" --network "$NETWORK" --ip "$REGISTRY_IP" \
        --publish "127.0.0.1:$REGISTRY_HOST_PORT:5000" --restart unless-stopped \
        "$(docker image inspect -f '{{.Id}}' "$REGISTRY_IMAGE")"
}

start_node() { # NODE
    local node=$1 tls=$CERTS_DIR/nodes/$1
    # The file hashes make the spec change (and the node be replaced) when keys or certificates do.
    ensure_container "$(container_of "$node")" --hostname "$node" --network "$NETWORK" --ip "$(node_ip "$node")" \
        "${NODE_RUN_OPTIONS[@]}" \
        --mount "type=bind,source=$CLUSTER_DIR/daemon.json,target=/etc/docker/daemon.json,readonly" \
        --mount "type=bind,source=$tls,target=/etc/docker/tls,readonly" \
        --mount "type=bind,source=$SSH_DIR/id_ed25519.pub,target=/root/.ssh/authorized_keys,readonly" \
        --label "dockerflow.test.cluster.files=$(file_hashes "$CLUSTER_DIR/daemon.json" "$tls"/*.pem "$SSH_DIR/id_ed25519.pub")" \
        "$(docker image inspect -f '{{.Id}}' "$NODE_IMAGE")"
}

wait_for() { # SECONDS CMD...: until CMD succeeds, at most SECONDS
    local seconds=$1 deadline
    shift
    deadline=$((SECONDS + seconds))
    until "$@" >/dev/null 2>&1; do
        [ "$SECONDS" -lt "$deadline" ] || return 1
        sleep 0.5
    done
}

tls_docker() { # NODE ARGS...: the host's docker CLI against the node's engine over TLS
    local node=$1
    shift
    DOCKER_TLS_VERIFY=1 DOCKER_CERT_PATH=$CERTS_DIR DOCKER_HOST=tcp://$(node_ip "$node"):2376 docker "$@"
}

node_ssh() { # NODE CMD...
    local node=$1
    shift
    ssh -i "$SSH_DIR/id_ed25519" -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
        -o LogLevel=ERROR -o ConnectTimeout=3 "root@$(node_ip "$node")" "$@"
}

wait_nodes() {
    local node
    for node in $(node_names); do
        wait_for 60 tls_docker "$node" version ||
            { docker logs --tail 20 "$(container_of "$node")" >&2 || true
              die "the engine of $node does not answer over TLS at tcp://$(node_ip "$node"):2376"; }
        wait_for 30 node_ssh "$node" true ||
            die "sshd on $node ($(node_ip "$node")) does not accept the cluster key"
    done
}

push_images() {
    local image local_tag
    wait_for 30 curl -fsS "http://127.0.0.1:$REGISTRY_HOST_PORT/v2/" ||
        die "the registry does not answer on 127.0.0.1:$REGISTRY_HOST_PORT"
    for image in "${PUSHED_IMAGES[@]}"; do
        local_tag=127.0.0.1:$REGISTRY_HOST_PORT/dockerflow-test/$image
        docker tag "dockerflow-test/$image" "$local_tag"
        run_quiet docker push "$local_tag"
        docker rmi "$local_tag" >/dev/null
    done
    log "pushed ${PUSHED_IMAGES[*]} as $REGISTRY/dockerflow-test/<image>"
}

write_inventory() {
    local node ip key=$SSH_DIR/id_ed25519
    {
        cat <<EOF
# Written by tests/cluster/cluster.sh up. The test cluster: Docker-in-Docker nodes reached
# by SSH as root with the generated key; each engine also listens on tcp 2376 with TLS.
all:
  vars:
    ansible_user: root
    ansible_ssh_private_key_file: $key
    ansible_ssh_common_args: -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR
    ansible_python_interpreter: /usr/bin/python3
    ansible_pipelining: true
    docker_cert_path: $CERTS_DIR
    # Images come from the cluster's private registry.
    consul_image: $REGISTRY/dockerflow-test/consul:1.8.7
    proxy_image: $REGISTRY/dockerflow-test/haproxy:3.0
    registrator_base_image: $REGISTRY/dockerflow-test/python:3
  children:
    proxy:
      vars:
        # The controller (this machine) uses the Consul API of the proxy host's server.
        consul_client_address: "127.0.0.1 {{ ansible_host }}"
      hosts:
EOF
        host_entry proxyhost
        echo "    docker_nodes:"
        echo "      hosts:"
        for node in node1 node2 node3; do host_entry "$node"; done
        echo "    swarm_managers:"
        echo "      hosts:"
        host_entry "$MANAGER"
        echo "    swarm_workers:"
        echo "      hosts:"
        for node in "${WORKERS[@]}"; do host_entry "$node"; done
    } >"$INVENTORY.tmp"
    mv "$INVENTORY.tmp" "$INVENTORY"
    ip=$(node_ip "$MANAGER")
    cat >"$ENV_FILE" <<EOF
# Written by tests/cluster/cluster.sh up; source it.
export DOCKERFLOW_CLUSTER_MANAGER=tcp://$ip:2376
export DOCKERFLOW_CLUSTER_CERTS=$CERTS_DIR
export DOCKERFLOW_CLUSTER_REGISTRY=$REGISTRY
export DOCKERFLOW_CLUSTER_PROXYHOST=$(node_ip proxyhost)
export DOCKERFLOW_CLUSTER_NODES="$(for node in node1 node2 node3; do node_ip "$node"; done | tr '\n' ' ' | sed 's/ $//')"
export DOCKERFLOW_CLUSTER_INVENTORY=$INVENTORY
export DOCKERFLOW_CLUSTER_NAME=$CLUSTER_NAME
# The node containers (docker stop/start one to take a node down and bring it back).
export DOCKERFLOW_CLUSTER_NODE_CONTAINERS="$(container_of node1) $(container_of node2) $(container_of node3)"
EOF
}

host_entry() { # NODE
    local ip
    ip=$(node_ip "$1")
    printf '        %s:\n          ansible_host: %s\n          docker_tls_host: tcp://%s:2376\n' "$1" "$ip" "$ip"
}

# The host tools cluster.sh and Ansible's SSH connection use (installed on Debian when missing).
ensure_tools() {
    local missing=() tool package
    for tool in ssh:openssh-client ssh-keygen:openssh-client openssl:openssl curl:curl; do
        package=${tool#*:}
        command -v "${tool%%:*}" >/dev/null || [[ " ${missing[*]} " == *" $package "* ]] || missing+=("$package")
    done
    [ ${#missing[@]} = 0 ] || apt_install "${missing[@]}"
}

cmd_up() {
    local start node
    start=$(now)
    [ "$(id -u)" = 0 ] || die "run as root (the nodes need capabilities and the certificates root's files)"
    docker_ok || die "no Docker engine answers; run make engine first"
    ensure_tools
    mkdir -p "$CLUSTER_DIR"
    build_images
    make_certs
    make_ssh_key
    write_daemon_json
    ensure_network
    start_registry
    for node in $(node_names); do start_node "$node"; done
    push_images
    wait_nodes
    write_inventory
    log "cluster up in $(elapsed "$start"): $(cluster_containers | sort | tr '\n' ' ')"
    log "inventory $INVENTORY, environment $ENV_FILE"
}

swarm_state() { in_node "$1" docker info -f '{{.Swarm.LocalNodeState}}' 2>/dev/null || true; }

all_ready() {
    local want=$((1 + ${#WORKERS[@]})) ready
    ready=$(in_node "$MANAGER" docker node ls --format '{{.Status}}' 2>/dev/null | grep -c '^Ready$' || true)
    [ "$ready" = "$want" ]
}

cmd_swarm() {
    local start token node ip
    start=$(now)
    ip=$(node_ip "$MANAGER")
    if [ "$(swarm_state "$MANAGER")" != active ]; then
        in_node "$MANAGER" docker swarm init --advertise-addr "$ip" >/dev/null
        log "swarm initialised on $MANAGER ($ip)"
    fi
    token=$(in_node "$MANAGER" docker swarm join-token -q worker)
    for node in "${WORKERS[@]}"; do
        [ "$(swarm_state "$node")" = active ] && continue
        in_node "$node" docker swarm join --advertise-addr "$(node_ip "$node")" --token "$token" "$ip:2377" >/dev/null
        log "$node joined"
    done
    # Overlay networks or services created before every node is Ready converged ~30 s late.
    wait_for 60 all_ready || { in_node "$MANAGER" docker node ls >&2; die "not every node is Ready"; }
    in_node "$MANAGER" docker node ls
    log "swarm ready in $(elapsed "$start")"
}

cmd_down() {
    local containers container
    containers=$(cluster_containers)
    for container in $containers; do check_owner "$container"; done
    if [ -n "$containers" ]; then
        # shellcheck disable=SC2086
        docker rm -f -v $containers >/dev/null
        log "removed ${containers//$'\n'/ }"
    fi
    if docker network inspect "$NETWORK" >/dev/null 2>&1; then
        docker network rm "$NETWORK" >/dev/null
        log "removed network $NETWORK"
    fi
}

cmd_status() {
    docker ps -a --filter "label=dockerflow.test.cluster=$CLUSTER_NAME" --format 'table {{.Names}}\t{{.Status}}\t{{.Ports}}'
    if [ -n "$(cluster_containers)" ] && [ "$(docker container inspect -f '{{.State.Running}}' "$(container_of "$MANAGER")" 2>/dev/null)" = true ] &&
        [ "$(swarm_state "$MANAGER")" = active ]; then
        in_node "$MANAGER" docker node ls
    fi
}

case ${1:-} in
    up) cmd_up ;;
    swarm) cmd_swarm ;;
    down) cmd_down ;;
    status) cmd_status ;;
    *) echo "usage: ${0##*/} up|swarm|down|status" >&2; exit 2 ;;
esac
