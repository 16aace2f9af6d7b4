# -*- coding: utf-8 -*-
"""proxy_overhead's nginx peer and CPU figures: the peer's nginx.conf, the CPU time read
from /proc/<pid>/stat, and how rounds are ordered and turned into per-1000-request figures.

The nginx.conf is checked for what makes it a typical reverse proxy (the benchmark runs it
in the real nginx image; `nginx -t` there is not a unit test). The CPU reading is checked
against this test process's own /proc entry and os.times().
"""

from __future__ import annotations

import argparse
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.abspath(__file__).rsplit(os.sep + "tests" + os.sep, 1)[0], "benchmarks"))

import proxy_overhead  # noqa: E402
from common import BenchError  # noqa: E402
from cpu_time import (  # noqa: E402
    CLOCK_TICKS,
    container_cpu_seconds,
    process_cpu_seconds,
    stat_cpu_ticks,
    top_pids,
)
from nginx_peer import render_config  # noqa: E402


def test_the_nginx_peer_proxies_the_path_to_every_instance_over_kept_alive_http_1_1():
    config = render_config(18184, [32768, 32769])
    lines = [line.strip() for line in config.splitlines()]
    assert "listen 127.0.0.1:18184;" in lines
    assert "location /bench {" in lines
    servers = [line for line in lines if line.startswith("server ") and line.endswith(";")]
    assert servers == ["server 127.0.0.1:32768;", "server 127.0.0.1:32769;"]
    for directive in ("keepalive 32;", "proxy_pass http://app;", "proxy_http_version 1.1;",
                      'proxy_set_header Connection "";', "worker_processes auto;",
                      "access_log /var/log/nginx/access.log combined;"):
        assert directive in lines, directive
    assert config.count("{") == config.count("}")


@pytest.mark.parametrize("access_log, expected", [
    ("all", ["access_log /var/log/nginx/access.log combined;"]),
    ("errors", ["access_log /var/log/nginx/access.log combined if=$dfbench_loggable;"]),
    ("off", ["access_log off;"]),
])
def test_the_nginx_peer_logs_the_requests_flows_proxy_logs(access_log, expected):
    lines = [line.strip() for line in render_config(18184, [32768], access_log=access_log).splitlines()]
    assert [line for line in lines if line.startswith("access_log")] == expected
    if access_log == "errors":
        assert "~^5 1;" in lines and "default 0;" in lines


def test_the_nginx_peer_needs_an_instance():
    with pytest.raises(BenchError, match="at least one instance"):
        render_config(18184, [])


def test_cpu_ticks_are_utime_plus_stime_counted_after_the_last_parenthesis():
    # comm may hold spaces and ')': fields are counted after the last ')'.
    fields = ["S", "1", "1", "1", "0", "-1", "4194560", "10", "0", "0", "0", "250", "50", "7", "3", "20", "0", "1"]
    assert stat_cpu_ticks("4242 (ha proxy) x) " + " ".join(fields)) == 300


def test_docker_top_pids_come_from_the_pid_column():
    top = {"Titles": ["UID", "PID", "PPID", "CMD"], "Processes": [["root", "101", "1", "nginx"], ["33", "102", "101", "w"]]}
    assert top_pids(top) == [101, 102]
    assert top_pids({"Titles": ["UID", "PID"], "Processes": None}) == []


class _Container:
    def __init__(self, pids):
        self.pids = pids

    def top(self):
        return {"Titles": ["UID", "PID", "CMD"], "Processes": [["0", str(pid), "x"] for pid in self.pids]}


def test_a_containers_cpu_seconds_are_its_processes_utime_and_stime():
    sum(i * i for i in range(300000))  # some CPU time to read
    times = os.times()
    seconds = container_cpu_seconds(_Container([os.getpid()]))
    assert seconds == pytest.approx(times.user + times.system, abs=3.0 / CLOCK_TICKS + 0.05)
    assert seconds > 0


def test_a_vanished_process_is_skipped_and_none_readable_gives_no_figure():
    missing = 2 ** 22 + 1  # above the kernel's PID limit: never a process
    assert container_cpu_seconds(_Container([os.getpid(), missing])) == pytest.approx(
        container_cpu_seconds(_Container([os.getpid()])), abs=0.05)
    assert container_cpu_seconds(_Container([missing])) is None


def test_processes_are_found_by_their_command_name():
    with open("/proc/self/stat") as handle:
        stat = handle.read()
    command = stat[stat.index("(") + 1:stat.rindex(")")]  # this test's own process (python, or a longer name)
    assert process_cpu_seconds(command) >= container_cpu_seconds(_Container([os.getpid()])) - 0.05
    assert process_cpu_seconds("no-such-command-dfbench") is None


def test_cpu_per_1000_requests_of_one_run():
    assert proxy_overhead.cpu_figures(10.0, 10.5, 5000) == {"cpu_seconds": 0.5, "cpu_seconds_per_1000_requests": 0.1}
    assert proxy_overhead.cpu_figures(None, 10.5, 5000) == {}
    assert proxy_overhead.cpu_figures(10.0, 10.5, 0)["cpu_seconds_per_1000_requests"] is None


def test_rounds_rotate_so_no_path_always_runs_first():
    paths = ("direct", "proxy", "nginx")
    firsts = [proxy_overhead.round_order(paths, number)[0] for number in range(3)]
    assert firsts == ["direct", "proxy", "nginx"]
    assert proxy_overhead.round_order(paths, 3) == list(paths)
    # Without the peer: direct and proxy alternate, as before the peer came.
    assert proxy_overhead.round_order(("direct", "proxy"), 1) == ["proxy", "direct"]


def test_access_log_choices_come_comma_separated_each_once():
    assert proxy_overhead.access_log_list("all,off") == ["all", "off"]
    assert proxy_overhead.access_log_list("errors") == ["errors"]
    for wrong in ("", "none", "all,all", "all,nothing"):
        with pytest.raises(argparse.ArgumentTypeError):
            proxy_overhead.access_log_list(wrong)


def test_rounds_are_summed_up_by_their_access_log():
    rounds = [
        {"access_log": "all", "ratio_proxy_to_direct": 0.7, "ratio_nginx_to_direct": 0.8,
         "proxy_cpu_seconds_per_1000_requests": 0.11},
        {"access_log": "off", "ratio_proxy_to_direct": 0.9, "ratio_nginx_to_direct": 0.8,
         "proxy_cpu_seconds_per_1000_requests": None},
        {"access_log": "all", "ratio_proxy_to_direct": 0.8, "ratio_nginx_to_direct": 0.6,
         "proxy_cpu_seconds_per_1000_requests": 0.13},
    ]
    figures = proxy_overhead.by_setting(rounds, "access_log")
    assert list(figures) == ["all", "off"]
    assert figures["all"]["rounds"] == 2 and figures["all"]["ratio_proxy_to_direct"] == 0.75
    assert figures["all"]["ratio_nginx_to_direct"] == 0.7 and figures["all"]["proxy_cpu_seconds_per_1000_requests"] == 0.12
    assert figures["off"]["proxy_cpu_seconds_per_1000_requests"] is None
    assert proxy_overhead.by_setting([{"access_log": None}], "access_log") == {}
    assert proxy_overhead.by_setting(rounds, "variant") == {}


def test_variants_come_comma_separated_each_once():
    assert proxy_overhead.variant_list("baseline,nbthread1") == ["baseline", "nbthread1"]
    for wrong in ("", "nbthread3", "baseline,baseline"):
        with pytest.raises(argparse.ArgumentTypeError):
            proxy_overhead.variant_list(wrong)


RENDERED = """# Generated
global
    log stdout format raw local0 info
    user haproxy

defaults
    mode http
    retry-on conn-failure empty-response response-timeout

frontend http
    bind 127.0.0.1:80

backend be_dockerflow_live_colors
    http-request return status 204 hdr x-flow-generation %[str(.generation),map(/usr/local/etc/haproxy/live-colors.map)]
# live-color .generation 0123abcd
# live-color demo blue
"""


def test_a_variant_adds_its_lines_last_in_their_sections_and_renames_the_generation():
    text = proxy_overhead.variant_config(RENDERED, "nbthread2-cpumap", "bench-nbthread2-cpumap-3")
    assert text.split("\n\n")[0].splitlines()[-2:] == ["    nbthread 2", "    cpu-map auto:1/1-2 0-1"]
    assert "\n# proxy_overhead round bench-nbthread2-cpumap-3\n# live-color .generation bench-nbthread2-cpumap-3\n" in text
    assert text.endswith("\n# live-color demo blue\n")
    assert "0123abcd" not in text
    # Last in defaults: a rendered line of the same keyword comes before it, so the variant's wins.
    defaults = proxy_overhead.variant_config(RENDERED, "retry-conn-only", "g").split("\n\n")[1].splitlines()
    assert defaults[-2:] == ["    retry-on conn-failure empty-response response-timeout", "    retry-on conn-failure"]
    baseline = proxy_overhead.variant_config(RENDERED, "baseline", "g")
    assert baseline.replace("# proxy_overhead round g\n", "").split("# live-color ", maxsplit=1)[0] == \
        RENDERED.split("# live-color ", maxsplit=1)[0]


def test_each_round_carries_its_generation_and_a_body_of_its_own_so_that_it_reloads():
    from ansible_collections.dockerflow.flow.plugins.module_utils import live_map

    first, second = (proxy_overhead.variant_config(RENDERED, "baseline", generation) for generation in ("r-1", "r-2"))
    assert live_map.config_generation(first) == "r-1" and live_map.config_generation(second) == "r-2"
    assert live_map.body(first) != live_map.body(second)
    body_first, body_second = (live_map.LiveMap.of_config(text).body for text in (first, second))
    assert body_first != body_second and None not in (body_first, body_second), \
        "a change of the map alone would be swapped in, not reloaded"
    assert [line.split()[0] for line in live_map.map_lines(first)] == [".generation", ".body", "demo"]


def test_the_bare_variant_keeps_the_rendered_timeouts_and_drops_flow_s_per_request_rules():
    from ansible_collections.dockerflow.flow.plugins.module_utils.haproxy_config import ProxySettings, Route, render

    config, _generation = render([Route(service="demo", paths=["/demo"], color="blue")], ProxySettings())
    bare = proxy_overhead.bare_config(config)
    rendered_defaults = config.split("\ndefaults\n", 1)[1].split("\n\n", 1)[0].splitlines()
    bare_defaults = bare.split("\ndefaults\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert [line for line in rendered_defaults if line.split()[0] == "timeout"] == \
        [line for line in bare_defaults if line.split()[0] == "timeout"] != []
    assert {line.split()[0] for line in bare_defaults} == {"mode", "timeout", "load-server-state-from-file",
                                                           "default-server"}
    frontend = bare.split("\nfrontend http\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert [line.split()[0] for line in frontend] == ["bind", "default_backend"] and frontend[-1].endswith("be_demo_blue")
