"""Schemathesis over /openapi.json against the running service (the local HTTP server on a free
port, backed by the test backend), once per role: no response is a 5xx, and every response
matches the document (status, content type, headers, body schema).

Bounded and repeatable: a fixed, small number of examples per operation, derandomized.
"""
from __future__ import annotations

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (content_type_conformance, response_headers_conformance,
                                         response_schema_conformance, status_code_conformance)

from chalicelib.core.auth import ADMIN, MEMBER, OPS, SERVICE
from tests.flows import login
from tests.helpers import token
from tests.live import serving

EXAMPLES_PER_OPERATION = 6
# Routes other test modules add to the shared app (and so to its document): not the product's.
TEST_ONLY_PREFIX = "/test/"
# Validation no schema can state: a fact dated in the future depends on the clock, a landing
# URL's allowed schemes and forbidden host on the stage and the service's own address; relations
# between fields or items (ends after starts, levels that rise, a day range's length, a red
# packet's total at least its count, tier names unique by name) are beyond JSON Schema.
UNSTATABLE = {"date_in_future", "landing_url", "poster_background_url", "not_ascending", "ends_before_start",
              "range_too_long", "total_below_count", "duplicate"}


def _sent(body, field: str):
    for part in field.split("."):
        if isinstance(body, dict):
            body = body.get(part)
        elif isinstance(body, list) and part.isdigit() and int(part) < len(body):
            body = body[int(part)]
        else:
            return None
    return body


def _unstatable(problem: dict, body) -> bool:
    """JSON Schema calls 5.0 an integer; money and points refuse it (a whole number of fen is
    sent without a decimal point), which no schema keyword can say."""
    if problem.get("type") in UNSTATABLE:
        return True
    value = _sent(body, problem.get("field", ""))
    return problem.get("type") == "int_type" and isinstance(value, float) and value.is_integer()


def document_as_strict_as_validation(ctx, response, case):
    """A request the document calls valid is never refused as invalid input (the document is
    generated from the same schemas, with their constraints)."""
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive or response.status_code not in (400, 422):
        return None
    error = (response.json() or {}).get("error", {})
    if error.get("code") not in ("validation_failed", "malformed_json"):
        return None  # a business rule (insufficient points, provider not enabled …), not the shape
    problems = [f for f in error.get("details", {}).get("fields", []) if not _unstatable(f, case.body)]
    if problems or error.get("code") == "malformed_json":
        raise AssertionError(f"a request the document allows was refused: {error}")
    return None


CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_headers_conformance, response_schema_conformance, document_as_strict_as_validation]


def _credentials(client, role: str | None) -> dict[str, str]:
    if role is None:
        return {}
    if role == MEMBER:
        access_token, _, _ = login(client, "fuzz-member", "Fuzz")  # a member that exists
        return {"Authorization": f"Bearer {access_token}"}
    return {"Authorization": f"Bearer {token(f'fuzz-{role}', role)}"}


@pytest.mark.parametrize("role", [None, MEMBER, SERVICE, OPS, ADMIN], ids=["public", *[r for r in
                                                                                    (MEMBER, SERVICE, OPS, ADMIN)]])
def test_no_server_error_and_every_answer_matches_the_document(app, client, role):
    document = client.get("/openapi.json").json_body
    schema = schemathesis.openapi.from_dict(document)
    headers = _credentials(client, role)
    failures: list[str] = []
    with serving(app) as base, requests.Session() as session:
        for result in schema.get_all_operations():
            operation = result.ok()
            if operation.path.startswith(TEST_ONLY_PREFIX):
                continue

            @settings(max_examples=EXAMPLES_PER_OPERATION, derandomize=True, deadline=None, database=None,
                      suppress_health_check=list(HealthCheck), print_blob=False)
            @given(case=operation.as_strategy())
            def exercise(case):
                case.call_and_validate(base_url=base, session=session, headers=headers, checks=CHECKS,
                                       allow_redirects=False, timeout=30)

            try:
                exercise()
            except (Exception, ExceptionGroup) as exc:  # every operation's failures, not just the first
                failures.append(f"{operation.label}: {str(exc)[:1500]}")
    assert not failures, "\n\n".join(failures)
