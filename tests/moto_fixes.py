"""Two moto 5.2.5 behaviours of TransactWriteItems the tests would otherwise trip over
(DynamoDB and DynamoDB Local behave).

1. A cancelled transaction rolls back by replacing each table object with a deep copy taken
   before it, stream shard included. Shard iterators already handed out keep pointing at the
   discarded shard, so a stream reader sees no record written after the first cancelled
   transaction.
2. That deep copy of every table (items and the whole stream history) is taken once per item of
   every transaction: a suite's transactions grow slower as its tables and streams grow
   (seconds each after a few hundred).

The patch keeps moto's semantics and replaces the backup: the items the transaction names are
copied before it and put back if it is cancelled, and the stream shard is trimmed back to the
records it had before (the rolled-back writes' records never happened).
"""
from __future__ import annotations

import copy
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any


def _key_of(table: Any, op: dict[str, Any]) -> tuple[Any, Any] | None:
    from moto.dynamodb.models.dynamo_type import DynamoType

    source = op.get("Key") or op.get("Item")
    if not source or table.hash_key_attr not in source:
        return None
    range_value = None
    if table.range_key_attr and table.range_key_attr in source:
        range_value = DynamoType(source[table.range_key_attr])
    return DynamoType(source[table.hash_key_attr]), range_value


def _restore(table: Any, hash_value: Any, range_value: Any, prior: Any) -> None:
    if table.has_range_key:
        if prior is None:
            table.items.get(hash_value, {}).pop(range_value, None)
        else:
            table.items[hash_value][range_value] = prior
    elif prior is None:
        table.items.pop(hash_value, None)
    else:
        table.items[hash_value] = prior


@contextmanager
def streams_survive_cancelled_transactions():
    from moto.dynamodb import models as ddb_models
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import Table

    original = DynamoDBBackend.transact_write_items

    def deepcopy(value: Any, memo: Any = None) -> Any:  # moto's whole-table backup: kept as is
        return value if isinstance(value, Table) else copy.deepcopy(value, memo)

    def transact_write_items(self, transact_items):
        shards = {name: (table.stream_shard, len(table.stream_shard.items))
                  for name, table in self.tables.items() if table.stream_shard is not None}
        saved = []
        for entry in transact_items:
            _, op = next(iter(entry.items()))
            table = self.tables.get(op.get("TableName"))
            key = _key_of(table, op) if table is not None else None
            if key is not None:
                prior = table.get_item(*key) if table.has_range_key or key[1] is None else None
                saved.append((table, key, copy.deepcopy(prior)))
        try:
            return original(self, transact_items)
        except Exception:
            for table, (hash_value, range_value), prior in reversed(saved):
                _restore(table, hash_value, range_value, prior)
            for name, (shard, length) in shards.items():
                table = self.tables.get(name)
                del shard.items[length:]
                if table is not None:
                    shard.table = table
                    table.stream_shard = shard
            raise

    DynamoDBBackend.transact_write_items = transact_write_items
    ddb_models.copy = SimpleNamespace(deepcopy=deepcopy)
    try:
        yield
    finally:
        DynamoDBBackend.transact_write_items = original
        ddb_models.copy = copy
