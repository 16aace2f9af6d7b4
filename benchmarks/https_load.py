# -*- coding: utf-8 -*-
"""HTTPS load for the proxy's HTTPS tests and benchmarks: threads that send GETs to 127.0.0.1 with a given SNI
name, verified against a given CA, each either on a new TLS connection a request (a handshake each) or on one
keep-alive connection opened again whenever the server closed it after an answer (what browsers do). Every
handshake is counted by the certificate the proxy served, so a rotation shows as old, then new."""

from __future__ import annotations

import hashlib
import http.client
import socket
import ssl
import threading
import time


class _Connection(http.client.HTTPSConnection):
    """HTTPS to 127.0.0.1:``port`` whose SNI and certificate check name is ``server_name``."""

    def __init__(self, port, server_name, context, timeout):
        super().__init__(server_name, port, timeout=timeout, context=context)
        self.tls_context = context

    def connect(self):
        raw = socket.create_connection(("127.0.0.1", self.port), self.timeout)
        self.sock = self.tls_context.wrap_socket(raw, server_hostname=self.host)


def certificate_id(der):
    """A short name of a certificate (DER): the start of its SHA-256."""
    return hashlib.sha256(der).hexdigest()[:12]


class HttpsLoad(threading.Thread):
    """GETs of ``path`` until ``stop`` is set; ``fresh``: a new TLS connection for each request."""

    def __init__(self, port, server_name, ca_pem, path="/", fresh=True, timeout=5.0, pause=0.0):
        super().__init__(daemon=True)
        self.port, self.server_name, self.path, self.fresh, self.timeout = port, server_name, path, fresh, timeout
        self.pause = pause  # seconds between two requests of this thread
        self.context = ssl.create_default_context(cadata=ca_pem)
        self.stop = threading.Event()
        self.ok = self.failed = 0
        self.handshakes = {}  # certificate_id: handshakes that served it
        self.errors = []  # (epoch seconds, what failed)
        self.latencies_ms = []

    def _open(self):
        connection = _Connection(self.port, self.server_name, self.context, self.timeout)
        connection.connect()
        served = certificate_id(connection.sock.getpeercert(binary_form=True))
        self.handshakes[served] = self.handshakes.get(served, 0) + 1
        return connection

    def run(self):
        connection = None
        while not self.stop.is_set():
            started = time.monotonic()
            try:
                if connection is None:
                    connection = self._open()
                connection.request("GET", self.path, headers={"Host": self.server_name})
                response = connection.getresponse()
                response.read()
                if response.status != 200:
                    raise http.client.HTTPException("HTTP %d" % response.status)
                self.ok += 1
                self.latencies_ms.append((time.monotonic() - started) * 1000.0)
                if self.fresh or response.will_close:
                    connection.close()
                    connection = None
                if self.pause:
                    self.stop.wait(self.pause)
            except (OSError, http.client.HTTPException) as error:
                self.failed += 1
                self.errors.append((time.time(), repr(error)[:200]))
                if connection is not None:
                    connection.close()
                connection = None
        if connection is not None:
            connection.close()

    def finish(self, timeout=10.0):
        self.stop.set()
        self.join(timeout)
