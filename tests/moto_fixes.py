"""A moto 5.2.5 defect the tests would otherwise trip over (DynamoDB and DynamoDB Local behave).

A cancelled TransactWriteItems rolls back by replacing each table object with a deep copy taken
before the transaction, stream shard included. Shard iterators already handed out keep pointing
at the discarded shard, so a stream reader sees no record written after the first cancelled
transaction. The rollback is kept, but the table keeps its original shard, trimmed back to the
records it had before the transaction (the rolled-back writes' records never happened).
"""
from __future__ import annotations

from contextlib import contextmanager


@contextmanager
def streams_survive_cancelled_transactions():
    from moto.dynamodb.models import DynamoDBBackend

    original = DynamoDBBackend.transact_write_items

    def transact_write_items(self, transact_items):
        shards = {name: (table.stream_shard, len(table.stream_shard.items))
                  for name, table in self.tables.items() if table.stream_shard is not None}
        try:
            return original(self, transact_items)
        except Exception:
            for name, (shard, length) in shards.items():
                table = self.tables.get(name)
                if table is not None and table.stream_shard is not shard:
                    del shard.items[length:]
                    shard.table = table
                    table.stream_shard = shard
            raise

    DynamoDBBackend.transact_write_items = transact_write_items
    try:
        yield
    finally:
        DynamoDBBackend.transact_write_items = original
