"""The runtime itself: tables, HTTP mechanics, stream delivery and retries."""
from __future__ import annotations

import json

from chalicelib.core import aws
from chalicelib.lifecycle import handlers as lifecycle_handlers
from chalicelib.lifecycle.outbox import Notification
from chalicelib.members.models import Member, member_pk
from chalicelib.store.tables import TABLES, ensure_tables


def test_health_reports_tables(client):
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json_body == {"status": "ok", "tables": {name: "ok" for name in TABLES}}
    assert response.headers["X-Request-Id"]


def test_ensure_tables_is_idempotent(backend):
    first = ensure_tables(aws.dynamodb(), backend)
    second = ensure_tables(aws.dynamodb(), backend)
    assert first == second
    assert set(first) == {"main", "clicks"}  # the tables with streams


def test_unknown_route_is_json_404(client):
    response = client.get("/v1/nothing-here")
    assert response.status_code == 404
    assert response.json_body["error"]["code"] == "not_found"


def test_unexpected_exception_is_500_envelope_with_request_id(client, monkeypatch):
    from chalicelib import health

    def broken():
        raise RuntimeError("secret internals")

    monkeypatch.setattr(health, "table_status", broken)
    response = client.get("/health")
    assert response.status_code == 500
    body = response.json_body
    assert body["error"]["code"] == "internal_error"
    assert body["error"]["details"]["request_id"] == response.headers["X-Request-Id"]
    assert b"secret internals" not in response.body and b"Traceback" not in response.body


def _insert_member(member_id: str) -> Member:
    member = Member.new(member_id, "2026-11-23T08:00:00.000000Z", display_name="Lily")
    member.save()
    return member


def _notes(member_id: str) -> list[Notification]:
    return list(Notification.query(member_pk(member_id), Notification.sk.startswith("NOTE#")))


def test_record_reaches_stream_handler_through_poller(streams):
    _insert_member("m1")
    assert _notes("m1") == []
    delivered = streams.drain()
    assert delivered >= 1
    notes = _notes("m1")
    assert [n.kind for n in notes] == ["welcome"]


def test_redelivery_changes_nothing(streams):
    _insert_member("m1")
    streams.drain()
    # Forget every checkpoint: the whole stream is delivered again, as after a crash.
    streams.replay_from_start()
    assert streams.drain() >= 1
    assert [n.kind for n in _notes("m1")] == ["welcome"]


def test_failing_handler_is_retried_and_not_checkpointed(streams, monkeypatch):
    calls = {"n": 0}
    original = lifecycle_handlers.outbox.post

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("downstream hiccup")
        return original(*args, **kwargs)

    streams.drain()  # consume the seeded campaign's records first
    before = dict(streams.checkpoints.values)
    monkeypatch.setattr(lifecycle_handlers.outbox, "post", flaky)
    held = streams.monotonic()
    streams.monotonic = lambda: held  # the backoff cannot run out between two polls, however slow
    _insert_member("m1")
    streams.drain()  # first delivery fails (drain: the record may take a moment to show)
    assert _notes("m1") == []
    assert streams.checkpoints.values == before, "a failed batch was checkpointed"
    streams.poll_once()  # still inside the backoff: not retried yet
    assert calls["n"] == 1
    streams.drain(ignore_backoff=True)  # retried after the backoff
    assert calls["n"] == 2
    assert [n.kind for n in _notes("m1")] == ["welcome"]
    assert streams.checkpoints.values != before


def test_partial_batch_failure_redelivers_from_lowest_failed(streams, monkeypatch):
    seen: list[str] = []
    original = lifecycle_handlers.outbox.post

    def fail_m2_once(member_id, *args, **kwargs):
        seen.append(member_id)
        if member_id == "m2" and seen.count("m2") == 1:
            raise RuntimeError("poison, once")
        return original(member_id, *args, **kwargs)

    monkeypatch.setattr(lifecycle_handlers.outbox, "post", fail_m2_once)
    for member_id in ("m1", "m2", "m3"):
        _insert_member(member_id)
    streams.drain(ignore_backoff=True)
    # m1 succeeded and was checkpointed before m2; m2 and everything after it came again.
    assert seen.count("m1") == 1 and seen.count("m2") == 2
    assert all(len(_notes(m)) == 1 for m in ("m1", "m2", "m3"))


def test_stream_event_shape_matches_lambda(streams, app):
    captured = []
    original = streams._invoke

    def spy(name, event):
        captured.append(event)
        return original(name, event)

    streams._invoke = spy
    _insert_member("m1")
    streams.drain()
    record = captured[0]["Records"][0]
    assert record["eventSourceARN"].startswith("arn:aws:dynamodb")
    assert isinstance(record["dynamodb"]["ApproximateCreationDateTime"], float)
    json.dumps(captured[0])  # a Lambda event is plain JSON


def test_reading_an_empty_stream_first_does_not_block_later_records(streams):
    """The clicks stream is empty at start; its first iterator must not strand later records."""
    from chalicelib.referrals.models import Click

    delivered: list[str] = []
    original = streams._invoke

    def spy(name, event):
        delivered.extend(r["eventSourceARN"] for r in event["Records"] if name == "on_click")
        return original(name, event)

    streams._invoke = spy
    streams.drain()
    streams.drain()
    Click(*Click.key("k-late"), click_id="k-late", code="ABCDEFG", at="2026-11-23T08:00:00.000000Z").save()
    streams.drain()
    assert len(delivered) == 1


def test_local_server_keeps_each_concurrent_request_apart(app, client):
    """`make run` serves every connection on its own thread: each request must see its own
    headers and body (Chalice keeps `current_request` on the app unless it is made per thread)."""
    import http.client
    import json as jsonlib
    from concurrent.futures import ThreadPoolExecutor

    from tests.flows import login
    from tests.live import serving

    with serving(app) as base:
        port = int(base.rsplit(":", 1)[1])
        members = [login(client, f"user{i}")[:2] for i in range(8)]

        def me(token_and_id):
            token, member_id = token_and_id
            seen = set()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            for _ in range(6):
                conn.request("GET", "/v1/members/me", headers={"Authorization": f"Bearer {token}"})
                seen.add(jsonlib.loads(conn.getresponse().read())["member_id"])
            conn.close()
            return seen == {member_id}

        import sys

        interval = sys.getswitchinterval()
        sys.setswitchinterval(1e-6)  # switch threads as often as possible: make a shared request show
        try:
            with ThreadPoolExecutor(max_workers=8) as pool:
                assert all(pool.map(me, members * 3))
        finally:
            sys.setswitchinterval(interval)


def test_import_app_registers_every_stream_handler_in_the_code():
    """The deployed functions run the handlers their first batch registers (the modules
    chalicelib/stream_handlers.py lists); a module that declares handlers but is imported only
    by tests would be silently skipped in AWS. Checked in a fresh interpreter, against every
    `@on_change`/`@on_batch` in chalicelib/."""
    import re
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    declared = set()
    for path in (root / "chalicelib").rglob("*.py"):
        module = ".".join(path.relative_to(root).with_suffix("").parts)
        for name in re.findall(r"@on_(?:change|batch)\([^)]*\)\s*\ndef (\w+)", path.read_text()):
            declared.add(f"{module}.{name}")
    script = ("import app\nfrom chalicelib import streams\nstreams.load_handlers()\n"
              "print('\\n'.join(f.__module__ + '.' + f.__name__ for hs in (*streams._handlers.values(),"
              " *streams._batch_handlers.values()) for f in hs))")
    registered = set(subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                                    cwd=root).stdout.split())
    assert len(declared) > 20 and declared <= registered, sorted(declared - registered)
