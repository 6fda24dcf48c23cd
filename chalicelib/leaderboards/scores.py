"""Facts → scores, exactly. Each fact (a conversion, an order, a ledger entry) remembers what it
contributes to which board (`Contribution`); a handler computes what the fact contributes now,
from its latest image, and writes only the difference, with the record, in one transaction
conditioned on the record's revision and the scores read. A redelivered or replayed record
finds nothing to change; a refund or an undone conversion changes the fact's contribution and
so moves the score back down.

A stream batch's facts are applied together (`apply_many`): every fact still writes its own
record, but a score or a bucket count moved by several facts of the batch is written once, with
their summed difference, in the same transaction (a transaction holds at most 100 items: a
larger group is split). What a write costs is per item, so a score written once instead of
twice saves its item, its two rank-index entries and their transactional double; and the bucket
counts a score leaves and enters are one item when both buckets are in one group.
"""
from __future__ import annotations

import json
from typing import Any

from pynamodb.exceptions import TransactWriteError

from ..store.base import cancelled_by_condition, cancelled_by_conflict, transaction
from . import rules
from .models import BucketGroup, Contribution, Score

MAX_CONFLICTS = 8
MAX_ITEMS = 100  # DynamoDB's limit on one transaction

Desired = dict[str, tuple[str, int]]  # board → (member, score contributed)
Key = tuple[str, str]  # (board, member)


def apply(fact_id: str, desired: Desired) -> bool:
    """Make the fact contribute `desired`; True when anything changed."""
    return apply_many({fact_id: desired}) > 0


def apply_many(facts: dict[str, Desired]) -> int:
    """Make each fact contribute what it desires; how many facts changed."""
    return _apply_group(facts) if facts else 0


def _apply_group(facts: dict[str, Desired]) -> int:
    for _ in range(MAX_CONFLICTS):
        records = _records(list(facts))
        plans = {}  # fact → (record, wanted, deltas)
        for fact_id, desired in facts.items():
            record = records.get(fact_id)
            had = json.loads(record.values) if record else {}
            current = {(b, v["member"]): int(v["score"]) for b, v in had.items()}
            wanted = {(b, member): score for b, (member, score) in desired.items() if score}
            deltas = {key: wanted.get(key, 0) - current.get(key, 0) for key in set(current) | set(wanted)}
            deltas = {key: delta for key, delta in deltas.items() if delta}
            if deltas:
                plans[fact_id] = (record, wanted, deltas)
        if not plans:
            return 0
        totals: dict[Key, int] = {}
        for _, _, deltas in plans.values():
            for key, delta in deltas.items():
                totals[key] = totals.get(key, 0) + delta
        totals = {key: delta for key, delta in totals.items() if delta}  # facts that cancel: no score write
        found = _scores(list(totals))
        buckets = _bucket_groups(_bucket_steps(totals, found))
        if len(plans) + len(totals) + len(buckets) > MAX_ITEMS and len(plans) > 1:
            ids = list(plans)
            half = len(ids) // 2
            return _apply_group({i: facts[i] for i in ids[:half]}) + _apply_group({i: facts[i] for i in ids[half:]})
        try:
            _write(plans, totals, found, buckets)
            return len(plans)
        except TransactWriteError as exc:
            if not (cancelled_by_condition(exc) or cancelled_by_conflict(exc)):
                raise
    raise RuntimeError(f"could not apply {sorted(facts)[:3]}… to the leaderboards: kept conflicting")


def _records(fact_ids: list[str]) -> dict[str, Contribution]:
    keys = [Contribution.key(fact_id) for fact_id in fact_ids]
    return {r.fact_id: r for r in Contribution.batch_get(keys, consistent_read=True)}


def _scores(keys: list[Key]) -> dict[Key, Score]:
    if not keys:
        return {}
    return {(s.board, s.member_id): s for s in Score.batch_get([Score.key(b, m) for b, m in keys],
                                                               consistent_read=True)}


def _bucket_steps(totals: dict[Key, int], found: dict[Key, Score]) -> dict[tuple[str, int, int], int]:
    steps: dict[tuple[str, int, int], int] = {}
    for (b, member), delta in totals.items():
        old = int(found[(b, member)].score) if (b, member) in found else 0
        for bucket, step in ((rules.bucket(old), -1), (rules.bucket(max(0, old + delta)), +1)):
            if bucket:
                key = (b, rules.shard(member), bucket)
                steps[key] = steps.get(key, 0) + step
    return {key: step for key, step in steps.items() if step}


def _bucket_groups(steps: dict[tuple[str, int, int], int]) -> dict[tuple[str, int, int], list[Any]]:
    """The bucket steps by the item that holds them: (board, shard, group) → their ADD actions."""
    groups: dict[tuple[str, int, int], list[Any]] = {}
    for (b, shard, bucket), step in steps.items():
        groups.setdefault((b, shard, rules.bucket_group(bucket)), []).append(BucketGroup.counter(bucket).add(step))
    return groups


def _write(plans: dict, totals: dict[Key, int], found: dict[Key, Score], buckets: dict) -> None:
    with transaction() as tx:
        for fact_id, (record, wanted, _) in plans.items():
            values = {b: {"member": member, "score": score} for (b, member), score in wanted.items()}
            rev = int(record.rev) if record else 0
            tx.save(Contribution(*Contribution.key(fact_id), fact_id=fact_id, values=json.dumps(values), rev=rev + 1),
                    condition=(Contribution.rev == rev) if record else Contribution.pk.does_not_exist())
        for (b, member), delta in totals.items():
            item = found.get((b, member))
            old = int(item.score) if item else 0
            tx.update(Score(*Score.key(b, member)), actions=_score_actions(b, member, max(0, old + delta)),
                      condition=(Score.score == old) if item else Score.pk.does_not_exist())
        for (b, shard, group), actions in buckets.items():
            tx.update(BucketGroup(*BucketGroup.key(b, shard, group)), actions=[*actions, BucketGroup.type.set(BucketGroup)])


def _score_actions(b: str, member: str, score: int) -> list[Any]:
    actions = [Score.score.set(score), Score.board.set(b), Score.member_id.set(member), Score.type.set(Score)]
    if score > 0:  # on the board
        actions += [Score.gsi1pk.set(f"LB#{b}#{rules.shard(member)}"), Score.gsi1sk.set(rules.rank_key(score, member))]
    else:
        actions += [Score.gsi1pk.remove(), Score.gsi1sk.remove()]
    return actions
