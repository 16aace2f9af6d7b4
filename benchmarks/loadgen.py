# -*- coding: utf-8 -*-
"""A bounded HTTP load generator for loopback targets only.

Each worker keeps one HTTP/1.1 keep-alive connection open (reconnecting on
errors), or opens a fresh connection per request (``fresh_connections``), and
sends GETs (or POSTs, ``method="POST"``) until the request budget or the time
limit runs out, optionally at a fixed total rate. Every POST carries a unique
id (``X-Request-Id`` and the JSON body); the result keeps the ids sent, those
answered 2xx and those that failed, for ``post_ledger.reconcile``. It counts every answer by status and by the ``color`` and
``version`` its JSON body names, so blue-green switches can be seen in the
figures, records latencies, a per-second timeline and every failure with its
time, kind and whether it happened on a reused keep-alive connection.

Pure standard library and threads: on a 2-core machine the generator itself
tops out at a few thousand requests a second (``benchmarks/proxy_overhead.py``
measures that ceiling), so use wrk for throughput figures when it is installed.
"""

from __future__ import annotations

import http.client
import json
import ssl
import threading
import time
from collections import Counter, defaultdict
from urllib.parse import urlparse

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def check_loopback(url, allowed_hosts=()):
    """Return the parsed URL; refuse anything but a loopback target or one of ``allowed_hosts``
    (addresses on a network the caller created itself, such as the test cluster's)."""
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or parsed.hostname not in LOOPBACK_HOSTS + tuple(allowed_hosts):
        raise ValueError("load tests target http(s)://127.0.0.1 (loopback) only, not %s" % url)
    return parsed


def connection_factory(parsed, timeout):
    """A function that opens a connection to ``parsed`` (http or https). HTTPS load goes to the test proxy's own
    certificate on loopback, which no CA signed: the load measures the proxy, not certificate checks."""
    if parsed.scheme == "http":
        return lambda: http.client.HTTPConnection(parsed.hostname, parsed.port or 80, timeout=timeout)
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return lambda: http.client.HTTPSConnection(parsed.hostname, parsed.port or 443, timeout=timeout, context=context)


class LoadResult:
    def __init__(self):
        self.lock = threading.Lock()
        self.statuses = Counter()
        self.colors = Counter()
        self.versions = Counter()
        self.errors = Counter()
        self.latencies = []
        # One entry a failure: {"t": seconds since start, "wall": epoch seconds, "ended": epoch seconds it failed at,
        # "reason": status or exception class, "detail": message, "reused": sent on a connection that had already
        # served requests}.
        self.failures_timeline = []
        self.by_second = defaultdict(Counter)  # int(seconds since start) -> {color or "failed": n}
        self.slow_timeline = []  # {"t", "wall", "ms"}: successful answers slower than the generator's slow_ms
        self.connections_opened = 0
        # POST mode: every id sent, and those answered 2xx or failed (each id is in at most one of the two).
        self.sent_ids = []
        self.acknowledged_ids = []
        self.failed_ids = []
        self.sent_wall = {}  # id -> epoch seconds it was sent at
        self.ended_wall = {}  # id -> epoch seconds its answer or failure came
        self.started = time.monotonic()
        self.started_wall = time.time()
        self.finished = None

    @property
    def total(self):
        return sum(self.statuses.values()) + sum(self.errors.values())

    @property
    def failed(self):
        return sum(n for status, n in self.statuses.items() if not 200 <= status < 300) + sum(self.errors.values())

    def elapsed(self):
        return (self.finished or time.monotonic()) - self.started

    def percentiles(self, fractions):
        if not self.latencies:
            return [None for _fraction in fractions]
        ordered = sorted(self.latencies)
        return [ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] for fraction in fractions]

    def percentile(self, fraction):
        return self.percentiles([fraction])[0]

    def timeline(self):
        """[[second, {color: n, ..., "failed": n}], ...] in order."""
        return [[second, dict(counts)] for second, counts in sorted(self.by_second.items())]

    def summary(self, failures=10):
        elapsed = self.elapsed()
        p50, p90, p99, p100 = self.percentiles([0.50, 0.90, 0.99, 1.0])

        def ms(value):
            return round(value * 1000, 2) if value is not None else None

        return {
            "requests": self.total,
            "failed": self.failed,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "errors": dict(self.errors),
            "by_color": dict(self.colors),
            "by_version": dict(self.versions),
            "connections_opened": self.connections_opened,
            "seconds": round(elapsed, 2),
            "requests_per_second": round(self.total / elapsed, 1) if elapsed else None,
            "p50_ms": ms(p50),
            "p90_ms": ms(p90),
            "p99_ms": ms(p99),
            "max_ms": ms(p100),
            "first_failures": self.failures_timeline[:failures],
            "slow_answers": len(self.slow_timeline),
        }


class LoadGenerator:
    """Run ``connections`` workers against ``url`` in the background; stop() returns the result.

    ``allowed_hosts`` lets the target be one of those addresses besides loopback (see check_loopback);
    ``headers`` are sent with every request.

    ``rate`` (requests a second, all workers together) paces the workers; None sends as fast as
    answers come. ``fresh_connections`` opens (and closes) a connection for every request.
    """

    def __init__(self, url, connections=32, max_requests=100000, max_seconds=300, host_header=None, timeout=5,
                 fresh_connections=False, rate=None, slow_ms=500, allowed_hosts=(), method="GET", id_prefix="r",
                 headers=None):
        if method not in ("GET", "POST"):
            raise ValueError("method must be GET or POST, not %r" % method)
        parsed = check_loopback(url, allowed_hosts)
        self.method = method
        self.id_prefix = id_prefix
        self.connect = connection_factory(parsed, timeout)
        self.path = (parsed.path or "/") + ("?" + parsed.query if parsed.query else "")
        self.connections = connections
        self.max_requests = max_requests
        self.max_seconds = max_seconds
        self.deadline = None
        self.host_header = host_header
        self.headers = dict(headers or {})  # sent with every request (canary.py's preview header)
        self.timeout = timeout
        self.fresh_connections = fresh_connections
        self.rate = rate
        self.slow_ms = slow_ms
        self.result = LoadResult()
        self._budget = max_requests
        self._stop = threading.Event()
        self._threads = []
        self._worker_ends = []  # when each worker stopped: the load ends with the last one

    def _take(self):
        with self.result.lock:
            if self._budget <= 0:
                return False
            self._budget -= 1
            return True

    def _record_failure(self, started, reason, detail, reused):
        result = self.result
        offset = started - result.started
        result.failures_timeline.append({
            "t": round(offset, 3), "wall": round(result.started_wall + offset, 3),
            "ended": round(result.started_wall + time.monotonic() - result.started, 3), "reason": reason,
            "detail": detail[:160], "reused": reused,
        })
        result.by_second[int(offset)]["failed"] += 1

    def _worker(self, index):
        connection = None
        served_on_connection = 0
        sequence = 0
        headers = dict(self.headers, **({"Host": self.host_header} if self.host_header else {}))
        if self.fresh_connections:
            headers["Connection"] = "close"
        interval = (self.connections / float(self.rate)) if self.rate else None
        next_send = time.monotonic() + (interval * index / self.connections if interval else 0)
        while not self._stop.is_set() and time.monotonic() < self.deadline and self._take():
            if interval:
                delay = next_send - time.monotonic()
                if delay > 0 and self._stop.wait(delay):
                    break
                next_send = max(next_send + interval, time.monotonic() - interval)
            request_id, body = None, None
            if self.method == "POST":
                sequence += 1
                request_id = "%s-%d-%d" % (self.id_prefix, index, sequence)
                body = json.dumps({"id": request_id}).encode()
                headers.update({"X-Request-Id": request_id, "Content-Type": "application/json"})
                with self.result.lock:
                    self.result.sent_ids.append(request_id)
                    self.result.sent_wall[request_id] = time.time()
            started = time.monotonic()
            reused = served_on_connection > 0
            try:
                if connection is None:
                    connection = self.connect()
                    served_on_connection = 0
                    with self.result.lock:
                        self.result.connections_opened += 1
                connection.request(self.method, self.path, body=body, headers=headers)
                response = connection.getresponse()
                answer = response.read()
                latency = time.monotonic() - started
                served_on_connection += 1
                color = version = None
                if response.status == 200:
                    try:
                        payload = json.loads(answer)
                        color, version = payload.get("color"), payload.get("version")
                    except (ValueError, AttributeError):
                        pass
                with self.result.lock:
                    self.result.statuses[response.status] += 1
                    self.result.latencies.append(latency)
                    second = self.result.by_second[int(started - self.result.started)]
                    if color:
                        self.result.colors[color] += 1
                        second[color] += 1
                    if version:
                        self.result.versions[str(version)] += 1
                    if request_id is not None:
                        (self.result.acknowledged_ids if 200 <= response.status < 300
                         else self.result.failed_ids).append(request_id)
                        self.result.ended_wall[request_id] = time.time()
                    if not 200 <= response.status < 300:
                        self._record_failure(started, response.status, answer[:80].decode("utf-8", "replace"), reused)
                    elif self.slow_ms is not None and latency * 1000 >= self.slow_ms:
                        offset = started - self.result.started
                        self.result.slow_timeline.append({
                            "t": round(offset, 3), "wall": round(self.result.started_wall + offset, 3),
                            "ms": round(latency * 1000, 1), "reused": reused,
                        })
                    elif not color:
                        second["ok"] += 1
                if self.fresh_connections or (response.getheader("connection", "") or "").lower() == "close":
                    connection.close()
                    connection = None
            except (OSError, http.client.HTTPException) as exc:
                with self.result.lock:
                    if request_id is not None:
                        self.result.failed_ids.append(request_id)
                        self.result.ended_wall[request_id] = time.time()
                    self.result.errors[exc.__class__.__name__] += 1
                    self._record_failure(started, exc.__class__.__name__, str(exc) or exc.__class__.__name__, reused)
                if connection is not None:
                    connection.close()
                connection = None
        if connection is not None:
            connection.close()
        with self.result.lock:
            self._worker_ends.append(time.monotonic())

    def start(self):
        self.result.started = time.monotonic()
        self.result.started_wall = time.time()
        self.deadline = self.result.started + self.max_seconds
        for index in range(self.connections):
            thread = threading.Thread(target=self._worker, args=(index,), daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def running(self):
        return any(thread.is_alive() for thread in self._threads)

    def wait(self):
        for thread in self._threads:
            thread.join()
        if self.result.finished is None:
            self.result.finished = max(self._worker_ends) if self._worker_ends else time.monotonic()
        return self.result

    def wait_for(self, requests, deadline=None):
        """Block until ``requests`` were sent, the budget or time ran out, or ``deadline`` (monotonic) passed."""
        while self.running() and self.result.total < requests and (deadline is None or time.monotonic() < deadline):
            time.sleep(0.1)

    def stop(self):
        self._stop.set()
        return self.wait()


def run_load(url, requests, connections=32, max_seconds=120, **kwargs):
    """Send ``requests`` requests (or until ``max_seconds``) and return the LoadResult."""
    generator = LoadGenerator(url, connections=connections, max_requests=requests, max_seconds=max_seconds, **kwargs)
    return generator.start().wait()
