# -*- coding: utf-8 -*-
"""The preview route on the real proxy (issue 13): after flow_deploy, the non-live color answers through the proxy
only to requests that name it in the preview header or cookie; 0 of 2,000 requests without it reach the preview color."""

from __future__ import annotations

from conftest import APP_V2, wait_for


def color_of(answer):
    status, body = answer
    assert status == 200, answer
    return body["color"]


def test_the_preview_color_answers_only_requests_naming_it(routed_project, proxy):
    routed_project.run("flow_deploy", {"health_path": "/health"})
    routed_project.run("flow_proxy", {"service_path": ["/demo"], "preview_header": "X-Flow-Color"})
    green = {"X-Flow-Color": "green"}
    assert proxy.get("/demo", headers=green) == (503, "no preview release"), "no green release yet"
    routed_project.set_image(APP_V2)
    routed_project.run("flow_deploy", {"health_path": "/health"})
    # The proxy finds the new instances by Consul DNS, resolved every second: no reload, and no wait in flow_deploy.
    wait_for(lambda: proxy.get("/demo", headers=green)[0] == 200, timeout=10, what="the proxy resolving the green instance")
    assert {color_of(proxy.get("/demo", headers=green)) for _request in range(10)} == {"green"}
    assert {color_of(proxy.get("/demo", headers={"X-Flow-Color": "BLUE"})) for _request in range(5)} == {"blue"}
    assert proxy.get("/demo", headers={"X-Flow-Color": "purple"}) == (503, "no preview release")
    normal = [color_of(proxy.get("/demo")) for _request in range(2000)]
    assert normal.count("blue") == 2000, "preview answers leaked into normal traffic: %d" % normal.count("green")

    switched = routed_project.run("flow_proxy")  # the recorded route keeps its preview
    assert switched["color"] == "green" and switched["routes"]["preview"]["header"] == "X-Flow-Color"
    assert color_of(proxy.get("/demo", headers={"X-Flow-Color": "blue"})) == "blue", "the old release is the preview now"
    routed_project.run("flow_stop_old")
    # 503 at once; HAProxy's own text until its checks (or DNS) take the stopped server out, then the preview's
    assert proxy.get("/demo", headers={"X-Flow-Color": "blue"})[0] == 503
    wait_for(lambda: proxy.get("/demo", headers={"X-Flow-Color": "blue"}) == (503, "no preview release"), timeout=15,
             what="no preview release once blue is stopped")
    assert color_of(proxy.get("/demo")) == "green"


def test_an_allow_list_and_turning_the_preview_off(routed_project, proxy):
    routed_project.run("flow_deploy", {"health_path": "/health"})
    routed_project.run("flow_proxy", {"service_path": ["/demo"], "preview_header": "X-Flow-Color",
                                      "preview_allow": ["10.123.0.0/16"]})
    routed_project.set_image(APP_V2)
    routed_project.run("flow_deploy", {"health_path": "/health"})
    green = {"X-Flow-Color": "green"}
    assert {color_of(proxy.get("/demo", headers=green)) for _request in range(5)} == {"blue"}, "127.0.0.1 is not allowed"
    routed_project.run("flow_proxy", {"color": "blue", "preview_allow": ["127.0.0.0/8"], "preview_cookie": "flow-color"})
    assert color_of(proxy.get("/demo", headers=green)) == "green"
    cookie = {"Cookie": "session=1; flow-color=green"}
    assert color_of(proxy.get("/demo", headers=cookie)) == "green"
    header_off = routed_project.run("flow_proxy", {"color": "blue", "preview_header": ""})
    assert header_off["routes"]["preview"] == {"header": None, "cookie": "flow-color", "allow": ["127.0.0.0/8"]}
    assert color_of(proxy.get("/demo", headers=green)) == "blue" and color_of(proxy.get("/demo", headers=cookie)) == "green"
    off = routed_project.run("flow_proxy", {"color": "blue", "preview_cookie": ""})
    assert off["changed"] and "preview" not in off["routes"]
    assert {color_of(proxy.get("/demo", headers=cookie)) for _request in range(5)} == {"blue"}


def test_a_bad_preview_header_fails_in_one_line_and_changes_nothing(routed_project, proxy):
    routed_project.run("flow_deploy", {"health_path": "/health"})
    routed_project.run("flow_proxy", {"service_path": ["/demo"]})
    before = proxy.config()
    failed = routed_project.run("flow_proxy", {"preview_header": "X Flow"}, expect_failure=True)
    assert failed["msg"] == ("preview_header='X Flow' is not a name of letters, digits and '-' (for example "
                             "X-Flow-Color)."), failed["msg"]
    assert proxy.config() == before and "preview" not in routed_project.state()["routes"]
