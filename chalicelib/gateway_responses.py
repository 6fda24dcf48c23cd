"""What the API's front door answers by itself, declared once.

API Gateway answers a request that matches no deployed resource and method before any function
runs (gateway response MISSING_AUTHENTICATION_TOKEN, by default a 403 "Missing Authentication
Token"). The deployment template builds its `AWS::ApiGateway::GatewayResponse` resources from
`GATEWAY_RESPONSES` (`cloudformation_resources`), and the local gateway (infra/local/gateway.py)
answers from the same table, so both runtimes give the same JSON error envelope.

A method a path does not support is answered by the app itself, on both runtimes: every path
declares the API Gateway methods it lacks as 405 routes (core/methods.py), because API Gateway
cannot tell "no such path" from "no such method" in a gateway response. Verbs API Gateway does
not route at all (TRACE, CONNECT, …) get the same 405 locally.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

# The methods API Gateway can route to a function: declared beside the 405s, which every
# function imports (core/methods.py).
from .core.methods import ROUTABLE_METHODS  # noqa: F401  (re-exported)


@dataclass(frozen=True)
class GatewayAnswer:
    status: int
    code: str
    message: str

    def body(self) -> dict:
        return {"error": {"code": self.code, "message": self.message, "details": {}}}


# API Gateway response type → what the caller gets.
GATEWAY_RESPONSES: dict[str, GatewayAnswer] = {
    "MISSING_AUTHENTICATION_TOKEN": GatewayAnswer(404, "not_found", "no such route"),
}
NO_ROUTE = GATEWAY_RESPONSES["MISSING_AUTHENTICATION_TOKEN"]


def cloudformation_resources(rest_api_id: dict | str | None = None) -> dict[str, dict]:
    """`AWS::ApiGateway::GatewayResponse` resources for `chalice package --merge-template`
    (Chalice names its API `RestAPI`)."""
    rest_api_id = rest_api_id or {"Ref": "RestAPI"}
    resources = {}
    for response_type, answer in GATEWAY_RESPONSES.items():
        name = "GatewayResponse" + "".join(part.title() for part in response_type.split("_"))
        resources[name] = {"Type": "AWS::ApiGateway::GatewayResponse", "Properties": {
            "RestApiId": rest_api_id,
            "ResponseType": response_type,
            "StatusCode": str(answer.status),
            "ResponseParameters": {"gatewayresponse.header.Content-Type": "'application/json'"},
            "ResponseTemplates": {"application/json": json.dumps(answer.body(), separators=(",", ":"))},
        }}
    return resources
