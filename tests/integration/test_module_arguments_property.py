# -*- coding: utf-8 -*-
"""Property: whatever arguments the modules get, each call either succeeds or fails with a clear
one-line ``msg`` (never a traceback, "MODULE FAILURE" or an "Unexpected ..." bug report), and a
failed call changes nothing.

The modules run in this process (tests/support/inprocess.py) against the real engine, the real
Consul and a real proxy, on a project deployed twice (so a rollback has a kept release). Every
example runs in check mode first; when that fails, it runs for real too and must fail the same way
and leave the project's containers, its Consul state and registrations, and the proxy's
configuration as they were. (A check-mode success is not run for real: a real deploy of every
accepted input would take minutes.)

Generated values are adversarial but safe: wrong types, control characters, quotes, '#', '%[',
unicode, huge and negative numbers, and near-valid values. Values that would reach outside this
test are never generated: other directories holding Compose files, real host names, registries
(pull: always), host ports other than the test's, container or service names outside its prefix.
DOCKERFLOW_PROPERTY_EXAMPLES sets the number of examples (default 150), DOCKERFLOW_PROPERTY_SEED a
seed other than the fixed default."""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.error

import docker
import pytest
import yaml
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from conftest import APP_V2, CONSUL_URL, TestProxy, consul_get
from support.inprocess import argument_spec_of, run_module
from support.playbook import written_task

MODULES = ("flow_deploy", "flow_scale", "flow_stop_old", "flow_info", "flow_rollback", "flow_proxy", "flow_canary",
           "flow_release")
EXAMPLES = int(os.environ.get("DOCKERFLOW_PROPERTY_EXAMPLES", "150"))

NASTY_TEXT = st.text(
    alphabet=st.one_of(
        st.sampled_from(list(" \t\n\r\x00\x0b\x1b\x7f\x85\u2028#'\"\\$`{}[]<>|?^-*.:/@%;,=&!~_+éß\u00a0\ufeff")),
        st.characters(blacklist_categories=("Cs",)),  # lone surrogates cannot even be sent as JSON
    ),
    max_size=40,
)
EDGE_TEXT = st.sampled_from([
    "", " ", "-", "+", "--", "0", "-0", "+0", "1.5", "1e3", "0x10", "NaN", "None", "null", "true", "[]", "{}",
    "%[src]", "%{+Q}o", "a" * 300, "é" * 70, "a\nb", "a#b", "a b", "'", '"', "\\", "../..", "/", "//", "~",
    "${HOME}", "$(id)", "`id`", "\x00", "\u202e", "\U0001f600",
])
WRONG_TYPES = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(), st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
    st.lists(st.lists(st.text(max_size=3), max_size=2), max_size=2),
)
TEXT = st.one_of(NASTY_TEXT, EDGE_TEXT)
INT_LIKE = st.one_of(
    st.integers(min_value=-(10**12), max_value=10**12), st.sampled_from([0, -1, 1, 2**31, 2**63, 10**30]),
    # Infinity and NaN too: ansible-core's own int check raises OverflowError on infinity (module_base reports it).
    st.sampled_from(["1", "-1", " 3 ", "1.5", "abc", "", "0x10", "1e3", "inf", "-Infinity", "nan"]),
    st.floats(), st.sampled_from([float("inf"), float("-inf"), float("nan")]),
    st.booleans(),
)
BOOL_LIKE = st.one_of(st.booleans(), st.sampled_from(["yes", "no", "maybe", "", "2", 2, -1, 0.5, "on", "TRUE"]))
# Short timeouts: a value the module accepts must not make an example wait long.
SHORT_SECONDS = st.one_of(st.integers(min_value=-5, max_value=6), st.sampled_from(["5", "x", "", 1.5, -(10**12), None]))
SCALES = st.one_of(
    st.sampled_from(["+1", "-1", "1", "2", "3", "+0", "-0", "0", "++1", "+-1", "--1", "1+", " +1", "+1 ", "+1.5", "-99",
                     "+99", "99", "9" * 40, "+", "-", "", "one", "+ 1", "٣", "+٣", "²", "1_0"]),
    TEXT, st.integers(min_value=-(10**6), max_value=10**6), WRONG_TYPES,
)
# A preview_auth entry: the password "secret" (`openssl passwd -6 -salt abc secret`).
PREVIEW_USER = "alice:$6$abc$IdWKNKTJEb8LxY7CGg8YBXlvtfZzFw7Mp/r6niK9YB2mdvgY..TKjv1T..8RadRt2qvUHYRLr/TsVArtr91iR1"
UNREACHABLE = ["http://127.0.0.1:1", "tcp://127.0.0.1:1", "unix:///nonexistent/docker.sock", "https://127.0.0.1:1"]


def hosts(prefix_ok):
    """Addresses: junk, bad schemes and loopback ports nobody listens on; never a real remote host."""
    return st.one_of(
        TEXT.filter(lambda s: "://" not in s),
        st.sampled_from(UNREACHABLE + [prefix_ok + "x", "ftp://x", "x:1", "://", "http://", "http://[::1", "http://a b:1"]),
        WRONG_TYPES,
    )


def strategies(project, proxy):
    """Per parameter: what may be generated for it."""
    prefix = project.name
    names_under_prefix = st.one_of(TEXT.map(lambda s: prefix + s), TEXT.map(lambda s: prefix + "-" + s))
    not_a_dir = st.one_of(TEXT.map(lambda s: "/nonexistent-dftest/" + s), st.sampled_from(
        ["", "relative/dir", os.path.join(project.dir, "docker-compose.yml"), "/dev/null", "\x00"]), WRONG_TYPES)
    own_files = st.one_of(
        st.sampled_from(["docker-compose.yml", "missing.yml", "", ".", "..", "bad.yml", "/dev/null", "a\x00b",
                         "docker-compose.yml/x", "../" + os.path.basename(project.dir) + "/docker-compose.yml"]),
        TEXT.map(lambda s: "no-such-" + s), WRONG_TYPES,
    )
    paths = st.one_of(TEXT.map(lambda s: "/nonexistent-dftest/" + s), st.sampled_from(["", "/", "/dev/null", "relative"]),
                      WRONG_TYPES)
    http_path = st.one_of(TEXT, TEXT.map(lambda s: "/" + s), st.sampled_from(["/health", "/%", "/a b", "health"]), WRONG_TYPES)
    proxy_ports = st.one_of(st.sampled_from([0, -1, 65536, 10**9, "80", "x", None, 1.5, True]),
                            st.sampled_from([proxy.options[k] for k in proxy.options if k.endswith("_port")]))
    addresses = st.one_of(TEXT, st.sampled_from(["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost", "1.2.3.4.5",
                                                 "*\nbind *:1", "127.0.0.1 level admin"]), WRONG_TYPES)
    durations = st.one_of(st.sampled_from(["1s", "500ms", "0", "-1s", "2m", "1.5", "x", "", "1e9s", "inf", "5 s", "5h"]),
                          TEXT, WRONG_TYPES)
    return {
        "project_dir": not_a_dir,
        "flow_file": own_files,
        "compose_path": own_files,
        "project": st.one_of(names_under_prefix, st.sampled_from(["", "UPPER", "a b", "-x", "_x"]), WRONG_TYPES),
        "target": st.one_of(TEXT, st.sampled_from(["app", "db", "nope", "App"]), WRONG_TYPES),
        "service_name": st.one_of(names_under_prefix, st.sampled_from(["", "a b", "-x", "x" * 70]), WRONG_TYPES),
        "side_targets": st.one_of(st.lists(st.one_of(TEXT, st.just("db"), st.just("app")), max_size=3), TEXT, WRONG_TYPES),
        "blue_green": BOOL_LIKE,
        "publish_address": addresses,
        "service_address": addresses,
        "docker_host": hosts("tcp://127.0.0.1:"),
        "cert_path": paths,
        "tls_verify": BOOL_LIKE,
        "docker_timeout": st.one_of(SHORT_SECONDS, st.sampled_from([-1, -(10**12), 10**12])),
        "backend": st.one_of(st.sampled_from(["auto", "container", "swarm", "Swarm", "kubernetes", ""]), TEXT, WRONG_TYPES),
        "consul_address": hosts("http://127.0.0.1:"),
        "consul_token": st.one_of(TEXT, WRONG_TYPES),
        "consul_ca_cert": paths,
        "consul_client_cert": paths,
        "consul_client_key": paths,
        "consul_validate_certs": BOOL_LIKE,
        "lock_timeout": SHORT_SECONDS,
        "lock_ttl": st.one_of(INT_LIKE, SHORT_SECONDS),
        "scale": SCALES,
        "max_instances": st.one_of(st.integers(min_value=-3, max_value=3), st.sampled_from(["x", "", 1.5, None, -(10**12)])),
        "pull": st.one_of(st.sampled_from(["never", "missing", "Always", "sometimes", ""]), TEXT, WRONG_TYPES),
        "pull_side_targets": st.one_of(st.just(False), st.sampled_from(["maybe", 2, "", None, []])),
        "build": BOOL_LIKE,
        "registry": st.one_of(TEXT, st.sampled_from(["127.0.0.1:5000", "registry.local/team", "a b", "HTTP://x", ":5000",
                                                     ""]), WRONG_TYPES),
        "env_files": st.one_of(st.lists(TEXT.map(lambda s: "no-such-" + s), max_size=2), paths, WRONG_TYPES),
        "profiles": st.one_of(st.lists(st.one_of(TEXT, st.sampled_from(["*", "debug", ""])), max_size=3), TEXT, WRONG_TYPES),
        "health_path": http_path,
        "health_port": st.one_of(INT_LIKE, st.just(8080)),
        "health_timeout": SHORT_SECONDS,
        "service_port": st.one_of(INT_LIKE, st.just(8080)),
        "force": st.one_of(st.just(False), st.sampled_from(["maybe", 2, "", None, []])),
        "deployed_by": st.one_of(TEXT, WRONG_TYPES),
        "legacy_names": BOOL_LIKE,
        "color": st.one_of(st.sampled_from(["blue", "green", "plain", "red", "Blue", ""]), TEXT, WRONG_TYPES),
        "stop_timeout": SHORT_SECONDS,
        "keep_releases": st.one_of(INT_LIKE, st.integers(min_value=-2, max_value=3)),
        "drain_timeout": SHORT_SECONDS,
        "switch_timeout": SHORT_SECONDS,
        "state": st.one_of(st.sampled_from(["present", "absent", "synced", "Present", "gone", ""]), TEXT, WRONG_TYPES),
        "service_path": st.one_of(st.lists(http_path, max_size=3), http_path, WRONG_TYPES),
        "service_domain": st.one_of(TEXT, st.sampled_from(["shop.example.com", "*.example.com", "a..b", "-a.com", "A.COM"]),
                                    WRONG_TYPES),
        "path_type": st.one_of(st.sampled_from(["prefix", "exact", "regex", "glob", ""]), TEXT, WRONG_TYPES),
        "preview_header": st.one_of(st.sampled_from(["X-Flow-Color", "", "X Flow", "-x", "x\n", "a)b"]), TEXT, WRONG_TYPES),
        "preview_cookie": st.one_of(st.sampled_from(["flow-color", "", "a;b", "x\n"]), TEXT, WRONG_TYPES),
        "preview_allow": st.one_of(st.lists(st.sampled_from(["10.0.0.0/8", "127.0.0.1", "::1", "office", "", "1.2.3.4/99"]),
                                            max_size=3), TEXT, WRONG_TYPES),
        "canary_weight": st.one_of(INT_LIKE, st.integers(min_value=-2, max_value=102)),
        "canary_steps": st.one_of(st.lists(st.one_of(st.integers(min_value=-5, max_value=105), TEXT), max_size=4), TEXT,
                                  WRONG_TYPES),
        "canary_dwell": durations,
        "canary_max_error_ratio": st.one_of(st.sampled_from(["0.01", "1%", "101%", "-0.1", "nan", "inf", "1e-3", "%", ""]),
                                            TEXT, WRONG_TYPES),
        "canary_max_response_time": durations,
        "canary_against_live": BOOL_LIKE,
        "canary_min_requests": INT_LIKE,
        "canary_on_failure": st.one_of(st.sampled_from(["keep", "stop", "Stop", ""]), TEXT, WRONG_TYPES),
        "preview_host": st.one_of(st.sampled_from(["preview.example.com", "", "*.example.com", "a b", "x.com:80", "A.COM",
                                                   "-a.com", "a..b"]), TEXT, WRONG_TYPES),
        "preview_auth": st.one_of(st.lists(st.sampled_from([PREVIEW_USER, "alice", "alice:secret", "a b:" + PREVIEW_USER[6:],
                                                            ":", "", "bob:$6$x$y z", "bob:$6$x$y#", PREVIEW_USER]),
                                           max_size=3), TEXT, WRONG_TYPES),
        "proxy_docker_host": hosts("tcp://127.0.0.1:"),
        "proxy_docker_cert_path": paths,
        "proxy_tls_verify": BOOL_LIKE,
        # A name the harness's cleanup knows (dockerflow-test-*), should a proxy ever be created under it.
        "proxy_name": st.one_of(TEXT.map(lambda s: "dockerflow-test-proxy-" + s), st.just(proxy.name), WRONG_TYPES),
        "proxy_image": st.one_of(st.sampled_from(["", "UPPER/case", "a b", "x:", "@sha256:zz", "ima ge:1"]),
                                 TEXT.filter(lambda s: " " in s or s != s.lower()), WRONG_TYPES),
        "proxy_listen_address": addresses,
        "proxy_stats_address": addresses,
        "proxy_admin_address": addresses,
        "proxy_http_port": proxy_ports,
        "proxy_https_port": proxy_ports,
        "https_redirect": BOOL_LIKE,
        "hsts_max_age": st.one_of(INT_LIKE, st.sampled_from([0, 600, -1, 2**31, 10**12, True])),
        # Never a certificate that passes (no PEM here): nothing is recorded for the test's proxy.
        "proxy_certificates": st.one_of(st.lists(st.fixed_dictionaries(
            {"name": st.one_of(st.sampled_from(["shop", "a b", "", "../x"]), TEXT)},
            optional={"cert": TEXT, "key": TEXT, "cert_path": paths, "key_path": paths}), max_size=2), WRONG_TYPES),
        "proxy_stats_port": proxy_ports,
        "proxy_admin_port": proxy_ports,
        "proxy_master_port": proxy_ports,
        "proxy_max_servers": st.one_of(st.integers(min_value=-2, max_value=3),
                                       st.sampled_from([32, 500, 501, 10**12, "x", "", 1.5]), WRONG_TYPES),
        # Never a limit this engine gives and the range accepts: a valid one would replace the test's proxy.
        "proxy_nofile": st.one_of(st.integers(min_value=-2, max_value=1023),
                                  st.sampled_from([2**30, 2**31, 10**12, "x", "", 1.5, True]), WRONG_TYPES),
        "proxy_access_log": st.one_of(st.sampled_from(["all", "errors", "off", "Off", "none", "", "all\nuser root"]), TEXT,
                                      WRONG_TYPES),
        "consul_dns": st.one_of(TEXT, st.sampled_from(["127.0.0.1", "127.0.0.1:x", ":8600", "127.0.0.1:0", "127.0.0.1:99999",
                                                       "[::1]:8600", "a b:1"]), WRONG_TYPES),
        "proxy_acme_consul": st.one_of(TEXT, st.sampled_from(["127.0.0.1:8500", "127.0.0.1", ":8500", "127.0.0.1:99999",
                                                              "[::1]:8500", "a b:1", "h:1\n  server x"]), WRONG_TYPES),
        "proxy_acme_consul_token": st.one_of(TEXT, st.sampled_from(["anonymous", "a\nb", "x" * 200]), WRONG_TYPES),
    }


def base_args(module, project, proxy):
    args = {"project_dir": project.dir, "consul_address": CONSUL_URL, "publish_address": "127.0.0.1",
            "lock_timeout": 5}
    if module in ("flow_deploy", "flow_scale", "flow_rollback", "flow_release"):
        args["health_timeout"] = 5
    if module in ("flow_deploy", "flow_scale", "flow_release"):
        args["max_instances"] = 3  # a generated scale never starts more than this
    if module in ("flow_proxy", "flow_canary", "flow_stop_old", "flow_release"):
        args.update(proxy.options)
    if module in ("flow_stop_old", "flow_release"):
        args["drain_timeout"] = 3
    if module in ("flow_proxy", "flow_release"):
        args.update(service_path=["/prop"], switch_timeout=5)
    if module == "flow_canary":
        args.update(canary_dwell="1s", switch_timeout=5)
    return args


# Parameters that must not be generated together: their accepted combinations reach past the bounds.
EXCLUSIVE = [{"scale", "max_instances"}, {"health_timeout", "health_port"}, {"health_timeout", "health_path"}]


def snapshot(project, proxy):
    """What a failed call must leave as it was: the project's containers, its Consul state and
    registrations (every service under its prefix) and the proxy's configuration."""
    containers = sorted((c.name, c.status, c.id) for c in project.docker.containers.list(
        all=True, filters={"label": "com.docker.compose.project=%s" % project.name}))
    try:
        entries = consul_get("/v1/kv/dockerflow/services/%s?recurse" % project.name) or []
    except urllib.error.HTTPError as exc:
        if exc.code != 404:
            raise
        entries = []
    kv = sorted((e["Key"], e["Value"]) for e in entries)
    registrations = sorted(sid for sid, entry in consul_get("/v1/agent/services").items()
                           if str((entry.get("Meta") or {}).get("dockerflow-service", "")).startswith(project.name))
    try:
        # The archive API, not exec: an exec's output comes back empty now and then on a loaded engine.
        chunks, _stat = proxy.container().get_archive("/usr/local/etc/haproxy/haproxy.cfg")
        config = b"".join(chunks)
    except docker.errors.NotFound:
        config = None
    return {"containers": containers, "kv": kv, "registrations": registrations, "proxy_config": config}


def assert_clear(module, args, result):
    text = json.dumps(result)
    assert "Traceback" not in text, (module, args, result)
    assert "MODULE FAILURE" not in text, (module, args, result)
    if result.get("failed"):
        msg = result.get("msg")
        assert isinstance(msg, str) and msg.strip(), (module, args, result)
        assert "\n" not in msg, "msg must be one line: %r (%s %r)" % (msg, module, args)
        assert not msg.startswith("Unexpected "), "a bug, not a message: %r (%s %r)" % (msg, module, args)
        assert len(msg) < 2000, (module, args, msg[:300])


@pytest.fixture(scope="module")
def property_project(tmp_path_factory, docker_client, consul_agent):
    from conftest import FlowProject

    proxy = TestProxy(docker_client)
    project = FlowProject(tmp_path_factory.mktemp("prop"), docker_client)
    project.write("bad.yml", "services:\n  app: [\n")
    try:
        health = {"health_path": "/health"}  # an HTTP probe: see test_security_consul_acl.HEALTH
        for module, args in (("flow_deploy", health), ("flow_proxy", {}), ("set_image", None), ("flow_deploy", health),
                             ("flow_proxy", {}), ("flow_stop_old", {})):
            if module == "set_image":
                project.set_image(APP_V2)
                continue
            setup = dict(base_args(module, project, proxy), **args)
            if "health_timeout" in setup:
                setup["health_timeout"] = 120  # the machine may be busy; the examples need no real deploy
            result = run_module(module, setup)
            assert not result.get("failed"), result
        yield project, proxy
    finally:
        project.cleanup()
        proxy.cleanup()


@pytest.mark.long_running
def test_any_arguments_give_success_or_a_clean_failure_that_changes_nothing(property_project, capsys):
    project, proxy = property_project
    specs = {module: argument_spec_of(module) for module in MODULES}
    values = strategies(project, proxy)
    assert set().union(*specs.values()) <= set(values), "a parameter without a strategy: %s" % (
        set().union(*specs.values()) - set(values))
    tally = {"inputs": 0, "check-mode successes": 0, "failures run for real": 0}
    started = time.monotonic()

    @st.composite
    def calls(draw):
        module = draw(st.sampled_from(MODULES))
        names = draw(st.lists(st.sampled_from(sorted(specs[module])), min_size=1, max_size=3, unique=True))
        names = [n for i, n in enumerate(names) if not any({n, m} <= pair for m in names[:i] for pair in EXCLUSIVE)]
        args = base_args(module, project, proxy)
        for name in names:
            args[name] = draw(values[name])
            if name in ("health_port", "health_path"):
                args.pop("health_timeout", None)
                args["health_timeout"] = 3
        return module, args

    # Derandomized, so a run is repeatable; DOCKERFLOW_PROPERTY_SEED explores other inputs.
    @seed(int(os.environ.get("DOCKERFLOW_PROPERTY_SEED", "0")))
    @settings(max_examples=EXAMPLES, deadline=None, derandomize="DOCKERFLOW_PROPERTY_SEED" not in os.environ, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
    @given(calls())
    def check(call):
        module, args = call
        tally["inputs"] += 1
        checked = run_module(module, args, check_mode=True)
        assert_clear(module, args, checked)
        if not checked.get("failed"):
            tally["check-mode successes"] += 1
            return
        before = snapshot(project, proxy)
        real = run_module(module, args)
        assert_clear(module, args, real)
        assert real.get("failed"), "failed in check mode, not for real: %s %r -> %r" % (module, args, checked["msg"])
        tally["failures run for real"] += 1
        assert snapshot(project, proxy) == before, "a failed %s changed something: %r -> %r" % (module, args, real["msg"])

    check()
    with capsys.disabled():
        counts = ", ".join("%d %s" % (n, k) for k, n in tally.items())
        print("\nmodule arguments property: %s in %.0fs" % (counts, time.monotonic() - started))
    assert tally["failures run for real"] > tally["inputs"] // 3, tally


# --------------------------------------------------------------------------- the flow role's steps

KNOWN_STEPS = ["deploy", "scale", "preview", "proxy", "canary", "stop-old", "release", "rollback"]
UNKNOWN_STEP = st.one_of(
    st.sampled_from(["Deploy", "stop_old", "stopold", "deploy;scale", "roll back", "proxy\n", "-", "*", "deploy.yml",
                     "../step_deploy", "{{ lookup('env','HOME') }}", "%s", "null", "0", "é", "\x00"]),
    NASTY_TEXT.filter(lambda s: s.strip() and all(part.strip() not in KNOWN_STEPS for part in s.split(","))),
)
STEP_LISTS = st.one_of(
    # A list with at least one unknown step, anywhere.
    st.builds(lambda known, unknown, at: known[:at] + [unknown] + known[at:],
              st.lists(st.sampled_from(KNOWN_STEPS), max_size=3), UNKNOWN_STEP, st.integers(0, 3)),
    st.builds(",".join, st.lists(st.one_of(st.sampled_from(KNOWN_STEPS), UNKNOWN_STEP),
                                 min_size=1, max_size=3).filter(
        lambda steps: any(step not in KNOWN_STEPS for step in steps))),
    st.sampled_from([[], "", ",", " , ", [None], [1, 2], [["deploy"]], {"deploy": True}, 7, [{"step": "deploy"}]]),
    # release beside any other step, itself included: it runs alone.
    st.builds(lambda others, at: ",".join(others[:at] + ["release"] + others[at:]),
              st.lists(st.sampled_from(KNOWN_STEPS), min_size=1, max_size=2), st.integers(0, 2)),
)


class Unsafe(str):
    """A string written with Ansible's !unsafe tag: a generated '{{ ... }}' stays text."""


class UnsafeDumper(yaml.SafeDumper):
    pass


UnsafeDumper.add_representer(Unsafe, lambda dumper, value: dumper.represent_scalar("!unsafe", str(value)))


def yaml_unsafe(value):
    if isinstance(value, str):
        return Unsafe(value) if "{" in value or "%" in value else value  # ansible-core reads "!unsafe ''" as null
    if isinstance(value, list):
        return [yaml_unsafe(item) for item in value]
    if isinstance(value, dict):
        return {key: yaml_unsafe(item) for key, item in value.items()}
    return value


def test_flow_role_refuses_unknown_steps_before_running_any(flow_project, capsys):
    """Every generated steps list holds something that is not a step, or release beside another step: the role
    fails with one line naming it (or the argument spec's own message for a value of the wrong type) and runs
    nothing."""
    examples = []

    @settings(max_examples=int(os.environ.get("DOCKERFLOW_PROPERTY_STEP_EXAMPLES", "12")), deadline=None,
              derandomize=True, database=None, suppress_health_check=list(HealthCheck))
    @given(STEP_LISTS)
    def collect(steps):
        examples.append(steps)

    collect()
    results_dir = os.path.join(flow_project.dir, "role-results")
    os.makedirs(results_dir)
    tasks = []
    for index, steps in enumerate(examples):
        tasks.append({"name": "example %d" % index, "block": [
            # !unsafe: a generated '{{ ... }}' is a step name, never a template.
            {"ansible.builtin.include_role": {"name": "dockerflow.flow.flow"},
             "vars": {"flow_steps": yaml_unsafe(steps), "flow_project_dir": flow_project.dir,
                      "flow_consul_address": CONSUL_URL, "flow_publish_address": "127.0.0.1"}},
            written_task("%s/%d.json" % (results_dir, index), "ran"),
        ], "rescue": [
            written_task("%s/%d.json" % (results_dir, index), "{{ ansible_failed_result | to_json }}"),
        ]})
    playbook = os.path.join(flow_project.dir, "steps.yml")
    with open(playbook, "w") as handle:
        handle.write(yaml.dump([{"hosts": "localhost", "gather_facts": False, "tasks": tasks}], Dumper=UnsafeDumper))
    command, env = flow_project.playbook("flow_info", {})
    completed = subprocess.run(command[:-1] + [playbook], env=env, capture_output=True, text=True, timeout=900, check=False)
    assert "Traceback" not in completed.stdout + completed.stderr, completed.stdout[-3000:]
    for index, steps in enumerate(examples):
        with open("%s/%d.json" % (results_dir, index)) as handle:
            text = handle.read()
        assert text != "ran", "steps %r ran" % (steps,)
        result = json.loads(text)
        assert_clear("flow role", steps, result)
        assert result.get("failed") and ("flow step" in result["msg"] or "flow_steps" in result["msg"]), (steps, result)
    assert flow_project.containers() == [] and flow_project.state() is None, "a step ran"
    with capsys.disabled():
        print("\nflow role steps property: %d generated step lists refused before any step ran" % len(examples))
