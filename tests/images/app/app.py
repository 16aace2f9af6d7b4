"""Sample HTTP service for the dockerflow.flow tests (stdlib only).

GET /health  -> 200 "ok" (500 "unhealthy" when APP_HEALTH=fail)
GET /        -> 200 JSON {version, color, release, hostname, service}
GET /<other> -> 200 the same JSON plus "path"
?sleep=N     -> any of the above, answered after N seconds (at most 30)

Environment: APP_VERSION (baked in per image tag), APP_HEALTH (ok|fail, baked in),
PORT (default 8080), BIND_ADDRESS (default 0.0.0.0), APP_START_DELAY (seconds to sleep
before listening, default 0), APP_HEALTH_DELAY (seconds /health waits before it answers,
default 0: an instance alive but slow to answer its checks, as one is on a starved machine),
DOCKERFLOW_COLOR / DOCKERFLOW_RELEASE / DOCKERFLOW_SERVICE.

APP_ERROR_RATIO (0 to 1, default 0): that share of the requests other than /health answer
500 "injected error" (JSON: the identity plus "error"), a bad release for the canary tests and
benchmarks/canary.py. Deterministic: request n of the instance (counted from 1) fails when
floor(n * ratio) passes an integer, so with 0.2 every 5th request fails and any run of k requests
has floor or ceil of k * ratio failures. /health is never failed: the instance stays healthy in
Docker and Consul, as a release with a bug in its pages would.
"""
import json
import os
import signal
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

VERSION = os.environ.get("APP_VERSION", "dev")
HEALTHY = os.environ.get("APP_HEALTH", "ok") != "fail"
PORT = int(os.environ.get("PORT", "8080"))
BIND_ADDRESS = os.environ.get("BIND_ADDRESS", "0.0.0.0")
START_DELAY = float(os.environ.get("APP_START_DELAY", "0") or 0)
HEALTH_DELAY = float(os.environ.get("APP_HEALTH_DELAY", "0") or 0)
HOSTNAME = socket.gethostname()


def _error_ratio(text):
    """APP_ERROR_RATIO as a float in [0, 1]; anything else stops the app at start (a typo must not pass as 0)."""
    ratio = float(text or 0)
    if not 0.0 <= ratio <= 1.0:
        raise ValueError("APP_ERROR_RATIO must be from 0 to 1, not %r" % text)
    return ratio


ERROR_RATIO = _error_ratio(os.environ.get("APP_ERROR_RATIO", "0"))


def fails(number, ratio):
    """Whether request ``number`` (from 1) of an instance answers 500 at APP_ERROR_RATIO ``ratio``."""
    return int(number * ratio) > int((number - 1) * ratio)


class _Counter:
    """Requests other than /health, counted across the server's threads."""

    def __init__(self):
        self.lock = threading.Lock()
        self.value = 0

    def next(self):
        with self.lock:
            self.value += 1
            return self.value


REQUESTS = _Counter()


def log(msg):
    sys.stderr.write("app: %s\n" % msg)
    sys.stderr.flush()


def identity():
    return {
        "version": VERSION,
        "color": os.environ.get("DOCKERFLOW_COLOR") or "none",
        "release": os.environ.get("DOCKERFLOW_RELEASE", ""),
        "hostname": HOSTNAME,
        "service": os.environ.get("DOCKERFLOW_SERVICE", ""),
    }


def _sleep_seconds(query):
    """``sleep=N`` in the query string: answer after N seconds (at most 30)."""
    for item in query.split("&"):
        name, _equals, value = item.partition("=")
        if name == "sleep":
            try:
                return max(0.0, min(30.0, float(value)))
            except ValueError:
                return 0.0
    return 0.0


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive; every response sets Content-Length
    server_version = "dockerflow-test-app/" + VERSION

    def _reply(self, status, body, content_type, head=False):
        data = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-App-Version", VERSION)
        if not head:
            # Headers and body in one write: two small writes wait on Nagle and delayed ACKs (~40 ms).
            self._headers_buffer.append(b"\r\n" + data)
            self.flush_headers()
        else:
            self.end_headers()

    def _handle(self, head=False):
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)  # drain a request body so keep-alive stays in sync
        path, _mark, query = self.path.partition("?")
        delay = _sleep_seconds(query)
        if delay:
            time.sleep(delay)  # a slow request, to test that a proxy drains in-flight requests
        if path == "/health":
            time.sleep(HEALTH_DELAY)
            if HEALTHY:
                self._reply(200, "ok", "text/plain; charset=utf-8", head)
            else:
                self._reply(500, "unhealthy", "text/plain; charset=utf-8", head)
            return
        payload = identity()
        if path != "/":
            payload["path"] = self.path
        if ERROR_RATIO and fails(REQUESTS.next(), ERROR_RATIO):
            payload["error"] = "injected error (APP_ERROR_RATIO=%g)" % ERROR_RATIO
            self._reply(500, json.dumps(payload) + "\n", "application/json", head)
            return
        self._reply(200, json.dumps(payload) + "\n", "application/json", head)

    def do_GET(self):
        self._handle()

    def do_HEAD(self):
        self._handle(head=True)

    do_POST = do_GET
    do_PUT = do_GET
    do_DELETE = do_GET

    def log_message(self, fmt, *args):
        if self.path.startswith("/health"):
            return  # health checks run every second; keep the log readable
        log("%s %s" % (self.address_string(), fmt % args))


class Server(ThreadingHTTPServer):
    # A proxy switching traffic opens many connections at once: a short accept queue would drop SYNs.
    request_queue_size = 128
    daemon_threads = True  # idle keep-alive connections must not block shutdown
    allow_reuse_address = True


def _terminate(signum, _frame):
    log("signal %d, exiting" % signum)
    raise SystemExit(0)


def main():
    # As PID 1 Python gets no default SIGTERM action: exit explicitly.
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, _terminate)
    if START_DELAY > 0:
        log("sleeping %.1fs before listening" % START_DELAY)
        time.sleep(START_DELAY)
    server = Server((BIND_ADDRESS, PORT), Handler)
    log("version %s listening on %s:%d (health %s%s)"
        % (VERSION, BIND_ADDRESS, PORT, "ok" if HEALTHY else "fail",
           ", %g of the requests answer 500" % ERROR_RATIO if ERROR_RATIO else ""))
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
