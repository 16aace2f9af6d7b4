# -*- coding: utf-8 -*-
"""The preview route on the real proxy (issue 13): after flow_deploy, the non-live color answers through the proxy
only to requests that name it in the preview header or cookie; 0 of 2,000 requests without it reach the preview color."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from conftest import APP_V2, wait_for


def ask(proxy, path="/demo", header=None):
    """(status, body) of a GET through the proxy, with ``header`` ({name: value}) if given."""
    request = urllib.request.Request("http://127.0.0.1:%d%s" % (proxy.http_port, path), headers=header or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def color_of(answer):
    status, body = answer
    assert status == 200, answer
    return json.loads(body)["color"]


def test_the_preview_color_answers_only_requests_naming_it(routed_project, proxy):
    routed_project.run("flow_deploy", {"health_path": "/health"})
    routed_project.run("flow_proxy", {"service_path": ["/demo"], "preview_header": "X-Flow-Color"})
    green = {"X-Flow-Color": "green"}
    assert ask(proxy, header=green) == (503, "no preview release"), "no green release yet"
    routed_project.set_image(APP_V2)
    routed_project.run("flow_deploy", {"health_path": "/health"})
    # The proxy finds the new instances by Consul DNS, resolved every second: no reload, and no wait in flow_deploy.
    wait_for(lambda: ask(proxy, header=green)[0] == 200, timeout=10, what="the proxy resolving the green instance")
    assert {color_of(ask(proxy, header=green)) for _request in range(10)} == {"green"}
    assert {color_of(ask(proxy, header={"X-Flow-Color": "BLUE"})) for _request in range(5)} == {"blue"}
    assert ask(proxy, header={"X-Flow-Color": "purple"}) == (503, "no preview release")
    normal = [color_of(ask(proxy)) for _request in range(2000)]
    assert normal.count("blue") == 2000, "preview answers leaked into normal traffic: %d" % normal.count("green")

    switched = routed_project.run("flow_proxy")  # the recorded route keeps its preview
    assert switched["color"] == "green" and switched["routes"]["preview"]["header"] == "X-Flow-Color"
    assert color_of(ask(proxy, header={"X-Flow-Color": "blue"})) == "blue", "the old release is the preview now"
    routed_project.run("flow_stop_old")
    # 503 at once; HAProxy's own text until its checks (or DNS) take the stopped server out, then the preview's
    assert ask(proxy, header={"X-Flow-Color": "blue"})[0] == 503
    wait_for(lambda: ask(proxy, header={"X-Flow-Color": "blue"}) == (503, "no preview release"), timeout=15,
             what="no preview release once blue is stopped")
    assert color_of(ask(proxy)) == "green"


def test_an_allow_list_and_turning_the_preview_off(routed_project, proxy):
    routed_project.run("flow_deploy", {"health_path": "/health"})
    routed_project.run("flow_proxy", {"service_path": ["/demo"], "preview_header": "X-Flow-Color",
                                      "preview_allow": ["10.123.0.0/16"]})
    routed_project.set_image(APP_V2)
    routed_project.run("flow_deploy", {"health_path": "/health"})
    green = {"X-Flow-Color": "green"}
    assert {color_of(ask(proxy, header=green)) for _request in range(5)} == {"blue"}, "127.0.0.1 is not allowed"
    routed_project.run("flow_proxy", {"color": "blue", "preview_allow": ["127.0.0.0/8"], "preview_cookie": "flow-color"})
    assert color_of(ask(proxy, header=green)) == "green"
    cookie = {"Cookie": "session=1; flow-color=green"}
    assert color_of(ask(proxy, header=cookie)) == "green"
    header_off = routed_project.run("flow_proxy", {"color": "blue", "preview_header": ""})
    assert header_off["routes"]["preview"] == {"header": None, "cookie": "flow-color", "allow": ["127.0.0.0/8"]}
    assert color_of(ask(proxy, header=green)) == "blue" and color_of(ask(proxy, header=cookie)) == "green"
    off = routed_project.run("flow_proxy", {"color": "blue", "preview_cookie": ""})
    assert off["changed"] and "preview" not in off["routes"]
    assert {color_of(ask(proxy, header=cookie)) for _request in range(5)} == {"blue"}


def test_a_bad_preview_header_fails_in_one_line_and_changes_nothing(routed_project, proxy):
    routed_project.run("flow_deploy", {"health_path": "/health"})
    routed_project.run("flow_proxy", {"service_path": ["/demo"]})
    before = proxy.config()
    failed = routed_project.run("flow_proxy", {"preview_header": "X Flow"}, expect_failure=True)
    assert failed["msg"] == ("preview_header='X Flow' is not a name of letters, digits and '-' (for example "
                             "X-Flow-Color)."), failed["msg"]
    assert proxy.config() == before and "preview" not in routed_project.state()["routes"]
