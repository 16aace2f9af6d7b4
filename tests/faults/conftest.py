# -*- coding: utf-8 -*-
"""Harness of the fault tests (tests/faults/README.md): a fault under a bounded load, then counts.

Reused, not copied: the integration harness (tests/integration/conftest.py: Compose projects,
modules run through ``ansible-playbook``, test proxies on free ports, the engine and Consul
fixtures) and the benchmarks' loopback load generator (benchmarks/loadgen.py). Added here:
a load on a proxy path with its verdict, flow runs that pause at a named step
(a pause point, plugins/module_utils/pause_points.py) to be killed or resumed, a Consul of the test's own
that can be stopped, the consistency check, and the report printed at the end of the run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid

import pytest

TESTS_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for _path in (os.path.join(os.path.dirname(TESTS_DIR), "benchmarks"), TESTS_DIR):
    if _path not in sys.path:
        sys.path.insert(0, _path)

# Fixtures (docker_client, consul_agent, make_project, proxy) and names the fault tests import from here.
from integration.conftest import (  # noqa: E402,F401  # pylint: disable=unused-import
    APP_UNHEALTHY,
    APP_V1,
    APP_V2,
    CONSUL_URL,
    FlowProject,
    TestProxy,
    assert_molecule_sequence_ran,
    consul_agent,
    consul_get,
    consul_put,
    docker_client,
    free_ports,
    make_project,
    proxy,
    wait_for,
)
from loadgen import LoadGenerator  # noqa: E402

CONSUL_IMAGE = "dockerflow-test/consul:1.8.7"
LOAD_RATE = 30  # requests a second through the proxy, over LOAD_CONNECTIONS keep-alive connections
LOAD_CONNECTIONS = 4
LOAD_MAX_SECONDS = 240  # a bound even when a test hangs
LOCK_TTL = 10  # Consul's minimum: a killed run's lock is free again within 2 x 10 s + 5 s lock-delay
FAST = {"lock_ttl": LOCK_TTL, "lock_timeout": 90}
APP_ONLY = {"services": {"app": {"image": APP_V1, "ports": ["8080"]}}}  # no side target: fewer containers on 2 cores

REPORT = []  # one entry a test: what pytest_terminal_summary prints
BACKGROUND_RUNS = []  # BackgroundRuns of the current test


# -- load ---------------------------------------------------------------------------------------
class Load:
    """A bounded load on one proxy path (LOAD_RATE requests a second) for the length of a fault."""

    def __init__(self, test_proxy, path, rate=LOAD_RATE, connections=LOAD_CONNECTIONS):
        self.url = "http://127.0.0.1:%d%s" % (test_proxy.http_port, path)
        self.generator = LoadGenerator(self.url, connections=connections, rate=rate, max_requests=rate * LOAD_MAX_SECONDS,
                                       max_seconds=LOAD_MAX_SECONDS, timeout=5)
        self.result = None

    def start(self):
        self.generator.start()
        wait_for(lambda: self.generator.result.total >= 10, timeout=15, what="the load's first 10 answers")
        return self

    def stop(self):
        if self.result is None:
            self.result = self.generator.stop()
        return self.summary()

    def summary(self):
        summary = (self.result or self.generator.result).summary(failures=5)
        return {key: summary[key] for key in ("requests", "failed", "by_color", "by_version", "errors", "statuses",
                                              "seconds", "first_failures")}

    def failures_between(self, start_wall, end_wall):
        """Failed requests sent between two wall-clock times."""
        result = self.result or self.generator.result
        with result.lock:
            return sum(1 for failure in result.failures_timeline if start_wall <= failure["wall"] <= end_wall)

    def failure_window(self):
        """Seconds from the first failed request sent to the last (0 without failures)."""
        result = self.result or self.generator.result
        with result.lock:
            walls = [failure["wall"] for failure in result.failures_timeline]
        return round(max(walls) - min(walls), 1) if walls else 0


@pytest.fixture
def loads():
    """Loads started in a test are stopped at its end, even when it fails."""
    started = []

    def start(test_proxy, path):
        load = Load(test_proxy, path).start()
        started.append(load)
        return load

    yield start
    for load in started:
        load.stop()


# -- flow runs in the background, pausing at a step ---------------------------------------------------------------
class BackgroundRun:
    """One module run in the background (own process group). With ``pause_at``, it waits at that flow
    step (a pause point, pause_points.py) until the test resumes it or kills it."""

    def __init__(self, project, module, params, pause_at=None):
        self.project = project
        self.step = pause_at
        self.pause_file = os.path.join(project.dir, "pause-%s" % uuid.uuid4().hex[:6])
        env = {"DOCKERFLOW_TEST_PAUSE_AT": pause_at, "DOCKERFLOW_TEST_PAUSE_FILE": self.pause_file} if pause_at else {}
        command, self.env = project.playbook(module, dict(FAST, **(params or {})), env=env)
        self.process = subprocess.Popen(command, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        text=True, start_new_session=True)
        self.module_pid = None
        self.module_outlived = None
        self.output = ""
        BACKGROUND_RUNS.append(self)

    def wait_paused(self, timeout=120):
        """The pid of the module process once it waits at the step."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with open(self.pause_file) as handle:
                    self.module_pid = int(handle.read())
                return self.module_pid
            except (OSError, ValueError):
                pass
            if self.process.poll() is not None:
                self.output = self.process.stdout.read()
                raise AssertionError("the run ended before reaching %s:\n%s" % (self.step, self.output[-3000:]))
            time.sleep(0.1)
        self.kill()
        raise AssertionError("the run did not reach %s within %ds" % (self.step, timeout))

    def resume(self):
        os.remove(self.pause_file)

    def kill(self, signal_number=signal.SIGKILL):
        """SIGKILL to the module process and to ansible-playbook's whole process group: nothing cleans up.

        SIGTERM, what an AWX job cancel sends, goes to ansible-playbook's process group only: ansible passes it
        on to its workers' process groups, the module among them. A run still alive 30 s later gets SIGKILL."""
        if signal_number == signal.SIGKILL:
            self._send(lambda: os.kill(self.module_pid, signal.SIGKILL) if self.module_pid else None)
        self._send(lambda: os.killpg(self.process.pid, signal_number))
        try:
            self.output, _stderr = self.process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.kill(signal.SIGKILL)
        deadline = time.monotonic() + 5
        while self.module_alive() and time.monotonic() < deadline:
            time.sleep(0.1)
        self.module_outlived = self.module_alive()  # a module that ignored the signal would go on without the pause
        if self.module_outlived:
            self._send(lambda: os.kill(self.module_pid, signal.SIGKILL))
        if os.path.exists(self.pause_file):
            os.remove(self.pause_file)

    @staticmethod
    def _send(send):
        try:
            send()
        except ProcessLookupError:
            pass

    def module_alive(self):
        """Whether the module process exists and is not a zombie."""
        try:
            with open("/proc/%d/stat" % self.module_pid) as handle:
                return handle.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
        except (OSError, TypeError):
            return False

    def running(self):
        return self.process.poll() is None

    def result(self, expect_failure=False, timeout=300):
        self.output, _stderr = self.process.communicate(timeout=timeout)
        completed = subprocess.CompletedProcess(self.process.args, self.process.returncode, self.output, "")
        completed.env_result_path = self.env["DOCKERFLOW_RESULT_PATH"]
        return FlowProject.parse(completed, expect_failure)


@pytest.fixture(autouse=True)
def no_run_left_behind():
    """A run a failed test left paused or running is killed: it would hold its service's lock."""
    yield
    while BACKGROUND_RUNS:
        run = BACKGROUND_RUNS.pop()
        if run.running():
            run.kill()


# -- a routed service walked through the whole flow ----------------------------------------------------------------
FLOW = ("flow_deploy", "flow_proxy", "flow_stop_old")


def flow_params(path, count):
    """Parameters of each module of the whole flow for a service of ``count`` instances routed on ``path``."""
    return {
        "flow_deploy": dict(FAST, health_path="/health", scale=str(count)),
        "flow_proxy": dict(FAST, service_path=[path]),
        "flow_stop_old": dict(FAST),
    }


def run_flow(project, params):
    """deploy, proxy, stop-old in order; their results."""
    return [project.run(module, params[module]) for module in FLOW]


def routed_service(tmp_path_factory, client, name, params):
    """(generator for a module-scoped fixture) a service behind a proxy of its own, through the whole flow once."""
    own_proxy = TestProxy(client)
    project = FlowProject(tmp_path_factory.mktemp(name), client, APP_ONLY)
    project.proxy = own_proxy
    try:
        run_flow(project, params)
        yield project
    finally:
        project.cleanup()
        own_proxy.cleanup()


def rerun(project, params, load):
    """The whole flow again, and the load stopped a second later: (results, seconds the rerun took, load summary)."""
    started = time.monotonic()
    results = run_flow(project, params)
    seconds = time.monotonic() - started
    time.sleep(1)
    return results, seconds, load.stop()


# -- a Consul of the test's own ------------------------------------------------------------------------
class OwnConsul:
    """A one-node Consul server in a container on the host network, on free ports, keeping its data
    across a stop and start (unlike the harness's dev agent): tests stop it, never the harness's."""

    def __init__(self, client):
        self.docker = client
        self.name = "dftest-consul-%s" % uuid.uuid4().hex[:6]
        self.http_port, self.dns_port, self.serf_lan, self.serf_wan, self.server_port = free_ports(5)
        self.url = "http://127.0.0.1:%d" % self.http_port
        self.dns = "127.0.0.1:%d" % self.dns_port
        self.container = None

    def start(self):
        if self.container is None:
            self.container = self.docker.containers.run(
                CONSUL_IMAGE,
                ["agent", "-server", "-bootstrap-expect", "1", "-data-dir", "/consul/data", "-node", self.name,
                 "-bind", "127.0.0.1", "-client", "127.0.0.1", "-http-port", str(self.http_port),
                 "-dns-port", str(self.dns_port), "-serf-lan-port", str(self.serf_lan),
                 "-serf-wan-port", str(self.serf_wan), "-server-port", str(self.server_port)],
                name=self.name, network_mode="host", detach=True, labels={"dockerflow.test": "1"},
                # A leader in ~2 s instead of ~8 s: the test's one node needs no slack for a slow network.
                environment={"CONSUL_LOCAL_CONFIG": json.dumps({"performance": {"raft_multiplier": 1}})},
            )
        else:
            self.container.start()
        wait_for(self.leader, timeout=30, interval=0.2, what="a leader in %s" % self.name)
        return self

    def leader(self):
        try:
            with urllib.request.urlopen(self.url + "/v1/status/leader", timeout=2) as response:
                return json.loads(response.read())
        except (OSError, ValueError):
            return None

    def stop(self):
        self.container.stop(timeout=5)

    def remove(self):
        if self.container is not None:
            self.container.remove(force=True, v=True)


@pytest.fixture
def own_consul(docker_client):  # noqa: F811  (the fixture imported above)
    consul = OwnConsul(docker_client).start()
    yield consul
    consul.remove()


def routed(project, test_proxy, path, deploy):
    """``project`` deployed (``deploy``: flow_deploy's parameters), routed at ``path`` through ``test_proxy``, its old
    color stopped: the usual start of a fault."""
    project.proxy = test_proxy
    for module, params in (("flow_deploy", deploy), ("flow_proxy", dict(FAST, service_path=[path])), ("flow_stop_old", FAST)):
        project.run(module, params)
    return project


# -- what must hold after every fault ------------------------------------------------------------------------
def consistency(project, count):
    """(facts, problems): one live color running ``count`` instances, nothing else running, the state's
    count and release matching the containers, and the Consul registrations exactly the running ones,
    each on the host port its container publishes."""
    state = project.state() or {}
    live = state.get("live_color")
    running = project.running()
    recorded = (state.get("colors") or {}).get(live) or {}
    entries = project.registrations().values()
    registered = sorted((entry.get("Meta") or {}).get("dockerflow-container") for entry in entries)
    ports = {c.name: project.port_of(c) for c in running}
    misdirected = []
    for entry in entries:
        container = (entry.get("Meta") or {}).get("dockerflow-container")
        if container in ports and ports[container] != entry.get("Port"):
            misdirected.append("%s on %s (publishes %s)" % (container, entry.get("Port"), ports[container]))
    facts = {
        "live": live,
        "running": {color: len(project.running(color)) for color in sorted({c.labels["dockerflow.color"] for c in running})},
        "kv_instances": recorded.get("instances"),
        "kv_release": recorded.get("release"),
        "releases": sorted({c.labels["dockerflow.release"] for c in running}),
        "registered": len(registered),
    }
    problems = []
    if list(facts["running"]) != [live]:
        problems.append("running colors %s, live color %s" % (facts["running"], live))
    if len(running) != count:
        problems.append("%d instances run, %d expected" % (len(running), count))
    if recorded.get("instances") != count:
        problems.append("the state records %s instances of %s, %d expected" % (recorded.get("instances"), live, count))
    if facts["releases"] != [str(recorded.get("release"))]:
        problems.append("running releases %s, the state's %s release %s" % (facts["releases"], live, recorded.get("release")))
    if registered != sorted(c.name for c in running):
        problems.append("registered %s, running %s" % (registered, sorted(c.name for c in running)))
    if misdirected:
        problems.append("registrations on ports their containers no longer publish: %s" % ", ".join(misdirected))
    return facts, problems


def assert_consistent(project, count):
    facts, problems = consistency(project, count)
    assert not problems, "%s (%s)" % ("; ".join(problems), facts)
    return facts


def report(name, load_summary, consistent, **figures):
    """One line a fault: requests sent and failed, whether state stayed consistent, and its own figures."""
    entry = dict({"fault": name, "requests": load_summary["requests"], "failed": load_summary["failed"],
                  "consistent": consistent}, **figures)
    REPORT.append(entry)
    extra = " ".join("%s=%s" % (key, value) for key, value in figures.items())
    print("\nFAULT %-34s requests %5d failed %3d consistent %-5s %s" % (
        name, load_summary["requests"], load_summary["failed"], consistent, extra))


def pytest_terminal_summary(terminalreporter):
    if not REPORT:
        return
    terminalreporter.section("fault tests: load through the proxy, and state after each fault")
    for entry in REPORT:
        extra = " ".join("%s=%s" % (k, v) for k, v in entry.items() if k not in ("fault", "requests", "failed", "consistent"))
        terminalreporter.write_line("%-36s requests %5d  failed %3d  consistent %-5s %s" % (
            entry["fault"], entry["requests"], entry["failed"], entry["consistent"], extra))
    path = os.environ.get("DOCKERFLOW_FAULTS_REPORT")
    if path:
        with open(path, "w") as handle:
            json.dump(REPORT, handle, indent=1)


@pytest.fixture
def own_consul_proxy(docker_client, own_consul):  # noqa: F811  (the fixture imported above)
    """A test proxy that resolves instances in ``own_consul``'s DNS."""
    test_proxy = TestProxy(docker_client)
    test_proxy.options["consul_dns"] = own_consul.dns
    yield test_proxy
    test_proxy.cleanup()
