"""Facts → scores, exactly. Each fact (a conversion, an order, a ledger entry) remembers what it
contributes to which board (`Contribution`); a handler computes what the fact contributes now,
from its latest image, and writes only the difference, with the record, in one transaction
conditioned on the record's revision and the scores read. A redelivered or replayed record
finds nothing to change; a refund or an undone conversion changes the fact's contribution and
so moves the score back down."""
from __future__ import annotations

import json
from typing import Any

from pynamodb.exceptions import TransactWriteError

from ..store.base import cancelled_by_condition, transaction
from . import rules
from .models import BucketCount, Contribution, Score

MAX_CONFLICTS = 8

Desired = dict[str, tuple[str, int]]  # board → (member, score contributed)


def apply(fact_id: str, desired: Desired) -> bool:
    """Make the fact contribute `desired`; True when anything changed."""
    for _ in range(MAX_CONFLICTS):
        record = _record(fact_id)
        had = json.loads(record.values) if record else {}
        current = {(b, v["member"]): int(v["score"]) for b, v in had.items()}
        wanted = {(b, member): score for b, (member, score) in desired.items() if score}
        deltas = {key: wanted.get(key, 0) - current.get(key, 0) for key in set(current) | set(wanted)}
        deltas = {key: delta for key, delta in deltas.items() if delta}
        if not deltas:
            return False
        try:
            _write(fact_id, record, wanted, deltas)
            return True
        except TransactWriteError as exc:
            if not cancelled_by_condition(exc):
                raise
    raise RuntimeError(f"could not apply {fact_id} to the leaderboards: kept conflicting")


def _record(fact_id: str) -> Contribution | None:
    try:
        return Contribution.get(*Contribution.key(fact_id), consistent_read=True)
    except Contribution.DoesNotExist:
        return None


def _write(fact_id: str, record: Contribution | None, wanted: dict, deltas: dict) -> None:
    keys = [Score.key(b, member) for b, member in deltas]
    found = {(s.board, s.member_id): s for s in Score.batch_get(keys, consistent_read=True)}
    values = {b: {"member": member, "score": score} for (b, member), score in wanted.items()}
    rev = int(record.rev) if record else 0
    buckets: dict[tuple[str, int, int], int] = {}
    with transaction() as tx:
        tx.save(Contribution(*Contribution.key(fact_id), fact_id=fact_id, values=json.dumps(values), rev=rev + 1),
                condition=(Contribution.rev == rev) if record else Contribution.pk.does_not_exist())
        for (b, member), delta in deltas.items():
            item = found.get((b, member))
            old = int(item.score) if item else 0
            new = max(0, old + delta)
            tx.update(Score(*Score.key(b, member)), actions=_score_actions(b, member, new),
                      condition=(Score.score == old) if item else Score.pk.does_not_exist())
            for bucket, step in ((rules.bucket(old), -1), (rules.bucket(new), +1)):
                if bucket:
                    key = (b, rules.shard(member), bucket)
                    buckets[key] = buckets.get(key, 0) + step
        for (b, shard, bucket), step in buckets.items():
            if step:
                tx.update(BucketCount(*BucketCount.key(b, shard, bucket)),
                          actions=[BucketCount.count.add(step), BucketCount.type.set(BucketCount)])


def _score_actions(b: str, member: str, score: int) -> list[Any]:
    actions = [Score.score.set(score), Score.board.set(b), Score.member_id.set(member), Score.type.set(Score)]
    if score > 0:  # on the board
        actions += [Score.gsi1pk.set(f"LB#{b}#{rules.shard(member)}"), Score.gsi1sk.set(rules.rank_key(score, member))]
    else:
        actions += [Score.gsi1pk.remove(), Score.gsi1sk.remove()]
    return actions
