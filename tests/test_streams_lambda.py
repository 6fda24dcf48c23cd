"""Stream handlers under Lambda's rules: a failure must lose nothing, whether or not the
mapping reads partial-batch answers (chalicelib/event_sources.py declares which)."""
from __future__ import annotations

import pytest

from chalicelib import streams as stream_module
from chalicelib.rewards import ledger
from infra.local.stream_poller import LambdaContext
from tests.flows import code_of, purchase, signup
from tests.ledger_checks import assert_balances_match_entries, by_rule
from tests.stream_rules import set_mapping, throttle_first

COMPLETE = {"conversion": 500, "commission": 900}  # ¥100 and ¥200 at 3 %


def _two_purchases(client) -> None:
    signup(client, "a")
    signup(client, "b", code_of("a"))
    assert purchase(client, "o1", "b", 100_00).status_code == 200
    assert purchase(client, "o2", "b", 200_00).status_code == 200


def _throttle_commission_of_o1(monkeypatch) -> list:
    return throttle_first(monkeypatch, ledger, "award",
                          lambda grant, *a, **k: grant.rule == "commission" and grant.source_id == "o1")


def test_partial_failure_with_reporting_redelivers_the_failed_record_and_the_rest(client, streams, monkeypatch):
    set_mapping(monkeypatch, "on_main_change", report_batch_item_failures=True)
    _two_purchases(client)
    throttled = _throttle_commission_of_o1(monkeypatch)
    streams.drain(ignore_backoff=True)
    # failed once, delivered again (o1's commission is also tried by the conversion's restatement,
    # which finds it paid)
    assert len(throttled) >= 2
    assert by_rule("a") == COMPLETE
    assert_balances_match_entries(["a", "b"])


def test_the_same_failure_without_reporting_raises_and_loses_nothing(client, streams, monkeypatch):
    set_mapping(monkeypatch, "on_main_change", report_batch_item_failures=False)
    _two_purchases(client)
    throttled = _throttle_commission_of_o1(monkeypatch)
    streams.drain(ignore_backoff=True)
    assert len(throttled) >= 2
    assert by_rule("a") == COMPLETE
    assert_balances_match_entries(["a", "b"])


def test_without_reporting_a_returned_failure_list_would_be_lost(client, streams, monkeypatch):
    """Why the handler raises: the mapping (and the poller, like Lambda) ignores a returned
    list without ReportBatchItemFailures, so answering with one skips the failed records.
    One lane: with several, the records after the failed one may be in another lane's batch,
    which is not skipped (what is lost is the rest of the failed record's own batch)."""
    set_mapping(monkeypatch, "on_main_change", report_batch_item_failures=False, parallelization_factor=1)
    reporting = stream_module.mapping_for_table("clicks")  # any mapping that reports
    assert reporting.report_batch_item_failures
    monkeypatch.setattr(stream_module, "mapping_for_table", lambda table: reporting)  # the old handler
    _two_purchases(client)
    _throttle_commission_of_o1(monkeypatch)
    streams.drain(ignore_backoff=True)
    lost = by_rule("a")
    assert lost != COMPLETE  # the failed record and those after it in the batch never came


def _captured_main_event(client, streams) -> dict:
    """A real Lambda-shaped event of the main stream, captured from the poller, not handled."""
    events = []
    streams._invoke = lambda name, event: events.append(event) if name == "on_main_change" else None
    _two_purchases(client)
    streams.drain()
    records = [r for event in events for r in event["Records"]]
    return {"Records": records}


def test_handler_answers_under_each_mapping(app, client, streams, monkeypatch):
    event = _captured_main_event(client, streams)
    sequences = [r["dynamodb"]["SequenceNumber"] for r in event["Records"]]
    # A record some handler follows (the others are not even decoded: they cannot fail).
    followed = [r["dynamodb"]["SequenceNumber"] for r in event["Records"]
                if stream_module.handled("main", stream_module.item_type_of(r))]
    bad = followed[len(followed) // 2]
    assert bad != sequences[0]
    throttle_first(monkeypatch, stream_module, "decode",
                   lambda root, record: record["dynamodb"]["SequenceNumber"] == bad, times=10)
    handler = app.handler_map["on_main_change"]

    set_mapping(monkeypatch, "on_main_change", report_batch_item_failures=True)
    answer = handler(event, LambdaContext("on_main_change"))
    assert [f["itemIdentifier"] for f in answer["batchItemFailures"]] == sequences[sequences.index(bad):]

    set_mapping(monkeypatch, "on_main_change", report_batch_item_failures=False)
    with pytest.raises(stream_module.BatchFailed) as raised:
        handler(event, LambdaContext("on_main_change"))
    assert raised.value.failed == sequences[sequences.index(bad):]


def test_a_batch_failing_from_its_first_record_raises_even_with_reporting(app, client, streams, monkeypatch):
    """Nothing to checkpoint: only an error lets Lambda bisect the batch around the bad record."""
    records = _captured_main_event(client, streams)["Records"]
    # From the first record a handler follows (records nobody follows are not decoded: done).
    first = next(i for i, r in enumerate(records) if stream_module.handled("main", stream_module.item_type_of(r)))
    event = {"Records": records[first:]}
    set_mapping(monkeypatch, "on_main_change", report_batch_item_failures=True)
    monkeypatch.setattr(stream_module, "decode", lambda root, record: (_ for _ in ()).throw(RuntimeError("x")))
    with pytest.raises(stream_module.BatchFailed):
        app.handler_map["on_main_change"](event, LambdaContext("on_main_change"))
