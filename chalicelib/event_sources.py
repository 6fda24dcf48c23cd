"""How each table stream reaches its function, declared once.

Three readers, one declaration:
- `app.py` takes `batch_size` and `starting_position` for `@app.on_dynamodb_record`;
- the AWS template (`infra/aws/template.py`) writes every field into the event source mapping
  (`FunctionResponseTypes`, `BisectBatchOnFunctionError`, `MaximumRetryAttempts`, …);
- the local poller (`infra/local/stream_poller.py`) follows the same settings, so a poison
  record behaves the same on a laptop and on AWS.

Pure data: importing this costs nothing at cold start (a NamedTuple, not a dataclass: every
function imports this, and `dataclasses` brings `inspect` with it).
"""
import os
from typing import NamedTuple


class StreamMapping(NamedTuple):
    """Lambda's event source mapping for one table stream (names follow the AWS API).

    - `report_batch_item_failures`: the handler answers `{"batchItemFailures": [...]}` and
      Lambda retries from the lowest failed record (every record after it comes again); without
      it a returned list means success, so handlers raise instead (streams.process_batch).
    - `bisect_batch_on_error`: a batch whose invocation fails is split in two and the halves
      retried in order, down to one record, which isolates a poison record; splitting does not
      use up retries. A partial-batch answer is not split: only the records from the failed
      one on are retried.
    - `maximum_retry_attempts` / `maximum_record_age_seconds`: then the batch is handed to the
      failure destination (an SQS message naming its shard and sequence range) and the shard
      moves on. Ten retries with backoff outlast a throttling burst; six hours leave ops time
      to react while the records are still in the stream (24 h) for the failure consumer.
    - `parallelization_factor`: up to that many batches of one shard in flight at once (1–10).
      Lambda "still ensures in-order processing at the item (partition and sort key) level":
      a later change of an item never overtakes an earlier one; records of different items
      (even of one partition) may run side by side, and the handlers are written for any order
      across items anyway.
    - `tumbling_window_seconds`: Lambda then names the shard (`shardId`, with `window` and
      `state`) in every event, and a batch never spans two windows; the click counters need
      the shard to stay exact when a stream has several shards (referrals/counters.py).
    """

    function: str
    table: str
    batch_size: int
    starting_position: str = "TRIM_HORIZON"
    maximum_batching_window_seconds: int = 0
    report_batch_item_failures: bool = True
    bisect_batch_on_error: bool = True
    maximum_retry_attempts: int = 10
    maximum_record_age_seconds: int = 6 * 3600
    parallelization_factor: int = 1
    tumbling_window_seconds: int | None = None

    def chalice_args(self) -> dict:
        """The part Chalice's decorator takes itself."""
        return {"batch_size": self.batch_size, "starting_position": self.starting_position}


def stream_arn(logical_table: str) -> str:
    """The stream ARN a handler subscribes to. Chalice needs it at import and packaging time,
    so a missing variable yields a placeholder naming the table instead of failing every
    function (the local runtime matches handlers to tables by that name)."""
    variable = f"{logical_table.upper()}_STREAM_ARN"
    placeholder = f"arn:aws:dynamodb:local:000000000000:table/{logical_table}/stream/placeholder"
    return os.environ.get(variable, placeholder)


MAPPINGS: dict[str, StreamMapping] = {
    mapping.function: mapping
    for mapping in (
        # One batch per shard: measured with two and four lanes, capacity hardly moved (DynamoDB
        # Local's CPU dominates here) while a purchase's records, spread over lanes, cost the
        # batch-grouping handlers 2-4 more transactions. Raise it where the iterator age grows
        # on AWS (docs/streams.md has the figures).
        StreamMapping("on_main_change", "main", batch_size=100, parallelization_factor=1),
        StreamMapping("on_click", "clicks", batch_size=500, tumbling_window_seconds=30),
    )
}



def mapping_for_table(table: str) -> StreamMapping:
    """The mapping of the function that reads `table`'s stream (one per table)."""
    for mapping in MAPPINGS.values():
        if mapping.table == table:
            return mapping
    raise KeyError(f"no stream mapping reads the {table!r} table")


# Where a batch goes once its retries or its age are used up (an SQS queue on AWS).
FAILURE_QUEUE_LOGICAL_ID = "StreamFailureQueue"
# The function subscribed to that queue registers
# `@app.on_sqs_message(queue_arn=FAILURE_QUEUE_PLACEHOLDER_ARN)`: an ARN string, which the merge
# template replaces with the queue resource's ARN (a `queue=` name would become an `Fn::Sub` that
# a deep merge cannot remove), whatever the queue's deployed name.
FAILURE_QUEUE_NAME = "stream-failures"
FAILURE_QUEUE_PLACEHOLDER_ARN = f"arn:aws:sqs:local:000000000000:{FAILURE_QUEUE_NAME}"


def reads_failure_queue(source: object) -> bool:
    """True for a Chalice SQS event source subscribed to the stream failure queue (by its
    placeholder ARN: a subscription by name could not be wired, see above)."""
    return getattr(source, "queue_arn", None) == FAILURE_QUEUE_PLACEHOLDER_ARN
