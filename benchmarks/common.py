# -*- coding: utf-8 -*-
"""Shared harness of the benchmarks: projects on disk, modules run through
``ansible-playbook`` (as the integration tests do), the bench proxy's settings,
machine facts, and the cleanup of everything a run created.

Everything a benchmark creates is named so it can be found again: Compose
projects ``dfbench*`` (services ``dfbench*-app``, their containers labelled
``dockerflow.service``), the proxy container ``dockerflow-test-bench-proxy``
and its volume ``dockerflow-test-bench-proxy-config``, Consul KV keys under
``dockerflow/services/dfbench*``, ``dockerflow/locks/dfbench*`` and
``dockerflow/locks/proxy-dockerflow-test-bench-proxy`` (the proxy's own lock),
the agent registrations whose ``dockerflow-service`` meta names such a
service, and peer proxies ``dfbench-*`` labelled ``dockerflow.bench.peer``
(proxy_overhead's nginx).
``Bench`` removes all of it on exit, also after a failure, Ctrl-C or SIGTERM,
and removes leftovers of a killed earlier run before it starts.

Traffic goes to 127.0.0.1 only: the proxy listens on 127.0.0.1, instances
publish on 127.0.0.1, and the load generator refuses any other host. With
``--backend swarm`` (``swarm_cluster.SwarmBench``) the service runs on the test
cluster instead, and traffic goes to that cluster's proxy host.
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass

import docker
import yaml

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLLECTIONS = os.path.join(REPO, ".build", "collections")
PROFILER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "profile_module.py")
# The totals a profile_module.py report has, by kind of wait: Docker API calls, docker execs into the proxy, its
# runtime API and master CLI asked directly, Consul requests, sleeps.
PROFILE_KINDS = ("docker_api", "proxy_execs", "proxy_cli", "consul", "sleeps")
VENV_BIN = os.path.join(REPO, ".venv", "bin")
CONSUL_URL = os.environ.get("DOCKERFLOW_BENCH_CONSUL", "http://127.0.0.1:8500")
CONSUL_DNS = os.environ.get("DOCKERFLOW_BENCH_CONSUL_DNS", "127.0.0.1:8600")
APP_IMAGES = ("dockerflow-test/app:1", "dockerflow-test/app:2")
PROXY_IMAGE = os.environ.get("DOCKERFLOW_BENCH_PROXY_IMAGE", "dockerflow-test/haproxy:3.0")
# Another name (and --proxy-ports) lets a second checkout benchmark beside this one; another prefix (one that does
# not start with the other's) keeps each run's sweep of leftovers off the other's projects.
PROXY_NAME = os.environ.get("DOCKERFLOW_BENCH_PROXY_NAME", "dockerflow-test-bench-proxy")
PREFIX = os.environ.get("DOCKERFLOW_BENCH_PREFIX", "dfbench")
SERVICE_PATH = "/bench"
BACKENDS = ("container", "swarm")
KV_SERVICES = "dockerflow/services/"
KV_LOCKS = "dockerflow/locks/"
PEER_LABEL = "dockerflow.bench.peer"  # a peer proxy a benchmark compares Flow's with (nginx_peer.py)


class BenchError(Exception):
    pass


def log(message):
    sys.stderr.write("[%s] %s\n" % (time.strftime("%H:%M:%S"), message))
    sys.stderr.flush()


# -- options -------------------------------------------------------------------------
def add_common_arguments(parser):
    parser.add_argument("--backend", default="container",
                        help="deployment backend: container (plain containers on this machine's engine) or, where "
                             "the benchmark supports it, swarm (the test cluster of tests/cluster/cluster.sh)")
    parser.add_argument("--proxy-ports", default="18180,18181,18182,18183", metavar="HTTP,STATS,ADMIN,MASTER",
                        help="four free loopback ports for the bench proxy (default %(default)s)")
    parser.add_argument("--keep", action="store_true", help="leave everything running (for a look); clean up later "
                        "with any benchmark run, which removes leftovers first")
    return parser


def check_backend(parser, args, supported=("container",)):
    if args.backend not in supported:
        parser.error("--backend %s is not supported by this benchmark: use %s." % (args.backend, " or ".join(supported)))


def proxy_from_args(parser, args):
    try:
        ports = [int(p) for p in args.proxy_ports.split(",")]
    except ValueError:
        ports = []
    if len(ports) != 4 or len(set(ports)) != 4 or not all(1024 < p < 65536 for p in ports):
        parser.error("--proxy-ports needs four distinct port numbers above 1024, e.g. 18180,18181,18182,18183")
    return BenchProxy(*ports)


# -- Consul (plain HTTP, no proxy from the environment) --------------------------------
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def consul(method, path, data=None, timeout=10, base=None):
    request = urllib.request.Request((base or CONSUL_URL) + path, data=data, method=method)
    with _OPENER.open(request, timeout=timeout) as response:
        body = response.read()
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return body


def consul_kv_keys(prefix, base=None):
    try:
        return consul("GET", "/v1/kv/%s?keys" % prefix, base=base) or []
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return []
        raise


def consul_kv_get(key):
    try:
        return consul("GET", "/v1/kv/%s?raw" % key)
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise


def consul_kv_put(key, document):
    return consul("PUT", "/v1/kv/%s" % key, json.dumps(document, sort_keys=True).encode())


def http_get(url, timeout=3, allowed_hosts=(), headers=None):
    """(status, parsed JSON or text) of a GET to a loopback URL (or to one of ``allowed_hosts``)."""
    if not url.startswith("http://127.0.0.1:") and urllib.parse.urlsplit(url).hostname not in allowed_hosts:
        raise BenchError("benchmarks only talk to 127.0.0.1, not %s" % url)
    try:
        with _OPENER.open(urllib.request.Request(url, headers=headers or {}), timeout=timeout) as response:
            status, body = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read()
    try:
        return status, json.loads(body)
    except ValueError:
        return status, body.decode("utf-8", "replace")


# -- the proxy -----------------------------------------------------------------------
@dataclass
class BenchProxy:
    http_port: int
    stats_port: int
    admin_port: int
    master_port: int
    name: str = PROXY_NAME
    image: str = PROXY_IMAGE
    max_servers: int | None = None  # proxy_max_servers; None: the module's default
    nofile: int | None = None  # proxy_nofile; None: the engine's limit

    def params(self):
        slots = {} if self.max_servers is None else {"proxy_max_servers": self.max_servers}
        slots |= {} if self.nofile is None else {"proxy_nofile": self.nofile}
        return slots | {
            "proxy_name": self.name,
            "proxy_image": self.image,
            "proxy_listen_address": "127.0.0.1",
            "proxy_http_port": self.http_port,
            "proxy_stats_port": self.stats_port,
            "proxy_admin_port": self.admin_port,
            "proxy_master_port": self.master_port,
            "consul_dns": CONSUL_DNS,
        }

    @property
    def ports(self):
        return (self.http_port, self.stats_port, self.admin_port, self.master_port)

    def url(self, path=SERVICE_PATH):
        return "http://127.0.0.1:%d%s" % (self.http_port, path)

    @property
    def volume(self):
        return "%s-config" % self.name


def module_utils(name):
    """The collection's module_utils module ``name`` (from COLLECTIONS, `make collection-path`)."""
    if COLLECTIONS not in sys.path:
        sys.path.insert(0, COLLECTIONS)
    return importlib.import_module("ansible_collections.dockerflow.flow.plugins.module_utils.%s" % name)


def proxy_node_for(bench, proxy):
    """The collection's own ProxyNode (proxy_node.py) for the bench proxy, with the ProxySettings flow_proxy
    renders for it: what a benchmark uses to check, install and reload a configuration as flow_proxy does."""
    haproxy_config, proxy_node = module_utils("haproxy_config"), module_utils("proxy_node")
    dns_host, _colon, dns_port = CONSUL_DNS.rpartition(":")
    settings = haproxy_config.ProxySettings(
        http_address="127.0.0.1", http_port=proxy.http_port, stats_port=proxy.stats_port,
        admin_port=proxy.admin_port, consul_dns_address=dns_host, consul_dns_port=int(dns_port),
        **({} if proxy.max_servers is None else {"max_servers": proxy.max_servers}),
    ).validated()
    return proxy_node.ProxyNode(bench.docker, settings, name=proxy.name, image=proxy.image, master_port=proxy.master_port)


def port_free(port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


# -- machine facts -------------------------------------------------------------------
def _command(args):
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=30, check=False).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


def machine_info(client, proxy_image=PROXY_IMAGE):
    cpu = None
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    memory = _command(["free", "-h"]) or ""
    mem_line = next((line for line in memory.splitlines() if line.startswith("Mem:")), "")
    haproxy = _command(["docker", "run", "--rm", "--entrypoint", "haproxy", proxy_image, "-v"]) or ""
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": _command(["git", "-C", REPO, "describe", "--always", "--dirty"]),
        "nproc": _command(["nproc"]),
        "cpu": cpu,
        "memory_total": mem_line.split()[1] if len(mem_line.split()) > 1 else None,
        "kernel": platform.release(),
        "docker": client.version().get("Version"),
        "haproxy": haproxy.splitlines()[0] if haproxy else None,
        "python": platform.python_version(),
        "wrk": shutil.which("wrk"),
        "loadavg_at_start": load_average(),
        "other_running_containers": other_containers(client),
    }


def load_average():
    try:
        with open("/proc/loadavg") as handle:
            return " ".join(handle.read().split()[:3])
    except OSError:
        return None


def other_containers(client):
    """Running containers that are not this benchmark's (other work competing for the 2 cores)."""
    names = []
    for container in client.containers.list(ignore_removed=True):
        service = container.labels.get("dockerflow.service") or container.labels.get("com.docker.compose.project") or ""
        if not service.startswith(PREFIX) and container.name != PROXY_NAME and not container.name.startswith(PREFIX):
            names.append(container.name)
    return sorted(names)


def listen_overflows(container):
    """TcpExt ListenOverflows in the instance's network namespace (SYNs dropped on a full accept queue)."""
    try:
        output = container.exec_run(["cat", "/proc/net/netstat"]).output
    except Exception:
        return None
    lines = output.decode("utf-8", "replace").splitlines()
    for names, values in zip(lines[::2], lines[1::2], strict=False):
        if names.startswith("TcpExt:"):
            table = dict(zip(names.split()[1:], values.split()[1:], strict=False))
            return int(table.get("ListenOverflows", 0))
    return None


# -- playbooks -------------------------------------------------------------------------
class PlayResult:
    """What one ansible-playbook run did: per task the module result and its start/end (epoch seconds)."""

    def __init__(self, tasks, results, times, seconds, output, failed_at=None):
        self.tasks = tasks
        self.results = results
        self.times = times
        self.failed_at = failed_at  # when a failed task ended (the first thing the playbook's always does)
        self.seconds = seconds  # the whole ansible-playbook process
        self.output = output

    def step(self, index):
        start, end = self.times[index], self.times[index + 1]
        if end is None and start is not None and (self.results[index] or {}).get("failed"):
            end = self.failed_at  # a failed task takes no timestamp after it
        return {
            "module": self.tasks[index][0],
            "start": start,
            "end": end,
            "seconds": round(end - start, 3) if start is not None and end is not None else None,
            "result": self.results[index],
        }

    def steps(self):
        return [self.step(i) for i in range(len(self.tasks))]

    def durations(self):
        return {step["module"]: step["seconds"] for step in self.steps()}

    def failure(self):
        for index, result in enumerate(self.results):
            if result is None:
                return "%s did not run" % self.tasks[index][0]
            if result.get("failed"):
                return "%s failed: %s" % (self.tasks[index][0], result.get("msg"))
        return None


def run_process_group(command, env, timeout):
    """Run ``command`` in its own process group; on a timeout, Ctrl-C or SIGTERM the whole group
    (ansible-playbook, its workers and the module they run) is stopped before the caller cleans up."""
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True)
    try:
        output, _stderr = process.communicate(timeout=timeout)
        return process.returncode, output
    except BaseException:
        for signum in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(process.pid, signum)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and _group_alive(process):
                time.sleep(0.1)
            if not _group_alive(process):
                break
        raise


def _group_alive(process):
    process.poll()  # reap the leader once it exited
    try:
        os.killpg(process.pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


class BenchProject:
    """One Compose project (``dfbench…``) whose target ``app`` the flow modules deploy."""

    def __init__(self, bench, label, image=None, compose=None):
        self.bench = bench
        image = image or bench.app_images[0]
        self.name = "%s%s%s" % (PREFIX, label, uuid.uuid4().hex[:4])
        self.dir = os.path.join(bench.workdir, self.name)
        os.makedirs(self.dir)
        self.service = "%s-app" % self.name
        self.image = image
        self.write_compose(compose or bench.default_compose(image))

    def write_compose(self, compose):
        self.compose = compose
        with open(os.path.join(self.dir, "docker-compose.yml"), "w") as handle:
            yaml.safe_dump(compose, handle)

    def set_image(self, image):
        compose = dict(self.compose)
        compose["services"]["app"]["image"] = image
        self.image = image
        self.write_compose(compose)

    def next_image(self):
        """Alternate app:1 / app:2, so every release differs from the one before."""
        first, second = self.bench.app_images
        return second if self.image == first else first

    def defaults(self, module):
        params = {"project_dir": self.dir, "project": self.name, "lock_timeout": 60}
        params.update(self.bench.module_defaults(module))
        if module in ("flow_proxy", "flow_release"):
            params.update(service_path=[SERVICE_PATH])
        return params

    def task(self, module, **params):
        merged = self.defaults(module)
        merged.update(params)
        return (module, merged)

    def deploy(self, **params):
        return self.task("flow_deploy", **params)

    def proxy(self, **params):
        return self.task("flow_proxy", **params)

    def stop_old(self, **params):
        return self.task("flow_stop_old", **params)

    def run(self, *tasks, check=True, timeout=600):
        return self.bench.run_tasks(self, list(tasks), check=check, timeout=timeout)

    def state(self):
        return consul_kv_get(KV_SERVICES + self.service)

    def instances(self, running=True):
        found = self.bench.docker.containers.list(all=not running, filters={"label": "dockerflow.service=%s" % self.service},
                                                  ignore_removed=True)
        return sorted(found, key=lambda c: c.name)

    def instance_port(self, container):
        container.reload()
        return int(container.ports["8080/tcp"][0]["HostPort"])


class Bench:
    """A benchmark run: ``with Bench(proxy) as bench:``; everything it made is removed on exit."""

    app_images = APP_IMAGES
    allowed_hosts = ()  # besides 127.0.0.1: where the load may go

    def __init__(self, proxy, keep=False):
        self.proxy = proxy
        self.keep = keep
        self.workdir = tempfile.mkdtemp(prefix="dfbench-")
        self.docker = docker.from_env(version="auto", timeout=120)
        self.projects = []
        self.kv_keys = []  # extra keys written directly (switch_latency's routed services)
        self.peer_names = set()  # peer proxies' containers (proxy_overhead's nginx)
        self._previous_handlers = {}

    # -- life cycle ----------------------------------------------------------------
    def __enter__(self):
        for signum in (signal.SIGTERM, signal.SIGHUP):
            self._previous_handlers[signum] = signal.signal(signum, self._on_signal)
        self.preflight()
        return self

    def __exit__(self, exc_type, exc, tb):
        try:
            if self.keep:
                log("--keep: leaving %s, the proxy %s and their Consul entries in place" % (
                    ", ".join(p.name for p in self.projects) or "nothing", self.proxy.name))
            else:
                self.cleanup()
        finally:
            for signum, handler in self._previous_handlers.items():
                signal.signal(signum, handler)
        return False

    @staticmethod
    def _on_signal(signum, _frame):
        raise SystemExit(128 + signum)

    def preflight(self):
        try:
            self.docker.ping()
        except Exception as exc:
            raise BenchError("No Docker engine answers (%s); run `make engine` first." % exc)
        for image in APP_IMAGES + (self.proxy.image,):
            try:
                self.docker.images.get(image)
            except docker.errors.ImageNotFound:
                raise BenchError("Image %s is missing; run `make images` first." % image)
        try:
            leader = consul("GET", "/v1/status/leader", timeout=3)
        except OSError as exc:
            raise BenchError("No Consul agent at %s (%s); run `make consul` first." % (CONSUL_URL, exc))
        if not leader:
            raise BenchError("Consul at %s has no leader." % CONSUL_URL)
        if not os.path.isdir(os.path.join(COLLECTIONS, "ansible_collections", "dockerflow", "flow")):
            raise BenchError("Collection path %s is missing; run `make collection-path` first." % COLLECTIONS)
        self.remove_leftovers()
        busy = [port for port in self.proxy.ports if not port_free(port)]
        if busy:
            raise BenchError("Port(s) %s on 127.0.0.1 are in use; pick others with --proxy-ports." %
                             ", ".join(map(str, busy)))

    def project(self, label, image=None):
        project = BenchProject(self, label, image)
        self.projects.append(project)
        return project

    @staticmethod
    def default_compose(image):
        return {"services": {"app": {"image": image, "ports": ["8080"]}}}

    def module_defaults(self, module):
        """Where the modules find the engine, Consul and the proxy."""
        params = {"consul_address": CONSUL_URL, "publish_address": "127.0.0.1"}
        if module in ("flow_deploy", "flow_release"):
            params.update(health_path="/health", health_timeout=60)
        if module in ("flow_proxy", "flow_stop_old", "flow_scale", "flow_canary", "flow_release"):
            params.update(self.proxy.params())
        return params

    def url(self, path=SERVICE_PATH):
        """The service's path through the proxy."""
        return self.proxy.url(path)

    def describe(self):
        """Facts about where the service runs, for the report (none beyond the machine's here)."""
        return None

    # -- running modules -------------------------------------------------------------
    def run_tasks(self, project, tasks, check=True, timeout=600):
        """Run ``tasks`` ([(module, params)]) in one playbook; a timestamp is taken before and after each."""
        token = uuid.uuid4().hex[:6]
        result_path = os.path.join(project.dir, "result-%s.json" % token)
        block = []
        for index, (module, params) in enumerate(tasks):
            block.append({"name": "t%d" % index, "ansible.builtin.set_fact": {"_t%d" % index: "{{ now().timestamp() }}"}})
            action = module if "." in module else "dockerflow.flow.%s" % module
            block.append({"name": "%s (%d)" % (module, index), action: params,
                          "register": "_r%d" % index})
        block.append({"name": "end", "ansible.builtin.set_fact": {"_t%d" % len(tasks): "{{ now().timestamp() }}"}})
        keep = ("{{ {'results': [%s], 'times': [%s], 'failed_at': _failed_at | default(none)} | to_json }}" % (
            ", ".join("_r%d | default(none)" % i for i in range(len(tasks))),
            ", ".join("_t%d | default(none)" % i for i in range(len(tasks) + 1)),
        ))
        play = [{
            "hosts": "localhost",
            "gather_facts": False,
            "tasks": [{
                "block": block,
                # The block's end: read only for a failed task, which takes no timestamp after it.
                "always": [{"name": "block end", "ansible.builtin.set_fact": {"_failed_at": "{{ now().timestamp() }}"}},
                           {"name": "keep the results", "ansible.builtin.copy": {"content": keep, "dest": result_path},
                            "check_mode": False, "diff": False}],
            }],
        }]
        play_path = os.path.join(project.dir, "play-%s.yml" % token)
        with open(play_path, "w") as handle:
            yaml.safe_dump(play, handle, sort_keys=False)
        env = {k: v for k, v in os.environ.items()
               if not (k.startswith("FLOW_") or k.startswith("DOCKER_") or k == "CONSUL_HTTP_ADDR")}
        env.update({
            "ANSIBLE_COLLECTIONS_PATH": COLLECTIONS,
            "PATH": VENV_BIN + os.pathsep + env.get("PATH", ""),
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_LOCALHOST_WARNING": "0",
            "ANSIBLE_INVENTORY_UNPARSED_WARNING": "0",
            "ANSIBLE_PIPELINING": "1",
        })
        playbook = os.path.join(VENV_BIN, "ansible-playbook")
        if not os.path.exists(playbook):
            playbook = "ansible-playbook"
        command = [playbook, "-i", "localhost,", "-c", "local",
                   "-e", "ansible_python_interpreter={{ ansible_playbook_python }}", play_path]
        started = time.monotonic()
        returncode, output = run_process_group(command, env, timeout)
        seconds = time.monotonic() - started
        try:
            with open(result_path) as handle:
                data = json.load(handle)
        except (OSError, ValueError):
            raise BenchError("ansible-playbook gave no result (exit %d):\n%s" % (returncode, output[-3000:]))
        times = [float(t) if t is not None else None for t in data["times"]]
        failed_at = float(data["failed_at"]) if data.get("failed_at") is not None else None
        result = PlayResult(tasks, data["results"], times, seconds, output, failed_at)
        problem = result.failure()
        if check and problem:
            raise BenchError(problem)
        return result

    # -- cleanup ---------------------------------------------------------------------------
    def _remove_containers(self, containers, what):
        for container in containers:
            try:
                container.remove(force=True, v=True)
                log("removed %s %s" % (what, container.name))
            except docker.errors.NotFound:
                pass

    def _ours(self, name):
        return bool(name) and name.startswith(PREFIX)

    def remove_leftovers(self):
        """Remove what a killed earlier benchmark run left: everything named dfbench* and the bench proxy."""
        self.cleanup(everything=True, quiet_if_none=True)

    def cleanup(self, everything=False, quiet_if_none=False):
        """Remove this run's projects (or, ``everything``, all dfbench* ones), the proxy and their Consul entries."""
        projects = {p.name for p in self.projects}
        services = {p.service for p in self.projects}

        def project_match(name):
            return (everything and self._ours(name)) or name in projects

        def service_match(name):
            return (everything and self._ours(name)) or name in services

        errors = []

        def attempt(what, function, *args):
            try:
                function(*args)
            except Exception as exc:  # cleanup goes on with the next item, and reports at the end
                errors.append("%s: %s" % (what, exc))

        def containers():
            found = {}
            for container in self.docker.containers.list(
                    all=True, filters={"label": "dockerflow.service"}, ignore_removed=True):
                if service_match(container.labels.get("dockerflow.service")):
                    found[container.id] = container
            for container in self.docker.containers.list(
                    all=True, filters={"label": "com.docker.compose.project"}, ignore_removed=True):
                if project_match(container.labels.get("com.docker.compose.project")):
                    found[container.id] = container
            for container in self.docker.containers.list(all=True, filters={"label": PEER_LABEL}, ignore_removed=True):
                if (everything and self._ours(container.name)) or container.name in self.peer_names:
                    found[container.id] = container
            self._remove_containers(found.values(), "container")

        def proxy():
            # The proxy's container, and any old one a replacement left (<name>-retiring-<id>: proxy_replacement).
            name = self.proxy.name
            found = self.docker.containers.list(all=True, filters={"name": name}, ignore_removed=True)
            self._remove_containers([c for c in found if (c.name == name or c.name.startswith(name + "-retiring-"))
                                     and c.labels.get("dockerflow.proxy") == "true"], "proxy")
            try:
                volume = self.docker.volumes.get(self.proxy.volume)
                volume.remove(force=True)
                log("removed volume %s" % volume.name)
            except docker.errors.NotFound:
                pass

        def networks_and_volumes():
            for network in self.docker.networks.list(filters={"label": "com.docker.compose.project"}):
                if project_match(network.attrs.get("Labels", {}).get("com.docker.compose.project")):
                    network.remove()
                    log("removed network %s" % network.name)
            for volume in self.docker.volumes.list(filters={"label": "com.docker.compose.project"}):
                if project_match((volume.attrs.get("Labels") or {}).get("com.docker.compose.project")):
                    volume.remove(force=True)
                    log("removed volume %s" % volume.name)

        def registrations():
            for service_id, entry in (consul("GET", "/v1/agent/services") or {}).items():
                if service_match((entry.get("Meta") or {}).get("dockerflow-service")):
                    consul("PUT", "/v1/agent/service/deregister/%s" % service_id)
                    log("deregistered %s" % service_id)

        def kv():
            keys = set(self.kv_keys)
            # flow_proxy's lock on the proxy itself: dockerflow/locks/proxy-<proxy name>
            keys.update(consul_kv_keys(KV_LOCKS + "proxy-" + self.proxy.name))
            for prefix in (KV_SERVICES, KV_LOCKS):
                for key in consul_kv_keys(prefix + PREFIX):
                    if service_match(key[len(prefix):]):
                        keys.add(key)
            for key in sorted(keys):
                consul("DELETE", "/v1/kv/%s" % key)
            if keys:
                log("deleted %d Consul KV key(s)" % len(keys))

        attempt("containers", containers)
        attempt("proxy", proxy)
        attempt("networks/volumes", networks_and_volumes)
        attempt("Consul registrations", registrations)
        attempt("Consul KV", kv)
        return self.cleanup_done(errors, everything)

    def cleanup_done(self, errors, everything):
        """The end of every cleanup: this run's work directory goes, problems are logged and returned."""
        if not everything:
            shutil.rmtree(self.workdir, ignore_errors=True)
        if errors:
            log("cleanup problems: %s" % "; ".join(errors))
        return errors


# -- output ------------------------------------------------------------------------------
def profiled(project, task, cprofile=False):
    """One module run by profile_module.py in a process of its own; its report plus the process's wall time.
    ``cprofile``: its report also lists the functions with the most own CPU time."""
    module, params = task
    token = uuid.uuid4().hex[:6]
    args_path = os.path.join(project.dir, "args-%s.json" % token)
    out_path = os.path.join(project.dir, "profile-%s.json" % token)
    with open(args_path, "w") as handle:
        json.dump(params, handle)
    env = {k: v for k, v in os.environ.items() if not (k.startswith("FLOW_") or k.startswith("DOCKER_"))}
    env["PYTHONPATH"] = COLLECTIONS
    began = time.monotonic()
    command = [sys.executable, PROFILER, module, args_path, out_path] + (["--cprofile"] if cprofile else [])
    completed = subprocess.run(command, env=env, capture_output=True,
                               text=True, timeout=600, check=False)
    wall = time.monotonic() - began
    try:
        with open(out_path) as handle:
            report = json.load(handle)
    except (OSError, ValueError):
        raise BenchError("profiling %s gave no report (exit %d): %s" % (module, completed.returncode,
                                                                        completed.stderr[-2000:]))
    if report["result"].get("failed"):
        raise BenchError("%s failed: %s" % (module, report["result"].get("msg")))
    report["wall_s"] = round(wall, 3)
    report["interpreter_s"] = round(wall - report["process_s"], 3)
    return report


def emit(report, summary):
    """The JSON report on stdout, then the one-line summary."""
    if isinstance(report.get("machine"), dict):
        report["machine"]["loadavg_at_end"] = load_average()
    print(json.dumps(report, indent=2, sort_keys=False))
    print(summary)
    sys.stdout.flush()


def main_wrapper(function):
    """Run ``function()``; BenchError becomes a message and exit status 2."""
    try:
        return function()
    except BenchError as error:
        log("benchmark error: %s" % error)
        return 2
    except KeyboardInterrupt:
        log("interrupted")
        return 130


def parser_for(description):
    return argparse.ArgumentParser(description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
