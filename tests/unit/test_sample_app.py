# -*- coding: utf-8 -*-
"""The sample app's APP_ERROR_RATIO (tests/images/app/app.py): the bad release of the canary tests and
benchmarks/canary.py. The app runs here in-process on a loopback port, as its image runs it (stdlib only)."""

from __future__ import annotations

import http.client
import importlib.util
import json
import os
import threading

import pytest

APP_PY = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "images", "app", "app.py")


def load_app(monkeypatch, ratio):
    """A fresh copy of app.py, read with APP_ERROR_RATIO=``ratio`` (None: unset; settings are read at import)."""
    if ratio is None:
        monkeypatch.delenv("APP_ERROR_RATIO", raising=False)
    else:
        monkeypatch.setenv("APP_ERROR_RATIO", ratio)
    monkeypatch.setenv("APP_VERSION", "test")
    spec = importlib.util.spec_from_file_location("sample_app_under_test", APP_PY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def serve():
    """serve(module) -> a function making GETs to that app on 127.0.0.1 (one keep-alive connection)."""
    servers = []

    def start(module):
        server = module.Server(("127.0.0.1", 0), module.Handler)
        servers.append(server)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        connection = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=5)

        def get(path):
            connection.request("GET", path)
            response = connection.getresponse()
            return response.status, response.read()

        return get

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_every_fifth_request_fails_at_0_2_and_health_stays_200(monkeypatch, serve):
    get = serve(load_app(monkeypatch, "0.2"))
    statuses = []
    for number in range(1, 21):
        assert get("/health") == (200, b"ok"), "health is never failed (request %d)" % number
        statuses.append(get("/" if number % 2 else "/page")[0])
    assert [n for n, status in enumerate(statuses, 1) if status == 500] == [5, 10, 15, 20]
    assert statuses.count(200) == 16


def test_a_failed_answer_says_so_and_names_its_release(monkeypatch, serve):
    get = serve(load_app(monkeypatch, "1"))
    status, body = get("/")
    answer = json.loads(body)
    assert status == 500 and answer["version"] == "test"
    assert answer["error"] == "injected error (APP_ERROR_RATIO=1)"


def test_without_the_variable_nothing_fails(monkeypatch, serve):
    get = serve(load_app(monkeypatch, None))
    assert {get("/")[0] for _request in range(50)} == {200}


@pytest.mark.parametrize("ratio", [0.01, 0.05, 0.2, 1 / 3, 0.5, 0.99])
def test_any_run_of_requests_fails_floor_or_ceil_of_its_share(monkeypatch, ratio):
    app = load_app(monkeypatch, "0")
    outcomes = [app.fails(number, ratio) for number in range(1, 2001)]
    for start in (0, 7, 333):
        for length in (1, 19, 100, 1000):
            failed = sum(outcomes[start:start + length])
            assert int(length * ratio) <= failed <= int(length * ratio) + 1, (ratio, start, length, failed)


@pytest.mark.parametrize("text", ["1.5", "-0.1", "twenty"])
def test_a_ratio_out_of_range_or_not_a_number_stops_the_app_at_start(monkeypatch, text):
    with pytest.raises(ValueError):
        load_app(monkeypatch, text)
