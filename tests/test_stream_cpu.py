"""What the stream work of a purchase costs, cut without changing what it does: answers parsed
as they come (core/wire.py), records of item types nobody follows not decoded (streams.py),
the program's versions not reloaded for every moment ahead of the clock (program/service.py)."""
from __future__ import annotations

import base64
import json
import os
import random
from datetime import timedelta

import botocore.session
from botocore import parsers

from chalicelib import bootstrap, streams as stream_module
from chalicelib.core import aws, clock, wire
from chalicelib.program import service as program
from chalicelib.store.base import MainItem, table_name
from tests.flows import code_of, purchase, signup


def _attribute(rng: random.Random, depth: int = 0) -> dict:
    kind = rng.choice(["S", "N", "B", "SS", "NS", "BS", "BOOL", "NULL"] + (["M", "L"] if depth < 3 else []))
    return {
        "S": lambda: {"S": "é" * rng.randint(0, 4)},
        "N": lambda: {"N": str(rng.randint(-9, 9))},
        "B": lambda: {"B": base64.b64encode(bytes([rng.randint(0, 255)] * 3)).decode()},
        "SS": lambda: {"SS": ["a", "b"]},
        "NS": lambda: {"NS": ["1", "2.5"]},
        "BS": lambda: {"BS": [base64.b64encode(b"\x00q").decode()]},
        "BOOL": lambda: {"BOOL": rng.random() < 0.5},
        "NULL": lambda: {"NULL": True},
        "M": lambda: {"M": {f"k{i}": _attribute(rng, depth + 1) for i in range(rng.randint(0, 3))}},
        "L": lambda: {"L": [_attribute(rng, depth + 1) for _ in range(rng.randint(0, 3))]},
    }[kind]()


def _answers(rng: random.Random) -> list[tuple[str, str, dict, int]]:
    def item() -> dict:
        return {f"a{i}": _attribute(rng) for i in range(12)}

    record = {"eventID": "1", "eventName": "MODIFY", "dynamodb": {
        "ApproximateCreationDateTime": 1700000000.5, "Keys": {"pk": {"S": "a"}}, "NewImage": item(),
        "OldImage": item(), "SequenceNumber": "1", "SizeBytes": 10, "StreamViewType": "NEW_AND_OLD_IMAGES"}}
    return [
        ("dynamodb", "GetItem", {"Item": item(), "ConsumedCapacity": {"TableName": "t", "CapacityUnits": 1.0}}, 200),
        ("dynamodb", "Query", {"Items": [item(), item()], "Count": 2, "ScannedCount": 2,
                               "LastEvaluatedKey": {"pk": {"S": "a"}, "sk": {"S": "b"}}}, 200),
        ("dynamodb", "BatchGetItem", {"Responses": {"t": [item()]},
                                      "UnprocessedKeys": {"t": {"Keys": [{"pk": {"S": "x"}}]}}}, 200),
        ("dynamodb", "UpdateItem", {"Attributes": item()}, 200),
        ("dynamodb", "TransactGetItems", {"Responses": [{"Item": item()}, {}]}, 200),
        ("dynamodbstreams", "GetRecords", {"Records": [record], "NextShardIterator": "i"}, 200),
        ("dynamodb", "TransactWriteItems", {
            "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException", "Message": "cancelled",
            "CancellationReasons": [{"Code": "ConditionalCheckFailed", "Item": item()}, {"Code": "None"}]}, 400),
    ]


def test_answers_parse_exactly_as_botocore_parses_them():
    session, rng = botocore.session.get_session(), random.Random(18)
    for _ in range(20):
        for service, operation, body, status in _answers(rng):
            shape = session.get_service_model(service).operation_model(operation).output_shape
            answer = {"body": json.dumps(body).encode(), "headers": {}, "status_code": status}
            assert wire.FastAttributeValueParser().parse(answer, shape) == parsers.JSONParser().parse(answer, shape)


def test_every_kind_of_value_comes_back_as_it_was_written(backend):
    item = {"pk": {"S": "WIRE#1"}, "sk": {"S": "X"}, "type": {"S": "wire_test"}, "s": {"S": "名字"},
            "n": {"N": "12.5"}, "b": {"B": b"\x00\xffbytes"}, "ss": {"SS": ["a", "b"]}, "ns": {"NS": ["1", "2"]},
            "bs": {"BS": [b"\x01", b"\x02"]}, "t": {"BOOL": True}, "z": {"NULL": True},
            "m": {"M": {"inner": {"L": [{"S": "x"}, {"B": b"\x03"}, {"M": {}}]}}}}
    ddb = aws.dynamodb()
    ddb.put_item(TableName=table_name("main"), Item=item)
    got = ddb.get_item(TableName=table_name("main"), Key={"pk": item["pk"], "sk": item["sk"]},
                       ConsistentRead=True)["Item"]
    normalized = {k: ({"SS": sorted(v["SS"])} if "SS" in v else {"NS": sorted(v["NS"])} if "NS" in v
                      else {"BS": sorted(v["BS"])} if "BS" in v else v) for k, v in got.items()}
    assert normalized == item
    # PynamoDB's client (every model's) parses the same way.
    assert MainItem._get_connection().connection.client._endpoint._response_parser_factory.create_parser(
        "json").__class__ is wire.FastAttributeValueParser


def test_records_of_item_types_nobody_follows_are_not_decoded(app, client, streams, monkeypatch):
    decoded: list[str] = []
    real = stream_module.decode

    def counting(root, record):
        change = real(root, record)
        decoded.append(change.item_type)
        return change

    monkeypatch.setattr(stream_module, "decode", counting)
    signup(client, "wire-ref")
    streams.drain()
    signup(client, "wire-friend", code=code_of("wire-ref"))
    assert purchase(client, "wire-o1", "wire-friend", 120_00).status_code == 200
    streams.drain()
    assert decoded, "the followed records were decoded"
    assert all(stream_module.handled("main", kind) for kind in decoded)
    assert "ledger_entry" in decoded and "order" in decoded


def test_a_fact_dated_ahead_of_the_clock_does_not_reload_the_program_each_time(backend, monkeypatch):
    loads = []
    real = program._load
    monkeypatch.setattr(program, "_load", lambda: loads.append(1) or real())
    program.clear_caches()
    ahead = clock.iso(clock.now() + timedelta(minutes=4))  # within FACT_MAX_FUTURE_SECONDS
    for _ in range(5):
        program.rules_at(ahead)
    assert len(loads) == 1
    clock.advance(timedelta(seconds=program.EFFECTIVE_DELAY.total_seconds() + 1))
    program.rules_at(ahead)  # the cache is no longer exact for now: load again
    assert len(loads) == 2


def test_a_version_put_is_seen_by_this_instance_once_in_force(backend):
    first = program.rules_at()
    changed = first.model_copy(update={"second_purchase_nudge_days": first.second_purchase_nudge_days + 1})
    program.put(changed, "ops")
    clock.advance(program.EFFECTIVE_DELAY + timedelta(seconds=1))
    assert program.rules_at().second_purchase_nudge_days == first.second_purchase_nudge_days + 1


def test_a_running_poller_reads_the_shards_it_knows_without_describing_the_stream_again(app, client, streams,
                                                                                         monkeypatch):
    streams.drain()  # shards discovered
    described = []
    for api, name in ((streams.streams, "describe_stream"), (streams.ddb, "describe_table")):
        real = getattr(api, name)
        monkeypatch.setattr(api, name, lambda *a, _real=real, _name=name, **k: described.append(_name) or _real(*a, **k))
    signup(client, "poll-friend")
    assert streams.poll_once(discover=False) > 0  # the sign-up's records, from the known shard
    assert described == []
    streams.poll_once()  # a draining round looks for new shards, as before
    assert "describe_stream" in described


def test_between_table_checks_new_shards_are_looked_up_on_the_stream_alone(app, client, streams, monkeypatch):
    """DescribeTable is the slow call of DynamoDB Local (it grows with the table): a running
    poller looks for shards on the known stream each second and describes the table only
    every half minute — or at once when the known stream stops, as a recreated table's does."""
    streams.drain()  # the stream and its shards known
    described = []
    real = streams.ddb.describe_table
    monkeypatch.setattr(streams.ddb, "describe_table",
                        lambda *a, **k: described.append(k["TableName"]) or real(*a, **k))
    signup(client, "shard-friend")
    assert streams.poll_once(discover=True, tables=False) > 0
    assert described == []
    main = next(source for source in streams.sources if source.table == "main")
    # the table recreated under the running poller: its old stream is gone or disabled
    streams.ddb.delete_table(TableName=main.table_name)
    streams.ddb.get_waiter("table_not_exists").wait(TableName=main.table_name, WaiterConfig={"Delay": 0.2})
    bootstrap.prepare(streams.ddb, os.environ["TABLE_PREFIX"])
    signup(client, "after-recreate")
    assert streams.poll_once(discover=True, tables=False) > 0  # the new stream found through the table
    assert main.table_name in described
