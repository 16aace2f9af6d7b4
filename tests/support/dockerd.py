# -*- coding: utf-8 -*-
"""An extra Docker daemon beside the host's main one, for tests that need an engine of their own
(TLS over TCP, a daemon that restarts or dies) without touching the main engine.

    from support.dockerd import ExtraDockerd, TLSFiles   # tests/ is on sys.path (integration conftest)

    with ExtraDockerd(tcp_port=free_port, tls=TLSFiles(ca, cert, key)) as daemon:
        daemon.load_image("dockerflow-test/app:1")
        daemon.client().containers.run(...)
        daemon.restart()            # SIGTERM, wait, start again on the same state
        daemon.restart(kill=True)   # SIGKILL: a crash

Isolation from the main engine (checked on Debian's docker.io 20.10):

- Everything it writes lives under one temp directory ``/tmp/dftest-dockerd-*``: ``--data-root``
  (images, containers, volumes, network store), ``--exec-root`` (runc state, netns, plugins),
  ``--pidfile``, the unix socket, an empty ``--config-file`` (so /etc/docker/daemon.json, if any,
  is not read) and the daemon's log.
- It starts its **own containerd** (no ``--containerd`` flag: dockerd then supervises one under
  its exec-root). Sharing the main daemon's containerd works with a distinct namespace, but that
  containerd lives and dies with the main dockerd, so a test restarting either would disturb the
  other. The containerd namespaces are distinct anyway (``--containerd-namespace`` /
  ``--containerd-plugins-namespace``), so even a shared containerd keeps the two apart.
- Its default bridge is a link of its own, ``dfbr-<tag>``, made before it starts (a free /24
  in 10.250.0.0/16) and deleted by cleanup(). Never ``--bridge none``: dockerd then deletes the
  host's ``docker0`` link (moby's removeDefaultBridgeInterface), the main engine's default
  bridge, and ``docker run`` there fails with "could not find bridge docker0".
- ``--iptables=false --ip-masq=false --ip-forward=false``: no iptables, NAT or sysctl changes.
  User-defined bridge networks (Compose's ``<project>_default``) work too: the daemon picks a
  subnet no host route uses, creates a ``br-*`` link that goes away with the network, and
  publishes ports through docker-proxy (no iptables needed), so ``127.0.0.1:<host port>``
  reaches a container. ``network_mode: host`` works too.
- Nothing appears in the main engine: its ``docker ps -a``, images, networks and volumes stay
  as they were (tests/integration/test_extra_dockerd.py checks that).

``cleanup()`` (also on leaving the ``with`` block) removes every container of this daemon,
stops it and its containerd, unmounts whatever is still mounted under its directory, and
deletes the directory. ``reap_orphans()`` does the same for daemons whose owning process died
(a killed test run); tests/harness/cleanup.sh calls it through ``python3 tests/support/dockerd.py reap``.
"""

from __future__ import annotations

import ipaddress
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

DIR_PREFIX = "dftest-dockerd-"
OWNER_FILE = "owner.pid"
SETTINGS_FILE = "settings.json"


@dataclass
class TLSFiles:
    """Server side of ``--tlsverify``: the CA that signs accepted clients, the daemon's cert and key."""

    ca: str
    cert: str
    key: str


class DockerdError(RuntimeError):
    pass


class ExtraDockerd:
    """One extra dockerd; ``start()`` blocks until its API answers."""

    def __init__(self, tcp_port=None, tls=None, live_restore=False, extra_args=(), base_dir=None, start_timeout=60,
                 root=None):
        """``tcp_port``: also listen on tcp://127.0.0.1:PORT (with ``tls``: ``--tlsverify`` and the
        given files; without: plain TCP, which dockerd accepts with a warning)."""
        self.tcp_port = tcp_port
        self.tls = tls
        self.live_restore = live_restore
        self.extra_args = list(extra_args)
        self.start_timeout = start_timeout
        # Short path: unix socket paths are limited to 108 bytes.
        self.root = root or tempfile.mkdtemp(prefix=DIR_PREFIX, dir=base_dir or "/tmp")
        self.tag = os.path.basename(self.root)[len(DIR_PREFIX):]
        self.data_root = os.path.join(self.root, "data")
        self.exec_root = os.path.join(self.root, "exec")
        self.pidfile = os.path.join(self.root, "docker.pid")
        self.socket = os.path.join(self.root, "docker.sock")
        self.config_file = os.path.join(self.root, "daemon.json")
        self.log_path = os.path.join(self.root, "dockerd.log")
        for path in (self.data_root, self.exec_root):
            os.makedirs(path, exist_ok=True)
        with open(self.config_file, "w") as handle:
            json.dump({}, handle)
        with open(os.path.join(self.root, OWNER_FILE), "w") as handle:
            handle.write(str(os.getpid()))
        with open(os.path.join(self.root, SETTINGS_FILE), "w") as handle:
            json.dump({"tcp_port": tcp_port, "tls": tls.__dict__ if tls else None, "live_restore": live_restore,
                       "extra_args": self.extra_args}, handle)
        self.bridge = "dfbr-" + self.tag  # at most 15 characters: an interface name
        self.process = None
        self._clients = []

    @classmethod
    def adopt(cls, root):
        """The daemon of an existing directory (left by a process that died), stopped if it still
        runs, so that start() runs it again on the same state."""
        with open(os.path.join(root, SETTINGS_FILE)) as handle:
            settings = json.load(handle)
        _stop_pid(_read_pid(os.path.join(root, "docker.pid")))
        _stop_pid(_read_pid(os.path.join(root, "exec", "containerd", "containerd.pid")))
        # The unix socket is enough to clean up; the TCP port and the test's certificates may be gone.
        return cls(None, None, settings.get("live_restore", False), settings.get("extra_args", ()), root=root)

    # -- addresses ----------------------------------------------------------------------
    @property
    def unix_url(self):
        return "unix://" + self.socket

    @property
    def tcp_url(self):
        if self.tcp_port is None:
            raise DockerdError("this daemon listens on no TCP port")
        return "tcp://127.0.0.1:%d" % self.tcp_port

    def command(self):
        # mkdtemp's tag may end with "_", which containerd refuses in a namespace: hex keeps it unique and valid.
        namespace = "dftest-" + self.tag.encode().hex()
        args = [
            "dockerd",
            "--config-file", self.config_file,
            "--data-root", self.data_root,
            "--exec-root", self.exec_root,
            "--pidfile", self.pidfile,
            "--containerd-namespace", namespace,
            "--containerd-plugins-namespace", namespace + "-plugins",
            "--bridge", self.bridge,
            "--iptables=false",
            "--ip-masq=false",
            "--ip-forward=false",
            "-H", self.unix_url,
        ]
        if self.tcp_port is not None:
            args += ["-H", self.tcp_url]
            if self.tls is not None:
                args += ["--tlsverify", "--tlscacert", self.tls.ca, "--tlscert", self.tls.cert, "--tlskey", self.tls.key]
        if self.live_restore:
            args.append("--live-restore")
        return args + self.extra_args

    # -- lifecycle ----------------------------------------------------------------------
    def start(self):
        if self.running():
            return self
        _ensure_bridge(self.bridge)
        with open(self.log_path, "ab") as log:
            # Own session: a Ctrl-C of the test run reaches pytest, which cleans up, not dockerd directly.
            self.process = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise DockerdError("dockerd exited with %s while starting:\n%s" % (self.process.returncode, self.log_tail()))
            if os.path.exists(self.socket) and self._pings():
                return self
            time.sleep(0.2)
        raise DockerdError("dockerd did not answer within %ss:\n%s" % (self.start_timeout, self.log_tail()))

    def _pings(self):
        import docker
        import docker.errors

        try:
            client = docker.DockerClient(base_url=self.unix_url, version="auto", timeout=5)
        except docker.errors.DockerException:  # a stale socket of a killed daemon, or not up yet
            return False
        try:
            return client.ping()
        except Exception:  # not up yet: any connection or API error means "try again"
            return False
        finally:
            client.close()

    def running(self):
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self):
        return self.process.pid if self.running() else None

    def containerd_pid(self):
        """The pid of this daemon's own containerd, or None."""
        try:
            with open(os.path.join(self.exec_root, "containerd", "containerd.pid")) as handle:
                pid = int(handle.read().strip() or 0)
        except (OSError, ValueError):
            return None
        return pid if pid and _alive(pid) else None

    def stop(self, timeout=30, kill=False):
        """SIGTERM (dockerd stops its containers unless live_restore) or, with ``kill``, SIGKILL."""
        self._close_clients()
        if not self.running():
            return
        self.process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        # dockerd stops its containerd on a clean exit; a killed dockerd's containerd dies with it
        # (parent-death signal) and stays a zombie until init reaps it. dockerd's own "is it
        # still running" check counts a zombie as alive and then waits for it in vain, so the
        # stale pid file goes.
        _wait_gone(self.containerd_pid(), timeout=15)
        if self.containerd_pid() is None:
            try:
                os.unlink(os.path.join(self.exec_root, "containerd", "containerd.pid"))
            except FileNotFoundError:
                pass

    def restart(self, kill=False, timeout=30):
        """Stop then start on the same state: containers with a restart policy come back
        (running ones keep running with live_restore). After ``kill`` the containers' shims
        survive and the new containerd reconnects to them."""
        self.stop(timeout=timeout, kill=kill)
        return self.start()

    def client(self, **kwargs):
        """A docker SDK client over the unix socket (closed by stop())."""
        import docker

        kwargs.setdefault("version", "auto")
        kwargs.setdefault("timeout", 60)
        client = docker.DockerClient(base_url=self.unix_url, **kwargs)
        self._clients.append(client)
        return client

    def cli(self, *args, check=True, **kwargs):
        """Run the docker CLI against this daemon."""
        env = dict(os.environ, DOCKER_HOST=self.unix_url)
        for key in ("DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "DOCKER_CONTEXT"):
            env.pop(key, None)
        return subprocess.run(["docker", *args], env=env, check=check, capture_output=True, text=True, **kwargs)

    def load_image(self, name, source_host=None):
        """Copy image ``name`` from the main engine (``source_host``, else DOCKER_HOST or the
        default socket): ``docker save`` piped into this daemon's ``docker load``."""
        source_env = dict(os.environ)
        if source_host:
            source_env["DOCKER_HOST"] = source_host
        target_env = dict(os.environ, DOCKER_HOST=self.unix_url)
        for env in (source_env, target_env):
            env.pop("DOCKER_CONTEXT", None)
        for key in ("DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH"):
            target_env.pop(key, None)
        save = subprocess.Popen(["docker", "save", name], env=source_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        load = subprocess.run(["docker", "load", "-q"], env=target_env, stdin=save.stdout, capture_output=True, text=True,
                              check=False)
        save.stdout.close()
        save_error = save.stderr.read().decode(errors="replace")
        save.wait()
        if save.returncode != 0 or load.returncode != 0:
            raise DockerdError(
                "loading %s into %s failed: %s %s" % (name, self.unix_url, save_error.strip(), load.stderr.strip())
            )
        return load.stdout.strip()

    def log_tail(self, lines=30):
        try:
            with open(self.log_path, errors="replace") as handle:
                return "".join(handle.readlines()[-lines:])
        except OSError:
            return ""

    def cleanup(self):
        """Remove this daemon's containers and networks, stop it, and delete its directory."""
        if self.running():
            try:
                client = self.client(timeout=30)
                for container in client.containers.list(all=True):
                    container.remove(force=True, v=True)
                # A bridge network's br-* link lives in the host's namespace: remove it explicitly.
                for network in client.networks.list():
                    if network.name not in ("host", "none", "bridge"):
                        network.remove()
                client.volumes.prune()
            except Exception as exc:  # best effort: the directory goes below anyway
                sys.stderr.write("dockerd %s: could not remove containers: %s\n" % (self.root, exc))
        self.stop()
        subprocess.run(["ip", "link", "delete", self.bridge], capture_output=True, check=False)
        _remove_tree(self.root)

    def _close_clients(self):
        for client in self._clients:
            try:
                client.close()
            except Exception:  # a closed or broken client needs nothing more
                pass
        self._clients = []

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.cleanup()


# -- helpers ----------------------------------------------------------------------------


def _alive(pid):
    """True for a running process; a zombie (dead, not yet reaped by init) counts as gone."""
    try:
        with open("/proc/%d/stat" % pid) as handle:
            state = handle.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def _wait_gone(pid, timeout):
    deadline = time.monotonic() + timeout
    while pid and _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)


def _read_pid(path):
    try:
        with open(path) as handle:
            return int(handle.read().strip() or 0) or None
    except (OSError, ValueError):
        return None


def _mounts_under(root):
    """Mount points under ``root``, deepest first (mountinfo field 5, octal escapes decoded)."""
    points = []
    with open("/proc/self/mountinfo") as handle:
        for line in handle:
            point = line.split()[4].encode().decode("unicode_escape")
            if point == root or point.startswith(root + "/"):
                points.append(point)
    return sorted(points, key=len, reverse=True)


def _ensure_bridge(name):
    """A bridge link ``name`` with the first address of a /24 no host route overlaps."""
    if subprocess.run(["ip", "link", "show", name], capture_output=True, check=False).returncode == 0:
        return
    routes = subprocess.run(["ip", "-4", "route", "show"], capture_output=True, text=True, check=True).stdout
    used = []
    for line in routes.splitlines():
        try:
            used.append(ipaddress.ip_network(line.split()[0], strict=False))
        except ValueError:  # "default" and the like
            pass
    candidates = [ipaddress.ip_network("10.250.%d.0/24" % third) for third in range(256)]
    random.shuffle(candidates)  # daemons of tests running side by side rarely pick the same one
    subnet = next(net for net in candidates if not any(net.overlaps(other) for other in used))
    subprocess.run(["ip", "link", "add", name, "type", "bridge"], check=True, capture_output=True)
    subprocess.run(["ip", "addr", "add", "%s/24" % next(subnet.hosts()), "dev", name], check=True, capture_output=True)
    subprocess.run(["ip", "link", "set", name, "up"], check=True, capture_output=True)


def _remove_tree(root):
    """Unmount what a stopped daemon left mounted (netns files, overlay layers), then delete."""
    for point in _mounts_under(root):
        subprocess.run(["umount", "-l", point], capture_output=True, check=False)
    shutil.rmtree(root, ignore_errors=True)


def _stop_pid(pid, timeout=20):
    if not pid or not _alive(pid):
        return
    os.kill(pid, signal.SIGTERM)
    _wait_gone(pid, timeout)
    if _alive(pid):
        os.kill(pid, signal.SIGKILL)
        _wait_gone(pid, 5)


def reap_orphans(base_dir="/tmp"):
    """Remove extra daemons whose owning process is gone (a killed test run): their containers
    through their own API (started again if it is down), then the daemon and its directory.
    Returns their directories."""
    reaped = []
    for entry in sorted(os.listdir(base_dir)):
        root = os.path.join(base_dir, entry)
        if not entry.startswith(DIR_PREFIX) or not os.path.isdir(root):
            continue
        owner = _read_pid(os.path.join(root, OWNER_FILE))
        if owner and _alive(owner):
            continue
        if owner is None and time.time() - os.stat(root).st_mtime < 60:
            continue  # being set up right now: the owner file comes just after the directory
        daemon = ExtraDockerd.adopt(root)
        try:
            daemon.start()
        except DockerdError as exc:
            sys.stderr.write("%s\n" % exc)
        daemon.cleanup()
        reaped.append(root)
    return reaped


if __name__ == "__main__":
    if sys.argv[1:] == ["reap"]:
        for path in reap_orphans():
            print("removed orphaned extra dockerd %s" % path)
    else:
        sys.exit("usage: %s reap   (stop and delete extra dockerds whose test process died)" % sys.argv[0])
