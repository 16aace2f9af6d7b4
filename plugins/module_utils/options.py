# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""THE option table: every option of the flow modules (and the seed's own keys), defined once.

Private to the collection. The argument specs (module_base), the sources and defaults
config.resolve applies (config.OPTIONS), and the defaults of FlowSettings and ProxySettings
come from here at run time. The copies Ansible must read literally, the doc fragment
``plugins/doc_fragments/options.py`` and the flow role's argument specs, variables and
defaults, are generated from it by ``make options`` (tests/support/option_docs.py), and
tests/unit/plugins/module_utils/test_options.py fails when one of them is not what the table gives.

An option whose group is shared (every group but ``step`` and ``seed``) is accepted by
every flow module, so one set of options (``module_defaults`` for ``group/dockerflow.flow.flow``,
or a YAML anchor as the seed's docker-flow.yml was) fits every module; a module resolves
and uses only the options listed in its row's ``modules``, and ignores the others.
"""

from __future__ import annotations

import copy
from typing import Any

from ansible_collections.dockerflow.flow.plugins.module_utils.colors import ALL_COLORS
from ansible_collections.dockerflow.flow.plugins.module_utils.option_type import (
    CANARY,
    COMPOSED,
    DEPLOY,
    MODULES,
    PROXY,
    ROLLBACK,
    SCALE,
    STOP_OLD,
    Option,
)
from ansible_collections.dockerflow.flow.plugins.module_utils.proxy_limits import NOFILE_RANGE_DOC
from ansible_collections.dockerflow.flow.plugins.module_utils.server_slots import DEFAULT_SERVER_SLOTS

# Documentation groups, in the order the docs list them. The options of every group but the last
# two are shared by all modules; "step" options belong to their modules only; "seed" keys are
# read from FLOW_* and docker-flow.yml but are no module parameter.
GROUPS = {
    "service": "Project and service",
    "docker": "Docker engine of the service",
    "consul": "Consul",
    "release": "Releases: deploy, scale, stop-old and rollback",
    "routes": "Routes in the proxy",
    "proxy": "The proxy",
    "step": "Options of one step",
    "seed": "Keys of the original Docker Flow that are no module parameter",
}


def _o(name: str, type_: str, group: str, doc: str, modules: tuple = MODULES, **more: Any) -> Option:
    return Option(name=name, type=type_, group=group, doc=doc, modules=_with_composed(name, modules), **more)


def _with_composed(name: str, modules: tuple) -> tuple:
    """``modules`` and the modules composed of their steps (option_type.COMPOSED) that take option ``name``."""
    return modules + tuple(module for module, (parts, decided) in COMPOSED.items()
                           if module not in modules and name not in decided and set(parts) & set(modules))


def _flow_env(name: str) -> tuple:
    return ("FLOW_" + name.upper(),)


def _resolved(name: str, type_: str, group: str, doc: str, env: tuple = (), **more: Any) -> Option:
    """An option that falls back to FLOW_<NAME> (then ``env``), then ``name`` in docker-flow.yml."""
    return _o(name, type_, group, doc, env=_flow_env(name) + env, file_keys=(name,), **more)


_ROUTED = (PROXY, CANARY, STOP_OLD)
# Where the proxy is: flow_scale reaches it too, to ask when it stopped sending requests to the instances it takes away.
_REACH_PROXY = _ROUTED + (SCALE,)

TABLE = (
    # --- service --------------------------------------------------------------------------------
    _o("project_dir", "path", "service",
       "Directory that holds the Compose file and C(docker-flow.yml); a relative O(compose_path) is read from here.",
       env=("FLOW_PROJECT_DIR",), default_doc="the module's working directory"),
    _o("flow_file", "path", "service",
       "Options file read from O(project_dir): module parameters override E(FLOW_*) variables, which override this file.",
       default_doc="C(docker-flow.yml) when it exists", details=("A malformed file fails with its name and line.",),
       role_var="flow_file"),
    _resolved("compose_path", "path", "service", "The Compose file.", default="docker-compose.yml", seed=True),
    _resolved("env_files", "list", "service",
              "Files of variables for the Compose file's C(${VAR}), read instead of its directory's C(.env), as "
              "C(docker compose --env-file) does; relative to the Compose file's directory.", modules=(DEPLOY,),
              default_doc="the C(.env) beside the Compose file, when there is one",
              details=("A later file overrides an earlier one; the environment the module runs in overrides them all.",)),
    _resolved("project", "str", "service", "Compose project name, used in container, network and volume names.",
              default_doc="the name of the Compose file's directory", seed=True),
    _resolved("target", "str", "service", "Compose service that is deployed in colors.", default="app", seed=True),
    _resolved("service_name", "str", "service", "Name of the service in Consul and in the state.",
              default_doc="C(<project>-<target>), with C(_) and C(.) turned into C(-) so that Consul DNS can look it up"),
    _resolved("blue_green", "bool", "service", "Run releases as alternating V(blue) and V(green) colors.", default=True,
              details=("When false, every release is V(plain) and runs beside the previous one until stop-old.",), seed=True),
    _resolved("publish_address", "str", "service",
              "Host address that published container ports bind to, unless the Compose file names one.", default="0.0.0.0"),
    _resolved("service_address", "str", "service",
              "Address registered in Consul for instances, and used to probe their published ports.",
              default_doc="O(publish_address) when it is a specific address, else the host of O(docker_host), else V(127.0.0.1)"),
    # --- docker ---------------------------------------------------------------------------------
    _o("docker_host", "str", "docker",
       "The Docker engine to run instances on, for example V(unix:///var/run/docker.sock) or V(tcp://10.0.0.5:2376).",
       env=("FLOW_HOST", "DOCKER_HOST"), file_keys=("host", "docker_host"), aliases=("host",),
       default_doc="the local socket", details=("The API version is negotiated with the engine.",),
       role_var="flow_host", seed=True),
    _o("cert_path", "path", "docker", "Directory with C(ca.pem), C(cert.pem) and C(key.pem) for TLS to O(docker_host).",
       env=("FLOW_CERT_PATH", "DOCKER_CERT_PATH"), file_keys=("cert_path",), aliases=("docker_cert_path",),
       details=("A plain C(tcp://) O(docker_host) without it gives a warning (on a loopback address too, since every "
                "local user can reach it).",), seed=True),
    _o("tls_verify", "bool", "docker", "Verify the engine's certificate against C(ca.pem).",
       env=("FLOW_TLS_VERIFY", "DOCKER_TLS_VERIFY"), file_keys=("tls_verify",),
       default_doc="V(true) when O(cert_path) is set"),
    _o("docker_timeout", "int", "docker", "Seconds to wait for one Docker API call.", default=60),
    _resolved("backend", "str", "docker",
              "How instances run: V(container) as plain containers, V(swarm) as a Swarm service per color, V(auto) "
              "as V(swarm) when O(docker_host) is an active Swarm manager, else V(container).",
              default="auto", choices=("auto", "container", "swarm"), details=(
                  "V(swarm) runs each release as a Swarm service C(<service_name>-<color>) whose tasks are the instances;"
                  " O(docker_host) must be a Swarm manager.",
                  "With V(swarm), tasks publish their ports in C(host) mode on an ephemeral port of their node, and the"
                  " registrator of that node (role C(dockerflow.flow.registrator)) registers them in its Consul agent"
                  " with the node's address; the modules wait until Consul lists every new task passing."
                  " O(publish_address) and O(service_address) do not apply. The Compose C(deploy) section (replicas,"
                  " placement, update, rollback and restart policies, resources, endpoint mode) configures the"
                  " services; see C(docs/swarm.md).")),
    # --- consul ---------------------------------------------------------------------------------
    _resolved("consul_address", "str", "consul",
              "URL of the Consul HTTP API that holds the state and the service registrations.",
              env=("CONSUL_HTTP_ADDR",), default="http://127.0.0.1:8500", seed=True),
    _resolved("consul_token", "str", "consul", "ACL token for Consul.", env=("CONSUL_HTTP_TOKEN",), no_log=True,
              details=("It needs write access to the C(dockerflow/) KV prefix, sessions, and service registration.",)),
    _resolved("consul_ca_cert", "path", "consul", "CA bundle to verify an HTTPS Consul with.", env=("CONSUL_CACERT",)),
    _resolved("consul_client_cert", "path", "consul",
              "Client certificate for Consul's HTTPS API (needs O(consul_client_key)).", env=("CONSUL_CLIENT_CERT",)),
    _resolved("consul_client_key", "path", "consul", "Key of O(consul_client_cert).", env=("CONSUL_CLIENT_KEY",),
              no_log=False),
    _resolved("consul_validate_certs", "bool", "consul", "Verify Consul's HTTPS certificate.", default=True),
    _resolved("lock_timeout", "int", "consul",
              "Seconds to wait for another flow on the same service to finish before failing with the name of the lock "
              "holder.", default=300),
    _resolved("lock_ttl", "int", "consul",
              "Seconds of the TTL of the Consul session that holds the service's lock, from 10 to 86400.", default=30,
              details=("A run that is killed, or loses Consul, cannot release its lock; the lock expires within twice"
                       " this time plus Consul's 5 s lock-delay (Consul's TTL rule), and the next run reports whose lock"
                       " it took over.",)),
    # --- release --------------------------------------------------------------------------------
    _resolved("side_targets", "list", "release",
              "Compose services started before the target when they do not run (a database, say); not colored, not scaled.",
              modules=(DEPLOY,), default=[], seed=True),
    _resolved("profiles", "list", "release",
              "Compose profiles that are active: a service with profiles runs only when one of them is here (V(*): all).",
              modules=(DEPLOY,), default=[], env=("COMPOSE_PROFILES",)),
    _resolved("pull_side_targets", "bool", "release", "Pull the side targets' images before starting them.",
              modules=(DEPLOY,), default=False, seed=True),
    _resolved("pull", "str", "release", "When to pull the target's image: V(missing) pulls only an image the engine lacks.",
              modules=(DEPLOY,), default="missing", choices=("always", "missing", "never"), details=(
                  "Not set anywhere, the target's C(pull_policy) in the Compose file decides, as for side targets:"
                  " C(daily), C(weekly) and C(every_<duration>) pull an image the engine last pulled that long ago.",)),
    _resolved("build", "bool", "release",
              "Build the images of the target and side targets that have both C(image) and C(build) in the Compose file "
              "before deploying them, as C(docker compose up --build) does (C(pull_policy: build) asks the same for "
              "one service).", modules=(DEPLOY,), default=False, details=(
                  "A service with C(build) and no C(image) is always built, on the engine of O(docker_host) (the"
                  " classic builder of the Docker SDK: the C(build) keys that need BuildKit are refused), and its image"
                  " is named C(<project>-<service>:<release>) for the target, so a rollback still has its image, and"
                  " C(<project>-<service>) for a side target. A release whose build inputs did not change builds"
                  " nothing. A failed build changes nothing, with the failing step's last lines in the message.",)),
    _resolved("registry", "str", "release",
              "Registry (C(HOST[:PORT][/PATH]), for example V(10.0.0.2:5000)) the images Flow builds are pushed to, "
              "named C(<registry>/<project>-<service>:<release>); required to build with O(backend=swarm), whose "
              "nodes pull their images.", modules=(DEPLOY,)),
    _resolved("scale", "str", "release",
              "Instance count: V(3) is absolute, V(+2) and V(-1) are relative to the live release's count.",
              modules=(DEPLOY, SCALE), as_written=True, seed=True, details=(
                  "M(dockerflow.flow.flow_deploy) starts the new release with it (by default with the live release's"
                  " count, or 1). M(dockerflow.flow.flow_scale) sets the instance count of the color it scales to it;"
                  " the count never drops below 1.",
                  "Quote relative values in YAML (V(\"+2\")): YAML reads a bare V(+2) as the number 2.")),
    _resolved("max_instances", "int", "release", "Upper bound for the instance count.", modules=(DEPLOY, SCALE),
              details=("A O(scale) beyond it fails and changes nothing (it is never cut down to the bound); without"
                       " O(scale), M(dockerflow.flow.flow_deploy) caps the count taken from the live release to it,"
                       " with a warning.",)),
    _resolved("health_path", "str", "release",
              "HTTP path that answers 2xx or 3xx when an instance is ready, probed on C(service_port) (or the first "
              "published port); also used as the Consul health check.", modules=(DEPLOY,), details=(
                  "Without it, the Docker HEALTHCHECK of the image or Compose file decides; without one either, a TCP"
                  " connect to the published port; for a target that publishes nothing, staying up for 3 seconds.",)),
    _resolved("health_port", "int", "release",
              "Container port to probe with TCP (or with O(health_path)) instead of the first published one.",
              modules=(DEPLOY,)),
    _resolved("health_timeout", "int", "release", "Seconds to wait for new or restarted instances to become healthy.",
              modules=(DEPLOY, SCALE, ROLLBACK), default=120),
    _resolved("keep_releases", "int", "release", "How many old releases keep their (stopped) containers for a rollback.",
              modules=(STOP_OLD,), default=1),
    _resolved("drain_timeout", "int", "release",
              "For a service the proxy routes, seconds to wait until the proxy finished the requests that were in flight "
              "to the old release when it was switched away, before stopping it.", modules=(STOP_OLD,), default=30),
    # --- routes ---------------------------------------------------------------------------------
    _resolved("service_path", "list", "routes",
              "Path prefixes (or exact paths, or regular expressions; see O(path_type)) routed to the service.",
              modules=(PROXY,), default=[], default_doc="the service's current route", seed=True, details=(
                  "Values with spaces, quotes, C(#), backslashes (outside regexes) or control characters are rejected.",)),
    _resolved("service_domain", "str", "routes",
              "Host name routed to the service, alone or together with O(service_path); C(*.example.com) matches any "
              "sub-domain.", modules=(PROXY,)),
    _resolved("path_type", "str", "routes", "How O(service_path) matches.", modules=(PROXY,), default="prefix",
              choices=("prefix", "exact", "regex")),
    _resolved("https_redirect", "bool", "routes",
              "Answer the service's plain HTTP requests with a redirect (301) to the same URL over HTTPS.",
              modules=(PROXY,), default_doc="the route's current value, V(false) at first", details=(
                  "Only with a certificate recorded (O(dockerflow.flow.flow_proxy#module:proxy_certificates)). Requests for"
                  " C(/.well-known/acme-challenge/) are never redirected: ACME HTTP-01 validation stays on plain"
                  " HTTP.",)),
    _resolved("hsts_max_age", "int", "routes",
              "Seconds of the C(Strict-Transport-Security: max-age) header the proxy adds to the service's HTTPS "
              "answers; V(0): no header.", modules=(PROXY,), default_doc="the route's current value, V(0) at first",
              details=("Browsers that saw it refuse plain HTTP to the domain for that long: start small.",)),
    _resolved("preview_header", "str", "routes",
              "Header that asks the proxy for the service's non-live color, by name (for example V(X-Flow-Color) with "
              "V(green)), on the service's own paths and domain.", modules=(PROXY,),
              default_doc="the route's current preview, none at first", details=(
                  "A request that names another color than the live one, when that color has no release or no server"
                  " up, is answered 503 C(no preview release); without the header it is served by the live color."
                  " V(\"\") stops asking by header (and turns the preview off without O(preview_cookie)).",)),
    _resolved("preview_cookie", "str", "routes",
              "Cookie that asks the proxy for the service's non-live color, by name, as O(preview_header) does (either "
              "or both).", modules=(PROXY,), default_doc="the route's current preview, none at first",
              details=("V(\"\") stops asking by cookie.",)),
    _resolved("preview_allow", "list", "routes",
              "Addresses or networks (V(10.0.0.0/8)) whose requests O(preview_header), O(preview_cookie) and "
              "O(preview_host) apply to; from others they are ignored.", modules=(PROXY,),
              default_doc="the route's current list; none: any address"),
    _resolved("preview_host", "str", "routes",
              "Host name (for example V(preview.example.com)) whose requests on the service's paths are served by the "
              "non-live color, as O(preview_header) asks for it.", modules=(PROXY,),
              default_doc="the route's current preview, none at first", details=(
                  "Compared as the route's own host is (port stripped, lower case). It takes the place of"
                  " O(service_domain) for those requests; for a route with only paths it is one more condition."
                  " Without a non-live color with a server up the answer is 503 C(no preview release); requests to"
                  " other hosts are untouched. It may not be a route's O(service_domain). V(\"\") turns it off.",)),
    _resolved("preview_auth", "list", "routes",
              "Users (V(user:hash) entries, the hash a crypt one as C(openssl passwd -6) or C(mkpasswd -m sha-512) "
              "gives) whose HTTP basic-auth credentials a request asking for the preview must carry.", modules=(PROXY,),
              no_log=True, default_doc="the route's current list; none: no credentials asked", details=(
                  "A request asking by O(preview_header), O(preview_cookie) or O(preview_host) without valid"
                  " credentials gets 401 (realm C(preview)); requests that do not ask for the preview are never"
                  " challenged. The hashes, never passwords, are recorded with the route in Consul and written to"
                  " the proxy's C(haproxy.cfg); the results of M(dockerflow.flow.flow_proxy) show them as C(********)"
                  " (M(dockerflow.flow.flow_info) returns the state as recorded). V([]) turns it off.",)),
    # --- proxy ----------------------------------------------------------------------------------
    _resolved("proxy_docker_host", "str", "proxy", "Docker engine of the proxy host.", modules=_REACH_PROXY,
              default_doc="O(docker_host)", seed=True),
    _resolved("proxy_docker_cert_path", "path", "proxy",
              "TLS files (C(ca.pem), C(cert.pem), C(key.pem)) for O(proxy_docker_host).", modules=_REACH_PROXY,
              default_doc="O(cert_path) when the proxy shares the service's engine", seed=True),
    _resolved("proxy_tls_verify", "bool", "proxy", "Verify the proxy engine's certificate.", modules=_REACH_PROXY,
              default_doc="O(tls_verify)"),
    _resolved("proxy_name", "str", "proxy", "Name of the proxy container.", modules=_REACH_PROXY, default="dockerflow-proxy"),
    _resolved("proxy_image", "str", "proxy",
              "HAProxy image the proxy container runs (the default is an LTS release).",
              modules=_ROUTED, default="haproxy:3.0", details=(
                  "When this option is set and differs from the running container's image (or"
                  " O(proxy_admin_address) / O(proxy_master_port) differ from its master CLI's), the run replaces the"
                  " container without dropping a connection: a new one, with the same configuration volume, labels"
                  " and restart policy, takes the listening sockets over from the old one (HAProxy's C(-x)), which then"
                  " finishes its requests and is removed. If the new one does not come up it is removed, the old one"
                  " keeps serving and the run fails. The result's C(proxy_replaced) says what differed.",
                  "With several proxy nodes, replace them one at a time: run the proxy role's play with C(serial: 1).")),
    _resolved("proxy_listen_address", "str", "proxy", "Address the proxy's HTTP frontend binds on the proxy host (V(*): all).",
              modules=_ROUTED, default="*"),
    _resolved("proxy_http_port", "int", "proxy", "Port of the proxy's HTTP frontend.", modules=_ROUTED, default=80),
    _resolved("proxy_https_port", "int", "proxy",
              "Port of the proxy's HTTPS frontend, on O(proxy_listen_address), once a certificate is recorded.",
              modules=_ROUTED, default=443, details=(
                  "TLS 1.2 and 1.3 with Mozilla's intermediate ciphers, HTTP/2 and HTTP/1.1 (ALPN); SNI picks the"
                  " certificate whose names match the host, others get the certificate named V(default), else the"
                  " first by name.",)),
    _resolved("proxy_stats_address", "str", "proxy",
              "Address the statistics page (and C(/healthz)) binds on the proxy host.", modules=_ROUTED,
              default="127.0.0.1", details=(
                  "The page lists every route, backend and server without authentication; any other than a loopback"
                  " address gives a warning.",
                  "C(/metrics) there is HAProxy's Prometheus exporter: a backend per service and color, labelled"
                  " C(proxy=\"be_<service>_<color>\"), its servers C(server=\"b1\") (blue) or C(server=\"g1\") (green)"
                  " and up; the proxy image must be built with it (the official images are).")),
    _resolved("proxy_stats_port", "int", "proxy", "Port of the statistics page on O(proxy_stats_address).",
              modules=_ROUTED, default=8404),
    _resolved("proxy_admin_address", "str", "proxy", "Address HAProxy's runtime API and master CLI bind on the proxy host.",
              modules=_REACH_PROXY, default="127.0.0.1", details=(
                  "Both take admin commands without authentication; any other than a loopback address gives a warning."
                  " The master CLI takes a new address when the proxy container is created.",)),
    _resolved("proxy_admin_port", "int", "proxy", "Port of HAProxy's runtime API on O(proxy_admin_address).",
              modules=_REACH_PROXY, default=9999),
    _resolved("proxy_master_port", "int", "proxy", "Port of HAProxy's master CLI on O(proxy_admin_address).",
              modules=_REACH_PROXY, default=9998),
    _resolved("proxy_max_servers", "int", "proxy",
              "Instances of one color the proxy sends requests to (the slots of its C(server-template)), 1 to 500.",
              modules=_ROUTED, default=DEFAULT_SERVER_SLOTS, details=(
                  "An instance beyond them would run and get no request, so M(dockerflow.flow.flow_proxy) refuses to"
                  " switch to a color with more instances and warns about other routed services that have more. It"
                  " records the value in the service's route, and M(dockerflow.flow.flow_deploy) and"
                  " M(dockerflow.flow.flow_scale) refuse to go beyond it.",),
              role_details=("Give the proxy role's C(proxy_max_servers) the same value; deploy and scale refuse to go"
                            " beyond the value the last proxy step recorded.",)),
    _resolved("proxy_nofile", "int", "proxy",
              "File descriptors the proxy container may open (its C(nofile) ulimit), %s to %s." % NOFILE_RANGE_DOC,
              modules=_ROUTED, default_doc="the Docker engine's own limit, which its containers inherit", details=(
                  "HAProxy needs one for each server slot (O(proxy_max_servers) x 2 colors x routed services) plus"
                  " two for each connection: its connection limit (C(maxconn)) is what is left, at least 100 (the"
                  " proxy steps warn when the slots take more than the connections may), and it refuses to start when"
                  " even that does not fit (C(Cannot raise FD limit)). So 1,000 routes at 32 slots need about 64,300,"
                  " more than the 20,000 some engines give. Each descriptor of the limit also costs HAProxy about 80"
                  " bytes of memory from its start (1,048,576: about 80 MB), so a limit in the billions is no good.",
                  "When this option is set and differs from the running container's limit, the run replaces the"
                  " container without dropping a connection, as for O(proxy_image). An engine that cannot give the"
                  " limit (one without C(CAP_SYS_RESOURCE) can give no more than its own) fails the run in one line;"
                  " the running proxy keeps serving.")),
    _resolved("proxy_access_log", "str", "proxy", "Which requests the proxy logs on its standard output.",
              modules=_ROUTED, default="errors", choices=("all", "errors", "off"), details=(
                  "V(errors): only requests that did not end normally (a 5xx answer, a malformed request, a timeout,"
                  " a failed connection, a retry or redispatch), in HAProxy's HTTP log format (C(docker logs) of the"
                  " proxy container). V(all): a line per request. V(off): no request is logged.",
                  "Servers going up or down and HAProxy's own messages are logged with each of them.",
                  "Logging every request took 10-25 % more of HAProxy's CPU per request, plus dockerd's for each line"
                  " through Docker's log driver (C(benchmarks/README.md)).",),
              role_details=("V(all), V(errors) (only requests that did not end normally) or V(off). Give the proxy"
                            " role's C(proxy_access_log) the same value: each render uses the value of the run that"
                            " makes it.",)),
    _resolved("proxy_acme_consul", "str", "proxy", "Consul's HTTP API as the proxy host reaches it, C(HOST:PORT),"
              " where every proxy node reads the answers to ACME HTTP-01 challenges at each request.", modules=_ROUTED,
              default="127.0.0.1:8500", details=(
                  "C(GET /.well-known/acme-challenge/<token>) over plain HTTP gets the value of"
                  " C(dockerflow/proxy/acme-challenges/<token>), or 404; one not base64url gets 404 without asking.",)),
    _resolved("proxy_acme_consul_token", "str", "proxy", "ACL token of those reads, written into each proxy node's"
              " C(haproxy.cfg): not O(consul_token), but one whose policy is C(key_prefix \"dockerflow/proxy/acme-"
              "challenges/\" { policy = \"read\" }).", modules=_ROUTED, no_log=True, default_doc="none: anonymous"),
    _resolved("consul_dns", "str", "proxy", "Consul's DNS interface as the proxy host reaches it, C(HOST:PORT).",
              modules=_ROUTED, default="127.0.0.1:8600", details=(
                  "The proxy finds instances through it, so scaling and failing instances reach the proxy without a"
                  " flow call.",)),
    # --- step: options of some modules only -------------------------------------------------------
    _o("service_port", "int", "step", "Container port that is registered in Consul.", modules=(DEPLOY,),
       default_doc="the target's first published port"),
    _o("force", "bool", "step",
       "Deploy a new release even when the newest one already runs the same image and configuration.",
       modules=(DEPLOY,), default=False),
    _o("deployed_by", "str", "step", "Who deployed (or rolled back), as recorded in the release history.",
       modules=(DEPLOY, ROLLBACK), default_doc="C(user@host) of the module's process"),
    _o("legacy_names", "bool", "step",
       "Also register each instance as C(<service>-<color>), the name the original Docker Flow used.",
       modules=(DEPLOY,), default=False),
    _o("color", "str", "step",
       "Color to act on: M(dockerflow.flow.flow_scale) scales it (by default the live color, or the newest one before "
       "the first switch), M(dockerflow.flow.flow_proxy) routes the service to it and M(dockerflow.flow.flow_canary) "
       "makes it the canary (by default the newest release's).",
       modules=(SCALE, PROXY, CANARY), choices=ALL_COLORS,
       role_details=("The C(rollback) step always routes to the release it started.",)),
    _o("stop_timeout", "int", "step",
       "Seconds an instance gets to stop before it is killed (scaling down, stopping old releases).",
       modules=(SCALE, STOP_OLD, CANARY), default_doc="the container's own"),
    _o("switch_timeout", "int", "step", "Seconds to wait until the proxy sees the target color's servers up.",
       modules=(PROXY, CANARY), default=60),
    _o("canary_weight", "int", "step",
       "Percentage (0 to 100) of the service's requests to send to the canary, and nothing more: no gate, no "
       "promotion. V(0) sends them all to the live color again and ends the canary.", modules=(CANARY,),
       default_doc="none: the gated promotion of O(canary_steps)", details=(
           "Without it, the module steps the weight through O(canary_steps), checks the gate at each step, and"
           " promotes the canary once every step passed.",)),
    _o("canary_steps", "list", "step",
       "Weights (percentages, increasing, 1 to 100) the canary takes in turn, each for O(canary_dwell), before it is "
       "promoted.", modules=(CANARY,), default=["5", "25", "50", "100"]),
    _o("canary_dwell", "str", "step", "How long each step lasts: V(30s), V(500ms), V(2m), or a number of seconds.",
       modules=(CANARY,), default="30s"),
    _o("canary_max_error_ratio", "str", "step",
       "Highest share of 5xx answers (V(0.01) or V(1%)) the canary may give in a step; above it the canary fails.",
       modules=(CANARY,), default="0.01", details=(
           "Figures come from the proxy's own counters of the canary color's backend over the step.",)),
    _o("canary_max_response_time", "str", "step",
       "Highest average response time (V(250ms), V(2s)) of the canary in a step; above it the canary fails.",
       modules=(CANARY,), default_doc="no limit", details=(
           "HAProxy's average over the backend's last 1,024 requests.",)),
    _o("canary_against_live", "bool", "step",
       "Compare with the live color over the same step: the limits apply to how much worse the canary does.",
       modules=(CANARY,), default=False),
    _o("canary_min_requests", "int", "step",
       "Answers the canary must have given in a step before the gate may stop it early; at the end of a step it is "
       "judged on whatever it answered.", modules=(CANARY,), default=20),
    _o("canary_on_failure", "str", "step",
       "What happens to a canary that failed the gate, once its weight is 0: V(keep) it running (to look at it, or "
       "preview it), or V(stop) it.", modules=(CANARY,), default="keep", choices=("keep", "stop")),
    _o("proxy_certificates", "list", "step",
       "Certificates the proxy serves over HTTPS, recorded in Consul for every proxy node of O(proxy_name): each "
       "C(name), the PEM chain in C(cert) or a file C(cert_path), the PEM key in C(key) or a file C(key_path).",
       modules=(PROXY,), default=[], suboptions={
           "name": {"type": "str", "required": True,
                    "description": "A plain word (letters, digits, C(-), C(_)); V(default) is served to clients whose"
                                   " SNI names no other certificate."},
           "cert": {"type": "str", "description": "The certificate and its chain (PEM), the server's first."},
           "cert_path": {"type": "path", "description": "File on the module's host holding O(proxy_certificates[].cert)."},
           "key": {"type": "str", "no_log": True, "description": "The unencrypted private key (PEM)."},
           "key_path": {"type": "path", "no_log": False,
                        "description": "File on the module's host holding O(proxy_certificates[].key)."},
       }, details=(
           "Each is checked before anything changes (PEM, the key matches, not expired); a bad one fails naming"
           " C(proxy_certificates[N]) and its field. A certificate recorded with the same content changes nothing;"
           " a new content is written to every proxy node (mode 0600) and activated by a hitless reload.",
           "Results and diffs show names, domains and expiry, never a key. The keys are kept in Consul's KV store:"
           " allow C(dockerflow/proxy/certificates/) only to the tokens of those who may hold them.")),
    _o("state", "str", "step",
       "V(present) routes the service, V(absent) removes its routes, V(synced) renders every recorded route.",
       modules=(PROXY,), default="present", choices=("present", "absent", "synced"), role_var=None),
    # --- seed: read from FLOW_* and docker-flow.yml, no module parameter -----------------------------
    _o("flow", "list", "seed", "The steps to run (the flow role reads them).", modules=(),
       env=("FLOW",), file_keys=("flow",), default=["deploy"]),
    _o("proxy_host", "str", "seed", "The original's proxy host.", modules=(),
       env=("FLOW_PROXY_HOST",), file_keys=("proxy_host",)),
    _o("proxy_reconf_port", "int", "seed", "The original's proxy reconfiguration port.", modules=(),
       env=("FLOW_PROXY_RECONF_PORT",), file_keys=("proxy_reconf_port",), as_written=True),
)

OPTIONS = {option.name: option for option in TABLE}


def default(name: str) -> object:
    """The table's default of option ``name`` (a copy: callers may change a list)."""
    return copy.deepcopy(OPTIONS[name].default)


def accepted_by(module: str) -> list[Option]:
    """The options ``module`` takes as parameters: every shared option, and its own step options."""
    return [option for option in TABLE if option.shared or (option.group == "step" and module in option.modules)]


def used_by(module: str) -> frozenset:
    """Names of the options ``module`` uses; it ignores the other options it accepts."""
    return frozenset(option.name for option in TABLE if module in option.modules)


def module_spec(module: str) -> dict:
    """The argument spec of ``module``."""
    return {option.name: option.spec() for option in accepted_by(module)}


def group_spec(group: str) -> dict:
    """The argument spec entries of one group."""
    return {option.name: option.spec() for option in TABLE if option.group == group}
