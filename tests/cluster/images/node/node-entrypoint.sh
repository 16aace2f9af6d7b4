#!/bin/bash
# Starts a node: sshd in the background, then dockerd in the foreground (its configuration,
# /etc/docker/daemon.json, and TLS files are mounted by cluster.sh). Run with `docker run
# --init`, so the init reaps the processes the engine orphans and forwards `docker stop`.
set -euo pipefail

# Without --privileged, /sys and the cgroup hierarchies come read-only; the inner engine
# writes to both. A bind remount is the one the kernel accepts for cgroup mounts.
mount -o remount,rw /sys
while read -r _ mountpoint fstype _; do
    case $fstype in
        cgroup|cgroup2) mount -o remount,bind,rw "$mountpoint" ;;
    esac
done < /proc/mounts

# A node that was stopped and started again finds its engine's old pid file.
rm -f /var/run/docker.pid /run/docker/containerd/containerd.pid

ssh-keygen -A >/dev/null
/usr/sbin/sshd

exec dockerd
