"""How each table stream reaches its function, declared once.

Three readers, one declaration:
- `app.py` takes `batch_size` and `starting_position` for `@app.on_dynamodb_record`;
- the AWS template (`infra/aws/template.py`) writes every field into the event source mapping
  (`FunctionResponseTypes`, `BisectBatchOnFunctionError`, `MaximumRetryAttempts`, …);
- the local poller (`infra/local/stream_poller.py`) follows the same settings, so a poison
  record behaves the same on a laptop and on AWS.

Pure data: importing this costs nothing at cold start.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StreamMapping:
    """Lambda's event source mapping for one table stream (names follow the AWS API).

    - `report_batch_item_failures`: the handler answers `{"batchItemFailures": [...]}` and
      Lambda retries from the lowest failed record; without it a returned list means nothing.
    - `bisect_batch_on_error`: a failing batch is split in two and each half retried, which
      isolates a poison record (splitting does not use up retries).
    - `maximum_retry_attempts` / `maximum_record_age_seconds`: then the batch is handed to the
      failure destination (its shard and sequence range) and the shard moves on.
    - `tumbling_window_seconds`: Lambda then names the shard (`shardId`) in every event;
      the click counters need it to be exact when a stream has several shards.
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
    parallelization_factor: int = 1  # >1 would break per-key order across batches of one shard
    tumbling_window_seconds: int | None = None

    def chalice_args(self) -> dict:
        """The part Chalice's decorator takes itself."""
        return {"batch_size": self.batch_size, "starting_position": self.starting_position}


MAPPINGS: dict[str, StreamMapping] = {
    mapping.function: mapping
    for mapping in (
        StreamMapping("on_main_change", "main", batch_size=100),
        StreamMapping("on_click", "clicks", batch_size=500, tumbling_window_seconds=30),
    )
}

# Where a batch goes once its retries or its age are used up (an SQS queue on AWS).
FAILURE_QUEUE_LOGICAL_ID = "StreamFailureQueue"
# The function subscribed to that queue registers `@app.on_sqs_message(queue=FAILURE_QUEUE_NAME)`;
# the template points its event source at the queue resource, whatever its deployed name.
FAILURE_QUEUE_NAME = "stream-failures"
