"""`Idempotency-Key` on POST: the same key and body within 24 h returns the first response;
the same key with another body is a 409; two concurrent requests with one key run once.

One record per (role, caller, key) in the control table, claimed with a conditional put. An expired
record counts as absent even before TTL deletes it (TTL lags by up to two days), and an
in-progress claim older than the lock time is taken over (the first runner died). Only a
success is stored: a 4xx/5xx answer releases the key, so the client may fix things and retry.
"""
from __future__ import annotations

import hashlib
import json
import secrets
from typing import Callable

from chalice import Response
from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import DeleteError, PutError

from ..i18n import t
from . import clock
from .errors import Conflict, Unprocessable
from ..store.base import ControlItem, condition_failed

TTL_SECONDS = 24 * 3600
LOCK_SECONDS = 60
MAX_KEY_LENGTH = 128


class IdempotencyRecord(ControlItem, discriminator="idempotency"):
    status = UnicodeAttribute()  # in_progress | done
    request_hash = UnicodeAttribute()
    lock_until = NumberAttribute()
    response_status = NumberAttribute(null=True)
    response_body = UnicodeAttribute(null=True)
    response_headers = UnicodeAttribute(null=True)
    claim_id = UnicodeAttribute(null=True)  # who claimed it: a retried claim whose answer was lost is still ours


def run(req, call: Callable[[], Response]) -> Response:
    key = req.headers["idempotency-key"]
    if len(key) > MAX_KEY_LENGTH:
        raise Unprocessable(t("Idempotency-Key is longer than {max_key_length} characters",
                              max_key_length=MAX_KEY_LENGTH), code="validation_failed")
    digest = hashlib.sha256(req.route_key.encode() + b"\0" + req.raw_body).hexdigest()
    now = clock.epoch()
    record = IdempotencyRecord(pk=record_key(req, key), sk="IDEM", status="in_progress", request_hash=digest,
                               lock_until=now + LOCK_SECONDS, expires_at=now + TTL_SECONDS,
                               claim_id=secrets.token_hex(8))
    if not _claim(record, now):
        return _replay(record.pk, digest)
    try:
        response = call()
    except BaseException:
        _release(record)
        raise
    if response.status_code >= 400:
        _release(record)  # a failure is not a final answer: a retry with the key runs again
        return response
    record.status = "done"
    record.response_status = response.status_code
    record.response_body = response.body if isinstance(response.body, str) else json.dumps(response.body)
    record.response_headers = json.dumps({k: v for k, v in response.headers.items() if k.lower() != "x-request-id"})
    record.save()
    return response


def record_key(req, key: str) -> str:
    """`IDEM#<role>#<hash(sub, key)>`: a member and a service account that share a subject
    never share keys, and neither the subject nor the client's key text is stored in a key."""
    role, sub = (req.principal.role, req.principal.sub) if req.principal else ("public", f"ip:{req.client_key}")
    return f"IDEM#{role}#" + hashlib.sha256(f"{sub}\0{key}".encode()).hexdigest()


def _claim(record: IdempotencyRecord, now: int) -> bool:
    """Take the key: absent, expired (TTL lags) or abandoned by a runner that died."""
    try:
        record.save(condition=(IdempotencyRecord.pk.does_not_exist()
                               | (IdempotencyRecord.expires_at < now)
                               | ((IdempotencyRecord.status == "in_progress") & (IdempotencyRecord.lock_until < now))))
        return True
    except PutError as exc:
        if not condition_failed(exc):
            raise
    # The put may have been applied and its answer lost (a timeout the client retried): then the
    # stored claim is this one.
    try:
        return IdempotencyRecord.get(record.pk, "IDEM", consistent_read=True).claim_id == record.claim_id
    except IdempotencyRecord.DoesNotExist:
        return False


def _replay(pk: str, digest: str) -> Response:
    try:
        stored = IdempotencyRecord.get(pk, "IDEM", consistent_read=True)
    except IdempotencyRecord.DoesNotExist:
        # The first runner failed and released the key between our claim and this read.
        raise Conflict(t("a request with this Idempotency-Key just failed; retry it"), code="request_in_progress",
                       headers={"Retry-After": "1"}) from None
    if stored.request_hash != digest:
        raise Conflict(t("this Idempotency-Key was used with a different request"), code="idempotency_key_reused")
    if stored.status != "done":
        raise Conflict(t("a request with this Idempotency-Key is still running"), code="request_in_progress",
                       headers={"Retry-After": "1"})
    headers = json.loads(stored.response_headers or "{}")
    headers["Idempotent-Replayed"] = "true"
    return Response(body=stored.response_body, status_code=int(stored.response_status), headers=headers)


def _release(record: IdempotencyRecord) -> None:
    try:
        record.delete(condition=IdempotencyRecord.status == "in_progress")
    except DeleteError:
        pass

