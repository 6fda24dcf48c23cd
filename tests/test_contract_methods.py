"""A method a path does not support is a 405 in the error envelope, through the app's own
routing (what answers on AWS) and on the local HTTP server, for every verb."""
from __future__ import annotations

import http.client
import json

import pytest

from chalicelib.core.methods import is_refusal
from chalicelib.gateway_responses import GATEWAY_RESPONSES, ROUTABLE_METHODS, cloudformation_resources
from tests.live import serving


def _concrete(path: str) -> str:
    return path.replace("{", "x").replace("}", "")  # /v1/links/{link_id} → /v1/links/xlink_id


def test_every_path_answers_405_in_the_envelope_for_every_method_it_lacks(app, client):
    checked = 0
    for path, entries in app.routes.items():
        served = sorted(m for m, e in entries.items() if not is_refusal(e))
        for method in ROUTABLE_METHODS:
            if method in served:
                continue
            response = client.request(method, _concrete(path), body={"any": "thing"})
            assert response.status_code == 405, (method, path, response.body)
            assert sorted(response.headers["Allow"].split(", ")) == served, (method, path)
            if method != "HEAD":
                error = response.json_body["error"]
                assert error["code"] == "method_not_allowed" and error["details"]["allowed"] == served
            checked += 1
    assert checked > 50


def test_a_refused_method_writes_nothing(client):
    from tests.flows import SERVICE

    response = client.request("DELETE", "/v1/events/purchases", body={}, token=SERVICE)
    assert response.status_code == 405
    assert response.json_body["error"]["details"]["allowed"] == ["POST"]


def _raw(base: str, method: str, path: str):
    host, port = base.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    conn.request(method, path)
    response = conn.getresponse()
    answer = response.status, dict(response.getheaders()), response.read()
    conn.close()
    return answer


@pytest.mark.parametrize("method", ["TRACE", "PROPFIND", "CONNECT", "DELETE", "PATCH"])
def test_the_local_server_answers_any_verb_with_json(app, method):
    with serving(app) as base:
        status, headers, body = _raw(base, method, "/v1/members/me")
        assert status == 405, body
        assert headers["Content-Type"].startswith("application/json")
        assert json.loads(body)["error"]["code"] == "method_not_allowed"
        assert headers["Allow"] == "GET"
        status, headers, body = _raw(base, method, "/no/such/route")
        assert (status, json.loads(body)["error"]["code"]) == (404, "not_found")


def test_the_gateway_responses_are_declared_once_for_the_template_and_the_local_gateway(client):
    resources = cloudformation_resources()
    missing = resources["GatewayResponseMissingAuthenticationToken"]["Properties"]
    answer = GATEWAY_RESPONSES["MISSING_AUTHENTICATION_TOKEN"]
    assert missing["ResponseType"] == "MISSING_AUTHENTICATION_TOKEN"
    local = client.get("/no/such/route")
    assert int(missing["StatusCode"]) == local.status_code == answer.status
    assert json.loads(missing["ResponseTemplates"]["application/json"]) == local.json_body
