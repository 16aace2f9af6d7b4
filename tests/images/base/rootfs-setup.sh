#!/usr/bin/env bash
# Turns a fresh `debootstrap --variant=minbase` tree into a small container base, the way
# Debian's official images are made: no services starting during apt installs, no
# recommends, no docs/man pages/translations, no package caches.
# Usage: rootfs-setup.sh ROOTFS_DIR   (runs on the host, edits files only)
set -euo pipefail
root=${1:?usage: rootfs-setup.sh ROOTFS_DIR}

# Services must not start while packages are installed in `docker build`.
cat > "$root/usr/sbin/policy-rc.d" <<'EOS'
#!/bin/sh
exit 101
EOS
chmod 0755 "$root/usr/sbin/policy-rc.d"

cat > "$root/etc/apt/apt.conf.d/docker-minimal" <<'EOS'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Acquire::Languages "none";
Acquire::GzipIndexes "true";
Acquire::CompressionTypes::Order:: "gz";
Dpkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Binary::apt::APT::Keep-Downloaded-Packages "false";
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOS

cat > "$root/etc/dpkg/dpkg.cfg.d/docker-minimal" <<'EOS'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/lintian/*
EOS

# What debootstrap already unpacked: same rules.
find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
rm -rf "$root/usr/share/man/"* "$root/usr/share/info/"* "$root/usr/share/lintian/"*
find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} +

# Caches and host-specific files (Docker provides hostname, hosts and resolv.conf).
rm -rf "$root/var/cache/apt/archives/"*.deb "$root/var/cache/apt/"*.bin \
    "$root/var/lib/apt/lists/"* "$root/var/log/"*.log "$root/var/log/apt/"* \
    "$root/tmp/"* "$root/var/tmp/"*
mkdir -p "$root/var/lib/apt/lists/partial" "$root/var/cache/apt/archives/partial"
: > "$root/etc/machine-id"
echo localhost > "$root/etc/hostname"
rm -f "$root/etc/resolv.conf"
