# -*- coding: utf-8 -*-
"""Docker over TCP with TLS: the modules deploy, report and stop old releases on an engine that
only accepts clients with a certificate of its CA; a wrong CA, a foreign client certificate or
missing files fail with a one-line message and change nothing; plain TCP works with a warning.

The engine is an extra dockerd (tests/support/dockerd.py) started on a free loopback port with
``--tlsverify``; certificates are made at test time (tests/support/tls.py)."""

from __future__ import annotations

import os
import shutil

import pytest

from conftest import APP_V1, APP_V2, BASE_IMAGE, FlowProject, free_ports, http_json
from support.dockerd import ExtraDockerd
from support.playbook import assert_clean_failure, run_tasks
from support.tls import CertificateAuthority

# An HTTP probe from here, retried until health_timeout: the image's Docker HEALTHCHECK (2 s timeout)
# fails on a machine other tests keep busy, and these tests are about TLS, not health checks.
HEALTH = "/health"


@pytest.fixture(scope="module")
def tls_engine(tmp_path_factory, docker_client, consul_agent):
    """An engine with --tlsverify, and client directories: good, wrong CA, foreign client."""
    certs = tmp_path_factory.mktemp("certs")
    ca = CertificateAuthority(certs / "ca")
    other = CertificateAuthority(certs / "other", name="dftest-other-ca")
    daemon = ExtraDockerd(tcp_port=free_ports(1)[0], tls=ca.issue("server", "server"))
    daemon.start()
    try:
        for image in (APP_V1, APP_V2, BASE_IMAGE):
            daemon.load_image(image)
        daemon.clients = {
            "good": os.path.dirname(ca.issue("client", "client").cert),
            # The client trusts another CA, so it refuses the engine's certificate.
            "wrong ca": os.path.dirname(ca.issue("client-wrong-ca", "client", trust=other.cert).cert),
            # The engine's CA did not sign this client: the engine refuses it.
            "foreign client": os.path.dirname(other.issue("foreign", "client", trust=ca.cert).cert),
        }
        yield daemon
    finally:
        daemon.cleanup()


@pytest.fixture
def tls_project(tmp_path, tls_engine):
    project = FlowProject(tmp_path, tls_engine.client())
    yield project
    project.cleanup()


def test_deploy_info_and_stop_old_over_tls(tls_project, tls_engine, docker_client):
    tls = {"docker_host": tls_engine.tcp_url, "cert_path": tls_engine.clients["good"]}
    deployed = tls_project.run("flow_deploy", dict(tls, health_path=HEALTH))
    assert (deployed["color"], deployed["release"]) == ("blue", 1)
    assert not deployed.get("warnings"), deployed.get("warnings")
    blue = tls_project.running("blue")
    assert len(blue) == 1 and tls_project.answer(blue[0])["version"] == "1"
    # The instance runs on the TLS engine, not on the main one.
    assert not docker_client.containers.list(all=True, filters={"label": "dockerflow.service=%s" % tls_project.service})

    tls_project.set_image(APP_V2)
    assert tls_project.run("flow_deploy", dict(tls, health_path=HEALTH))["color"] == "green"
    info = tls_project.run("flow_info", tls)
    assert info["deployed_color"] == "green"
    assert {color: len(entry["members"]) for color, entry in info["colors"].items()} == {"blue": 1, "green": 1}

    stopped = tls_project.run("flow_stop_old", tls)
    assert stopped["changed"] is True
    assert [c.status for c in tls_project.containers("blue")] == ["exited"]
    green = tls_project.running("green")
    assert http_json(tls_project.port_of(green[0]))[1]["version"] == "2"


def test_bad_tls_fails_clearly_and_changes_nothing(tls_project, tls_engine, tmp_path):
    good = {"docker_host": tls_engine.tcp_url, "cert_path": tls_engine.clients["good"]}
    tls_project.run("flow_deploy", dict(good, health_path=HEALTH))
    before = tls_project.snapshot()
    unused_port = free_ports(1)[0]
    cases = {
        "wrong ca": ({"cert_path": tls_engine.clients["wrong ca"]},
                     "TLS: the engine's certificate is not trusted (unable to get local issuer certificate): "
                     "is ca.pem in cert_path %s the CA that signed it?" % tls_engine.clients["wrong ca"]),
        "foreign client": ({"cert_path": tls_engine.clients["foreign client"]},
                           "TLS: the engine closed the connection, most likely rejecting the client certificate"),
        "missing client cert": ({"cert_path": _without(tls_engine.clients["good"], "cert.pem", tmp_path)},
                                "lacks cert.pem"),
        "no tls": ({"cert_path": None}, "the engine only speaks TLS: set cert_path"),
        "nothing listens": ({"docker_host": "tcp://127.0.0.1:%d" % unused_port},
                            "Cannot reach the Docker engine at https://127.0.0.1:%d (docker_host): " % unused_port),
    }
    # Every module connects through the same code: flow_deploy meets every case, the others one.
    calls = [("flow_deploy", dict(good, **params), expected) for params, expected in cases.values()]
    calls += [(module, dict(good, **cases["wrong ca"][0]), cases["wrong ca"][1]) for module in ("flow_info", "flow_stop_old")]
    results, _completed = run_tasks(tls_project, [(module, params) for module, params, _expected in calls])
    for (module, params, expected), result in zip(calls, results, strict=True):
        assert_clean_failure(result)
        assert expected in result["msg"], (module, params, result["msg"])
    assert tls_project.snapshot() == before


def _without(directory, name, tmp_path):
    copy = tmp_path / ("partial-" + os.path.basename(directory))
    shutil.copytree(directory, copy)
    os.unlink(copy / name)
    return str(copy)


def test_plain_tcp_works_with_a_warning(tmp_path, docker_client, consul_agent):
    with ExtraDockerd(tcp_port=free_ports(1)[0]) as daemon:
        daemon.load_image(APP_V1)
        daemon.load_image(BASE_IMAGE)
        project = FlowProject(tmp_path, daemon.client())
        try:
            deployed = project.run("flow_deploy", {"docker_host": daemon.tcp_url, "health_path": HEALTH})
            assert deployed["color"] == "blue" and len(project.running("blue")) == 1
            assert ("docker_host %s is plain TCP without TLS: every user and process on that machine can control "
                    "that engine. Set cert_path to use TLS." % daemon.tcp_url) in deployed["warnings"]
        finally:
            project.cleanup()
