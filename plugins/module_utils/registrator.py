# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A registrator: the published ports of the containers on one Docker engine, registered in
the local Consul agent, the way ``gliderlabs/registrator`` did (that image is abandoned; its
Docker client is years older than the engines that now refuse old API versions).

The daemon resyncs on start (registers every running container, deregisters the dangling
entries it made earlier), then follows the engine's container events and registers or
deregisters within milliseconds, and resyncs again every ``--resync`` seconds as a safety
net. Run it with::

    python3 -m ansible_collections.dockerflow.flow.plugins.module_utils.registrator \\
        --consul http://127.0.0.1:8500 --ip 10.0.0.5

Conventions (container environment or labels named exactly ``SERVICE_*``; labels win over
the environment and ``SERVICE_<port>_*`` wins over ``SERVICE_*`` for that container port):

- one service a published port; ports that are only exposed are not registered;
- ``SERVICE_NAME`` / ``SERVICE_<port>_NAME``: the service name, else the image's basename;
  when the container publishes several ports, ``-<port>`` is appended unless the name came
  from ``SERVICE_<port>_NAME``;
- ``SERVICE_TAGS`` (comma-separated, added to ``--tags``), ``SERVICE_ID``;
- ``SERVICE_IGNORE=true`` skips the container (``SERVICE_<port>_IGNORE`` one port);
  ``--explicit`` registers only ports that have a name set;
- ``SERVICE_CHECK_HTTP=/path`` (or ``SERVICE_CHECK_HTTPS``, with
  ``SERVICE_CHECK_TLS_SKIP_VERIFY``), ``SERVICE_CHECK_TCP=true``, ``SERVICE_CHECK_TTL=30s``,
  ``SERVICE_CHECK_INTERVAL`` (default 10s), ``SERVICE_CHECK_TIMEOUT``,
  ``SERVICE_CHECK_INITIAL_STATUS``, ``SERVICE_CHECK_DEREGISTER_AFTER``.

Containers labelled ``dockerflow.service`` are the flow modules' instances. Plain containers
among them are the flow's to register; when one starts again on a new ephemeral host port (its
restart policy, a daemon restart), the registrator points the flow's entry at that port
(``flow_repairs``), on the container's start event and at every resync. Swarm tasks, which also carry
``dockerflow.register-port``, are this registrator's to register, exactly as the flow would
(``registration.Registration``: service ``dockerflow.service`` tagged with its color and
release, ID ``dockerflow-<container name>``, the check on ``dockerflow.check-http`` or TCP),
whatever ``--explicit`` and ``--require-label`` say; their check starts critical, so the flow,
which waits for them to pass, and the proxy see them only once they answer. Other service IDs
are ``<node>:<container name>:<container port>`` (``:udp`` added for UDP). Every entry carries
``Meta[dockerflow-registrator] = <node>``; the cleanup of dangling entries only ever touches
entries with this node's mark.

The address is the port's host binding when the port is published on one address (a port
bound to 127.0.0.1 answers nowhere else), and ``--ip`` when it is published on all of them.

Only the Python standard library is needed at run time: the Docker Engine API (version
negotiated with the engine) and the Consul agent API are spoken over plain HTTP, so the
image builds from any base image with python3 and without network access.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import ipaddress
import json
import os
import queue
import re
import signal
import socket
import sys
import threading
import time
import traceback
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from urllib.parse import quote, urlencode, urlparse

from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError
from ansible_collections.dockerflow.flow.plugins.module_utils.labels import (
    LABEL_CHECK_HTTP,
    LABEL_COLOR,
    LABEL_LEGACY_NAMES,
    LABEL_REGISTER_PORT,
    LABEL_RELEASE,
    LABEL_SERVICE,
)
from ansible_collections.dockerflow.flow.plugins.module_utils.registration import (
    LEGACY_ID_SUFFIX,
    META_CHECK_HTTP,
    META_COLOR,
    META_CONTAINER,
    META_PORT,
    META_RELEASE,
    META_SERVICE,
    Registration,
    service_id_for,
    url_host,
)

META_REGISTRATOR = "dockerflow-registrator"  # value: the node (registrator) that made the entry
META_CONTAINER_ID = "dockerflow-container-id"
META_SPEC = "dockerflow-registrator-spec"  # fingerprint of the registration: unchanged ones are not re-sent
DEFAULT_CHECK_INTERVAL = "10s"  # registrator's default
DEFAULT_RESYNC = 30
WILDCARD_ADDRESSES = ("", "0.0.0.0", "::")
CHECK_STATUSES = ("passing", "warning", "critical")
EVENT_ACTIONS = ("start", "unpause", "die", "stop", "kill", "pause", "destroy", "rename")
_TRUE = ("1", "true", "yes", "on", "y", "t")
_DURATION_RE = re.compile(r"^([0-9]+(\.[0-9]+)?(ns|us|\u00b5s|ms|s|m|h))+$")
_HOST_RE = re.compile(r"^[A-Za-z0-9._-]+$")
_API_VERSION_RE = re.compile(r"^[0-9]+\.[0-9]+$")


def log(message):
    sys.stdout.write("%s registrator: %s\n" % (time.strftime("%Y-%m-%dT%H:%M:%S"), message))
    sys.stdout.flush()


def _truthy(value):
    return str(value or "").strip().lower() in _TRUE


# -- inspect data -> registrations ---------------------------------------------------------


@dataclass
class Settings:
    """What every registration of this registrator shares."""

    node: str
    ip: str
    tags: tuple = ()
    explicit: bool = False
    require_label: str | None = None  # KEY or KEY=VALUE: only containers with that label
    check_interval: str = DEFAULT_CHECK_INTERVAL

    def __post_init__(self):
        if not self.node or not _HOST_RE.match(self.node):
            raise FlowError("node=%r is not valid: use letters, digits, '.', '_' and '-'." % self.node)
        if not valid_address(self.ip):
            raise FlowError("ip=%r is not an IP address or host name." % self.ip)
        if not _DURATION_RE.match(self.check_interval):
            raise FlowError("check interval %r is not a duration such as 10s or 1m." % self.check_interval)
        self.tags = tuple(tag for tag in (t.strip() for t in self.tags) if tag)

    def wants(self, labels):
        if not self.require_label:
            return True
        key, sep, value = self.require_label.partition("=")
        return key in labels and (not sep or labels[key] == value)


def valid_address(text):
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return bool(text) and bool(_HOST_RE.match(text)) and not text.startswith("-")


@dataclass
class ServiceEntry:
    """One service to register in the agent: one published port of one container."""

    service_id: str
    name: str
    address: str
    port: int
    tags: list
    node: str
    container: str
    container_id: str
    check: dict | None = None
    flow_meta: dict = field(default_factory=dict)  # a flow instance's registration meta (registration.py)

    def meta(self):
        return dict(
            self.flow_meta,
            **{META_REGISTRATOR: self.node, META_CONTAINER: self.container, META_CONTAINER_ID: self.container_id},
        )

    def _payload(self):
        payload = {
            "ID": self.service_id,
            "Name": self.name,
            "Address": self.address,
            "Port": self.port,
            "Tags": list(self.tags),
            "Meta": self.meta(),
        }
        if self.check:
            payload["Check"] = dict(self.check)
        return payload

    def fingerprint(self):
        return hashlib.sha256(json.dumps(self._payload(), sort_keys=True).encode()).hexdigest()[:16]

    def payload(self):
        """The body of PUT /v1/agent/service/register."""
        payload = self._payload()
        payload["Meta"][META_SPEC] = self.fingerprint()
        return payload


@dataclass
class Mapping:
    """What one container maps to: its entries, or why it has none, and what was wrong."""

    entries: list = field(default_factory=list)
    skipped: str | None = None
    warnings: list = field(default_factory=list)


@dataclass(frozen=True)
class PublishedPort:
    number: str  # the container port, "8080"
    proto: str  # tcp | udp | sctp
    host_ip: str
    host_port: int


def service_attributes(config):
    """(general, per_port) SERVICE_* attributes, lower-cased without the prefix.

    ``SERVICE_8080_NAME`` goes to ``per_port["8080"]["name"]``. The environment is read
    first and labels override it, as registrator did.
    """
    pairs = []
    for item in config.get("Env") or []:
        key, sep, value = item.partition("=")
        if sep:
            pairs.append((key, value))
    pairs.extend((config.get("Labels") or {}).items())
    general, per_port = {}, {}
    for key, value in pairs:
        if not key.startswith("SERVICE_") or len(key) == len("SERVICE_"):
            continue
        attribute = key[len("SERVICE_"):].lower()
        head, sep, rest = attribute.partition("_")
        if head.isdigit() and sep and rest:
            per_port.setdefault(str(int(head)), {})[rest] = value
        else:
            general[attribute] = value
    return general, per_port


def published_ports(inspect):
    """The container's published ports, one per container port and protocol, in port order.

    A port published on several addresses (Docker binds 0.0.0.0 and :: for ``-p 8080``)
    counts once, with its IPv4 binding when there is one.
    """
    found = []
    for key, bindings in ((inspect.get("NetworkSettings") or {}).get("Ports") or {}).items():
        number, _slash, proto = key.partition("/")
        chosen = None
        for binding in bindings or []:
            host_port = str(binding.get("HostPort") or "")
            if not host_port.isdigit() or int(host_port) == 0:
                continue
            if chosen is None or (":" in (chosen.get("HostIp") or "") and ":" not in (binding.get("HostIp") or "")):
                chosen = binding
        if chosen is not None and number.isdigit():
            found.append(PublishedPort(str(int(number)), proto or "tcp", chosen.get("HostIp") or "", int(chosen["HostPort"])))
    return sorted(found, key=lambda port: (int(port.number), port.proto))


def image_basename(image):
    """``registry:5000/team/books-ms:1.2`` -> ``books-ms`` (registrator's default name)."""
    base = (image or "").split("@", 1)[0].rstrip("/").rsplit("/", 1)[-1]
    return base.split(":", 1)[0] or "container"


def build_check(attributes, address, port, settings, warnings):
    """The Consul check of one registration, from its SERVICE_CHECK_* attributes (or None)."""
    host = url_host(address)
    if attributes.get("check_http") or attributes.get("check_https"):
        scheme = "https" if attributes.get("check_https") else "http"
        path = attributes.get("check_https") or attributes.get("check_http")
        if not path.startswith("/"):
            path = "/" + path
        check = {"HTTP": "%s://%s:%d%s" % (scheme, host, port, path)}
        if scheme == "https" and _truthy(attributes.get("check_tls_skip_verify")):
            check["TLSSkipVerify"] = True
    elif _truthy(attributes.get("check_tcp")):
        check = {"TCP": "%s:%d" % (host, port)}
    elif attributes.get("check_ttl"):
        if not _DURATION_RE.match(attributes["check_ttl"]):
            warnings.append("SERVICE_CHECK_TTL=%r is not a duration; no check registered" % attributes["check_ttl"])
            return None
        check = {"TTL": attributes["check_ttl"]}
    else:
        for kind in ("check_script", "check_cmd", "check_docker"):
            if attributes.get(kind):
                warnings.append("SERVICE_%s is not supported (script checks are off in most agents); "
                                "use SERVICE_CHECK_HTTP or SERVICE_CHECK_TCP" % kind.upper())
        return None
    if "TTL" not in check:
        interval = attributes.get("check_interval") or settings.check_interval
        if not _DURATION_RE.match(interval):
            warnings.append("SERVICE_CHECK_INTERVAL=%r is not a duration; using %s" % (interval, settings.check_interval))
            interval = settings.check_interval
        check["Interval"] = interval
        timeout = attributes.get("check_timeout")
        if timeout and _DURATION_RE.match(timeout):
            check["Timeout"] = timeout
        elif timeout:
            warnings.append("SERVICE_CHECK_TIMEOUT=%r is not a duration; Consul's default is used" % timeout)
    status = (attributes.get("check_initial_status") or "").strip().lower()
    if status in CHECK_STATUSES:
        check["Status"] = status
    elif status:
        warnings.append("SERVICE_CHECK_INITIAL_STATUS=%r is not one of %s" % (status, ", ".join(CHECK_STATUSES)))
    deregister_after = attributes.get("check_deregister_after")
    if deregister_after and _DURATION_RE.match(deregister_after):
        check["DeregisterCriticalServiceAfter"] = deregister_after
    elif deregister_after:
        warnings.append("SERVICE_CHECK_DEREGISTER_AFTER=%r is not a duration; ignored" % deregister_after)
    return check


def _split_tags(text):
    return [tag.strip() for tag in (text or "").split(",") if tag.strip()]


def _unique(items):
    seen = []
    for item in items:
        if item not in seen:
            seen.append(item)
    return seen


def map_container(inspect, settings):
    """Container inspect data (``GET /containers/{id}/json``) -> its registrations."""
    config = inspect.get("Config") or {}
    labels = config.get("Labels") or {}
    state = inspect.get("State") or {}
    name = (inspect.get("Name") or "").lstrip("/") or inspect.get("Id", "")[:12]
    if LABEL_SERVICE in labels and LABEL_REGISTER_PORT not in labels:
        return Mapping(skipped="labelled %s (the flow modules register it)" % LABEL_SERVICE)
    if LABEL_SERVICE not in labels and not settings.wants(labels):
        return Mapping(skipped="no label %s" % settings.require_label)
    if not state.get("Running") or state.get("Paused"):
        return Mapping(skipped="not running")
    if LABEL_SERVICE in labels:
        return map_flow_instance(inspect, name, labels, settings)
    general, per_port = service_attributes(config)
    if _truthy(general.get("ignore")) and not any("ignore" in attrs for attrs in per_port.values()):
        return Mapping(skipped="SERVICE_IGNORE is set")
    ports = published_ports(inspect)
    if not ports:
        return Mapping(skipped="publishes no port")
    group = len(ports) > 1
    default_name = image_basename(config.get("Image"))
    mapping = Mapping()
    for port in ports:
        port_attributes = per_port.get(port.number, {})
        attributes = dict(general, **port_attributes)
        if _truthy(attributes.get("ignore")):
            continue
        if settings.explicit and not attributes.get("name"):
            continue
        if port_attributes.get("name"):
            service = port_attributes["name"]
        else:
            service = attributes.get("name") or default_name
            if group:
                service += "-" + port.number
        if port_attributes.get("id"):
            service_id = port_attributes["id"]
        elif general.get("id"):
            service_id = general["id"] + (":" + port.number if group else "")
        else:
            service_id = "%s:%s:%s" % (settings.node, name, port.number)
        tags = list(settings.tags) + _split_tags(attributes.get("tags"))
        if port.proto != "tcp":
            service_id += ":" + port.proto
            tags.append(port.proto)
        address = settings.ip if port.host_ip in WILDCARD_ADDRESSES else port.host_ip
        mapping.entries.append(
            ServiceEntry(
                service_id=service_id,
                name=service,
                address=address,
                port=port.host_port,
                tags=_unique(tags),
                node=settings.node,
                container=name,
                container_id=inspect.get("Id", ""),
                check=build_check(attributes, address, port.host_port, settings, mapping.warnings),
            )
        )
    if not mapping.entries:
        mapping.skipped = "every published port is ignored" if not settings.explicit else "no port has a SERVICE_NAME"
    return mapping


def map_flow_instance(inspect, name, labels, settings):
    """A running flow instance whose registration is ours (a Swarm task): its ``Registration``."""
    number, _slash, proto = labels[LABEL_REGISTER_PORT].partition("/")
    port = next((p for p in published_ports(inspect) if p.number == number and p.proto == (proto or "tcp")), None)
    if port is None:
        return Mapping(skipped="does not publish %s=%s" % (LABEL_REGISTER_PORT, labels[LABEL_REGISTER_PORT]))
    try:
        release = int(labels.get(LABEL_RELEASE) or 0)
    except ValueError:
        return Mapping(skipped="%s=%r is not a number" % (LABEL_RELEASE, labels.get(LABEL_RELEASE)))
    registration = Registration(
        service=labels[LABEL_SERVICE],
        service_id=service_id_for(name),
        address=settings.ip if port.host_ip in WILDCARD_ADDRESSES else port.host_ip,
        port=port.host_port,
        color=labels.get(LABEL_COLOR) or "plain",
        release=release,
        container=name,
        check_http_path=labels.get(LABEL_CHECK_HTTP) or None,
        container_port=labels[LABEL_REGISTER_PORT],
        initial_status=None,
    )
    mapping = Mapping()
    for payload in registration.payloads(legacy_names=_truthy(labels.get(LABEL_LEGACY_NAMES))):
        mapping.entries.append(
            ServiceEntry(
                service_id=payload["ID"],
                name=payload["Name"],
                address=payload["Address"],
                port=payload["Port"],
                tags=payload["Tags"],
                node=settings.node,
                container=name,
                container_id=inspect.get("Id", ""),
                check=payload["Check"],
                flow_meta=payload["Meta"],
            )
        )
    return mapping


def flow_repairs(inspect, services):
    """Payloads that point the flow's own registrations of this plain container at the host port it
    publishes now ([] when they already do, or are not the flow's).

    The flow registers its plain containers itself, once, with the host port Docker gave them. A
    container that starts again (its restart policy, a daemon restart) gets a new ephemeral port, and
    its registration would send the proxy to whatever took the old one: another instance, another
    service, or nothing. Its check starts critical, as for any instance a registrator sees start.
    """
    labels = (inspect.get("Config") or {}).get("Labels") or {}
    name = (inspect.get("Name") or "").lstrip("/")
    if LABEL_SERVICE not in labels or LABEL_REGISTER_PORT in labels or not (inspect.get("State") or {}).get("Running"):
        return []
    service_id = service_id_for(name)
    entry = services.get(service_id) or {}
    meta = entry.get("Meta") or {}
    if META_REGISTRATOR in meta or meta.get(META_CONTAINER) != name or not meta.get(META_PORT):
        return []  # not the flow's entry, or made by a collection that did not record the container port
    number, _slash, proto = meta[META_PORT].partition("/")
    port = next((p for p in published_ports(inspect) if p.number == number and p.proto == (proto or "tcp")), None)
    if port is None or port.host_port == entry.get("Port"):
        return []
    try:
        release = int(meta.get(META_RELEASE) or 0)
    except ValueError:
        return []
    registration = Registration(
        service=meta[META_SERVICE], service_id=service_id, address=entry.get("Address") or port.host_ip,
        port=port.host_port, color=meta.get(META_COLOR) or "plain", release=release, container=name,
        check_http_path=meta.get(META_CHECK_HTTP) or None, container_port=meta[META_PORT], initial_status=None,
    )
    return registration.payloads(legacy_names=service_id + LEGACY_ID_SUFFIX in services)


# -- the Consul agent API ----------------------------------------------------------------


class ConsulAgent:
    """The three agent calls a registrator needs, over the standard library.

    Takes the same ``consul_address`` forms as ``consul_state.ConsulClient`` and raises
    FlowErrors naming the address; no proxy settings apply (the agent is local).
    """

    def __init__(self, address, token=None, timeout=5):
        text = address if "//" in address else "http://" + address
        parsed = urlparse(text)
        if parsed.scheme not in ("http", "https") or not parsed.hostname or not valid_address(parsed.hostname):
            raise FlowError("consul address %r is not valid: expected http(s)://HOST:PORT." % address)
        try:
            port = parsed.port or (443 if parsed.scheme == "https" else 8500)
        except ValueError:
            raise FlowError("consul address %r has an invalid port." % address)
        self.address = address
        self.base = "%s://%s:%d" % (parsed.scheme, url_host(parsed.hostname), port)
        self.token = token or None
        self.timeout = timeout
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def _request(self, method, path, body=None, what=""):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method)
        if self.token:
            request.add_header("X-Consul-Token", self.token)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                text = response.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", "replace").strip().splitlines()
            if exc.code == 403:
                raise FlowError(
                    "Consul at %s denied %s: the ACL token (CONSUL_HTTP_TOKEN) lacks the permission." % (self.address, what)
                )
            reason = detail[0] if detail else exc.reason
            raise FlowError("Consul at %s refused %s: HTTP %d %s." % (self.address, what, exc.code, reason))
        except (OSError, http.client.HTTPException) as exc:
            raise FlowError("Cannot reach Consul at %s while %s: %s." % (self.address, what, exc))
        return json.loads(text) if text.strip() else None

    def services(self):
        return self._request("GET", "/v1/agent/services", what="listing agent services") or {}

    def register(self, payload):
        self._request("PUT", "/v1/agent/service/register", payload, what="registering %s" % payload["ID"])

    def deregister(self, service_id):
        self._request("PUT", "/v1/agent/service/deregister/%s" % quote(service_id, safe=""), what="deregistering %s" % service_id)


# -- the Docker Engine API ---------------------------------------------------------------


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout):
        super().__init__("localhost", timeout=timeout)
        self.socket_path = path

    def connect(self):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self.socket_path)
        self.sock = sock


class DockerAPI:
    """The engine calls a registrator needs: list, inspect, and the event stream.

    The API version is the engine's own (from ``/_ping``), so engines that refuse old
    clients (the reason registrator stopped working) are served at their current version.
    """

    def __init__(self, url="unix:///var/run/docker.sock", timeout=10):
        parsed = urlparse(url)
        if parsed.scheme == "unix" and parsed.path:
            self._connect = lambda timeout: _UnixConnection(parsed.path, timeout)
        elif parsed.scheme in ("tcp", "http") and parsed.hostname:
            host, port = parsed.hostname, parsed.port or 2375
            self._connect = lambda timeout: http.client.HTTPConnection(host, port, timeout=timeout)
        else:
            raise FlowError("docker %r is not valid: use unix:///var/run/docker.sock or tcp://HOST:PORT (no TLS)." % url)
        self.url = url
        self.timeout = timeout
        self.prefix = None
        self.api_version = None

    def _open(self, method, path, params=None, timeout=None):
        if self.prefix is None and path != "/_ping":
            self.negotiate()
        target = (self.prefix or "") + path
        if params:
            target += "?" + urlencode(params)
        connection = self._connect(self.timeout if timeout is None else timeout)
        try:
            connection.request(method, target)
            return connection, connection.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            connection.close()
            raise FlowError("Cannot reach the Docker engine at %s while requesting %s: %s." % (self.url, path, exc))

    def _call(self, path, params=None):
        """(status, headers, body) of one GET."""
        connection, response = self._open("GET", path, params)
        try:
            body = response.read()
        except (OSError, http.client.HTTPException) as exc:
            raise FlowError("The Docker engine at %s failed while answering %s: %s." % (self.url, path, exc))
        finally:
            connection.close()
        return response.status, response, body

    def _get(self, path, params=None, allow_missing=False):
        """Decoded JSON of one GET; None for a 404 when ``allow_missing``."""
        status, _headers, body = self._call(path, params)
        if status == 404 and allow_missing:
            return None
        if status >= 400:
            raise FlowError("The Docker engine at %s refused %s: HTTP %d %s." % (self.url, path, status, _message(body)))
        return json.loads(body) if body.strip() else None

    def negotiate(self):
        """Use the engine's own API version from now on; returns it (None: unversioned paths)."""
        status, response, _body = self._call("/_ping")
        if status >= 400:
            raise FlowError("The Docker engine at %s answered /_ping with HTTP %d." % (self.url, status))
        version = response.getheader("API-Version") or ""
        self.api_version = version if _API_VERSION_RE.match(version) else None
        self.prefix = "/v%s" % version if self.api_version else ""
        return self.api_version

    def version(self):
        return self._get("/version") or {}

    def running_container_ids(self):
        return [container["Id"] for container in self._get("/containers/json") or []]

    def inspect(self, container_id):
        """Inspect data of a container, None when it no longer exists."""
        return self._get("/containers/%s/json" % quote(container_id, safe=""), allow_missing=True)

    def events(self, actions=EVENT_ACTIONS):
        """An open stream of container events (iterate it; close() from any thread ends it)."""
        filters = json.dumps({"type": ["container"], "event": list(actions)})
        connection, response = self._open("GET", "/events", {"filters": filters}, timeout=self.timeout)
        if response.status >= 400:
            body = response.read()
            connection.close()
            raise FlowError(
                "The Docker engine at %s refused the event stream: HTTP %d %s." % (self.url, response.status, _message(body))
            )
        connection.sock.settimeout(None)  # events may be minutes apart
        return EventStream(connection, response)


def _message(body):
    try:
        return json.loads(body).get("message", "")
    except (ValueError, AttributeError):
        return body.decode("utf-8", "replace").strip()[:200]


class EventStream:
    def __init__(self, connection, response):
        self.connection = connection
        self.response = response

    def __iter__(self):
        while True:
            line = self.response.readline()
            if not line:
                return
            line = line.strip()
            if line:
                yield json.loads(line)

    def close(self):
        sock = self.connection.sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.connection.close()


# -- the daemon --------------------------------------------------------------------------


def event_container(event):
    actor = event.get("Actor") or {}
    return actor.get("ID") or event.get("id"), event.get("Action") or event.get("status") or ""


class Registrator:
    """Keeps this node's entries in the agent equal to what the running containers map to."""

    def __init__(self, docker, consul, settings, resync_interval=DEFAULT_RESYNC, logger=log):
        self.docker = docker
        self.consul = consul
        self.settings = settings
        self.resync_interval = resync_interval
        self.log = logger
        self.queue = queue.Queue()
        self.next_resync = 0.0
        self._warned = {}

    # -- reconciliation ----------------------------------------------------------------
    def owned(self, container_id=None):
        """This node's entries in the agent (of one container when given)."""
        owned = {}
        for service_id, entry in self.consul.services().items():
            meta = entry.get("Meta") or {}
            if meta.get(META_REGISTRATOR) != self.settings.node:
                continue
            if container_id is not None and meta.get(META_CONTAINER_ID) != container_id:
                continue
            owned[service_id] = entry
        return owned

    def _map(self, inspect):
        mapping = map_container(inspect, self.settings)
        container_id = inspect.get("Id", "")
        warnings = tuple(mapping.warnings)
        if warnings and self._warned.get(container_id) != warnings:
            for warning in warnings:
                self.log("warning: container %s: %s" % ((inspect.get("Name") or "").lstrip("/"), warning))
        self._warned[container_id] = warnings
        return mapping

    def _apply(self, desired, existing, why=""):
        registered, removed = [], []
        for service_id, entry in desired.items():
            current = existing.get(service_id)
            if current is not None and (current.get("Meta") or {}).get(META_SPEC) == entry.fingerprint():
                continue
            self.consul.register(entry.payload())
            registered.append(entry)
            self.log("registered %s as %s at %s:%d%s%s" % (
                entry.service_id, entry.name, entry.address, entry.port,
                " tags=%s" % ",".join(entry.tags) if entry.tags else "",
                " check=%s" % _check_text(entry.check) if entry.check else ""))
        for service_id in existing:
            if service_id not in desired:
                self.consul.deregister(service_id)
                removed.append(service_id)
                self.log("deregistered %s%s" % (service_id, why))
        return registered, removed

    def _repair(self, inspect, services):
        """Re-register the flow's entries of a container that publishes a new host port now."""
        payloads = flow_repairs(inspect, services)
        for payload in payloads:
            self.consul.register(payload)
            self.log("repaired %s: port %s -> %d (container %s started again on a new host port)" % (
                payload["ID"], (services.get(payload["ID"]) or {}).get("Port"), payload["Port"], payload["Meta"][META_CONTAINER]))
        return payloads

    def sync_container(self, container_id):
        """Register or deregister one container's entries from its current state."""
        inspect = self.docker.inspect(container_id)
        desired = {}
        if inspect is not None:
            mapping = self._map(inspect)
            desired = {entry.service_id: entry for entry in mapping.entries}
        else:
            self._warned.pop(container_id, None)
        existing = self.owned(container_id)
        registered, removed = self._apply(desired, existing)
        if inspect is not None and LABEL_SERVICE in ((inspect.get("Config") or {}).get("Labels") or {}):
            registered = registered + self._repair(inspect, self.consul.services())
        return registered, removed

    def resync(self):
        """Register every running container; deregister this node's dangling entries."""
        started = time.monotonic()
        desired, repaired = {}, 0
        running = self.docker.running_container_ids()
        services = self.consul.services()
        for container_id in running:
            inspect = self.docker.inspect(container_id)
            if inspect is None:
                continue
            repaired += len(self._repair(inspect, services))
            for entry in self._map(inspect).entries:
                if entry.service_id in desired:
                    self.log("warning: service ID %s is claimed by %s and %s; keeping the latter" % (
                        entry.service_id, desired[entry.service_id].container, entry.container))
                desired[entry.service_id] = entry
        self._warned = {cid: warned for cid, warned in self._warned.items() if cid in running}
        registered, removed = self._apply(desired, self.owned(), " (dangling)")
        return {"containers": len(running), "registrations": len(desired), "registered": len(registered),
                "removed": len(removed), "repaired": repaired, "seconds": time.monotonic() - started}

    # -- the loop ----------------------------------------------------------------------
    def _resync_logged(self, first=False):
        try:
            summary = self.resync()
        except Exception as exc:  # a daemon keeps going: Consul or the engine may come back
            self.log("resync failed: %s" % _error_text(exc))
            self.next_resync = time.monotonic() + min(5, self.resync_interval)
            return False
        if first or summary["registered"] or summary["removed"] or summary["repaired"]:
            self.log("resync: %(containers)d running containers, %(registrations)d registrations "
                     "(%(registered)d registered, %(removed)d removed, %(repaired)d flow entries repaired) "
                     "in %(seconds).3fs" % summary)
        self.next_resync = time.monotonic() + self.resync_interval
        return True

    def relevant(self, event):
        """False for events of containers that can have no entries of ours, judged by the labels
        the engine copies into the event (labels never change): no inspect, no Consul call."""
        attributes = (event.get("Actor") or {}).get("Attributes") or {}
        if LABEL_SERVICE in attributes:
            # A plain flow instance that starts again may publish a new port: its flow entry needs repair.
            return LABEL_REGISTER_PORT in attributes or event_container(event)[1] in ("start", "unpause")
        return not attributes or self.settings.wants(attributes)

    def handle_event(self, event):
        container_id, action = event_container(event)
        if not container_id or not self.relevant(event):
            return
        try:
            registered, removed = self.sync_container(container_id)
        except Exception as exc:
            self.log("%s of %s: %s; resyncing soon" % (action, container_id[:12], _error_text(exc)))
            self.next_resync = min(self.next_resync, time.monotonic() + 2)
            return
        if (registered or removed) and event.get("timeNano"):
            latency = time.time() - int(event["timeNano"]) / 1e9
            self.log("%s of %s handled %.3fs after the event" % (action, container_id[:12], latency))

    def wake(self):
        self.queue.put(None)

    def _pump(self, stream, generation):
        try:
            for event in stream:
                self.queue.put((generation, "event", event))
            self.queue.put((generation, "end", "the engine closed the event stream"))
        except Exception as exc:
            self.queue.put((generation, "end", _error_text(exc)))

    def _announce(self):
        self.log("ready: watching Docker events on %s (API %s), node %s, Consul %s" % (
            self.docker.url, self.docker.api_version or "unversioned", self.settings.node, self.consul.address))

    def run(self, stop):
        """Until ``stop`` is set: watch events, resync on (re)connect and periodically."""
        generation, backoff, ready = 0, 1, False
        while not stop.is_set():
            try:
                stream = self.docker.events()
            except Exception as exc:
                self.log("cannot watch Docker events: %s; retrying in %ds" % (_error_text(exc), backoff))
                stop.wait(backoff)
                backoff = min(backoff * 2, 30)
                continue
            backoff = 1
            generation += 1
            threading.Thread(target=self._pump, args=(stream, generation), name="docker-events", daemon=True).start()
            # The stream is open before the resync reads the containers: nothing falls between.
            self.next_resync = 0.0
            while not stop.is_set():
                if time.monotonic() >= self.next_resync:
                    if self._resync_logged(first=not ready) and not ready:
                        ready = True
                        self._announce()
                    continue
                try:
                    item = self.queue.get(timeout=max(0.0, self.next_resync - time.monotonic()))
                except queue.Empty:
                    continue
                if item is None or item[0] != generation:
                    continue
                if item[1] == "event":
                    self.handle_event(item[2])
                else:
                    self.log("Docker event stream ended (%s); reconnecting" % item[2])
                    break
            stream.close()
        self.log("stopped")


def _check_text(check):
    for kind in ("HTTP", "TCP", "TTL"):
        if kind in check:
            return "%s %s" % (kind, check[kind])
    return "?"


def _error_text(exc):
    if isinstance(exc, FlowError):
        return str(exc)
    return "%s: %s (%s)" % (exc.__class__.__name__, exc, traceback.format_exc(limit=-3).strip().replace("\n", " | "))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="dockerflow-registrator",
        description="Register the published ports of this engine's containers in the local Consul agent.",
    )
    parser.add_argument("--consul", default=os.environ.get("CONSUL_HTTP_ADDR") or "http://127.0.0.1:8500",
                        help="Consul agent address, http(s)://HOST:PORT (default: $CONSUL_HTTP_ADDR or "
                             "http://127.0.0.1:8500); the ACL token comes from $CONSUL_HTTP_TOKEN")
    parser.add_argument("--ip", required=True,
                        help="address registered for ports published on all addresses (this host's address)")
    parser.add_argument("--docker", default=os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock",
                        help="engine address (default: $DOCKER_HOST or unix:///var/run/docker.sock)")
    parser.add_argument("--node", default=socket.gethostname(),
                        help="name of this registrator in service IDs and in the entries' meta (default: hostname)")
    parser.add_argument("--tags", default="", help="comma-separated tags added to every service")
    parser.add_argument("--explicit", action="store_true", help="register only ports with SERVICE_NAME set")
    parser.add_argument("--require-label", default=None, metavar="KEY[=VALUE]",
                        help="register only containers that have this label")
    parser.add_argument("--check-interval", default=DEFAULT_CHECK_INTERVAL,
                        help="check interval when SERVICE_CHECK_INTERVAL is not set (default: 10s)")
    parser.add_argument("--resync", type=int, default=DEFAULT_RESYNC,
                        help="seconds between full resyncs (default: 30; at least 1)")
    parser.add_argument("--once", action="store_true", help="resync once and exit")
    args = parser.parse_args(argv)
    if args.resync < 1:
        parser.error("--resync must be at least 1")
    return args


def main(argv=None):
    args = parse_args(argv)
    try:
        settings = Settings(node=args.node, ip=args.ip, tags=tuple(_split_tags(args.tags)), explicit=args.explicit,
                            require_label=args.require_label or None, check_interval=args.check_interval)
        consul = ConsulAgent(args.consul, token=os.environ.get("CONSUL_HTTP_TOKEN"))
        docker = DockerAPI(args.docker)
    except FlowError as exc:
        log("error: %s" % exc)
        return 2
    daemon = Registrator(docker, consul, settings, resync_interval=args.resync)
    log("starting: node %s, ip %s, Consul %s, engine %s" % (settings.node, settings.ip, consul.address, docker.url))
    if args.once:
        try:
            summary = daemon.resync()
        except FlowError as exc:
            log("error: %s" % exc)
            return 1
        log("resync: %(containers)d running containers, %(registrations)d registrations "
            "(%(registered)d registered, %(removed)d removed) in %(seconds).3fs" % summary)
        return 0
    stop = threading.Event()

    def on_signal(signum, _frame):
        log("signal %d: stopping" % signum)
        stop.set()
        daemon.wake()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    daemon.run(stop)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
