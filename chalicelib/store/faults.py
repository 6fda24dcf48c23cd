"""Fault injection: DynamoDB data-plane calls fail at a set rate, the way DynamoDB fails under
contention and load. The emulators never do (PITFALLS.md), so without this the retry and
idempotency paths only ever run in production.

    FAULTS="conflict=0.05,throttle=0.02,timeout=0.01,after=0.5,seed=7"

- `conflict`: a TransactWriteItems is cancelled with a `TransactionConflict` reason on one of
  its items (`None` on the others); a single-item write gets `TransactionConflictException`.
- `throttle`: `ProvisionedThroughputExceededException` or `ThrottlingException`.
- `timeout`: a read timeout. A share `after` of them happens once the call was sent and applied
  (the caller sees an error for a write that happened); the rest before anything is sent.
- `seed`: the draws repeat run for run (in one thread); `backoff`: scales botocore's retry
  delays (tests and the simulator use 0.01 so that retries do not sleep for seconds).

Faults are drawn per HTTP attempt, below botocore's retry handler (`Endpoint._do_get_response`),
so they meet the same retries a real failure does: throttles and timeouts are retried by
botocore (up to PynamoDB's `max_retry_attempts`), conflicts are not (store/base.py retries them).
A TransactWriteItems whose answer was dropped is answered as DynamoDB answers a retry with the
same ClientRequestToken: success, nothing written twice (moto ignores the token).

Off unless FAULTS is set; in a stage other than local/test it also needs FAULTS_STAGE=<stage>,
so a stray variable never breaks a deployed stage.
"""
from __future__ import annotations

import json
import os
import random
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

READS = {"GetItem", "BatchGetItem", "Query", "TransactGetItems"}
SINGLE_WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem"}
DATA_PLANE = READS | SINGLE_WRITES | {"TransactWriteItems"}
SAFE_STAGES = ("local", "test")


@dataclass
class Plan:
    conflict: float = 0.0
    throttle: float = 0.0
    timeout: float = 0.0
    after: float = 0.5
    seed: int = 0
    backoff: float = 1.0
    injected: Counter = field(default_factory=Counter)  # kind → how many were injected

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)
        self._lock = threading.Lock()

    @classmethod
    def parse(cls, text: str, seed: int | None = None) -> "Plan":
        """>>> Plan.parse("conflict=0.05, timeout=0.01").conflict
        0.05
        """
        values: dict[str, Any] = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            name, _, value = part.partition("=")
            if name not in ("conflict", "throttle", "timeout", "after", "seed", "backoff"):
                raise ValueError(f"FAULTS: unknown fault {name!r}")
            values[name] = int(value) if name == "seed" else float(value)
        if seed is not None:
            values["seed"] = seed
        return cls(**values)

    @classmethod
    def uniform(cls, rate: float, seed: int = 0, backoff: float = 0.01) -> "Plan":
        """Every kind at `rate` (the simulator's `--faults`)."""
        return cls(conflict=rate, throttle=rate, timeout=rate, seed=seed, backoff=backoff)

    def draw(self, operation: str) -> str | None:
        """The fault this attempt meets, or None."""
        if operation not in DATA_PLANE:
            return None
        with self._lock:
            roll = self._random.random()
            kind = None
            if operation == "TransactWriteItems" or operation in SINGLE_WRITES:
                if roll < self.conflict:
                    kind = "conflict"
                roll -= self.conflict
            if kind is None and roll < self.throttle:
                kind = "throttle"
            elif kind is None and roll < self.throttle + self.timeout:
                kind = "timeout_after" if self._random.random() < self.after else "timeout_before"
            if kind:
                self.injected[kind] += 1
            return kind

    def pick(self, n: int) -> int:
        with self._lock:
            return self._random.randrange(n)


_active: Plan | None = None
_original = None
_install_lock = threading.Lock()


def active() -> Plan | None:
    return _active


def from_env() -> Plan | None:
    """The plan FAULTS names, or None (off, or a deployed stage that did not opt in)."""
    text = os.environ.get("FAULTS", "").strip()
    if not text:
        return None
    stage = os.environ.get("STAGE", "local")
    if stage not in SAFE_STAGES and os.environ.get("FAULTS_STAGE") != stage:
        return None
    seed = os.environ.get("FAULTS_SEED")
    return Plan.parse(text, int(seed) if seed else None)


def install_from_env() -> None:
    """Called where connections are made: cheap when FAULTS is unset."""
    if _active is None and os.environ.get("FAULTS"):
        plan = from_env()
        if plan is not None:
            install(plan)


def install(plan: Plan | None) -> None:
    """Start injecting `plan` into every DynamoDB client of this process (None: stop)."""
    global _active, _original
    from botocore.endpoint import Endpoint
    from botocore.retries import standard

    with _install_lock:
        _active = plan
        if _original is None:
            _original = (Endpoint._do_get_response, standard.ExponentialBackoff.delay_amount)
            Endpoint._do_get_response = _do_get_response
            standard.ExponentialBackoff.delay_amount = _delay_amount


def uninstall() -> None:
    install(None)


def _delay_amount(self: Any, context: Any) -> float:
    delay = _original[1](self, context)
    return delay * _active.backoff if _active is not None else delay


def _do_get_response(self: Any, request: Any, operation_model: Any, context: dict) -> Any:
    plan = _active
    original = _original[0]
    if plan is None or operation_model.service_model.service_name != "dynamodb":
        return original(self, request, operation_model, context)
    operation = operation_model.name
    replay = context.get("fault_replay")
    if replay is not None:  # a retry of a transaction that was applied: same token, same answer
        return replay
    kind = plan.draw(operation)
    if kind is None:
        return original(self, request, operation_model, context)
    if kind == "timeout_before":
        return None, _timeout(request)
    if kind == "timeout_after":
        answer = original(self, request, operation_model, context)
        response, error = answer
        if error is None and operation == "TransactWriteItems" and response[0].status_code < 300:
            context["fault_replay"] = answer
        return None, _timeout(request)
    return _error_response(self, request, operation_model, _error_body(plan, kind, operation, request))


def _timeout(request: Any) -> Exception:
    from botocore.exceptions import ReadTimeoutError

    return ReadTimeoutError(endpoint_url=request.url, error="injected read timeout")


def _error_body(plan: Plan, kind: str, operation: str, request: Any) -> dict[str, Any]:
    prefix = "com.amazonaws.dynamodb.v20120810#"
    if kind == "throttle":
        code = "ProvisionedThroughputExceededException" if plan.pick(2) else "ThrottlingException"
        return {"__type": prefix + code, "message": "injected: the request rate is too high"}
    if operation != "TransactWriteItems":
        return {"__type": prefix + "TransactionConflictException",
                "message": "injected: Transaction is ongoing for the item"}
    items = json.loads(request.body or b"{}").get("TransactItems", [])
    hit = plan.pick(max(1, len(items)))
    reasons = [{"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"} if i == hit
               else {"Code": "None"} for i in range(max(1, len(items)))]
    return {"__type": prefix + "TransactionCanceledException", "CancellationReasons": reasons,
            "Message": "Transaction cancelled, please refer cancellation reasons for specific reasons "
                       f"[{', '.join(r['Code'] for r in reasons)}]"}


class _Raw:
    def __init__(self, body: bytes):
        self._body = body

    def stream(self, **_: Any):
        yield self._body


def _error_response(endpoint: Any, request: Any, operation_model: Any, body: dict[str, Any]) -> Any:
    """What botocore makes of a 400 answer with this body (parsed as a real one is)."""
    from botocore.awsrequest import AWSResponse
    from botocore.endpoint import convert_to_response_dict

    raw = json.dumps(body).encode()
    http = AWSResponse(request.url, 400, {"content-type": "application/x-amz-json-1.0",
                                          "x-amzn-requestid": "injected-fault"}, _Raw(raw))
    response_dict = convert_to_response_dict(http, operation_model)
    parser = endpoint._response_parser_factory.create_parser(operation_model.service_model.resolved_protocol)
    parsed = parser.parse(response_dict, operation_model.output_shape)
    endpoint._add_modeled_error_fields(response_dict, parsed, operation_model, parser)
    return (http, parsed), None
