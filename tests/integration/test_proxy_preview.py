# -*- coding: utf-8 -*-
"""The preview route on the real proxy (issue 13): after flow_deploy, the non-live color answers through the proxy
only to requests that name it in the preview header or cookie, or come to the preview host; 0 of 10,000 requests
without it reach the preview color. With preview_auth, only those requests are asked for credentials (HTTP 401)."""

from __future__ import annotations

import base64
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

from conftest import APP_V2, wait_for

# The password "secret": `openssl passwd -6 -salt abc secret`.
HASH = "$6$abc$IdWKNKTJEb8LxY7CGg8YBXlvtfZzFw7Mp/r6niK9YB2mdvgY..TKjv1T..8RadRt2qvUHYRLr/TsVArtr91iR1"


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
    with ThreadPoolExecutor(4) as pool:  # the 10,000 normal requests during a preview
        normal = list(pool.map(lambda _request: color_of(proxy.get("/demo")), range(10000)))
    assert normal.count("blue") == 10000, "preview answers leaked into normal traffic: %d" % normal.count("green")

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


def basic(user, password):
    return {"Authorization": "Basic " + base64.b64encode(("%s:%s" % (user, password)).encode()).decode()}


def challenge(proxy, path, host=None, headers=None):
    """The WWW-Authenticate header of the proxy's answer (None when it asks for no credentials)."""
    request = urllib.request.Request("http://127.0.0.1:%d%s" % (proxy.http_port, path), headers=headers or {})
    if host:
        request.add_header("Host", host)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.headers.get("WWW-Authenticate")
    except urllib.error.HTTPError as exc:
        return exc.headers.get("WWW-Authenticate")


def test_the_preview_host_serves_the_other_color_on_the_services_paths(routed_project, proxy):
    routed_project.run("flow_deploy", {"health_path": "/health"})
    routed_project.run("flow_proxy", {"service_path": ["/demo"], "preview_host": "Preview.Example.com"})
    assert proxy.get("/demo", host="preview.example.com") == (503, "no preview release"), "no green release yet"
    assert color_of(proxy.get("/demo", host="shop.example.com")) == "blue"
    routed_project.set_image(APP_V2)
    routed_project.run("flow_deploy", {"health_path": "/health"})
    wait_for(lambda: proxy.get("/demo", host="preview.example.com")[0] == 200, timeout=10,
             what="the proxy resolving the green instance")
    for host in ("preview.example.com", "PREVIEW.example.com:8080", "preview.example.com:80"):  # as the host ACL does
        assert {color_of(proxy.get("/demo", host=host)) for _request in range(5)} == {"green"}, host
    assert proxy.get("/other", host="preview.example.com")[0] == 503, "only the service's paths"
    normal = [color_of(proxy.get("/demo", host=host)) for host in ("shop.example.com", "preview.example.org", None)
              for _request in range(300)]
    assert normal.count("blue") == 900, "preview answers leaked into other hosts: %d" % normal.count("green")

    switched = routed_project.run("flow_proxy")  # the recorded route keeps its preview host
    assert switched["color"] == "green" and switched["routes"]["preview"]["host"] == "preview.example.com"
    assert color_of(proxy.get("/demo", host="preview.example.com")) == "blue", "the old release is the preview now"
    assert color_of(proxy.get("/demo")) == "green"
    off = routed_project.run("flow_proxy", {"preview_host": ""})
    assert "preview" not in off["routes"] and "preview" not in routed_project.state()["routes"]
    assert color_of(proxy.get("/demo", host="preview.example.com")) == "green", "a host like any other again"


def test_basic_auth_asks_only_requests_for_the_preview_and_the_preview_host_replaces_the_domain(routed_project, proxy):
    routed_project.run("flow_deploy", {"health_path": "/health"})
    routed_project.set_image(APP_V2)
    routed_project.run("flow_deploy", {"health_path": "/health"})
    first = routed_project.run("flow_proxy", {"service_domain": "demo.example.com", "color": "blue",
                                              "preview_header": "X-Flow-Color", "preview_host": "preview.example.com",
                                              "preview_auth": ["alice:" + HASH]}, diff=True)
    assert first["routes"]["preview"]["auth"] == ["alice:********"] and HASH not in str(first), "a hash in the result"
    assert "    user alice password ********" in first["diff"]["after"]
    assert routed_project.state()["routes"]["preview"]["auth"] == ["alice:" + HASH], "Consul keeps the hash"
    assert "    user alice password %s\n" % HASH in proxy.config()
    wait_for(lambda: proxy.get("/demo", host="preview.example.com", headers=basic("alice", "secret"))[0] == 200,
             timeout=10, what="the proxy resolving the green instance")

    # Normal requests: never challenged, whatever their credentials.
    assert {color_of(proxy.get("/demo", host="demo.example.com")) for _request in range(20)} == {"blue"}
    assert challenge(proxy, "/demo", host="demo.example.com") is None
    assert color_of(proxy.get("/demo", host="demo.example.com", headers=basic("alice", "wrong"))) == "blue"
    assert color_of(proxy.get("/demo", host="demo.example.com", headers={"X-Flow-Color": "blue"})) == "blue", \
        "naming the live color asks for no preview"
    # The preview host (no demo.example.com needed) and the header: 401 without valid credentials.
    for host, headers in (("preview.example.com", {}), ("demo.example.com", {"X-Flow-Color": "green"})):
        assert proxy.get("/demo", host=host, headers=headers)[0] == 401, (host, headers)
        assert challenge(proxy, "/demo", host=host, headers=headers) == 'Basic realm="preview"'
        assert proxy.get("/demo", host=host, headers=dict(headers, **basic("alice", "wrong")))[0] == 401
        assert proxy.get("/demo", host=host, headers=dict(headers, **basic("bob", "secret")))[0] == 401
        assert color_of(proxy.get("/demo", host=host, headers=dict(headers, **basic("alice", "secret")))) == "green"

    kept = routed_project.run("flow_proxy", {"color": "blue"})  # a later switch keeps host and users
    assert kept["routes"]["preview"] == {"header": "X-Flow-Color", "cookie": None, "allow": [],
                                         "host": "preview.example.com", "auth": ["alice:********"]}
    assert proxy.get("/demo", host="preview.example.com")[0] == 401
    # An address not allowed: the preview host rule does not match, and nothing else routes that host.
    routed_project.run("flow_proxy", {"color": "blue", "preview_allow": ["10.123.0.0/16"]})
    assert proxy.get("/demo", host="preview.example.com") == (503, "no route")
    assert color_of(proxy.get("/demo", host="demo.example.com", headers={"X-Flow-Color": "green"})) == "blue"
    open_again = routed_project.run("flow_proxy", {"color": "blue", "preview_allow": [], "preview_auth": []})
    assert "auth" not in open_again["routes"]["preview"] and "userlist" not in proxy.config()
    assert color_of(proxy.get("/demo", host="preview.example.com")) == "green", "no credentials asked any more"


def test_bad_preview_host_or_auth_fails_in_one_line_without_the_hash_and_changes_nothing(routed_project, proxy):
    routed_project.run("flow_deploy", {"health_path": "/health"})
    routed_project.run("flow_proxy", {"service_path": ["/demo"]})
    before = proxy.config()
    failed = routed_project.run("flow_proxy", {"preview_host": "*.example.com"}, expect_failure=True)
    assert failed["msg"].startswith("preview_host='*.example.com' is not valid: use one host name"), failed["msg"]
    failed = routed_project.run("flow_proxy", {"preview_host": "preview.example.com",
                                               "preview_auth": ["alice:" + HASH, "bob:secret"]}, expect_failure=True)
    assert failed["msg"].startswith("preview_auth entry 2 (user bob): the part after ':' must be a crypt hash")
    assert "secret" not in failed["msg"].replace("password itself", "") and HASH not in str(failed)
    assert proxy.config() == before and "preview" not in routed_project.state()["routes"]
