# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Docker Engine API over a unix socket or plain TCP, with the standard library only:
list, inspect, and the container event stream."""

from __future__ import annotations

import http.client
import json
import re
import socket
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote, urlencode, urlparse

from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError

EVENT_ACTIONS = ("start", "unpause", "die", "stop", "kill", "pause", "destroy", "rename")
_API_VERSION_RE = re.compile(r"^[0-9]+\.[0-9]+$")


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.socket_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self.socket_path)
        self.sock = sock


class DockerAPI:
    """The engine calls a registrator needs: list, inspect, and the event stream.

    The API version is the engine's own (from ``/_ping``), so engines that refuse old
    clients (the reason registrator stopped working) are served at their current version.
    """

    def __init__(self, url: str = "unix:///var/run/docker.sock", timeout: float = 10) -> None:
        parsed = urlparse(url)
        self._connect: Callable[[float], http.client.HTTPConnection]
        if parsed.scheme == "unix" and parsed.path:
            self._connect = lambda timeout: _UnixConnection(parsed.path, timeout)
        elif parsed.scheme in ("tcp", "http") and parsed.hostname:
            host, port = parsed.hostname, parsed.port or 2375
            self._connect = lambda timeout: http.client.HTTPConnection(host, port, timeout=timeout)
        else:
            raise FlowError("docker %r is not valid: use unix:///var/run/docker.sock or tcp://HOST:PORT (no TLS)." % url)
        self.url = url
        self.timeout = timeout
        self.prefix: str | None = None
        self.api_version: str | None = None

    def _open(self, method: str, path: str, params: dict[str, str] | None = None,
              timeout: float | None = None) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
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

    def _call(self, path: str, params: dict[str, str] | None = None) -> tuple[int, http.client.HTTPResponse, bytes]:
        """(status, response, body) of one GET."""
        connection, response = self._open("GET", path, params)
        try:
            body = response.read()
        except (OSError, http.client.HTTPException) as exc:
            raise FlowError("The Docker engine at %s failed while answering %s: %s." % (self.url, path, exc))
        finally:
            connection.close()
        return response.status, response, body

    def _get(self, path: str, params: dict[str, str] | None = None, allow_missing: bool = False) -> Any:
        """Decoded JSON of one GET; None for a 404 when ``allow_missing``."""
        status, _response, body = self._call(path, params)
        if status == 404 and allow_missing:
            return None
        if status >= 400:
            raise FlowError("The Docker engine at %s refused %s: HTTP %d %s." % (self.url, path, status, _message(body)))
        return json.loads(body) if body.strip() else None

    def negotiate(self) -> str | None:
        """Use the engine's own API version from now on; returns it (None: unversioned paths)."""
        status, response, _body = self._call("/_ping")
        if status >= 400:
            raise FlowError("The Docker engine at %s answered /_ping with HTTP %d." % (self.url, status))
        version = response.getheader("API-Version") or ""
        self.api_version = version if _API_VERSION_RE.match(version) else None
        self.prefix = "/v%s" % version if self.api_version else ""
        return self.api_version

    def version(self) -> dict[str, Any]:
        return self._get("/version") or {}

    def running_container_ids(self) -> list[str]:
        return [container["Id"] for container in self._get("/containers/json") or []]

    def inspect(self, container_id: str) -> dict[str, Any] | None:
        """Inspect data of a container, None when it no longer exists."""
        return self._get("/containers/%s/json" % quote(container_id, safe=""), allow_missing=True)

    def events(self, actions: tuple[str, ...] = EVENT_ACTIONS) -> EventStream:
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


def _message(body: bytes) -> str:
    try:
        return json.loads(body).get("message", "")
    except (ValueError, AttributeError):
        return body.decode("utf-8", "replace").strip()[:200]


class EventStream:
    def __init__(self, connection: http.client.HTTPConnection, response: http.client.HTTPResponse) -> None:
        self.connection = connection
        self.response = response

    def __iter__(self) -> Iterator[dict[str, Any]]:
        while True:
            line = self.response.readline()
            if not line:
                return
            line = line.strip()
            if line:
                yield json.loads(line)

    def close(self) -> None:
        sock = self.connection.sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.connection.close()
