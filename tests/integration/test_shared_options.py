# -*- coding: utf-8 -*-
"""One set of options fits every flow module, as the seed's options did every command: a user puts
every shared option in one YAML anchor merged into each module call (or in module_defaults for
group/dockerflow.flow.flow), and each module uses those it needs and ignores the others.

One playbook per way runs every module (deploy, proxy, scale, a second deploy and switch, stop-old,
rollback, info, and a release in one task) against the real engine, the harness's Consul and a per-test proxy, with HTTP
through the proxy. The shared options come from the table (plugins/module_utils/options.py): each
is given a value here, else its default from the table, so a new shared option is in the set too.
The TLS files are a throw-away CA's: the engine's socket and the harness's Consul speak no TLS, so
they are read but not used.
"""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
import uuid

import pytest
import yaml

from ansible_collections.dockerflow.flow.plugins.module_utils import options
from conftest import ANSIBLE_PLAYBOOK, CONSUL_URL, wait_for
from support.tls import CertificateAuthority

HOST = "shared.dftest.example"
# The password "secret" (`openssl passwd -6 -salt abc secret`), for preview_auth.
HASH = "$6$abc$IdWKNKTJEb8LxY7CGg8YBXlvtfZzFw7Mp/r6niK9YB2mdvgY..TKjv1T..8RadRt2qvUHYRLr/TsVArtr91iR1"


def shared_options(project, proxy, tls_dir):
    """Every shared option of the table, with a value that works against this test's engine, Consul and proxy."""
    files = CertificateAuthority(os.path.join(tls_dir, "ca")).issue("client", "client")
    tls_path = os.path.dirname(files.cert)
    given = {
        "project_dir": project.dir, "flow_file": "docker-flow.yml", "compose_path": "docker-compose.yml",
        "project": project.name, "target": "app", "service_name": project.service, "publish_address": "127.0.0.1",
        "service_address": "127.0.0.1", "docker_host": os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock",
        "cert_path": tls_path, "tls_verify": False, "backend": "container", "consul_address": CONSUL_URL,
        "consul_token": "anonymous", "consul_ca_cert": files.ca, "consul_client_cert": files.cert,
        "consul_client_key": files.key, "lock_timeout": 120, "lock_ttl": 30,
        "side_targets": ["db"], "pull_side_targets": False, "pull": "never", "scale": "2", "max_instances": 4,
        "health_path": "/health", "health_port": 8080, "health_timeout": 120, "keep_releases": 1, "drain_timeout": 5,
        "service_path": ["/shared"], "service_domain": HOST, "proxy_docker_cert_path": tls_path,
        "proxy_tls_verify": False, "env_files": ["shared.env"],
        "preview_header": "X-Flow-Color", "preview_cookie": "flow-color", "preview_allow": ["127.0.0.0/8"],
        "preview_host": "preview." + HOST, "preview_auth": ["alice:" + HASH],
        "registry": "127.0.0.1:5000",  # unused: this project builds nothing, so nothing is pushed
        "proxy_acme_consul_token": "anonymous",  # Consul's anonymous token, by name
        "https_redirect": False, "hsts_max_age": 0,  # no certificate here: nothing is served over HTTPS
        "proxy_nofile": 16384,  # within the 20,000 engines like the test machine's give
    }
    with open(os.path.join(project.dir, "shared.env"), "w", encoding="utf-8") as handle:
        handle.write("SHARED_OPTIONS=1\n")  # env_files must name a file that is there
    given.update(proxy.options)
    given["proxy_docker_host"] = given["docker_host"]
    shared = [option for option in options.TABLE if option.shared]
    values = {}
    for option in shared:
        if option.name in given:
            values[option.name] = given[option.name]
        elif option.default is not None:
            values[option.name] = options.default(option.name)
    missing = sorted(option.name for option in shared if option.name not in values)
    assert not missing, "give these shared options a value in this test (they have no default): %s" % missing
    return values


# (module, its own arguments besides the shared ones, what to register it as)
STEPS = [
    ("flow_deploy", {}, "deploy_blue"),
    ("flow_proxy", {}, "switch_blue"),
    ("flow_scale", {"scale": "+1"}, "scale_blue"),
    ("flow_deploy", {"force": True}, "deploy_green"),
    ("flow_canary", {"canary_weight": 20}, "canary_green"),
    ("flow_proxy", {}, "switch_green"),
    ("flow_stop_old", {}, "stop_blue"),
    ("flow_rollback", {}, "rollback"),
    ("flow_info", {}, "info"),
    ("flow_release", {"force": True}, "release"),
]


def playbook(shared, way, results_path):
    """The playbook text: ``shared`` merged into every call from an anchor, or set as the group's module_defaults."""
    lines = ["- name: Every flow module with one set of shared options", "  hosts: localhost", "  gather_facts: false"]
    shared_yaml = yaml.safe_dump(shared, default_flow_style=False, sort_keys=True)
    if way == "anchor":
        lines += ["  vars:", "    flow_shared: &flow"] + textwrap.indent(shared_yaml, " " * 6).splitlines()
    else:
        lines += ["  module_defaults:", "    group/dockerflow.flow.flow:"] + textwrap.indent(shared_yaml, " " * 6).splitlines()
    lines.append("  tasks:")
    for module, own, register in STEPS:
        lines += ["    - name: %s" % register, "      dockerflow.flow.%s:%s" % (module, "" if own or way == "anchor" else " {}")]
        if way == "anchor":
            lines.append("        <<: *flow")
        lines += ["        %s: %s" % (name, json.dumps(value)) for name, value in own.items()]
        lines.append("      register: %s" % register)
    registered = ", ".join("'%s': %s" % (register, register) for _module, _own, register in STEPS)
    lines += ["    - name: Keep the results", "      ansible.builtin.copy:",
              "        content: \"{{ {%s} | to_json }}\"" % registered, "        dest: %s" % results_path,
              "        mode: \"0600\""]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("way", ["anchor", "module_defaults"])
def test_every_module_takes_one_set_of_all_shared_options(routed_project, proxy, tmp_path, way):
    project = routed_project
    project.write("docker-flow.yml", "# every option comes from the playbook\ntarget: app\n")
    shared = shared_options(project, proxy, str(tmp_path))
    results_path = os.path.join(project.dir, "results-%s.json" % uuid.uuid4().hex[:6])
    path = os.path.join(project.dir, "shared-%s.yml" % way)
    with open(path, "w") as handle:
        handle.write(playbook(shared, way, results_path))
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("FLOW") and key not in ("DOCKER_CERT_PATH", "DOCKER_TLS_VERIFY", "CONSUL_HTTP_ADDR")}
    env.update({"ANSIBLE_NOCOLOR": "1", "ANSIBLE_LOCALHOST_WARNING": "0", "ANSIBLE_INVENTORY_UNPARSED_WARNING": "0"})
    completed = subprocess.run([ANSIBLE_PLAYBOOK, "-i", "localhost,", "-c", "local", "-e",
                                "ansible_python_interpreter={{ ansible_playbook_python }}", path],
                               env=env, capture_output=True, text=True, timeout=1200, check=False)
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, output[-6000:]
    assert "Unsupported parameters" not in output and "Traceback" not in output
    with open(results_path) as handle:
        results = json.load(handle)

    deploy = results["deploy_blue"]
    assert deploy["color"] == "blue" and len(deploy["instances"]) == 2, "scale '2' of the shared options"
    assert {deploy["option_sources"][name] for name in ("side_targets", "scale", "health_path", "pull")} == {"parameter"}
    assert [c.name for c in project.docker.containers.list(
        filters={"label": ["com.docker.compose.project=%s" % project.name, "com.docker.compose.service=db"]})], \
        "the side target of the shared options runs"
    assert results["switch_blue"]["live_color"] == "blue"
    assert results["switch_blue"]["routes"]["domain"] == HOST
    assert results["scale_blue"]["instances_count"] == 3, "the step's own scale '+1' beats the shared '2'"
    assert results["deploy_green"]["color"] == "green" and len(results["deploy_green"]["instances"]) == 2
    assert results["canary_green"]["canary"] == {"color": "green", "weight": 20}
    assert results["switch_green"]["live_color"] == "green" and "canary" not in results["switch_green"]["routes"]
    assert results["stop_blue"]["stopped"] and all("-blue-" in name for name in results["stop_blue"]["stopped"])
    assert results["rollback"]["color"] == "blue"
    info = results["info"]
    assert info["live_color"] == "green" and info["deployed_color"] == "blue"
    ignored = {"side_targets", "scale", "service_path", "pull", "health_path", "proxy_name", "keep_releases"}
    assert not ignored & set(info["option_sources"]), "flow_info ignores the options it does not use"
    assert not {"side_targets", "scale", "health_path"} & set(results["switch_green"]["option_sources"])

    def through_the_proxy():
        status, body = proxy.get("/shared", host=HOST)
        return body if status == 200 else None

    release = results["release"]
    assert (release["color"], release["previous_color"], release["live_color"]) == ("blue", "green", "blue")
    assert release["stopped"] and all("-green-" in name for name in release["stopped"])
    body = wait_for(through_the_proxy, timeout=30, what="an answer through the proxy")
    assert body["color"] == "blue" and body["service"] == project.service
    assert proxy.get("/shared")[0] != 200, "the route is the shared service_domain's"
