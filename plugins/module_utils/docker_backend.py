# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run service instances as plain containers on one Docker engine.

The flows talk to a backend only through the methods of ``Backend``;
``swarm_backend.SwarmBackend`` implements the same interface with Swarm
services, their tasks being the instances. ``EngineBackend`` holds what both
do alike (errors, images, networks).
"""

from __future__ import annotations

import os
import re
import types
from dataclasses import dataclass, field
from urllib.parse import urlparse

from ansible_collections.dockerflow.flow.plugins.module_utils.addresses import is_loopback
from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError
from ansible_collections.dockerflow.flow.plugins.module_utils.labels import (
    LABEL_COLOR,
    LABEL_COMPOSE_SERVICE,
    LABEL_CONFIG_HASH,
    LABEL_CONTAINER_NUMBER,
    LABEL_NETWORK,
    LABEL_NUMBER,
    LABEL_ONEOFF,
    LABEL_PROJECT,
    LABEL_RELEASE,
    LABEL_SERVICE,
    LABEL_SIDE_TARGET,
    LABEL_VOLUME,
)

try:
    import docker
    import docker.errors
    import requests
    from docker.types import Mount

    HAS_DOCKER = True
    DOCKER_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - reported by the module
    HAS_DOCKER = False
    DOCKER_IMPORT_ERROR = str(exc)

PULL_POLICIES = ("always", "missing", "never")
# Docker's words for a host port another process or container holds.
_BUSY_PORT_RE = re.compile(
    r"(?:listen tcp[46]? |Bind for )(?P<address>\S+?):? (?:failed: )?(?:bind: )?(?P<reason>address already in use|"
    r"port is already allocated)"
)


@dataclass
class Instance:
    """One running (or stopped) copy of a release."""

    id: str
    name: str
    service: str
    color: str
    release: int
    number: int
    status: str  # created | running | exited | ...
    health: str | None  # healthy | unhealthy | starting | None (no Docker healthcheck)
    image: str
    config_hash: str
    created: str
    ports: dict = field(default_factory=dict)  # "8080/tcp" -> host port (int)
    exit_code: int | None = None
    address: str | None = None  # where its ports answer when not at the flow's service_address (a Swarm node)
    error: str | None = None  # why the engine gave up on it (a Swarm task's error)

    @property
    def running(self):
        return self.status == "running"

    def as_dict(self):
        result = {
            "id": self.id[:12],
            "name": self.name,
            "color": self.color,
            "release": self.release,
            "number": self.number,
            "status": self.status,
            "health": self.health,
            "image": self.image,
            "ports": self.ports,
        }
        if self.address:
            result["address"] = self.address
        return result


@dataclass
class DeploymentContext:
    """What names and labels a release's instances get, and how they are registered in Consul."""

    project: str
    target: str
    service: str
    publish_address: str
    register_port: str | None = None  # "8080/tcp": the port registered in Consul (None: not registered)
    check_http_path: str | None = None
    legacy_names: bool = False


class Backend:
    """The operations the flows need from an engine (a Swarm backend implements the same).

    ``registration_owner`` says who registers running instances in Consul: ``flow`` (the
    flow, right after it saw them healthy, and it deregisters them before stopping them) or
    ``registrator`` (the registrator of the node an instance runs on, from the labels
    ``run_instances`` gave it; the flow only waits for Consul to list them).
    """

    registration_owner = "flow"

    def list_instances(self, service):
        raise NotImplementedError

    def refresh(self, instance):
        raise NotImplementedError

    def resolve_image(self, image, pull_policy, check_mode=False):
        raise NotImplementedError

    def image_has_healthcheck(self, image):
        raise NotImplementedError

    def run_instances(self, spec, context, color, release, numbers, config_hash, compose_project=None, image_id=None):
        raise NotImplementedError

    def clone_instances(self, template, numbers):
        raise NotImplementedError

    def start(self, instances):
        """Start stopped instances; returns the started ones (a Swarm backend's are new tasks)."""
        raise NotImplementedError

    def stop(self, instances, timeout=None):
        raise NotImplementedError

    def remove(self, instances):
        raise NotImplementedError

    def retire(self, instances, timeout=None):
        """Take running instances away for good (scale-down); returns those that went.

        A Swarm backend only says how many go, and Swarm picks which: the result names them.
        """
        self.stop(instances, timeout=timeout)
        self.remove(instances)
        return list(instances)

    def discard(self, instances):
        """Undo what run_instances, clone_instances or start just created, after a failed step."""
        self.remove(instances)

    def logs(self, instance, tail=20):
        raise NotImplementedError

    def health_log(self, instance):
        raise NotImplementedError

    def ensure_side_target(self, spec, compose_project, project, pull, publish_address, check_mode=False):
        raise NotImplementedError

    def side_target_instance(self, spec, project):
        raise NotImplementedError


def docker_connection_settings(docker_host=None, cert_path=None, tls_verify=None, environ=None):
    """Resolve the engine address and TLS files the way the docker CLI does.

    Returns (base_url, tls_files or None, verify, warnings).
    """
    environ = os.environ if environ is None else environ
    warnings = []
    base_url = docker_host or environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    cert_path = cert_path or environ.get("DOCKER_CERT_PATH")
    if tls_verify is None:
        env_verify = environ.get("DOCKER_TLS_VERIFY")
        tls_verify = bool(env_verify) and env_verify not in ("0", "false", "False")
        if cert_path and not env_verify:
            tls_verify = True
    parsed = _parse_url(base_url)
    if parsed is None or parsed.scheme not in ("unix", "tcp", "http", "https", "ssh", "npipe"):
        raise FlowError(
            "docker_host=%r is not valid: use unix:///path, tcp://HOST:PORT or ssh://USER@HOST." % base_url
        )
    tls_files = None
    if cert_path:
        tls_files = {name: os.path.join(cert_path, name + ".pem") for name in ("ca", "cert", "key")}
        missing = [path for path in tls_files.values() if not os.path.isfile(path)]
        if missing:
            raise FlowError("cert_path %s lacks %s." % (cert_path, ", ".join(os.path.basename(m) for m in missing)))
    elif parsed.scheme in ("tcp", "http"):
        who = "every user and process on that machine" if is_loopback(parsed.hostname) else "anyone on the network"
        warnings.append(
            "docker_host %s is plain TCP without TLS: %s can control that engine. "
            "Set cert_path to use TLS." % (base_url, who)
        )
    return base_url, tls_files, tls_verify, warnings


def connect(docker_host=None, cert_path=None, tls_verify=None, timeout=60):
    """A DockerClient with the API version negotiated, and the warnings found on the way."""
    if not HAS_DOCKER:
        raise FlowError("The docker Python package (Docker SDK) is required: %s." % DOCKER_IMPORT_ERROR)
    base_url, tls_files, verify, warnings = docker_connection_settings(docker_host, cert_path, tls_verify)
    tls = False
    if tls_files:
        tls = docker.tls.TLSConfig(
            client_cert=(tls_files["cert"], tls_files["key"]),
            ca_cert=tls_files["ca"] if verify else None,
            verify=tls_files["ca"] if verify else False,
        )
        if base_url.startswith("tcp://"):
            base_url = "https://" + base_url[len("tcp://"):]
    try:
        client = _DockerClient(base_url=base_url, version="auto", tls=tls, timeout=timeout)
    except docker.errors.DockerException as exc:
        raise FlowError("Cannot reach the Docker engine at %s (docker_host): %s" % (base_url, _connection_error(exc, cert_path)))
    return client, warnings


if HAS_DOCKER:

    class _APIClient(docker.APIClient):
        """Keeps the TLS settings of cert_path and tls_verify: requests otherwise replaces them,
        for every request, with REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE from the environment
        (https://github.com/psf/requests/issues/3829), so the engine's CA would not be trusted
        and tls_verify=false would still verify."""

        def merge_environment_settings(self, url, proxies, stream, verify, cert):
            settings = super().merge_environment_settings(url, proxies, stream, verify, cert)
            if verify is None:
                settings["verify"] = self.verify
            return settings

    class _DockerClient(docker.DockerClient):
        def __init__(self, *args, **kwargs):  # pylint: disable=super-init-not-called
            # DockerClient.__init__ only builds its APIClient: this builds ours instead.
            self.api = _APIClient(*args, **kwargs)


def _connection_error(exc, cert_path):
    """Why the engine cannot be reached, in words that point at the option to fix."""
    text = str(exc)
    if "CERTIFICATE_VERIFY_FAILED" in text:
        reason = re.search(r"certificate verify failed: ([^(]*)", text)
        return "TLS: the engine's certificate is not trusted (%s): is ca.pem in cert_path %s the CA that signed it?" % (
            (reason.group(1).strip() if reason else "certificate verify failed"), cert_path)
    if re.search(r"alert (bad certificate|certificate required|unknown ca)|SSLEOFError|EOF occurred in violation", text):
        # TLS 1.3 engines refuse a client certificate after the handshake: the client sees an EOF.
        return ("TLS: the engine closed the connection, most likely rejecting the client certificate: are cert.pem "
                "and key.pem in cert_path %s signed by the CA the engine trusts (its --tlscacert)?" % cert_path)
    if "HTTP request to an HTTPS server" in text:
        return "the engine only speaks TLS: set cert_path (ca.pem, cert.pem, key.pem) for it."
    if "Caused by" in text:
        cause = _caused_by(text)
        return ("TLS handshake failed: %s." if "SSL" in text.rsplit("Caused by", maxsplit=1)[-1] else "%s.") % cause
    os_error = re.search(r"\w+Error\(\d+, '([^']*)'\)", text)  # ('Connection aborted.', FileNotFoundError(2, '...'))
    if os_error:
        return "%s." % os_error.group(1)
    return "%s." % _short(exc)


def _caused_by(text):
    """The reason inside urllib3's '... Max retries exceeded ... (Caused by X("<connection>: reason"))'."""
    cause = text.split("Caused by", 1)[1].strip()
    wrapped = re.match(r"\w+\((.*)\)\)$", cause, re.S)  # X(...) and the ')' of '(Caused by'
    cause = (wrapped.group(1) if wrapped else cause).strip("'\"")
    cause = re.sub(r"^(<[^>]*>|\w+\(host=[^)]*\)): ", "", cause)  # which connection: the message names it
    return re.sub(r"\s+", " ", cause).rstrip(".")[:300]


def _short(exc):
    text = str(exc).strip()
    for marker in ("Caused by", "(Caused"):
        if marker in text:
            text = text.split(marker, maxsplit=1)[0]
    return re.sub(r"\s+", " ", text)[:300].strip() or exc.__class__.__name__


def default_probe_address(docker_host, publish_address):
    """Where published ports can be reached from here: the bind address, else the engine's host."""
    if publish_address and publish_address not in ("0.0.0.0", "::", ""):
        return publish_address
    url = docker_host or os.environ.get("DOCKER_HOST") or ""
    parsed = _parse_url(url)  # an invalid docker_host is reported when connecting
    if parsed is not None and parsed.scheme in ("tcp", "http", "https", "ssh") and parsed.hostname:
        return parsed.hostname
    return "127.0.0.1"


def _parse_url(url):
    """urlparse's result, or None when the host or port part does not parse ('tcp://[x]:1', 'tcp://h:x')."""
    try:
        parsed = urlparse(url)
        _checked = (parsed.hostname, parsed.port)  # both raise ValueError on such URLs
    except ValueError:
        return None
    return parsed


class EngineBackend(Backend):
    """What both backends do alike on one engine: error translation, images, networks."""

    NETWORK_DRIVER = None  # None: the engine's default (bridge)
    NETWORK_OPTIONS = types.MappingProxyType({})  # more arguments of create_network

    def __init__(self, client):
        self.client = client
        self.api = client.api
        self.base_url = self.api.base_url

    # -- error translation -------------------------------------------------
    def _call(self, what, function, *args, **kwargs):
        try:
            return function(*args, **kwargs)
        except docker.errors.ImageNotFound as exc:
            raise FlowError("%s: image not found: %s." % (what, _short(exc)))
        except docker.errors.NotFound as exc:
            raise FlowError("%s: not found: %s." % (what, _short(exc)))
        except docker.errors.APIError as exc:
            explanation = exc.explanation or _short(exc)
            busy = _BUSY_PORT_RE.search(str(explanation))
            if busy:
                raise FlowError(
                    "%s failed: host port %s is taken (%s). A fixed host port cannot serve two instances or two colors "
                    "at once: publish the container port alone (for example '8080') so Docker picks a free one, or free "
                    "that port." % (what, busy.group("address"), busy.group("reason"))
                )
            raise FlowError("%s failed: %s." % (what, explanation))
        except requests.exceptions.ConnectionError:
            raise FlowError("Cannot reach the Docker engine at %s (docker_host) while %s." % (self.base_url, what))
        except requests.exceptions.Timeout:
            raise FlowError("The Docker engine at %s timed out while %s." % (self.base_url, what))
        except docker.errors.DockerException as exc:
            raise FlowError("%s failed: %s." % (what, _short(exc)))

    def ping(self):
        self._call("contacting the engine", self.api.ping)

    # -- images --------------------------------------------------------------
    def resolve_image(self, image, pull_policy, check_mode=False):
        """Make ``image`` present per ``pull_policy``; return (image id or None, pulled?)."""
        if pull_policy not in PULL_POLICIES:
            raise FlowError("pull=%r is not valid: use one of %s." % (pull_policy, ", ".join(PULL_POLICIES)))
        local = self._local_image_id(image)
        if pull_policy == "never" or (pull_policy == "missing" and local):
            if not local:
                raise FlowError("Image %s is not on the engine and pull is 'never'." % image)
            return local, False
        if check_mode:
            return local, local is None
        try:
            self.api.pull(image)
        except (docker.errors.APIError, docker.errors.DockerException) as exc:
            if local and pull_policy == "always":
                raise FlowError("Pulling %s failed: %s. Use pull=missing to deploy the local copy." % (image, _short(exc)))
            raise FlowError("Image %s is not on the engine and pulling it failed: %s." % (image, _short(exc)))
        return self._local_image_id(image), True

    def _local_image_id(self, image):
        try:
            return self.api.inspect_image(image)["Id"]
        except docker.errors.ImageNotFound:
            return None
        except docker.errors.APIError as exc:
            raise FlowError("Inspecting image %s failed: %s." % (image, exc.explanation or _short(exc)))
        except requests.exceptions.ConnectionError:
            raise FlowError("Cannot reach the Docker engine at %s (docker_host)." % self.base_url)

    def image_has_healthcheck(self, image):
        data = self._call("inspecting image %s" % image, self.api.inspect_image, image)
        test = ((data.get("Config") or {}).get("Healthcheck") or {}).get("Test")
        return bool(test) and test[0] != "NONE"

    # -- networks and volumes ---------------------------------------------
    def ensure_networks(self, project, compose_project, spec):
        """Create the project networks ``spec`` uses; return compose key -> engine name."""
        names = {}
        for key in spec.networks:
            undeclared = {"name": None, "external": False, "driver": None, "driver_opts": {}, "labels": {}}
            declared = compose_project.networks.get(key, undeclared)
            name = declared["name"] or "%s_%s" % (project, key)
            names[key] = name
            existing = [net for net in self._call("listing networks", self.api.networks, names=[name]) if net["Name"] == name]
            if existing:
                self._check_network(existing[0], key)
                continue
            if declared["external"]:
                raise FlowError("External network %s (networks.%s) does not exist; create it first." % (name, key))
            labels = dict(declared["labels"], **{LABEL_PROJECT: project, LABEL_NETWORK: key})
            self._call(
                "creating network %s" % name,
                self.api.create_network,
                name,
                driver=declared["driver"] or self.NETWORK_DRIVER,
                options=declared["driver_opts"] or None,
                labels=labels,
                check_duplicate=True,
                **self.NETWORK_OPTIONS,
            )
        return names

    def _check_network(self, network, key):
        """Refuse an existing network the instances cannot join (a backend's own rule)."""

    # -- side targets: found by name, started when stopped, created when missing -------------
    def ensure_side_target(self, spec, compose_project, project, pull, publish_address, check_mode=False):
        """Start ``spec`` if it is not running; returns 'created', 'started' or None (unchanged)."""
        name = self._side_target_name(spec, project)
        found = self._find_side_target(name)
        if pull and not check_mode:
            self.resolve_image(spec.image, "always")
        if found is not None:
            if self._side_target_runs(found):
                return None
            if not check_mode:
                self._start_side_target(found, spec, name)
            return "started"
        if check_mode:
            return "created"
        if not pull:
            self.resolve_image(spec.image, spec.pull_policy if spec.pull_policy in PULL_POLICIES else "missing")
        self._create_side_target(spec, compose_project, project, name, publish_address)
        return "created"

    def _side_target_name(self, spec, project):
        raise NotImplementedError

    def _find_side_target(self, name):
        """What the engine has of the side target named ``name``, None when nothing."""
        raise NotImplementedError

    def _side_target_runs(self, found):
        raise NotImplementedError

    def _start_side_target(self, found, spec, name):
        raise NotImplementedError

    def _create_side_target(self, spec, compose_project, project, name, publish_address):
        raise NotImplementedError


class ContainerBackend(EngineBackend):
    # -- listing -------------------------------------------------------------
    def _instance(self, data):
        labels = data["Config"]["Labels"] or {}
        state = data["State"]
        ports = {}
        for key, bindings in (data["NetworkSettings"].get("Ports") or {}).items():
            if bindings:
                ports[key] = int(bindings[0]["HostPort"])
        health = (state.get("Health") or {}).get("Status")
        return Instance(
            id=data["Id"],
            name=data["Name"].lstrip("/"),
            service=labels.get(LABEL_SERVICE, ""),
            color=labels.get(LABEL_COLOR, ""),
            release=int(labels.get(LABEL_RELEASE, "0") or 0),
            number=int(labels.get(LABEL_NUMBER, "0") or 0),
            status=state["Status"],
            health=health,
            image=data["Config"]["Image"],
            config_hash=labels.get(LABEL_CONFIG_HASH, ""),
            created=data["Created"],
            ports=ports,
            exit_code=state.get("ExitCode"),
        )

    def list_instances(self, service):
        summaries = self._call(
            "listing containers of %s" % service,
            self.api.containers,
            all=True,
            filters={"label": "%s=%s" % (LABEL_SERVICE, service)},
        )
        instances = []
        for summary in summaries:
            try:
                data = self.api.inspect_container(summary["Id"])
            except docker.errors.NotFound:  # removed between list and inspect
                continue
            instances.append(self._instance(data))
        return sorted(instances, key=lambda i: (i.color, i.number))

    def refresh(self, instance):
        return self._instance(self._call("inspecting %s" % instance.name, self.api.inspect_container, instance.id))

    def ensure_volumes(self, project, compose_project, spec):
        """Create the named volumes ``spec`` mounts; return compose key -> engine name."""
        names = {}
        for mount in spec.mounts:
            if mount.kind != "volume" or not mount.source:
                continue
            declared = compose_project.volumes[mount.source]
            name = declared["name"] or "%s_%s" % (project, mount.source)
            names[mount.source] = name
            try:
                self.api.inspect_volume(name)
                continue
            except docker.errors.NotFound:
                pass
            if declared["external"]:
                raise FlowError("External volume %s (volumes.%s) does not exist; create it first." % (name, mount.source))
            labels = dict(declared["labels"], **{LABEL_PROJECT: project, LABEL_VOLUME: mount.source})
            self._call(
                "creating volume %s" % name,
                self.api.create_volume,
                name,
                driver=declared["driver"] or "local",
                driver_opts=declared["driver_opts"] or None,
                labels=labels,
            )
        return names

    # -- creating ------------------------------------------------------------
    def _create_and_start(self, name, spec, image, environment, labels, network_names, volume_names, publish_address, aliases):
        ports = [(p.container_port, p.protocol) for p in spec.ports]
        exposed = []
        for item in spec.expose:
            number, _slash, protocol = str(item).partition("/")
            exposed.append((int(number), protocol or "tcp"))
        port_bindings = {}
        for port in spec.ports:
            key = "%d/%s" % (port.container_port, port.protocol)
            binding = (port.host_ip or publish_address, port.host_port) if port.host_port else (port.host_ip or publish_address,)
            port_bindings.setdefault(key, []).append(binding)
        mounts = []
        for mount in spec.mounts:
            if mount.kind == "bind":
                mounts.append(Mount(target=mount.target, source=mount.source, type="bind", read_only=mount.read_only))
            elif mount.kind == "volume":
                source = volume_names.get(mount.source) if mount.source else None
                mounts.append(Mount(target=mount.target, source=source, type="volume", read_only=mount.read_only))
            else:
                mounts.append(Mount(target=mount.target, source=None, type="tmpfs"))
        restart_policy = None
        if spec.restart and spec.restart != "no":
            policy, _colon, retries = spec.restart.partition(":")
            restart_policy = {"Name": policy, "MaximumRetryCount": int(retries or 0)}
        network_keys = list(spec.networks)
        first_network = network_names[network_keys[0]]
        host_config = self.api.create_host_config(
            port_bindings=port_bindings or None,
            mounts=mounts or None,
            restart_policy=restart_policy,
            extra_hosts=[h.replace("=", ":", 1) if "=" in h else h for h in spec.extra_hosts] or None,
            tmpfs=spec.tmpfs or None,
            read_only=spec.read_only or None,
            init=spec.init,
            cap_add=spec.cap_add or None,
            cap_drop=spec.cap_drop or None,
            log_config=spec.logging,
            network_mode=first_network,
        )
        networking_config = self.api.create_networking_config(
            {first_network: self.api.create_endpoint_config(aliases=aliases + spec.networks[network_keys[0]]["aliases"])}
        )
        created = self._call(
            "creating container %s" % name,
            self.api.create_container,
            image,
            command=spec.command,
            name=name,
            entrypoint=spec.entrypoint,
            environment=environment,
            labels=labels,
            ports=ports + exposed or None,
            hostname=spec.hostname,
            user=spec.user,
            working_dir=spec.working_dir,
            stop_signal=spec.stop_signal,
            stop_timeout=spec.stop_grace_period,
            healthcheck=spec.healthcheck,
            host_config=host_config,
            networking_config=networking_config,
        )
        container_id = created["Id"]
        try:
            for key in network_keys[1:]:
                self._call(
                    "connecting %s to %s" % (name, network_names[key]),
                    self.api.connect_container_to_network,
                    container_id,
                    network_names[key],
                    aliases=aliases + spec.networks[key]["aliases"],
                )
            self._call("starting %s" % name, self.api.start, container_id)
        except FlowError:
            self._force_remove(container_id)
            raise
        return container_id

    def run_instances(self, spec, context, color, release, numbers, config_hash, compose_project=None, image_id=None):
        network_names = self.ensure_networks(context.project, compose_project, spec)
        volume_names = self.ensure_volumes(context.project, compose_project, spec)
        created = []
        compose_service = context.target if color == "plain" else "%s-%s" % (context.target, color)
        try:
            for number in numbers:
                name = "%s-%s-%d" % (context.project, compose_service, number)
                labels = dict(spec.labels)
                labels.update(
                    {
                        LABEL_SERVICE: context.service,
                        LABEL_COLOR: color,
                        LABEL_RELEASE: str(release),
                        LABEL_NUMBER: str(number),
                        LABEL_CONFIG_HASH: config_hash,
                        LABEL_PROJECT: context.project,
                        LABEL_COMPOSE_SERVICE: compose_service,
                        LABEL_CONTAINER_NUMBER: str(number),
                        LABEL_ONEOFF: "False",
                    }
                )
                environment = dict(spec.environment)
                environment.update(
                    {"DOCKERFLOW_SERVICE": context.service, "DOCKERFLOW_COLOR": color, "DOCKERFLOW_RELEASE": str(release)}
                )
                self._remove_conflicting_name(name, context.service)
                container_id = self._create_and_start(
                    name, spec, spec.image, environment, labels, network_names, volume_names, context.publish_address,
                    [context.target, compose_service],
                )
                created.append(container_id)
        except FlowError:
            for container_id in created:
                self._force_remove(container_id)
            raise
        return [self.refresh_by_id(container_id) for container_id in created]

    def _remove_conflicting_name(self, name, service):
        """A leftover container of this service with the same name (a killed earlier run) is ours to replace."""
        try:
            data = self.api.inspect_container(name)
        except docker.errors.NotFound:
            return
        labels = data["Config"]["Labels"] or {}
        if labels.get(LABEL_SERVICE) != service:
            raise FlowError("A container named %s already exists and does not belong to service %s." % (name, service))
        self._force_remove(data["Id"])

    def refresh_by_id(self, container_id):
        return self._instance(self._call("inspecting %s" % container_id[:12], self.api.inspect_container, container_id))

    def clone_instances(self, template, numbers):
        """New instances configured exactly like ``template`` (scaling needs no compose file)."""
        data = self._call("inspecting %s" % template.name, self.api.inspect_container, template.id)
        config = data["Config"]
        host_config = dict(data["HostConfig"])
        networks = data["NetworkSettings"].get("Networks") or {}
        network_names = list(networks)
        first = host_config.get("NetworkMode") if host_config.get("NetworkMode") in networks else network_names[0]
        created = []
        base_name = template.name.rsplit("-", 1)[0]
        try:
            for number in numbers:
                name = "%s-%d" % (base_name, number)
                labels = dict(config.get("Labels") or {})
                labels[LABEL_NUMBER] = str(number)
                labels[LABEL_CONTAINER_NUMBER] = str(number)
                self._remove_conflicting_name(name, template.service)
                endpoint = networks[first]
                aliases = [a for a in (endpoint.get("Aliases") or []) if not template.id.startswith(a)]
                networking_config = self.api.create_networking_config(
                    {first: self.api.create_endpoint_config(aliases=aliases)}
                )
                created_data = self._call(
                    "creating container %s" % name,
                    self.api.create_container,
                    config["Image"],
                    command=config.get("Cmd"),
                    name=name,
                    entrypoint=config.get("Entrypoint"),
                    environment=config.get("Env"),
                    labels=labels,
                    ports=[tuple(p.split("/")) for p in (config.get("ExposedPorts") or {})] or None,
                    hostname=config.get("Hostname") if config.get("Hostname") != template.id[:12] else None,
                    user=config.get("User") or None,
                    working_dir=config.get("WorkingDir") or None,
                    stop_signal=config.get("StopSignal"),
                    stop_timeout=config.get("StopTimeout"),
                    healthcheck=config.get("Healthcheck"),
                    host_config=host_config,
                    networking_config=networking_config,
                )
                container_id = created_data["Id"]
                created.append(container_id)
                for network in network_names:
                    if network == first:
                        continue
                    other_aliases = [a for a in (networks[network].get("Aliases") or []) if not template.id.startswith(a)]
                    self._call(
                        "connecting %s to %s" % (name, network),
                        self.api.connect_container_to_network,
                        container_id,
                        network,
                        aliases=other_aliases,
                    )
                self._call("starting %s" % name, self.api.start, container_id)
        except FlowError:
            for container_id in created:
                self._force_remove(container_id)
            raise
        return [self.refresh_by_id(container_id) for container_id in created]

    # -- lifecycle -------------------------------------------------------------
    def start(self, instances):
        for instance in instances:
            self._call("starting %s" % instance.name, self.api.start, instance.id)
        return [self.refresh(instance) for instance in instances]

    def stop(self, instances, timeout=None):
        for instance in instances:
            kwargs = {} if timeout is None else {"timeout": timeout}
            self._call("stopping %s" % instance.name, self.api.stop, instance.id, **kwargs)

    def remove(self, instances):
        for instance in instances:
            self._force_remove(instance.id)

    def _force_remove(self, container_id):
        try:
            self.api.remove_container(container_id, force=True, v=False)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            if "already in progress" not in str(exc):
                raise FlowError("Removing container %s failed: %s." % (container_id[:12], exc.explanation or _short(exc)))

    def logs(self, instance, tail=20):
        try:
            raw = self.api.logs(instance.id, stdout=True, stderr=True, tail=tail)
        except docker.errors.DockerException:
            return ""
        return raw.decode("utf-8", "replace").strip()

    def health_log(self, instance):
        """The output of the last Docker healthcheck run, for failure messages."""
        try:
            data = self.api.inspect_container(instance.id)
        except docker.errors.DockerException:
            return ""
        log = ((data["State"].get("Health") or {}).get("Log")) or []
        return (log[-1].get("Output") or "").strip() if log else ""

    # -- side targets ----------------------------------------------------------
    def _side_target_name(self, spec, project):
        return spec.container_name or "%s-%s-1" % (project, spec.name)

    def _find_side_target(self, name):
        try:
            return self.api.inspect_container(name)
        except docker.errors.NotFound:
            return None
        except requests.exceptions.ConnectionError:
            raise FlowError("Cannot reach the Docker engine at %s (docker_host)." % self.base_url)

    def _side_target_runs(self, found):
        return found["State"]["Status"] == "running"

    def _start_side_target(self, found, spec, name):
        self._call("starting side target %s" % name, self.api.start, found["Id"])

    def _create_side_target(self, spec, compose_project, project, name, publish_address):
        network_names = self.ensure_networks(project, compose_project, spec)
        volume_names = self.ensure_volumes(project, compose_project, spec)
        labels = dict(spec.labels)
        labels.update(
            {
                LABEL_PROJECT: project,
                LABEL_COMPOSE_SERVICE: spec.name,
                LABEL_CONTAINER_NUMBER: "1",
                LABEL_ONEOFF: "False",
                LABEL_SIDE_TARGET: "true",
            }
        )
        self._create_and_start(
            name, spec, spec.image, dict(spec.environment), labels, network_names, volume_names, publish_address, [spec.name]
        )

    def side_target_instance(self, spec, project):
        name = self._side_target_name(spec, project)
        data = self._call("inspecting side target %s" % name, self.api.inspect_container, name)
        return self._instance(data)
