# -*- coding: utf-8 -*-
"""What modules acme_challenge and acme_lock take: an order's http-01 challenges, the Consul options."""

from __future__ import annotations

import pytest

from ansible_collections.dockerflow.flow.plugins.module_utils.acme_modules import CONSUL_SPEC, http01_challenges
from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError


def challenge_data(token, value="v"):
    """One domain of acme_certificate's challenge_data, as community.crypto returns it."""
    return {"http-01": {"resource": ".well-known/acme-challenge/" + token, "resource_value": value},
            "dns-01": {"resource": "_acme-challenge", "resource_value": "x", "record": "_acme-challenge.a.test"}}


def test_the_http01_challenges_of_an_order_by_token():
    data = {"a.test": challenge_data("tokA", "tokA.thumb"), "b.test": challenge_data("tok_B-2", "tok_B-2.thumb")}
    assert http01_challenges(data) == {"tokA": "tokA.thumb", "tok_B-2": "tok_B-2.thumb"}
    assert http01_challenges({}) == {}


@pytest.mark.parametrize(("data", "message"), [
    ("not a dict", "challenge_data is not valid"),
    ({"a.test": {"dns-01": {}}}, "no http-01 challenge for a.test"),
    ({"a.test": {"http-01": {"resource": "elsewhere/tok"}}}, "no http-01 challenge for a.test"),
    ({"a.test": challenge_data("../../locks/x")}, "token='../../locks/x' is not valid"),
    ({"a.test": challenge_data("tok.en")}, "token='tok.en' is not valid"),
])
def test_anything_else_fails_in_one_line(data, message):
    with pytest.raises(FlowError) as info:
        http01_challenges(data)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_the_consul_options_are_the_flow_modules_with_their_defaults():
    assert sorted(CONSUL_SPEC) == ["consul_address", "consul_ca_cert", "consul_client_cert", "consul_client_key",
                                   "consul_token", "consul_validate_certs"]
    assert CONSUL_SPEC["consul_address"]["default"] == "http://127.0.0.1:8500"
    assert CONSUL_SPEC["consul_validate_certs"]["default"] is True
    assert CONSUL_SPEC["consul_token"]["no_log"] is True
