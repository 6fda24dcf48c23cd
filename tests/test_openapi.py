"""/openapi.json stays true: it lists exactly the app's routes and is a valid OpenAPI document."""
from __future__ import annotations

from openapi_spec_validator import validate

from chalicelib.core.http import ROUTE_DOCS
from chalicelib.core.methods import is_refusal
from chalicelib.core.validation import SHORT_TEXT_PATTERN

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


def _body_schema(document: dict, path: str, method: str = "post") -> dict:
    ref = document["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    return document["components"]["schemas"][ref.rsplit("/", 1)[-1]]


def _nullable(prop: dict) -> dict:
    return next((s for s in prop.get("anyOf", [prop]) if s.get("type") != "null"), prop)


def test_the_document_states_the_constraints_validation_applies(client):
    document = served(client)
    refund = _body_schema(document, "/v1/events/refunds")["properties"]
    assert refund["amount_fen"]["exclusiveMinimum"] == 0
    occurred = _nullable(refund["occurred_at"])
    assert occurred["format"] == "date-time" and occurred["pattern"].startswith("^20")
    redemption = _body_schema(document, "/v1/redemptions")["properties"]
    assert _nullable(redemption["points"])["exclusiveMinimum"] == 0
    assert _nullable(redemption["item"])["pattern"] == SHORT_TEXT_PATTERN
    forms = _body_schema(document, "/v1/redemptions")["oneOf"]  # a catalogue item, or points for a named item
    assert sorted(form["required"] for form in forms) == [["item_id"], ["points", "item"]]
    purchase = _body_schema(document, "/v1/events/purchases")["properties"]
    assert "CNY" in _nullable(purchase["currency"])["enum"] and "XXX" not in _nullable(purchase["currency"])["enum"]
    assert "pattern" in _body_schema(document, "/v1/links")["properties"]["landing_path"]
    login = _body_schema(document, "/v1/auth/login")
    assert {rule["then"]["required"][0] for rule in login["allOf"]} == {"code", "openid"}
    rules = document["components"]["schemas"]["Rules"]["properties"]
    assert "Asia/Shanghai" in rules["time_zone"]["enum"]
    assert rules["checkin_streak_bonus"]["additionalProperties"] is False


def test_success_statuses_are_the_ones_served(client):
    paths = served(client)["paths"]
    assert set(paths["/v1/links"]["post"]["responses"]) == {"201", "default"}
    redirect = paths["/r/{code}"]["get"]["responses"]["302"]
    assert redirect["headers"]["Location"]["required"] is True


def test_what_the_document_allows_for_tiers_the_program_accepts(client):
    """The tier rules validation checks item by item (the first tier is the base, with no
    threshold; every later tier names one) are in the document too: a body the document allows is
    accepted, one it refuses is refused (the fuzzer met the difference)."""
    from jsonschema import Draft202012Validator

    from tests.helpers import token

    document = served(client)
    schema = Draft202012Validator({"$ref": "#/components/schemas/ProgramRules", "components": document["components"]})
    bronze, silver = {"name": "bronze"}, {"name": "silver", "min_spend_fen_12m": 500_00}
    bodies = [{"tiers": [bronze, silver]}, {"tiers": [{**bronze, "min_points_12m": 0}]},
              {"tiers": [{"name": "l3", "min_spend_fen_12m": 102202}, {"name": "ll207"}]},  # the fuzzer's
              {"tiers": [bronze, {"name": "silver"}]}, {"tiers": [bronze, {**silver, "min_spend_fen_12m": None}]}]
    for body in bodies:
        answer = client.put("/v1/ops/program", body, token=token("ada", "admin"))
        assert answer.status_code in (200, 422), answer.body
        assert schema.is_valid(body) == (answer.status_code == 200), (body, answer.body)
