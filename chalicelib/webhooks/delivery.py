"""Sending deliveries: a scheduled sweep over the due index (`send_due`, every minute).

Each subscription's due deliveries live in their own index partitions (DELIVER#<webhook>#<shard>),
and each (subscription, shard) gets its own sender, side by side: a slow or dead receiver holds
up only its own senders, never another receiver, and never the stream (which only writes
deliveries). A sender stops for this run after a few failures in a row (the receiver is down;
its deliveries keep their place and their backoff) or when the run's time is up.

A delivery is claimed before it is sent (a conditional update that moves it a lease ahead), so
two runs at once — a duplicated schedule — do not both send it; a run that dies mid-send leaves
the lease to expire and the delivery is sent again: at least once, receivers dedupe on event_id.
Failures back off exponentially with jitter; once the next attempt would fall outside the retry
window (about 24 h from the first attempt or the last re-drive) the delivery is `dead`.
"""
from __future__ import annotations

import http.client
import random
import socket
import ssl
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any, Callable, Iterable
from urllib.parse import urlsplit

from pynamodb.exceptions import UpdateError

from ..core import clock
from ..core.logs import get_logger
from ..store.base import condition_failed
from . import addresses, signing
from .models import DELIVERY_SHARDS, Delivery, Webhook
from .subscriptions import all_subscriptions

log = get_logger("webhooks")

TIMEOUT_SECONDS = 5.0
LEASE_SECONDS = 60  # longer than one attempt can take (connect + answer ≤ 2 × TIMEOUT_SECONDS)
RUN_SECONDS = 40.0  # a run's share of the function's 60 s
FIRST_RETRY_SECONDS = 30
MAX_RETRY_SECONDS = 4 * 3600
RETRY_WINDOW = timedelta(hours=24)
FAILURES_BEFORE_PAUSE = 3  # in a row, per sender and run
PAGE = 25
USER_AGENT = "referral-service-webhooks/1"


def backoff_seconds(attempts: int, rng: Callable[[], float] = random.random) -> float:
    """After `attempts` failed attempts: 30 s, 1 min, 2 min … capped at 4 h, each with "equal
    jitter" (between half and all of it), so receivers coming back are not hit in lockstep."""
    ceiling = min(MAX_RETRY_SECONDS, FIRST_RETRY_SECONDS * 2 ** max(0, attempts - 1))
    return ceiling / 2 + rng() * ceiling / 2


# -- sending one request ------------------------------------------------------------------------

class _Pinned:
    """Connections to the address that was checked, with the URL's host for TLS and Host."""

    def __init__(self, address: str):
        self.address = address

    def connect(self, conn: http.client.HTTPConnection) -> None:
        sock = socket.create_connection((self.address, conn.port), conn.timeout)
        if isinstance(conn, http.client.HTTPSConnection):
            sock = conn._context.wrap_socket(sock, server_hostname=conn.host)  # noqa: SLF001 (its own context)
        conn.sock = sock


def post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int | None, str | None]:
    """(status code, error): one POST that ends within TIMEOUT_SECONDS of connecting, whatever
    the receiver does (a socket timeout alone would let a receiver that drips a byte every few
    seconds hold the sender for ever). Never raises: any failure is the attempt's error."""
    try:
        parts = urlsplit(url)
        https = parts.scheme == "https"
        port = parts.port or (443 if https else 80)
        address = addresses.resolve(parts.hostname or "", port)
    except addresses.NotAllowed as exc:
        return None, f"refused: {exc}"
    except Exception as exc:  # a URL this code cannot send to is the delivery's failure, not the run's
        return None, f"{type(exc).__name__}: {exc}"[:300]
    conn: http.client.HTTPConnection
    if https:
        conn = http.client.HTTPSConnection(parts.hostname, port, timeout=TIMEOUT_SECONDS,
                                           context=ssl.create_default_context())
    else:
        conn = http.client.HTTPConnection(parts.hostname, port, timeout=TIMEOUT_SECONDS)
    pinned = _Pinned(address)
    conn.connect = lambda: pinned.connect(conn)  # type: ignore[method-assign]
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    fired = threading.Event()
    deadline = threading.Timer(TIMEOUT_SECONDS, _cut, args=(conn, fired))
    deadline.daemon = True
    deadline.start()
    try:
        conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        response.read(4096)
        return response.status, None
    except Exception as exc:
        if fired.is_set():
            return None, f"timed out after {TIMEOUT_SECONDS:g} s"
        return None, f"{type(exc).__name__}: {exc}"[:300]
    finally:
        deadline.cancel()
        conn.close()


def _cut(conn: http.client.HTTPConnection, fired: threading.Event) -> None:
    """The attempt's time is up: shut the socket, which ends any read or write blocked on it."""
    fired.set()
    sock = conn.sock
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


# -- one delivery ---------------------------------------------------------------------------------

def _claim(item: Delivery, now: str) -> bool:
    lease = clock.iso(clock.now() + timedelta(seconds=LEASE_SECONDS))  # from now: a run can be 40 s old
    try:
        # the index key stays: a run that reads it meanwhile finds the lease in the future and
        # leaves the delivery alone; moving the key too would cost an index delete and put
        item.update(actions=[Delivery.attempts.add(1), Delivery.next_attempt_at.set(lease)],
                    condition=(Delivery.status == "pending") & (Delivery.attempts == int(item.attempts))
                    & (Delivery.next_attempt_at <= now))
        return True
    except UpdateError as exc:
        if condition_failed(exc):
            return False  # another run has it, or it changed since the index was read
        raise


def attempt(hook: Webhook, item: Delivery, now: str | None = None) -> bool | None:
    """Claim, send, record. True delivered, False failed (retry later or dead), None not claimed."""
    now = now or clock.now_iso()
    attempts = int(item.attempts) + 1  # this attempt's number (the claim updates `item` in place)
    if not _claim(item, now):
        return None
    body = item.body.encode()
    timestamp = int(clock.epoch())
    status, error = post(hook.url, body, {
        "Content-Type": "application/json", "User-Agent": USER_AGENT,
        "X-Referral-Event-Id": item.event_id, "X-Referral-Event-Type": item.event_type,
        signing.HEADER: signing.sign(hook.secret, timestamp, body)})
    delivered = status is not None and 200 <= status < 300
    finished = clock.now_iso()
    actions: list[Any] = [Delivery.last_attempt_at.set(finished), Delivery.last_status_code.set(status)
                          if status is not None else Delivery.last_status_code.remove()]
    if delivered:
        actions += [Delivery.status.set("delivered"), Delivery.delivered_at.set(finished), Delivery.last_error.remove(),
                    Delivery.next_attempt_at.remove(), Delivery.gsi2pk.remove(), Delivery.gsi2sk.remove()]
    else:
        error = error or f"answered {status}"
        later = clock.parse(finished) + timedelta(seconds=backoff_seconds(attempts))
        if later - clock.parse(item.window_started_at) > RETRY_WINDOW:
            actions += [Delivery.status.set("dead"), Delivery.last_error.set(error), Delivery.next_attempt_at.remove(),
                        Delivery.gsi2pk.remove(), Delivery.gsi2sk.remove()]
        else:
            next_at = clock.iso(later)
            actions += [Delivery.last_error.set(error), Delivery.next_attempt_at.set(next_at),
                        Delivery.gsi2sk.set(Delivery.due_keys(item.webhook_id, item.delivery_id, next_at)["gsi2sk"])]
    try:
        item.update(actions=actions, condition=(Delivery.attempts == attempts) & (Delivery.status == "pending"))
    except UpdateError as exc:
        if not condition_failed(exc):
            raise
        log.info("delivery changed while it was being sent", extra={"delivery_id": item.delivery_id})
    if not delivered:
        log.info("webhook delivery failed", extra={"webhook_id": hook.webhook_id, "delivery_id": item.delivery_id,
                                                   "status": status, "error": error})
    return delivered


# -- the sweep ------------------------------------------------------------------------------------

Senders = Callable[[Callable[[Any], int], Iterable[Any]], list[int]]


def in_threads(work: Callable[[Any], int], lanes: Iterable[Any]) -> list[int]:
    lanes = list(lanes)
    if not lanes:
        return []
    with ThreadPoolExecutor(max_workers=min(64, len(lanes)), thread_name_prefix="deliver") as pool:
        return list(pool.map(work, lanes))


def in_turn(work: Callable[[Any], int], lanes: Iterable[Any]) -> list[int]:
    return [work(lane) for lane in lanes]


# Side by side on DynamoDB; the test fixture runs them in turn on moto (not thread-safe).
run_senders: Senders = in_threads


def send_due(now: str | None = None, run_seconds: float = RUN_SECONDS) -> int:
    """Send what is due; the number delivered."""
    now = now or clock.now_iso()
    deadline = time.monotonic() + run_seconds
    lanes = [(hook, shard) for hook in all_subscriptions(fresh=True) for shard in range(DELIVERY_SHARDS)]
    return sum(run_senders(lambda lane: _drain(lane[0], lane[1], now, deadline), lanes))


def _drain(hook: Webhook, shard: int, now: str, deadline: float) -> int:
    delivered = failures = 0
    due = Delivery.by_gsi2.query(f"DELIVER#{hook.webhook_id}#{shard}", Delivery.gsi2sk <= f"{now}#~",
                                 page_size=PAGE)
    for item in due:
        if time.monotonic() >= deadline:
            break
        outcome = attempt(hook, item, now)
        if outcome:
            delivered, failures = delivered + 1, 0
        elif outcome is False:
            failures += 1
            if failures >= FAILURES_BEFORE_PAUSE:
                log.info("receiver failing: its sender pauses until the next run",
                         extra={"webhook_id": hook.webhook_id, "shard": shard})
                break
    return delivered
