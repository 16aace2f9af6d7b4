# -*- coding: utf-8 -*-
"""A Consul agent of a test's own with ACLs on (default deny), beside the harness's agent:
container ``dftest-consul-acl-*`` (label dockerflow.test=1) of the stand-in image on the host
network, every port shifted to ones the test passes in. ``token(rules)`` makes a policy and a
token holding it, with the bootstrap (master) token."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid

CONSUL_IMAGE = "dockerflow-test/consul:1.8.7"
PORT_NAMES = ("http", "dns", "serf_lan", "serf_wan", "server")


class AclConsul:
    def __init__(self, docker_client, ports, anonymous_rules=None):
        """``ports``: free loopback ports, one per PORT_NAMES. ``anonymous_rules``: what requests
        without a token may do (HAProxy's DNS lookups carry no token), else nothing."""
        self.docker = docker_client
        self.ports = dict(zip(PORT_NAMES, ports, strict=True))
        self.master_token = str(uuid.uuid4())
        self.url = "http://127.0.0.1:%d" % self.ports["http"]
        self.dns = "127.0.0.1:%d" % self.ports["dns"]
        self.name = "dftest-consul-acl-%s" % uuid.uuid4().hex[:8]
        self.anonymous_rules = anonymous_rules
        self.container = None

    def start(self, timeout=60):
        config = {
            "acl": {"enabled": True, "default_policy": "deny", "down_policy": "extend-cache",
                    "tokens": {"master": self.master_token, "agent": self.master_token}},
            "ports": dict(self.ports, grpc=-1),
        }
        self.container = self.docker.containers.run(
            CONSUL_IMAGE, ["agent", "-dev", "-client", "127.0.0.1", "-bind", "127.0.0.1"], name=self.name, detach=True,
            network_mode="host", labels={"dockerflow.test": "1"}, environment={"CONSUL_LOCAL_CONFIG": json.dumps(config)},
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                # The master token works once the ACL system bootstrapped, a moment after the leader.
                if self.request("GET", "/v1/status/leader") and self.request("GET", "/v1/acl/token/self"):
                    break
            except (OSError, ValueError):
                pass
            time.sleep(0.25)
        else:
            raise AssertionError("Consul %s with ACLs did not come up:\n%s" % (self.name, self.logs()))
        if self.anonymous_rules:
            policy = self.policy("anonymous", self.anonymous_rules)
            self.request("PUT", "/v1/acl/token/00000000-0000-0000-0000-000000000002",
                         {"Policies": [{"ID": policy}]})
        return self

    def request(self, method, path, body=None, token=None):
        request = urllib.request.Request(self.url + path, method=method,
                                         data=json.dumps(body).encode() if body is not None else None)
        request.add_header("X-Consul-Token", token or self.master_token)
        with urllib.request.urlopen(request, timeout=5) as response:
            text = response.read()
        return json.loads(text) if text else None

    def policy(self, name, rules):
        return self.request("PUT", "/v1/acl/policy", {"Name": "%s-%s" % (name, uuid.uuid4().hex[:6]), "Rules": rules})["ID"]

    def token(self, rules, name="dftest"):
        """The SecretID of a new token with one policy of ``rules`` (HCL)."""
        return self.request("PUT", "/v1/acl/token", {"Description": name, "Policies": [{"ID": self.policy(name, rules)}]})[
            "SecretID"]

    def logs(self):
        try:
            return self.container.logs(tail=30).decode(errors="replace")
        except Exception:  # the container may be gone already
            return ""

    def cleanup(self):
        if self.container is not None:
            try:
                self.container.remove(force=True, v=True)
            except Exception:  # already gone
                pass
