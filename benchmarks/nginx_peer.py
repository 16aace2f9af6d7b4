# -*- coding: utf-8 -*-
"""proxy_overhead.py's nginx peer: a stock Debian nginx (``dockerflow-test/nginx:light``,
bookworm's nginx-light, built by ``make images-bench``) configured as a typical reverse
proxy in front of the same app instance(s) as Flow's proxy, on the same terms: host
network, listening on 127.0.0.1, upstream connections kept alive, the access log on
the container's stdout (Docker's log driver), as Flow's HAProxy logs.

The container is named ``dfbench-nginx-<hex>`` and labelled ``dockerflow.bench.peer``;
``Bench`` removes it on exit with the rest, and removes a killed run's leftover.
"""

from __future__ import annotations

import os
import time
import uuid

import docker

from common import PEER_LABEL, PREFIX, SERVICE_PATH, BenchError, http_get, log

NGINX_IMAGE = os.environ.get("DOCKERFLOW_BENCH_NGINX_IMAGE", "dockerflow-test/nginx:light")
CONFIG_PATH = "/etc/nginx/nginx.conf"
UPSTREAM_KEEPALIVE = 32
# The access log of each proxy_access_log choice, so that both proxies log the same requests:
# errors logs what HAProxy's dontlog-normal keeps (a 5xx answer; nginx logs no retries).
ACCESS_LOGS = {
    "all": "    access_log /var/log/nginx/access.log combined;\n",
    "errors": ("    map $status $dfbench_loggable {\n        ~^5 1;\n        default 0;\n    }\n"
               "    access_log /var/log/nginx/access.log combined if=$dfbench_loggable;\n"),
    "off": "    access_log off;\n",
}


def render_config(listen_port: int, upstream_ports: list[int], path: str = SERVICE_PATH,
                  keepalive: int = UPSTREAM_KEEPALIVE, access_log: str = "all") -> str:
    """nginx.conf of the peer: ``path`` on 127.0.0.1:``listen_port`` goes to the instances'
    published loopback ports, over kept-alive HTTP/1.1 connections; ``access_log`` as Flow's
    proxy_access_log."""
    if not upstream_ports:
        raise BenchError("the nginx peer needs at least one instance port")
    servers = "".join("        server 127.0.0.1:%d;\n" % port for port in upstream_ports)
    return (
        "# proxy_overhead.py's nginx peer (benchmarks/nginx_peer.py): a typical reverse proxy.\n"
        "user www-data;\n"
        "worker_processes auto;\n"
        "pid /run/nginx.pid;\n"
        "error_log /var/log/nginx/error.log warn;  # a link to /dev/stderr in the image\n"
        "events {\n"
        "    worker_connections 1024;\n"
        "}\n"
        "http {\n"
        "    # A link to /dev/stdout in the image: Docker's log driver, as Flow's proxy logs.\n"
        "%s"
        "    keepalive_timeout 65s;\n"
        "    upstream app {\n"
        "%s"
        "        keepalive %d;\n"
        "    }\n"
        "    server {\n"
        "        listen 127.0.0.1:%d;\n"
        "        location %s {\n"
        "            proxy_pass http://app;\n"
        "            proxy_http_version 1.1;\n"
        "            proxy_set_header Connection \"\";\n"
        "            proxy_set_header Host $host;\n"
        "            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n"
        "        }\n"
        "    }\n"
        "}\n"
    ) % (ACCESS_LOGS[access_log], servers, keepalive, listen_port, path)


class NginxPeer:
    """The peer of one run: ``start()`` after the service is deployed, ``bench`` removes it."""

    def __init__(self, bench, port: int, image: str = NGINX_IMAGE):
        self.bench = bench
        self.port = port
        self.image = image
        self.name = "%s-nginx-%s" % (PREFIX, uuid.uuid4().hex[:6])
        self.container = None

    def url(self, path: str = SERVICE_PATH) -> str:
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def check_image(self) -> None:
        try:
            self.bench.docker.images.get(self.image)
        except docker.errors.ImageNotFound:
            raise BenchError("Image %s (the nginx peer) is missing; run `make images-bench` first "
                             "(tests/harness/build-images.sh --bench), or pass --no-nginx." % self.image)

    def start(self, upstream_ports: list[int], timeout: float = 30, access_log: str = "all") -> None:
        config = os.path.join(self.bench.workdir, "nginx.conf")
        with open(config, "w") as handle:
            handle.write(render_config(self.port, upstream_ports, access_log=access_log))
        self.bench.peer_names.add(self.name)  # removed on exit even if it never answers
        log("starting the nginx peer %s on 127.0.0.1:%d (%s)" % (self.name, self.port, self.image))
        self.container = self.bench.docker.containers.run(
            self.image, name=self.name, detach=True, network_mode="host", labels={PEER_LABEL: "nginx"},
            volumes={config: {"bind": CONFIG_PATH, "mode": "ro"}})
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            self.container.reload()
            if self.container.status in ("exited", "dead"):
                break
            try:
                status, _body = http_get(self.url())
                if status == 200:
                    return
                last = "HTTP %s" % status
            except OSError as exc:
                last = str(exc)
            time.sleep(0.3)
        logs = self.container.logs(tail=20).decode("utf-8", "replace")
        raise BenchError("the nginx peer did not answer 200 on %s (%s): %s" % (self.url(), last, logs.strip()[-500:]))

    def version(self) -> str | None:
        try:
            output = self.container.exec_run(["nginx", "-v"]).output
        except docker.errors.DockerException:
            return None
        return output.decode("utf-8", "replace").strip() or None
