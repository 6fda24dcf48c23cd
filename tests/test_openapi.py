"""/openapi.json stays true: it lists exactly the app's routes and is a valid OpenAPI document."""
from __future__ import annotations

from openapi_spec_validator import validate

from chalicelib.core.http import ROUTE_DOCS
from chalicelib.core.methods import is_refusal

METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}


def served(client) -> dict:
    r = client.get("/openapi.json")
    assert r.status_code == 200, r.body
    assert r.headers["Content-Type"].startswith("application/json")
    return r.json_body


def test_every_route_of_the_app_is_documented_and_nothing_else(app, client):
    document = served(client)
    in_app = {(path, method.lower()) for path, methods in app.routes.items()
              for method, entry in methods.items() if not is_refusal(entry)}  # 405 answers are not operations
    documented = {(path, method) for path, item in document["paths"].items() for method in item if method in METHODS}
    assert in_app - documented == set(), "routes missing from /openapi.json"
    assert documented - in_app == set(), "documented routes the app does not serve"
    assert ("/v1/auth/login", "post") in documented


def test_the_document_is_valid_openapi(client):
    validate(served(client))


def test_protected_routes_declare_bearer_auth_and_roles(app, client):
    document = served(client)
    docs = {(d.path, d.method.lower()): d for d in ROUTE_DOCS}
    for path, item in document["paths"].items():
        for method, operation in item.items():
            roles = docs[(path, method)].roles
            if roles:
                assert operation["security"] == [{"bearer": []}], (path, method)
                assert operation["x-roles"] == list(roles)
            else:
                assert "security" not in operation, (path, method)
    me = document["paths"]["/v1/members/me"]["get"]
    assert me["x-roles"] == ["member"]


def test_bodies_and_query_parameters_carry_their_schemas(client):
    document = served(client)
    login = document["paths"]["/v1/auth/login"]["post"]
    ref = login["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    schema = document["components"]["schemas"][ref.rsplit("/", 1)[-1]]
    assert "provider" in schema["required"]
    assert schema["additionalProperties"] is False
    limit = next(p for p in document["paths"]["/v1/members/me/notifications"]["get"]["parameters"]
                 if p["name"] == "limit")
    assert limit["schema"]["type"] == "integer" and limit["schema"]["maximum"] == 100
